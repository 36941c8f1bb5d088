"""One knee MRI study, analysed: what was used, what was measured, what was decided."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from schemas.biomarkers import BiomarkerSet
from schemas.clinical import RiskResult, TriageResult

SeriesRole = Literal["morphology", "t2", "t1rho", "other"]


class SeriesUsed(BaseModel):
    """A DICOM acquisition the analysis read (an acquisition may span several series, e.g. GE CubeQuant)."""

    role: SeriesRole
    series_instance_uids: list[str]
    description: str | None = None


class Demographics(BaseModel):
    """What the risk models need about the person; never identifiers."""

    age_years: float | None = Field(default=None, ge=0, le=130)
    sex: Literal["female", "male"] | None = None
    bmi: float | None = Field(default=None, gt=5, lt=100)


class AnalysisResult(BaseModel):
    """The result store's unit: keyed by StudyInstanceUID + model versions."""

    schema_version: Literal["1"] = "1"
    study_instance_uid: str
    study_date: date | None = None
    model_versions: dict[str, str] = Field(description="artifact name -> version for every model used")
    series: list[SeriesUsed] = Field(default_factory=list)
    measurements: BiomarkerSet
    segmentation_confidence: dict[str, float] = Field(default_factory=dict)
    triage: TriageResult | None = None
    risk: list[RiskResult] = Field(default_factory=list)
    notes: list[str] = Field(
        default_factory=list,
        description="what the analysis left out and why, e.g. risk not estimated without demographics",
    )
    created_at: datetime
