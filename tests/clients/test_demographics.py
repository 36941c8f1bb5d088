"""Age, sex and BMI from FHIR resources: exact values, unit conversion, which measurement counts."""

from __future__ import annotations

from datetime import date

import pytest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from app.clients.demographics import (
    BMI,
    BODY_HEIGHT,
    BODY_WEIGHT,
    UnsupportedUnit,
    age_at,
    bmi_at,
    demographics,
    to_canonical,
)

STUDY = date(2024, 3, 15)


def observation(loinc: str, value: float, unit: str, when: str, status: str = "final") -> Observation:
    return Observation.model_validate(
        {
            "resourceType": "Observation",
            "status": status,
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
            "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
        }
    )


def test_age_at_the_study_date() -> None:
    assert (STUDY - date(1964, 3, 15)).days == 21915
    assert age_at(date(1964, 3, 15), STUDY) == pytest.approx(21915 / 365.2425)
    assert age_at("1964", STUDY) == pytest.approx((STUDY - date(1964, 7, 2)).days / 365.2425)
    assert age_at("1964-02", STUDY) == pytest.approx((STUDY - date(1964, 2, 15)).days / 365.2425)


def test_birth_after_the_study_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^birth date 2025-01-01 is after the date of the study 2024-03-15$"):
        age_at(date(2025, 1, 1), STUDY)


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "expected"),
    [
        (BODY_WEIGHT, 80.0, "kg", 80.0),
        (BODY_WEIGHT, 80000.0, "g", 80.0),
        (BODY_WEIGHT, 176.0, "[lb_av]", 79.83225712),
        (BODY_HEIGHT, 180.0, "cm", 1.8),
        (BODY_HEIGHT, 1.8, "m", 1.8),
        (BODY_HEIGHT, 70.0, "[in_i]", 1.778),
        (BMI, 24.7, "kg/m2", 24.7),
    ],
)
def test_ucum_conversion(loinc: str, value: float, unit: str, expected: float) -> None:
    assert to_canonical(loinc, value, unit, "http://unitsofmeasure.org") == pytest.approx(expected)


def test_unknown_unit_is_refused() -> None:
    with pytest.raises(UnsupportedUnit) as caught:
        to_canonical(BODY_WEIGHT, 12.0, "[stone_av]", "http://unitsofmeasure.org")
    assert str(caught.value) == (
        "LOINC 29463-7 in unit '[stone_av]' (system 'http://unitsofmeasure.org'): "
        "expected a UCUM unit among ['[lb_av]', 'g', 'kg']"
    )


def test_bmi_computed_from_the_latest_weight_and_height_before_the_study() -> None:
    observations = [
        observation(BODY_WEIGHT, 90.0, "kg", "2020-01-01"),
        observation(BODY_WEIGHT, 176.0, "[lb_av]", "2024-03-01"),  # latest before the study: 79.83 kg
        observation(BODY_WEIGHT, 60.0, "kg", "2024-04-01"),  # after the study: ignored
        observation(BODY_WEIGHT, 100.0, "kg", "2024-03-10", status="preliminary"),  # not final: ignored
        observation(BODY_HEIGHT, 70.0, "[in_i]", "2023-06-01"),  # 1.778 m
        observation(BODY_WEIGHT, 12.0, "[stone_av]", "2024-03-14"),  # unknown unit: skipped
    ]
    assert bmi_at(observations, STUDY) == round(79.83225712 / 1.778**2, 2) == 25.25


def test_a_measured_bmi_wins_and_nothing_gives_none() -> None:
    observations = [
        observation(BODY_WEIGHT, 80.0, "kg", "2024-03-01"),
        observation(BODY_HEIGHT, 180.0, "cm", "2024-03-01"),
        observation(BMI, 26.1, "kg/m2", "2023-01-01"),
    ]
    assert bmi_at(observations, STUDY) == 26.1
    assert bmi_at(observations[:1], STUDY) is None
    assert bmi_at([], STUDY) is None


def test_implausible_bmi_gives_none() -> None:
    observations = [
        observation(BODY_WEIGHT, 80.0, "kg", "2024-03-01"),
        observation(BODY_HEIGHT, 80.0, "mm", "2024-03-01"),
    ]
    assert bmi_at(observations, STUDY) is None


def test_demographics_from_patient_and_measurements() -> None:
    patient = Patient.model_validate({"resourceType": "Patient", "gender": "female", "birthDate": "1964-03-15"})
    result = demographics(
        patient,
        [observation(BODY_WEIGHT, 80.0, "kg", "2024-03-01"), observation(BODY_HEIGHT, 180.0, "cm", "2024-03-01")],
        STUDY,
    )
    assert result.model_dump() == {"age_years": 60.0, "sex": "female", "bmi": 24.69}
    other = Patient.model_validate({"resourceType": "Patient", "gender": "other"})
    assert demographics(other, [], STUDY).model_dump() == {"age_years": None, "sex": None, "bmi": None}
