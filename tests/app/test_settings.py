import pytest
from pydantic import ValidationError

from app.settings import Settings, get_settings


def test_defaults_need_no_server(tmp_path) -> None:
    settings = get_settings()
    assert settings.queue == "inprocess"
    assert settings.resolved_database_url.startswith("sqlite:///")


def test_env_prefix_and_json_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSKCDS_FHIR_ALLOWLIST", '["https://fhir.example.org/r4"]')
    monkeypatch.setenv(
        "MSKCDS_CDS_CLIENTS", '[{"iss": "https://ehr.example.org", "jku": "https://ehr.example.org/jwks"}]'
    )
    settings = Settings()
    assert settings.fhir_allowlist == ["https://fhir.example.org/r4"]
    assert settings.cds_clients[0].iss == "https://ehr.example.org"


def test_auth_off_refused_outside_demo() -> None:
    with pytest.raises(ValidationError, match="only allowed with MSKCDS_DEMO=true"):
        Settings(auth_required=False)
    assert Settings(auth_required=False, demo=True).auth_required is False


def test_cds_client_needs_exactly_one_key_source() -> None:
    with pytest.raises(ValidationError, match="exactly one of 'jku'"):
        Settings(cds_clients=[{"iss": "x"}])


def test_secrets_dir(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / "mskcds_dicomweb_password").write_text("s3cret")
    monkeypatch.setenv("MSKCDS_SECRETS_DIR", str(tmp_path))
    get_settings.cache_clear()
    assert get_settings().dicomweb_password.get_secret_value() == "s3cret"
