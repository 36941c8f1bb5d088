"""The JSON model files: plain, reviewable, versioned data that pydantic validates on load (never pickles).

A model folder holds ``model.json`` (one of the file types below), ``model_card.json`` (name, version and the
sha256 of every file) and a human-readable ``README.md``. Linear models store their standardisation (mean, SD),
the clipping range of every input, the coefficients on the standardised scale, and the coefficients'
covariance (for confidence intervals); Cox models also store the baseline survival at the horizon and the
baseline cumulative hazard. Nothing is executable: a reviewer can recompute any score by hand.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.clinical.features import parse_feature_key
from schemas.biomarkers import REGIONS, BiomarkerName
from schemas.clinical import Outcome

SCHEMA_VERSION = "1"
DEMONSTRATION_NOTICE = (
    "Demonstration coefficients fitted on a simulated cohort, not on patients: retrain on OAI or local data "
    "with `mskcds train-risk` / `mskcds train-triage` before any clinical use."
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureSpec(_Strict):
    """One input of a linear model: its key and unit, how it is standardised and clipped."""

    key: str
    unit: str
    mean: float
    sd: float = Field(gt=0)
    low: float = Field(description="inputs below are clipped to this (0.5th percentile of the training data)")
    high: float = Field(description="inputs above are clipped to this (99.5th percentile of the training data)")

    @model_validator(mode="after")
    def _known_key_and_unit(self) -> FeatureSpec:
        parsed = parse_feature_key(self.key)
        if parsed.unit != self.unit:
            raise ValueError(f"feature {self.key} is expressed in {parsed.unit!r}, not {self.unit!r}")
        if not self.low <= self.high:
            raise ValueError(f"feature {self.key}: clipping range [{self.low}, {self.high}] is empty")
        return self


class LinearModel(_Strict):
    """``lp = intercept + sum(coefficient * (clip(x) - mean) / sd)``; covariance over (intercept?, coefficients)."""

    features: list[FeatureSpec]
    coefficients: list[float]
    intercept: float | None = Field(default=None, description="logistic models only; Cox models have none")
    covariance: list[list[float]]

    @model_validator(mode="after")
    def _shapes(self) -> LinearModel:
        keys = [f.key for f in self.features]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate features: {sorted({k for k in keys if keys.count(k) > 1})}")
        if len(self.coefficients) != len(self.features):
            raise ValueError(f"{len(self.coefficients)} coefficients for {len(self.features)} features")
        size = len(self.features) + (self.intercept is not None)
        if len(self.covariance) != size or any(len(row) != size for row in self.covariance):
            raise ValueError(f"covariance must be {size}x{size} (intercept first when there is one)")
        if not all(math.isfinite(v) for v in self.coefficients):
            raise ValueError("coefficients must be finite numbers")
        return self

    @property
    def keys(self) -> list[str]:
        return [f.key for f in self.features]


class CoxBaseline(_Strict):
    """Baseline survival of a Cox model at covariates = training means (all standardised inputs 0)."""

    horizon_survival: float = Field(gt=0, le=1, description="S0(horizon)")
    times_months: list[float]
    cumulative_hazard: list[float]

    @model_validator(mode="after")
    def _monotone(self) -> CoxBaseline:
        if len(self.times_months) != len(self.cumulative_hazard):
            raise ValueError("times_months and cumulative_hazard differ in length")
        if any(b < a for a, b in zip(self.cumulative_hazard, self.cumulative_hazard[1:], strict=False)):
            raise ValueError("cumulative_hazard must not decrease")
        return self


VariantName = Literal["demographics", "imaging", "imaging_change"]


class RiskVariant(_Strict):
    """One of a risk model's nested models (demographics only; + baseline imaging; + biomarker change)."""

    linear: LinearModel
    baseline: CoxBaseline | None = None


class Interval(_Strict):
    """An estimate with its (bootstrap percentile) 95 % confidence interval."""

    estimate: float
    ci_low: float
    ci_high: float


class TrainingCohort(_Strict):
    """Where a model's coefficients came from, in words and numbers."""

    source: Literal["simulated", "oai", "csv"]
    description: str
    n_train: int = Field(ge=1)
    n_events_train: int | None = None
    n_test: int | None = None
    n_events_test: int | None = None
    seed: int | None = None
    command: str = Field(description="the command that produced this model file")


