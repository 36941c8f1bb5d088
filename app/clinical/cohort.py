"""The cohort table every trainer and evaluator reads: one row per knee, canonical column names.

Columns (CSV header = these names; any other table is mapped onto them with a column-mapping file):

- ``subject_id``, ``side`` (``left`` / ``right``): knees of one person share a subject (splits keep them together)
- ``age_years``, ``sex`` (``female`` / ``male``), ``bmi``: the person at the current exam
- biomarker keys ``name:region`` (``BiomarkerSet.as_features()`` keys) measured at the current exam
- ``prior:name:region`` and ``months_since_prior``: the same biomarkers at an earlier exam (optional)
- outcomes: ``incident_oa`` (1/0, blank = not at risk or unknown), ``tkr`` (1/0) with ``tkr_months`` (months
  from the current exam to replacement or censoring; likewise the optional ``incident_oa_months``), and
  ``urgent`` (1/0, the triage reference standard)
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.clinical.errors import CohortError
from app.clinical.features import annualised_change, parse_feature_key
from schemas.biomarkers import Biomarker, BiomarkerName, BiomarkerSet

PRIOR_PREFIX = "prior:"
IDENTITY_COLUMNS = ("subject_id", "side")
DEMOGRAPHIC_COLUMNS = ("age_years", "sex", "bmi")
OUTCOME_COLUMNS = ("incident_oa", "incident_oa_months", "tkr", "tkr_months", "urgent")
OTHER_COLUMNS = ("months_since_prior",)
_BIOMARKER_NAMES = frozenset(name.value for name in BiomarkerName)


def is_canonical(column: str) -> bool:
    """Whether ``column`` is a canonical cohort column name."""
    if column in IDENTITY_COLUMNS + DEMOGRAPHIC_COLUMNS + OUTCOME_COLUMNS + OTHER_COLUMNS:
        return True
    key = column.removeprefix(PRIOR_PREFIX)
    try:
        return parse_feature_key(key).kind == "biomarker"
    except ValueError:
        return False


class ColumnMapping(BaseModel):
    """A column-mapping file (JSON): how a site's CSV maps onto the canonical cohort columns.

    ``{"columns": {"age_years": "Age", "cartilage_thickness_mean:MT": "MT_thk_um"},
    "values": {"sex": {"F": "female", "M": "male"}}, "scale": {"cartilage_thickness_mean:MT": 0.001},
    "delimiter": ","}``: ``scale`` multiplies (e.g. micrometres to millimetres).
    """

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, str]
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    scale: dict[str, float] = Field(default_factory=dict)
    delimiter: str = ","

    @field_validator("columns", "values", "scale")
    @classmethod
    def _canonical_targets(cls, mapping: dict) -> dict:
        unknown = [c for c in mapping if not is_canonical(c)]
        if unknown:
            raise ValueError(f"not canonical cohort columns: {unknown} (see docs/clinical.md, 'Cohort table')")
        return mapping


def read_mapping(path: Path) -> ColumnMapping:
    """Parse and validate a column-mapping file."""
    try:
        return ColumnMapping.model_validate_json(Path(path).read_bytes())
    except ValidationError as error:
        raise CohortError(f"{path}: not a valid column mapping: {error.errors()[0]['msg']}") from None
    except json.JSONDecodeError as error:
        raise CohortError(f"{path}: not JSON: {error}") from None


def _normalise(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check canonical columns and coerce their types; unknown columns are kept untouched."""
    if "subject_id" not in frame.columns:
        raise CohortError(f"{source}: no subject_id column")
    frame = frame.copy()
    frame["subject_id"] = frame["subject_id"].astype(str)
    for column, allowed in (("sex", {"female", "male"}), ("side", {"left", "right"})):
        if column in frame.columns:
            values = frame[column].astype("string").str.strip().str.lower()
            bad = sorted(set(values.dropna()) - allowed)
            if bad:
                raise CohortError(f"{source}: column {column} has values {bad}; expected {sorted(allowed)}")
            frame[column] = values.astype(object).where(values.notna(), None)
    for column in frame.columns:
        if column not in ("subject_id", "sex", "side") and is_canonical(column):
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def read_cohort(path: Path, mapping: ColumnMapping | None = None) -> pd.DataFrame:
    """Read a cohort CSV (canonical header, or any header plus a mapping)."""
    path = Path(path)
    if not path.is_file():
        raise CohortError(f"{path}: no such file")
    frame = pd.read_csv(path, sep=mapping.delimiter if mapping else ",", dtype=str, keep_default_na=True)
    if mapping is not None:
        absent = [source for source in mapping.columns.values() if source not in frame.columns]
        if absent:
            raise CohortError(f"{path}: the mapping names columns the file lacks: {absent}")
        out = pd.DataFrame({target: frame[source] for target, source in mapping.columns.items()})
        for target, codes in mapping.values.items():
            if target in out.columns:
                out[target] = out[target].map(lambda v, codes=codes: codes.get(str(v).strip(), v) if pd.notna(v) else v)
        frame = out
    frame = _normalise(frame, str(path))
    if mapping is not None:
        for target, factor in mapping.scale.items():
            frame[target] = frame[target] * factor
    return frame


