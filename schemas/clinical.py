"""Results of the clinical layer: the triage decision and the OA / TKR risk estimates."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from schemas.biomarkers import Biomarker

Priority = Literal["urgent", "routine", "deprioritised"]
Outcome = Literal["incident_oa", "tkr"]


class TriageResult(BaseModel):
    """Where a study goes on the radiologist's worklist, and why."""

    priority: Priority
    stage: str = Field(description="name of the cascade stage that decided, e.g. 'cartilage-thickness'")
    stage_index: int = Field(ge=0)
    reasons: list[str] = Field(description="sentences a radiologist accepts, one per deciding finding")
    deciding_biomarkers: list[Biomarker] = Field(default_factory=list)
    probability_urgent: float | None = Field(
        default=None, ge=0, le=1,
        description="the classifier stage's probability of important damage; None when an earlier stage decided",
    )
    model_id: str
    model_version: str


class RiskFactor(BaseModel):
    """One input's contribution to a risk estimate (on the model's linear-predictor scale)."""

    feature: str = Field(description="feature key, e.g. 'age' or 'cartilage_thickness_mean:cMF'")
    value: float | None
    unit: str | None = None
    contribution: float
    text: str = Field(description="plain-language statement, e.g. 'medial femoral cartilage thinner than typical'")


class RiskResult(BaseModel):
    """Probability of an outcome within a horizon for one knee, with its demographics-only counterpart."""

    outcome: Outcome
    horizon_months: int = Field(gt=0)
    probability: float = Field(ge=0, le=1)
    ci_low: float = Field(ge=0, le=1)
    ci_high: float = Field(ge=0, le=1)
    demographics_only_probability: float = Field(ge=0, le=1)
    top_factors: list[RiskFactor] = Field(default_factory=list)
    method: Literal["cox", "logistic"]
    used_prior: bool = Field(description="whether biomarker change since a prior exam entered the model")
    notes: list[str] = Field(
        default_factory=list,
        description="why an input was not used, e.g. a prior exam outside the change window (the documented fallback)",
    )
    model_id: str
    model_version: str

    @model_validator(mode="after")
    def _interval_contains_estimate(self) -> RiskResult:
        if not self.ci_low <= self.probability <= self.ci_high:
            raise ValueError(f"confidence interval [{self.ci_low}, {self.ci_high}] does not contain {self.probability}")
        return self
