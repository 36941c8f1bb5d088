"""Small hand-built model files whose scores can be worked out by hand."""

from __future__ import annotations

from datetime import date

from app.clinical.model_files import (
    ClassifierStage,
    CoxBaseline,
    FeatureSpec,
    LinearModel,
    RiskModelFile,
    RiskVariant,
    ThresholdStage,
    TrainingCohort,
    TriageModelFile,
)
from schemas.biomarkers import Biomarker, BiomarkerSet

TRAINING = TrainingCohort(source="csv", description="hand-built test cohort", n_train=100, command="pytest")


def spec(key: str, unit: str, mean: float, sd: float, low: float = -1e9, high: float = 1e9) -> FeatureSpec:
    return FeatureSpec(key=key, unit=unit, mean=mean, sd=sd, low=low, high=high)


def linear(specs: list[FeatureSpec], coefficients: list[float], intercept: float | None) -> LinearModel:
    size = len(specs) + (intercept is not None)
    covariance = [[0.01 if i == j else 0.0 for j in range(size)] for i in range(size)]
    return LinearModel(features=specs, coefficients=coefficients, intercept=intercept, covariance=covariance)


AGE = spec("age_years", "a", 60.0, 10.0)
SEX = spec("sex_female", "1", 0.5, 0.5)
BMI = spec("bmi", "kg/m2", 28.0, 5.0)
MT = spec("cartilage_thickness_mean:MT", "mm", 1.7, 0.3, low=0.5, high=2.5)
CHANGE_MT = spec("change:cartilage_thickness_mean:MT", "mm/a", -0.02, 0.05)


def logistic_risk_model() -> RiskModelFile:
    """lp = -2 + 0.5 z_age + 0.2 z_sex + 0.3 z_bmi (- 0.6 z_MT) (- 0.4 z_change)."""
    return RiskModelFile(
        model_id="risk-test", version="9.9.9", created=date(2026, 1, 1), outcome="incident_oa",
        outcome_definition="test outcome", horizon_months=48, method="logistic",
        variants={
            "demographics": RiskVariant(linear=linear([AGE, SEX, BMI], [0.5, 0.2, 0.3], -2.0)),
            "imaging": RiskVariant(linear=linear([AGE, SEX, BMI, MT], [0.5, 0.2, 0.3, -0.6], -2.0)),
            "imaging_change": RiskVariant(
                linear=linear([AGE, SEX, BMI, MT, CHANGE_MT], [0.5, 0.2, 0.3, -0.6, -0.4], -2.0)),
        },
        training=TRAINING, notice="test model",
    )


def cox_risk_model() -> RiskModelFile:
    """S0(48) = 0.9; lp = 0.5 z_age (+ -0.6 z_MT)."""
    baseline = CoxBaseline(horizon_survival=0.9, times_months=[0.0, 48.0], cumulative_hazard=[0.0, 0.10536051565782628])
    return RiskModelFile(
        model_id="risk-test-cox", version="1.0.0", created=date(2026, 1, 1), outcome="tkr",
        outcome_definition="test outcome", horizon_months=48, method="cox",
        variants={
            "demographics": RiskVariant(linear=linear([AGE, SEX, BMI], [0.5, 0.0, 0.0], None), baseline=baseline),
            "imaging": RiskVariant(linear=linear([AGE, SEX, BMI, MT], [0.5, 0.0, 0.0, -0.6], None), baseline=baseline),
        },
        training=TRAINING, notice="test model",
    )


def triage_model() -> TriageModelFile:
    """Denuded > 1 % -> urgent; thickness < 70 % of 1.73 mm (MT) -> urgent; else classifier on MT thickness."""
    return TriageModelFile(
        model_id="triage-test", version="2.0.0", created=date(2026, 1, 1), urgent_definition="test damage",
        sensitivity_target=0.98, threshold_confidence=0.95,
        stages=[
            ThresholdStage(name="full-thickness-cartilage-loss", finding="full-thickness cartilage loss",
                           biomarker="denuded_area_pct", regions=["MT", "cMF"], direction="above", threshold=1.0,
                           reason="full-thickness cartilage loss (denuded bone) over {value} of the {region} plate "
                                  "(urgent above {threshold})", rationale="test"),
            ThresholdStage(name="severe-cartilage-thinning", finding="severe cartilage thinning",
                           biomarker="cartilage_thickness_mean", regions=["MT"], direction="below", threshold=0.7,
                           reference={"MT": 1.73},
                           reason="cartilage of the {region} thinned to a mean of {value}, {fraction} of the healthy "
                                  "reference {reference} (urgent below {threshold})", rationale="test"),
            ClassifierStage(name="biomarker-classifier", linear=linear([MT], [-2.0], -1.0), urgent_threshold=0.5,
                            deprioritise_threshold=0.1, rationale="test"),
        ],
        training=TRAINING, notice="test model",
    )


def knee(laterality: str = "right", **values: float) -> BiomarkerSet:
    """``knee(cartilage_thickness_mean__MT=1.8)``: double underscore separates name and region."""
    biomarkers = [Biomarker.of(key.split("__")[0], key.split("__")[1], v) for key, v in values.items()]
    return BiomarkerSet(laterality=laterality, laterality_source="dicom", biomarkers=biomarkers)
