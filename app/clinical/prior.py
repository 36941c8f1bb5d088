"""Reading a prior exam for change features: an earlier analysis result or a bare biomarker document.

``mskcds analyze --prior RESULT.json`` accepts what an earlier ``mskcds analyze --json`` wrote (an
``AnalysisResult``: biomarkers + study date) or what ``mskcds measure --json`` wrote (a ``BiomarkerSet``, no
date). The interval comes from the two study dates, or from ``--months-since-prior`` when a date is missing
or the caller knows better.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pydantic import ValidationError

from schemas.analysis import AnalysisResult
from schemas.biomarkers import BiomarkerSet

DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class PriorExam:
    """The prior exam's biomarkers and, when known, its study date."""

    biomarkers: BiomarkerSet
    study_date: date | None


def read_prior_exam(path: Path) -> PriorExam:
    """Parse ``path`` as an AnalysisResult, else as a BiomarkerSet; ValueError says what it is not."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read the prior exam: {error}") from None
    if isinstance(data, dict) and "measurements" in data:
        try:
            result = AnalysisResult.model_validate(data)
        except ValidationError as error:
            raise ValueError(f"{path}: not a valid analysis result: {error.errors()[0]['msg']}") from None
        return PriorExam(result.measurements, result.study_date)
    try:
        return PriorExam(BiomarkerSet.model_validate(data), None)
    except ValidationError:
        raise ValueError(
            f"{path}: neither an analysis result (mskcds analyze --json) nor a biomarker document "
            "(mskcds measure --json)"
        ) from None


def months_between(earlier: date, later: date) -> float:
    """Calendar interval in months (days / 30.4375)."""
    return (later - earlier).days / DAYS_PER_MONTH


def months_since_prior(prior: PriorExam, current_study_date: date | None, override: float | None) -> float:
    """The interval to use: ``override`` if given, else from the two study dates; ValueError if neither."""
    if override is not None:
        return override
    if prior.study_date is None or current_study_date is None:
        raise ValueError(
            "the interval to the prior exam is unknown (a study date is missing): give --months-since-prior"
        )
    return months_between(prior.study_date, current_study_date)
