"""The app under test: real JWT verification against a JWKS served on loopback, the real embedded
analysis service (SQLite + in-process worker) running a small deterministic analyzer, the integration
layer's real hook context reading prefetch, and the clinical models."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient

from app.analysis import StudyRef, create_analysis_service
from app.clinical.errors import MissingFeatureError
from app.log import configure_logging
from app.main import create_app
from app.settings import Settings
from schemas.analysis import AnalysisResult, SeriesUsed
from schemas.biomarkers import Biomarker, BiomarkerName, BiomarkerSet
from schemas.clinical import RiskFactor, RiskResult, TriageResult
from tests.api.fhir_data import DICOMWEB, FHIR_SERVER
from tests.cds_hooks.client import CdsTestClient, JwksServer

BASE = "http://cds.test"
CLOSED_FHIR_SERVER = "http://127.0.0.1:9/fhir"  # allowlisted, nothing listens (port 9, discard)
SERVICE = {"patient-view": "mskcds-knee-patient-view", "order-select": "mskcds-knee-order-select",
           "order-sign": "mskcds-knee-order-sign"}


class KneeAnalyzer:
    """Stands in for the segmentation pipeline (the analyzer is a parameter of the analysis service):
    it answers every study with the same measured right knee and an urgent triage."""

    model_versions: ClassVar[dict[str, str]] = {"knee-seg-test": "0.1"}

    def __call__(self, ref: StudyRef) -> AnalysisResult:
        biomarkers = BiomarkerSet(laterality="right", laterality_source="dicom", biomarkers=[
            Biomarker.of(BiomarkerName.CARTILAGE_THICKNESS_MEAN, "cMF", 1.21),
            Biomarker.of(BiomarkerName.CARTILAGE_THICKNESS_MEAN, "MT", 1.35),
            Biomarker.of(BiomarkerName.BONE_VOLUME, "femur", 142000.0),
        ])
        triage = TriageResult(priority="urgent", stage="cartilage-thickness", stage_index=0,
                              reasons=["Medial femoral cartilage (cMF) is thin: 1.21 mm"],
                              deciding_biomarkers=[biomarkers.biomarkers[0]], model_id="triage-test", model_version="1")
        return AnalysisResult(study_instance_uid=ref.study_instance_uid, model_versions=self.model_versions,
                              series=[SeriesUsed(role="morphology",
                                                 series_instance_uids=[f"{ref.study_instance_uid}.1"])],
                              measurements=biomarkers, triage=triage, created_at=datetime.now(UTC))


@pytest.fixture(autouse=True)
def _logging_to_this_tests_stderr() -> None:
    """structlog binds the stream at configuration time; a test that captured it (capsys) closes it after."""
    configure_logging("INFO", json=True)


@pytest.fixture(scope="session")
def cds_client() -> CdsTestClient:
    return CdsTestClient(iss="https://ehr.hospital.test/")


@pytest.fixture(scope="session")
def jwks_url(cds_client: CdsTestClient) -> Iterator[str]:
    server = JwksServer(cds_client.jwks())
    with server.running():
        cds_client.jku = server.url
        yield server.url


@pytest.fixture
def settings(jwks_url: str, cds_client: CdsTestClient, tmp_path) -> Settings:
    return Settings(public_base_url=BASE, cds_clients=[{"iss": cds_client.iss, "jku": jwks_url}],
                    fhir_allowlist=[FHIR_SERVER, CLOSED_FHIR_SERVER], dicomweb_allowlist=[DICOMWEB],
                    cache_dir=tmp_path / "cache",
                    cors_allow_origins=["https://sandbox.cds-hooks.org"])


class FixedRiskModels:
    """Fixed OA / TKR risks in the ClinicalModels shape: the card tests check how given risks are shown,
    independently of the shipped models' coefficients (tests/clinical tests those)."""

    versions: ClassVar[dict[str, str]] = {"risk-test": "0"}

    def risk(self, biomarkers, demographics, prior=None, months_since_prior=None) -> list[RiskResult]:
        if demographics.bmi is None:
            raise MissingFeatureError("risk-test", ["bmi", "change:cartilage_thickness_mean:cMF"])
        common = {"method": "cox", "used_prior": False, "model_id": "risk-test", "model_version": "0"}
        return [
            RiskResult(outcome="incident_oa", horizon_months=48, probability=0.18, ci_low=0.12, ci_high=0.25,
                       demographics_only_probability=0.11, **common),
            RiskResult(outcome="tkr", horizon_months=60, probability=0.27, ci_low=0.19, ci_high=0.36,
                       demographics_only_probability=0.08, top_factors=[RiskFactor(
                           feature="cartilage_thickness_mean:cMF", value=1.21, unit="mm", contribution=0.8,
                           text="central medial femoral cartilage thinner than typical")], **common),
        ]


@pytest.fixture
def clinical():
    return FixedRiskModels()


@pytest.fixture
def app_client(settings: Settings, clinical) -> Iterator[TestClient]:
    analysis = create_analysis_service(settings, KneeAnalyzer())
    app = create_app(settings, analysis=analysis, clinical=clinical)
    with TestClient(app, base_url=BASE) as client:
        client.app_state = app.state  # type: ignore[attr-defined]
        yield client


def bearer(cds_client: CdsTestClient, path: str, **kwargs) -> dict[str, str]:
    return {"Authorization": f"Bearer {cds_client.token(BASE + path, **kwargs)}"}
