"""From a measured knee (+ the person, + an optional prior exam) to the named features models read.

Feature keys are exactly what the measurement layer writes (``BiomarkerSet.as_features()``: ``"name:region"``),
plus three demographic keys and change keys. A change key ``"change:name:region"`` is the annualised change
between a prior exam and the current one, ``(current - prior) / years``, in the biomarker's unit per year
(UCUM ``/a``); annualising makes exams 12 or 36 months apart comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.clinical.vocabulary import biomarker_words
from schemas.analysis import Demographics
from schemas.biomarkers import REGIONS, UNITS, BiomarkerName, BiomarkerSet

CHANGE_PREFIX = "change:"

#: Demographic features: key -> (UCUM unit, words).
DEMOGRAPHIC_FEATURES: dict[str, tuple[str, str]] = {
    "age_years": ("a", "age"),
    "sex_female": ("1", "female sex"),
    "bmi": ("kg/m2", "body-mass index"),
}

FeatureKind = Literal["demographic", "biomarker", "change"]


@dataclass(frozen=True)
class FeatureKey:
    """A parsed feature key: what it is, its unit, and how to say it."""

    key: str
    kind: FeatureKind
    name: BiomarkerName | None = None
    region: str | None = None

    @property
    def unit(self) -> str:
        if self.kind == "demographic":
            return DEMOGRAPHIC_FEATURES[self.key][0]
        assert self.name is not None
        unit = UNITS[self.name].value
        return f"{unit}/a" if self.kind == "change" else unit

    @property
    def biomarker_key(self) -> str | None:
        """``"name:region"`` of the biomarker behind a biomarker or change feature."""
        return None if self.name is None else f"{self.name.value}:{self.region}"

    @property
    def words(self) -> str:
        if self.kind == "demographic":
            return DEMOGRAPHIC_FEATURES[self.key][1]
        assert self.name is not None and self.region is not None
        text = biomarker_words(self.name, self.region)
        return f"yearly change in {text}" if self.kind == "change" else text


def parse_feature_key(key: str) -> FeatureKey:
    """Parse and validate a feature key; unknown biomarker names or regions raise ValueError."""
    if key in DEMOGRAPHIC_FEATURES:
        return FeatureKey(key=key, kind="demographic")
    kind: FeatureKind = "biomarker"
    rest = key
    if key.startswith(CHANGE_PREFIX):
        kind, rest = "change", key.removeprefix(CHANGE_PREFIX)
    name, sep, region = rest.partition(":")
    if not sep:
        raise ValueError(
            f"unknown feature {key!r}: features are {sorted(DEMOGRAPHIC_FEATURES)}, 'name:region' biomarker keys "
            f"or 'change:name:region'"
        )
    try:
        biomarker = BiomarkerName(name)
    except ValueError:
        raise ValueError(f"unknown feature {key!r}: {name!r} is not a biomarker name") from None
    if region not in REGIONS:
        raise ValueError(f"unknown feature {key!r}: {region!r} is not an Eckstein region")
    return FeatureKey(key=key, kind=kind, name=biomarker, region=region)


def change_key(biomarker_key: str) -> str:
    """``"cartilage_thickness_mean:MT"`` -> ``"change:cartilage_thickness_mean:MT"``."""
    return CHANGE_PREFIX + biomarker_key


def demographic_features(demographics: Demographics) -> dict[str, float]:
    """The known demographic features (unknown ones are left out, so models can name what is missing)."""
    values: dict[str, float] = {}
    if demographics.age_years is not None:
        values["age_years"] = float(demographics.age_years)
    if demographics.sex is not None:
        values["sex_female"] = 1.0 if demographics.sex == "female" else 0.0
    if demographics.bmi is not None:
        values["bmi"] = float(demographics.bmi)
    return values


def annualised_change(current: float, prior: float, months: float) -> float:
    """(current - prior) per year."""
    return (current - prior) / (months / 12.0)


@dataclass(frozen=True)
class PriorAssessment:
    """The change features a prior exam yields, or why it yields none (the documented fallback)."""

    changes: dict[str, float]
    note: str | None

    @property
    def usable(self) -> bool:
        return self.note is None


def assess_prior(
    current: BiomarkerSet,
    prior: BiomarkerSet | None,
    months_since_prior: float | None,
    change_keys: list[str],
    window_months: tuple[float, float],
) -> PriorAssessment:
    """Compute the change features ``change_keys`` from a prior exam, or say why they cannot be used.

    Contradictory input is an error (a prior of the other knee, a prior without its interval, a prior that is
    not earlier). Input that is merely unusable falls back: no prior, an interval outside ``window_months``
    (change over a few weeks is measurement noise; over many years it is no longer "recent" change), or a prior
    that lacks a biomarker the change model needs. The caller then scores with the baseline-imaging model.
    """
    if prior is None:
        return PriorAssessment({}, "no prior exam: scored without biomarker change (baseline-imaging model)")
    if months_since_prior is None:
        raise ValueError("months_since_prior is required when a prior exam is given")
    if months_since_prior <= 0:
        raise ValueError(f"the prior exam must precede the current one (months_since_prior={months_since_prior})")
    if prior.laterality != current.laterality:
        raise ValueError(
            f"the prior exam is of the {prior.laterality} knee, the current one of the {current.laterality}"
        )
    low, high = window_months
    if not low <= months_since_prior <= high:
        return PriorAssessment(
            {},
            f"prior exam {months_since_prior:.0f} months earlier is outside the {low:.0f}-{high:.0f} month change "
            "window: scored without biomarker change (baseline-imaging model)",
        )
    now, before = current.as_features(), prior.as_features()
    changes: dict[str, float] = {}
    missing: list[str] = []
    for key in change_keys:
        biomarker_key = parse_feature_key(key).biomarker_key
        assert biomarker_key is not None
        if biomarker_key in now and biomarker_key in before:
            changes[key] = annualised_change(now[biomarker_key], before[biomarker_key], months_since_prior)
        else:
            missing.append(biomarker_key)
    if missing:
        return PriorAssessment(
            {},
            f"prior or current exam lacks {', '.join(missing)}: scored without biomarker change "
            "(baseline-imaging model)",
        )
    return PriorAssessment(changes, None)