class RiskModelFile(_Strict):
    """``model.json`` of an OA / TKR risk model."""

    format: Literal["mskcds-risk-model"] = "mskcds-risk-model"
    schema_version: Literal["1"] = SCHEMA_VERSION
    model_id: str
    version: str
    created: date
    outcome: Outcome
    outcome_definition: str
    horizon_months: int = Field(gt=0)
    method: Literal["cox", "logistic"]
    change_window_months: tuple[float, float] = Field(
        default=(6.0, 60.0), description="a prior exam outside this interval is not used (baseline-imaging fallback)"
    )
    variants: dict[VariantName, RiskVariant]
    training: TrainingCohort
    metrics: dict[str, dict[str, Interval]] = Field(
        default_factory=dict, description="held-out metrics per variant (and 'gap' rows), with 95 % CIs"
    )
    notice: str

    @model_validator(mode="after")
    def _consistent(self) -> RiskModelFile:
        for required in ("demographics", "imaging"):
            if required not in self.variants:
                raise ValueError(f"variant {required!r} is required (it is the fallback when inputs are missing)")
        for name, variant in self.variants.items():
            kinds = {parse_feature_key(k).kind for k in variant.linear.keys}
            if name == "demographics" and kinds != {"demographic"}:
                raise ValueError("variant 'demographics' may use only age_years, sex_female and bmi")
            if name == "imaging" and "change" in kinds:
                raise ValueError("variant 'imaging' must not use change features (it is the no-prior fallback)")
            if name == "imaging_change" and "change" not in kinds:
                raise ValueError("variant 'imaging_change' must use at least one change feature")
            if self.method == "cox" and (variant.baseline is None or variant.linear.intercept is not None):
                raise ValueError(f"variant {name!r}: a Cox model needs a baseline and no intercept")
            if self.method == "logistic" and (variant.baseline is not None or variant.linear.intercept is None):
                raise ValueError(f"variant {name!r}: a logistic model needs an intercept and no baseline")
        low, high = self.change_window_months
        if not 0 < low < high:
            raise ValueError(f"change_window_months {self.change_window_months} must satisfy 0 < low < high")
        return self


class ThresholdStage(_Strict):
    """A rule-in stage: urgent when any listed region's value is above (or below) the threshold.

    With ``reference`` the value compared is ``value / reference[region]`` (e.g. thickness as a fraction of the
    healthy reference), so one threshold serves plates of different normal thickness.
    """

    kind: Literal["threshold"] = "threshold"
    name: str
    finding: str = Field(description="what crossing the threshold means, e.g. 'full-thickness cartilage loss'")
    biomarker: BiomarkerName
    regions: list[str] = Field(min_length=1)
    direction: Literal["above", "below"]
    threshold: float
    reference: dict[str, float] | None = None
    reason: str = Field(
        description="sentence template for a hit; placeholders {region} {value} {threshold}, and with a reference "
        "{reference} {fraction}"
    )
    rationale: str = Field(description="how the threshold was chosen")

    @model_validator(mode="after")
    def _regions(self) -> ThresholdStage:
        placeholders = {"region": "", "value": "", "threshold": "", "reference": "", "fraction": ""}
        try:
            self.reason.format(**placeholders)
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"stage {self.name}: reason template has an unknown placeholder {error}") from None
        unknown = [r for r in self.regions if r not in REGIONS]
        if unknown:
            raise ValueError(f"stage {self.name}: unknown regions {unknown}")
        if self.reference is not None:
            missing = [r for r in self.regions if r not in self.reference or self.reference[r] <= 0]
            if missing:
                raise ValueError(f"stage {self.name}: reference values (> 0) missing for {missing}")
        return self


class ClassifierStage(_Strict):
    """The last stage: a logistic model; urgent above one threshold, deprioritised below a lower one."""

    kind: Literal["classifier"] = "classifier"
    name: str
    linear: LinearModel
    urgent_threshold: float = Field(ge=0, le=1)
    deprioritise_threshold: float = Field(ge=0, le=1)
    rationale: str

    @model_validator(mode="after")
    def _thresholds(self) -> ClassifierStage:
        if self.linear.intercept is None:
            raise ValueError(f"stage {self.name}: the classifier needs an intercept")
        if self.deprioritise_threshold > self.urgent_threshold:
            raise ValueError(
                f"stage {self.name}: deprioritise_threshold {self.deprioritise_threshold} exceeds "
                f"urgent_threshold {self.urgent_threshold}"
            )
        if any(parse_feature_key(k).kind != "biomarker" for k in self.linear.keys):
            raise ValueError(f"stage {self.name}: triage reads biomarkers only (no demographics, no change)")
        return self


Stage = Annotated[ThresholdStage | ClassifierStage, Field(discriminator="kind")]


class TriageModelFile(_Strict):
    """``model.json`` of the triage cascade: ordered rule-in stages, then one classifier stage."""

    format: Literal["mskcds-triage-model"] = "mskcds-triage-model"
    schema_version: Literal["1"] = SCHEMA_VERSION
    model_id: str
    version: str
    created: date
    urgent_definition: str
    sensitivity_target: float = Field(gt=0, lt=1)
    threshold_confidence: float = Field(ge=0, lt=1)
    stages: list[Stage] = Field(min_length=1)
    training: TrainingCohort
    metrics: dict[str, dict[str, Interval]] = Field(default_factory=dict)
    notice: str

    @field_validator("stages")
    @classmethod
    def _classifier_last(cls, stages: list[ThresholdStage | ClassifierStage]) -> list[ThresholdStage | ClassifierStage]:
        kinds = [s.kind for s in stages]
        if kinds.count("classifier") != 1 or kinds[-1] != "classifier":
            raise ValueError("the cascade must end with exactly one classifier stage")
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique: {names}")
        return stages

    @property
    def classifier(self) -> ClassifierStage:
        last = self.stages[-1]
        assert isinstance(last, ClassifierStage)
        return last


ModelFile = RiskModelFile | TriageModelFile


class ModelCard(_Strict):
    """``model_card.json``: identity and integrity of a model folder (the README says the rest in words)."""

    name: str
    version: str
    kind: Literal["triage", "risk"]
    files: dict[str, Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]]
    summary: str

    @model_validator(mode="after")
    def _model_file_listed(self) -> ModelCard:
        if "model.json" not in self.files:
            raise ValueError("the card must list model.json with its sha256")
        return self

