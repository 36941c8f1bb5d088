"""The chart's configuration reaches app/settings.py as intended: every variable names a real setting,
and the mounted Secret is read through MSKCDS_SECRETS_DIR."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings
from tests.deploy.chart import MINIMAL_VALUES, deep_merge, one, production_values, render


def _env(values: dict) -> dict[str, str]:
    return one(render(values), "ConfigMap")["data"]


def test_every_variable_names_a_setting() -> None:
    env = _env(production_values())
    fields = {f"MSKCDS_{name.upper()}" for name in Settings.model_fields}
    # MSKCDS_SECRETS_DIR is read by get_settings() itself, before Settings is built.
    unknown = sorted(set(env) - fields - {"MSKCDS_SECRETS_DIR"})
    assert unknown == [], f"the ConfigMap sets variables no setting reads: {unknown}"


def test_production_configuration_parses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in _env(production_values()).items():
        monkeypatch.setenv(name, value)
    # What the operator's existing Secret provides (scale mode refuses to start without a PostgreSQL URL).
    (tmp_path / "mskcds_database_url").write_text("postgresql+psycopg://mskcds@db.hospital.example.org/mskcds")
    settings = Settings(_secrets_dir=tmp_path)
    assert str(settings.public_base_url) == "https://cds.hospital.example.org/"
    assert settings.queue == "procrastinate"
    assert settings.auth_required is True
    assert [client.iss for client in settings.cds_clients] == ["https://ehr.hospital.example.org"]
    assert str(settings.cds_clients[0].jku) == "https://ehr.hospital.example.org/.well-known/jwks.json"
    assert settings.fhir_allowlist == ["https://fhir.hospital.example.org/r4"]
    assert settings.dicomweb_allowlist == ["https://pacs.hospital.example.org/dicom-web"]
    assert settings.dicomweb_user == "mskcds"
    assert settings.model_dir == Path("/opt/mskcds/models")
    assert settings.cache_dir == Path("/var/cache/mskcds")
    assert settings.worker_metrics_port == 9100
    assert settings.log_json is True


def test_extra_env_extends_and_overrides() -> None:
    env = _env(
        deep_merge(MINIMAL_VALUES, {"config": {"extraEnv": {"MSKCDS_LOG_LEVEL": "WARNING", "MSKCDS_DEMO": "false"}}})
    )
    assert env["MSKCDS_LOG_LEVEL"] == "WARNING"
    assert env["MSKCDS_DEMO"] == "false"


def test_secret_keys_are_read_from_the_secrets_dir(tmp_path: Path) -> None:
    values = deep_merge(
        MINIMAL_VALUES,
        {"secrets": {"dicomwebPassword": "pacs-pw", "dicomwebToken": "pacs-token", "fhirToken": "fhir-token"}},
    )
    secret = one(render(values), "Secret")
    assert sorted(secret["stringData"]) == [
        "mskcds_database_url",
        "mskcds_dicomweb_password",
        "mskcds_dicomweb_token",
        "mskcds_fhir_token",
        "mskcds_replay_cache_url",
    ]
    for key, value in secret["stringData"].items():  # what the kubelet writes into the mounted directory
        (tmp_path / key).write_text(value)
    settings = Settings(_secrets_dir=tmp_path)
    assert settings.database_url == MINIMAL_VALUES["database"]["url"]
    assert settings.replay_cache_url == MINIMAL_VALUES["redis"]["url"]
    assert settings.dicomweb_password.get_secret_value() == "pacs-pw"
    assert settings.dicomweb_token.get_secret_value() == "pacs-token"
    assert settings.fhir_token.get_secret_value() == "fhir-token"