def write_cohort(frame: pd.DataFrame, path: Path) -> None:
    """Write a cohort CSV with canonical columns (identity, demographics, biomarkers, priors, outcomes)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.6g")


def feature_column(frame: pd.DataFrame, key: str, window_months: tuple[float, float]) -> pd.Series:
    """One feature for every knee (NaN where unknown). Change features outside the window are NaN."""
    parsed = parse_feature_key(key)
    nan = pd.Series(np.nan, index=frame.index, dtype=float)
    if parsed.kind == "demographic":
        if key == "sex_female":
            return frame["sex"].map({"female": 1.0, "male": 0.0}).astype(float) if "sex" in frame else nan
        return frame[key].astype(float) if key in frame else nan
    assert parsed.biomarker_key is not None
    if parsed.kind == "biomarker":
        return frame[key].astype(float) if key in frame else nan
    prior = PRIOR_PREFIX + parsed.biomarker_key
    if parsed.biomarker_key not in frame or prior not in frame or "months_since_prior" not in frame:
        return nan
    months = frame["months_since_prior"].astype(float)
    change = annualised_change(frame[parsed.biomarker_key].astype(float), frame[prior].astype(float), months)
    low, high = window_months
    return change.where((months >= low) & (months <= high))


def feature_matrix(frame: pd.DataFrame, keys: list[str], window_months: tuple[float, float]) -> pd.DataFrame:
    """The named features for every knee, as a float DataFrame (NaN where unknown)."""
    return pd.DataFrame({key: feature_column(frame, key, window_months) for key in keys}, index=frame.index)


def binary_at_horizon(frame: pd.DataFrame, outcome: str, horizon_months: float) -> pd.Series:
    """1 / 0 / NaN: event by the horizon, known event-free through it, or unknown (censored before it).

    Without a ``<outcome>_months`` column the outcome column is taken as already defined at the horizon.
    """
    if outcome not in frame:
        raise CohortError(f"the cohort has no {outcome!r} column")
    event = frame[outcome].astype(float)
    months_column = f"{outcome}_months"
    if months_column not in frame:
        return event
    months = frame[months_column].astype(float)
    label = pd.Series(np.nan, index=frame.index, dtype=float)
    label[(event == 1) & (months <= horizon_months)] = 1.0
    label[(months > horizon_months) | ((event == 0) & (months >= horizon_months))] = 0.0
    return label


def split_by_subject(frame: pd.DataFrame, fractions: tuple[float, ...], seed: int) -> list[pd.DataFrame]:
    """Random split into parts of the given fractions, keeping each subject's knees in one part."""
    if not math.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions {fractions} must sum to 1")
    subjects = np.array(sorted(frame["subject_id"].unique()))
    np.random.default_rng(seed).shuffle(subjects)
    bounds = np.round(np.cumsum((0.0, *fractions)) * len(subjects)).astype(int)
    if np.any(np.diff(bounds) == 0):
        raise CohortError(f"{len(subjects)} subjects cannot be split into parts of {list(fractions)}: a part would "
                          "be empty")
    parts = []
    for start, stop in itertools.pairwise(bounds):
        chosen = set(subjects[start:stop])
        parts.append(frame[frame["subject_id"].isin(chosen)].reset_index(drop=True))
    return parts


def knee_biomarkers(row: pd.Series, prior: bool = False) -> BiomarkerSet:
    """A cohort row's current (or ``prior:``) biomarkers as the measurement layer's document.

    Rows without a ``side`` are treated as right knees (laterality does not enter triage or risk scores).
    """
    biomarkers = []
    for column, value in row.items():
        name = str(column)
        if prior != name.startswith(PRIOR_PREFIX) or pd.isna(value):
            continue
        biomarker_name, sep, region = name.removeprefix(PRIOR_PREFIX).partition(":")
        if sep and biomarker_name in _BIOMARKER_NAMES:
            biomarkers.append(Biomarker.of(BiomarkerName(biomarker_name), region, float(value)))
    side = row.get("side")
    laterality = side if side in ("left", "right") else "right"
    return BiomarkerSet(laterality=laterality, laterality_source="user", biomarkers=biomarkers)
