"""Hand-built AnalysisResults for the FHIR output tests.

Until the pipeline lands (imaging -> segmentation -> measurement -> clinical), these stand for its
output: values in the ranges a healthy adult knee has, a triage decision and two risk estimates, each
field built through the shared schemas (so they validate exactly as the pipeline's results will).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from schemas.analysis import AnalysisResult, SeriesUsed
from schemas.biomarkers import Biomarker, BiomarkerName, BiomarkerSet
from schemas.clinical import RiskFactor, RiskResult, TriageResult

N = BiomarkerName

BIOMARKERS: tuple[tuple[BiomarkerName, str, float], ...] = (
    (N.CARTILAGE_THICKNESS_MEAN, "cMF", 2.1),
    (N.CARTILAGE_THICKNESS_MEAN, "cLF", 2.3),
    (N.CARTILAGE_THICKNESS_MEAN, "MT", 1.7),
    (N.CARTILAGE_THICKNESS_MEAN, "LT", 2.0),
    (N.CARTILAGE_THICKNESS_MEAN, "P", 2.6),
    (N.CARTILAGE_VOLUME, "F", 9800.0),
    (N.DENUDED_AREA_PCT, "cMF", 0.0),
    (N.BONE_VOLUME, "femur", 152000.0),
    (N.MENISCUS_VOLUME, "MM", 2200.0),
    (N.T2_MEAN, "cMF", 38.5),
    (N.T2_SD, "cMF", 9.1),
)


def example_result(study_instance_uid: str, study_date: date = date(2024, 3, 15)) -> AnalysisResult:
    risks = [
        RiskResult(
            outcome="incident_oa",
            horizon_months=48,
            probability=0.18,
            ci_low=0.12,
            ci_high=0.25,
            demographics_only_probability=0.14,
            top_factors=[
                RiskFactor(
                    feature="cartilage_thickness_mean:cMF",
                    value=2.1,
                    unit="mm",
                    contribution=0.21,
                    text="medial femoral cartilage thinner than typical",
                ),
                RiskFactor(feature="age", value=61.0, unit="a", contribution=0.1, text="age 61"),
            ],
            method="logistic",
            used_prior=False,
            model_id="risk-oa",
            model_version="1.0.0",
        ),
        RiskResult(
            outcome="tkr",
            horizon_months=60,
            probability=0.04,
            ci_low=0.02,
            ci_high=0.07,
            demographics_only_probability=0.03,
            method="cox",
            used_prior=False,
            model_id="risk-tkr",
            model_version="1.0.0",
        ),
    ]
    return AnalysisResult(
        study_instance_uid=study_instance_uid,
        study_date=study_date,
        model_versions={"knee-sam": "0.3.0", "triage-cascade": "1.0.0", "risk-oa": "1.0.0", "risk-tkr": "1.0.0"},
        series=[SeriesUsed(role="morphology", series_instance_uids=["1.2.3.4.5"], description="Sag 3D DESS WE")],
        measurements=BiomarkerSet(
            laterality="right",
            laterality_source="dicom",
            biomarkers=[Biomarker.of(name, region, value) for name, region, value in BIOMARKERS],
        ),
        triage=TriageResult(
            priority="routine",
            stage="cartilage-thickness",
            stage_index=1,
            reasons=["no cartilage plate thinner than the urgent threshold"],
            model_id="triage-cascade",
            model_version="1.0.0",
        ),
        risk=risks,
        created_at=datetime(2024, 3, 15, 12, 30, tzinfo=UTC),
    )
