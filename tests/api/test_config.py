"""The CDS Hooks settings refuse insecure or malformed values, and `mskcds serve` checks its options."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from app.cli import cli
from app.settings import Settings


def test_symmetric_or_none_algorithms_refused() -> None:
    with pytest.raises(ValidationError, match=r"refused: \['HS256', 'none'\] \(CDS Hooks forbids 'none' and HMAC\)"):
        Settings(jwt_algorithms=["ES384", "HS256", "none"])
    assert Settings(jwt_algorithms=["ES384"]).jwt_algorithms == ["ES384"]


def test_order_codes_are_system_bar_code() -> None:
    with pytest.raises(ValidationError, match=r"entries are 'system\|code'.*\['24802-1'\]"):
        Settings(cds_order_codes=["24802-1"])


def test_env_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSKCDS_CORS_ALLOW_ORIGINS", '["https://sandbox.cds-hooks.org"]')
    monkeypatch.setenv("MSKCDS_CDS_HIGH_RISK", '{"tkr": 0.1}')
    monkeypatch.setenv("MSKCDS_REPLAY_CACHE_URL", "redis://127.0.0.1:6379/0")
    settings = Settings()
    assert settings.cors_allow_origins == ["https://sandbox.cds-hooks.org"]
    assert settings.cds_high_risk == {"tkr": 0.1}
    assert settings.replay_cache_url == "redis://127.0.0.1:6379/0"


def test_serve_refuses_several_workers_without_a_shared_replay_cache() -> None:
    result = CliRunner().invoke(cli, ["serve", "--workers", "2"])
    assert result.exit_code == 2
    assert "--workers > 1 needs MSKCDS_REPLAY_CACHE_URL" in result.output
