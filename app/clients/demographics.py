"""From FHIR Patient and body-measurement Observations to the :class:`Demographics` the risk models read.

- Age at the study date from ``Patient.birthDate`` (partial dates ``YYYY`` / ``YYYY-MM`` are taken at
  the middle of the period they name: the error is then at most half a year / half a month).
- Sex from ``Patient.gender`` (``other`` / ``unknown`` give None: the models were fitted on female/male).
- BMI from the latest BMI Observation (LOINC 39156-5), else computed from the latest body weight
  (29463-7) and body height (8302-2). Only final / amended / corrected Observations count, only those
  measured on or before the study date, and values are converted from their UCUM unit (kg, g,
  [lb_av]; m, cm, mm, [in_i]). An Observation in a unit not listed here is skipped with a warning:
  a BMI computed from a misread unit would be worse than none.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from app.log import get_logger
from schemas.analysis import Demographics

log = get_logger(__name__)

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
BODY_WEIGHT = "29463-7"
BODY_HEIGHT = "8302-2"
BMI = "39156-5"
BODY_MEASUREMENT_CODES = (BODY_WEIGHT, BODY_HEIGHT, BMI)
USABLE_STATUSES = frozenset({"final", "amended", "corrected"})

#: UCUM code -> factor to the canonical unit (kg for mass, m for length, kg/m2 for BMI).
UCUM_FACTORS: dict[str, dict[str, float]] = {
    BODY_WEIGHT: {"kg": 1.0, "g": 1e-3, "[lb_av]": 0.45359237},
    BODY_HEIGHT: {"m": 1.0, "cm": 1e-2, "mm": 1e-3, "[in_i]": 0.0254},
    BMI: {"kg/m2": 1.0},
}
#: The range Demographics accepts for BMI (exclusive bounds).
BMI_RANGE = (5.0, 100.0)


class UnsupportedUnit(ValueError):
    """A body measurement in a unit msk-cds does not convert."""


@dataclass(frozen=True)
class Measurement:
    """One body measurement in its canonical unit (kg, m or kg/m2)."""

    loinc: str
    value: float
    effective: date


def age_at(birth_date: date | str, at: date) -> float:
    """Age in years on ``at`` (``birth_date`` a date, or a partial FHIR date ``YYYY`` / ``YYYY-MM``)."""
    if isinstance(birth_date, str):
        parts = [int(p) for p in birth_date.split("-")]
        if len(parts) == 1:
            birth = date(parts[0], 7, 2)  # middle of the year
        elif len(parts) == 2:
            birth = date(parts[0], parts[1], (calendar.monthrange(parts[0], parts[1])[1] + 1) // 2)
        else:
            birth = date(*parts)
    else:
        birth = birth_date
    if birth > at:
        raise ValueError(f"birth date {birth} is after the date of the study {at}")
    return (at - birth).days / 365.2425


def sex_of(patient: Patient) -> str | None:
    return patient.gender if patient.gender in ("female", "male") else None


def _effective_date(observation: Observation) -> date | None:
    moment = observation.effectiveDateTime or observation.effectiveInstant
    if moment is None and observation.effectivePeriod is not None:
        moment = observation.effectivePeriod.end or observation.effectivePeriod.start
    if isinstance(moment, datetime):
        return moment.date()
    if isinstance(moment, date):
        return moment
    return None  # absent, or a partial dateTime (YYYY / YYYY-MM): too vague to order measurements


def _loinc_code(observation: Observation) -> str | None:
    for coding in observation.code.coding or []:
        if coding.system == LOINC and coding.code in BODY_MEASUREMENT_CODES:
            return str(coding.code)
    return None


def to_canonical(loinc: str, value: Decimal | float, unit_code: str | None, unit_system: str | None) -> float:
    """``value`` in kg, m or kg/m2 according to the measurement's LOINC code; UnsupportedUnit otherwise."""
    factors = UCUM_FACTORS[loinc]
    if unit_system != UCUM or unit_code not in factors:
        raise UnsupportedUnit(
            f"LOINC {loinc} in unit {unit_code!r} (system {unit_system!r}): "
            f"expected a UCUM unit among {sorted(factors)}"
        )
    return float(value) * factors[unit_code]


def measurements(observations: Iterable[Observation]) -> list[Measurement]:
    """The usable body measurements among ``observations``, converted to canonical units."""
    found: list[Measurement] = []
    for observation in observations:
        loinc = _loinc_code(observation)
        quantity = observation.valueQuantity
        effective = _effective_date(observation)
        if loinc is None or observation.status not in USABLE_STATUSES or quantity is None or quantity.value is None:
            continue
        if effective is None:
            continue
        try:
            value = to_canonical(loinc, quantity.value, quantity.code, quantity.system)
        except UnsupportedUnit as exc:
            log.warning("demographics.observation_skipped", reason=str(exc))
            continue
        found.append(Measurement(loinc=loinc, value=value, effective=effective))
    return found


def _latest(found: list[Measurement], loinc: str, at: date) -> Measurement | None:
    candidates = [m for m in found if m.loinc == loinc and m.effective <= at]
    return max(candidates, key=lambda m: m.effective, default=None)


def bmi_at(observations: Iterable[Observation], at: date) -> float | None:
    """The latest BMI on or before ``at``: measured, else computed from the latest weight and height."""
    found = measurements(observations)
    measured = _latest(found, BMI, at)
    if measured is not None:
        bmi = measured.value
    else:
        weight, height = _latest(found, BODY_WEIGHT, at), _latest(found, BODY_HEIGHT, at)
        if weight is None or height is None:
            return None
        bmi = weight.value / height.value**2
    if not BMI_RANGE[0] < bmi < BMI_RANGE[1]:
        log.warning("demographics.bmi_implausible", bmi=round(bmi, 1))
        return None
    return round(bmi, 2)


def demographics(patient: Patient | None, observations: Iterable[Observation], at: date) -> Demographics:
    """Age, sex and BMI on the study date ``at``."""
    age = None
    if patient is not None and patient.birthDate is not None:
        age = round(age_at(patient.birthDate, at), 2)
    return Demographics(
        age_years=age,
        sex=sex_of(patient) if patient is not None else None,  # type: ignore[arg-type]
        bmi=bmi_at(observations, at),
    )
