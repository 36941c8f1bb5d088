"""The one settings object of msk-cds.

Every configurable value lives here, read from the environment (prefix ``MSKCDS_``, nested values with
``__``), a ``.env`` file, or a secrets directory (Kubernetes mounts secrets as files). Code obtains it
through :func:`get_settings`, which tests override; nothing reads ``os.environ`` elsewhere.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class CdsClient(BaseModel):
    """An EHR allowed to call the CDS services: its JWT issuer and where its signing keys come from."""

    iss: str
    jku: AnyHttpUrl | None = None
    jwks: dict | None = Field(default=None, description="a JWKS configured out-of-band")

    @model_validator(mode="after")
    def _one_key_source(self) -> CdsClient:
        if (self.jku is None) == (self.jwks is None):
            raise ValueError(f"CDS client {self.iss!r}: give exactly one of 'jku' (URL) or 'jwks' (JSON key set)")
        return self


class Settings(BaseSettings):
    """msk-cds configuration (env prefix ``MSKCDS_``)."""

    model_config = SettingsConfigDict(
        env_prefix="MSKCDS_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    # --- general -------------------------------------------------------------------------------
    demo: bool = Field(default=False, description="local demo: relaxes security checks that need real infrastructure")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = Field(default=True, description="one JSON event per line (False: readable console lines)")
    cache_dir: Path = Field(default=Path.home() / ".cache" / "mskcds", description="unpacked data, downloads")

    # --- models ---------------------------------------------------------------------------------
    model_dir: Path = Field(default=REPO_ROOT / "models", description="model artifacts, one folder per model")

    # --- service --------------------------------------------------------------------------------
    public_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8000"),
        description="this service's public URL; JWT 'aud' must equal <base>/cds-services/<id>",
    )
    auth_required: bool = True
    cds_clients: list[CdsClient] = Field(default_factory=list)
    fhir_allowlist: list[str] = Field(default_factory=list, description="FHIR base URLs a hook may name")
    dicomweb_allowlist: list[str] = Field(default_factory=list, description="DICOMweb base URLs that may be read")

    # --- storage and queue ----------------------------------------------------------------------
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the result store; empty = SQLite under cache_dir (embedded default)",
    )
    queue: Literal["inprocess", "procrastinate"] = "inprocess"

    # --- upstream systems -----------------------------------------------------------------------
    dicomweb_url: str = ""
    dicomweb_user: str = ""
    dicomweb_password: SecretStr = SecretStr("")
    dicomweb_token: SecretStr = SecretStr("")
    fhir_url: str = Field(default="", description="FHIR server that receives the analysis' resources")
    fhir_token: SecretStr = SecretStr("")
    # How patiently upstream systems are waited for (app/clients): a connect / read timeout per request,
    # attempts in all for failures a retry can cure (connection errors, timeouts, 5xx, 429), with waits
    # doubling from upstream_backoff_s; WADO-RS instances fetched at once; FHIR search pages followed.
    upstream_connect_timeout_s: float = Field(default=5.0, gt=0)
    upstream_read_timeout_s: float = Field(default=60.0, gt=0)
    upstream_attempts: int = Field(default=3, ge=1, le=10)
    upstream_backoff_s: float = Field(default=0.5, ge=0)
    dicomweb_max_concurrency: int = Field(default=8, ge=1, le=64)
    fhir_max_pages: int = Field(default=20, ge=1)

    # --- deployment (helm/msk-cds wires these; docs/operations.md) -------------------------------
    worker_metrics_port: int = Field(
        default=9100,
        ge=0,
        le=65535,
        description="port of `mskcds worker`'s Prometheus /metrics, also its liveness probe; 0 = none",
    )

    @property
    def resolved_database_url(self) -> str:
        """The result store URL, defaulting to a SQLite file so a fresh machine needs no server."""
        return self.database_url or f"sqlite:///{self.cache_dir / 'mskcds.sqlite3'}"

    @model_validator(mode="after")
    def _secure_outside_demo(self) -> Settings:
        if not self.demo and not self.auth_required:
            raise ValueError(
                "MSKCDS_AUTH_REQUIRED=false is only allowed with MSKCDS_DEMO=true: "
                "CDS Hooks requires every call to carry a verified JWT"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests call ``get_settings.cache_clear()`` after changing env).

    ``MSKCDS_SECRETS_DIR`` names a directory of files, one per setting (e.g. a mounted Kubernetes Secret
    holding ``mskcds_dicomweb_password``); the environment still wins over it.
    """
    secrets_dir = os.environ.get("MSKCDS_SECRETS_DIR")
    return Settings(_secrets_dir=secrets_dir) if secrets_dir else Settings()
