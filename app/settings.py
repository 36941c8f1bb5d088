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

from pydantic import AnyHttpUrl, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cds_hooks.algorithms import ASYMMETRIC_ALGORITHMS

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Orders msk-cds reacts to in order-select / order-sign (``system|code``; docs/cdshooks.md explains).
DEFAULT_ORDER_CODES: tuple[str, ...] = (
    "http://loinc.org|24802-1",  # MR Knee
    "http://loinc.org|24803-9",  # MR Knee WO and W contrast IV
    "http://loinc.org|24805-4",  # XR Knee standing AP and lateral
    "http://loinc.org|24806-2",  # XR Knee 2 views
    "http://loinc.org|24807-0",  # XR Knee standing AP
    "http://loinc.org|24808-8",  # XR Knee standing AP and PA
    "http://loinc.org|24809-6",  # XR Knee standing views
    "http://snomed.info/sct|72696002",  # Knee region structure (bodySite)
    "http://snomed.info/sct|609588000",  # Total knee replacement
    "http://snomed.info/sct|308481009",  # Referral to orthopedic surgeon
)


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
    segmentation_model: str = Field(default="knee-sam-tiny", description="folder of the SAM-family segmenter")
    segmentation_runtime: Literal["onnx", "torch"] = Field(
        default="onnx", description="ONNX Runtime for inference (CPU, or CUDA/TensorRT with the gpu extra); torch"
    )
    segmentation_batch: int = Field(default=8, ge=1, le=256, description="slices per image-encoder batch")

    # --- clinical models (app/clinical; folders under model_dir) -----------------------------------
    triage_model: str = Field(default="triage-knee", description="folder of the triage cascade model")
    risk_models: list[str] = Field(
        default_factory=lambda: ["risk-incident-oa", "risk-tkr"],
        description="folders of the OA / TKR risk models, one per outcome",
    )

    # --- service --------------------------------------------------------------------------------
    public_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8000"),
        description="this service's public URL; JWT 'aud' must equal <base>/cds-services/<id>",
    )
    auth_required: bool = True
    cds_clients: list[CdsClient] = Field(default_factory=list)
    fhir_allowlist: list[str] = Field(default_factory=list, description="FHIR base URLs a hook may name")
    dicomweb_allowlist: list[str] = Field(default_factory=list, description="DICOMweb base URLs that may be read")

    # --- CDS Hooks endpoint: client JWTs, CORS, cards (app/api, cds_hooks) ---------------------------
    jwt_algorithms: list[str] = Field(
        default_factory=lambda: ["ES384", "RS384", "ES256", "ES512", "RS256", "RS512", "PS256", "PS384", "PS512"],
        description="JWS algorithms accepted from CDS clients; asymmetric only (the spec forbids none and HMAC)",
    )
    jwt_leeway_s: float = Field(default=30.0, ge=0, le=300, description="clock skew allowed on exp / iat")
    jwt_max_lifetime_s: float = Field(default=3600.0, gt=0, description="longest exp - iat a client JWT may have")
    jwks_timeout_s: float = Field(default=3.0, gt=0, description="timeout fetching a client's JWK Set from its jku")
    jwks_cache_ttl_s: float = Field(default=300.0, gt=0, description="how long a fetched JWK Set is trusted")
    replay_cache_url: str = Field(
        default="",
        description="redis://host:6379/0 shares the JWT jti replay cache across API replicas (required with "
        "more than one); empty = in-process (one API process, the embedded default)",
    )
    cors_allow_origins: list[str] = Field(
        default_factory=list, description="browser origins (e.g. https://sandbox.cds-hooks.org) allowed by CORS"
    )
    cds_high_risk: dict[str, float] = Field(
        default_factory=lambda: {"tkr": 0.20, "incident_oa": 0.30},
        description="probability at or above which a risk card is a warning (TKR: with a referral suggestion); "
        "a site policy, not a model output",
    )
    cds_order_codes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ORDER_CODES),
        description="'system|code' of ServiceRequest codes / body sites that make an order-select or "
        "order-sign call relevant (knee imaging, knee body site, knee surgery, orthopaedic referral)",
    )

    # --- storage and queue ----------------------------------------------------------------------
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the result store; empty = SQLite under cache_dir (embedded default)",
    )
    queue: Literal["inprocess", "procrastinate"] = Field(
        default="inprocess",
        description="inprocess: worker threads in the service process (embedded default); "
        "procrastinate: durable queue in PostgreSQL, separate `mskcds worker` processes (scale mode)",
    )

    # --- analysis: analyses ahead of time, job queue, workers (app/analysis) ----------------------
    analyzer: str = Field(
        default="app.analysis.study:analyze_study_ref",
        description="import path 'module:attribute' of the analysis pipeline (StudyRef -> AnalysisResult) "
        "that workers run; its 'model_versions' mapping keys the result store",
    )
    worker_concurrency: int = Field(default=1, ge=1, description="analyses one worker process runs at once")
    job_max_attempts: int = Field(default=3, ge=1, description="runs of a job before it is marked failed")
    job_retry_backoff_s: float = Field(
        default=30.0, ge=0, description="delay before the first retry of a failed run; doubles for each later one"
    )
    worker_heartbeat_s: float = Field(default=10.0, gt=0, description="how often a running job proves its worker lives")
    worker_stall_after_s: float = Field(
        default=60.0,
        gt=0,
        description="a running job whose worker sent no heartbeat for this long is run again by another worker",
    )
    worker_poll_s: float = Field(
        default=1.0, gt=0, description="how often an idle worker looks for jobs (scale mode also wakes on NOTIFY)"
    )
    hook_wait_s: float = Field(
        default=0.0, ge=0, le=10, description="how long a hook may wait for a missing analysis before answering"
    )
    result_cache_size: int = Field(default=1024, ge=0, description="results kept in the in-memory read cache")

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
        default=0,
        ge=0,
        le=65535,
        description="port of `mskcds worker`'s Prometheus /metrics, also its liveness probe; 0 = none "
        "(the default, so several workers can share a development machine; the chart sets 9100)",
    )

    @property
    def resolved_database_url(self) -> str:
        """The result store URL, defaulting to a SQLite file so a fresh machine needs no server."""
        return self.database_url or f"sqlite:///{self.cache_dir / 'mskcds.sqlite3'}"

    @field_validator("jwt_algorithms")
    @classmethod
    def _asymmetric_only(cls, algorithms: list[str]) -> list[str]:
        refused = sorted(set(algorithms) - ASYMMETRIC_ALGORITHMS)
        if refused or not algorithms:
            raise ValueError(
                f"MSKCDS_JWT_ALGORITHMS may only name asymmetric algorithms {sorted(ASYMMETRIC_ALGORITHMS)}; "
                f"refused: {refused} (CDS Hooks forbids 'none' and HMAC)"
            )
        return algorithms

    @field_validator("cds_order_codes")
    @classmethod
    def _system_bar_code(cls, codes: list[str]) -> list[str]:
        malformed = [c for c in codes if c.count("|") != 1 or c.startswith("|") or c.endswith("|")]
        if malformed:
            raise ValueError(f"MSKCDS_CDS_ORDER_CODES entries are 'system|code', e.g. 'http://loinc.org|24802-1': "
                             f"{malformed}")
        return codes

    @model_validator(mode="after")
    def _queue_fits_store(self) -> Settings:
        if self.queue == "procrastinate" and not self.database_url.startswith("postgresql"):
            raise ValueError(
                "MSKCDS_QUEUE=procrastinate keeps its jobs in PostgreSQL: set MSKCDS_DATABASE_URL to a "
                "PostgreSQL URL such as postgresql+psycopg://user@host:5432/mskcds"
            )
        if self.worker_stall_after_s < 2 * self.worker_heartbeat_s:
            raise ValueError(
                f"MSKCDS_WORKER_STALL_AFTER_S ({self.worker_stall_after_s}) must be at least twice "
                f"MSKCDS_WORKER_HEARTBEAT_S ({self.worker_heartbeat_s}), or live workers are taken for dead"
            )
        return self

    @model_validator(mode="after")
    def _secure_outside_demo(self) -> Settings:
        if not self.demo and not self.auth_required:
            raise ValueError(
                "MSKCDS_AUTH_REQUIRED=false is only allowed with MSKCDS_DEMO=true: "
                "CDS Hooks requires every call to carry a verified JWT"
            )
        return self

    def model_folder(self, name: str, model_dir: Path | None = None) -> Path:
        """The folder of model ``name``: ``model_dir`` (default MSKCDS_MODEL_DIR) first, then the
        repository's ``models/``, so a site folder may hold only the models it replaces. A name found in
        neither is returned under ``model_dir`` (where the caller's error message should point)."""
        first = Path(model_dir) if model_dir is not None else self.model_dir
        for folder in (first, BUILTIN_MODEL_DIR):
            if (folder / name).is_dir():
                return folder / name
        return first / name


#: The models shipped with the repository.
BUILTIN_MODEL_DIR = REPO_ROOT / "models"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests call ``get_settings.cache_clear()`` after changing env).

    ``MSKCDS_SECRETS_DIR`` names a directory of files, one per setting (e.g. a mounted Kubernetes Secret
    holding ``mskcds_dicomweb_password``); the environment still wins over it.
    """
    secrets_dir = os.environ.get("MSKCDS_SECRETS_DIR")
    return Settings(_secrets_dir=secrets_dir) if secrets_dir else Settings()
