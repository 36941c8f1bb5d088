import pytest

from app.clinical.features import assess_prior, demographic_features, parse_feature_key
from schemas.analysis import Demographics
from tests.clinical.builders import knee

CHANGE = ["change:cartilage_thickness_mean:MT"]
WINDOW = (6.0, 60.0)


def test_feature_keys_parse_with_units_and_words() -> None:
    age = parse_feature_key("age_years")
    assert (age.kind, age.unit, age.words) == ("demographic", "a", "age")
    thickness = parse_feature_key("cartilage_thickness_mean:cMF")
    assert (thickness.kind, thickness.unit) == ("biomarker", "mm")
    assert thickness.words == "mean cartilage thickness of the central (weight-bearing) medial femur"
    change = parse_feature_key("change:denuded_area_pct:MT")
    assert (change.kind, change.unit, change.biomarker_key) == ("change", "%/a", "denuded_area_pct:MT")


@pytest.mark.parametrize(("key", "message"), [
    ("height", "unknown feature 'height': features are ['age_years', 'bmi', 'sex_female'], 'name:region' biomarker "
               "keys or 'change:name:region'"),
    ("cartilage_thickness:MT", "unknown feature 'cartilage_thickness:MT': 'cartilage_thickness' is not a biomarker "
                               "name"),
    ("t2_mean:XX", "unknown feature 't2_mean:XX': 'XX' is not an Eckstein region"),
])
def test_unknown_feature_keys_are_refused(key: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_feature_key(key)
    assert str(error.value) == message


def test_demographic_features_leave_unknowns_out() -> None:
    assert demographic_features(Demographics(age_years=64, sex="female", bmi=31.2)) == {
        "age_years": 64.0, "sex_female": 1.0, "bmi": 31.2}
    assert demographic_features(Demographics(sex="male")) == {"sex_female": 0.0}


def test_prior_gives_annualised_change() -> None:
    current, prior = knee(cartilage_thickness_mean__MT=1.5), knee(cartilage_thickness_mean__MT=1.8)
    assessment = assess_prior(current, prior, 24.0, CHANGE, WINDOW)
    assert assessment.usable
    assert assessment.changes == pytest.approx({"change:cartilage_thickness_mean:MT": -0.15})


def test_missing_prior_falls_back_with_a_note() -> None:
    assessment = assess_prior(knee(cartilage_thickness_mean__MT=1.5), None, None, CHANGE, WINDOW)
    assert not assessment.usable and assessment.changes == {}
    assert assessment.note == "no prior exam: scored without biomarker change (baseline-imaging model)"


def test_prior_outside_window_falls_back() -> None:
    current, prior = knee(cartilage_thickness_mean__MT=1.5), knee(cartilage_thickness_mean__MT=1.8)
    assessment = assess_prior(current, prior, 3.0, CHANGE, WINDOW)
    assert assessment.note == ("prior exam 3 months earlier is outside the 6-60 month change window: scored without "
                               "biomarker change (baseline-imaging model)")


def test_prior_lacking_a_biomarker_falls_back() -> None:
    current, prior = knee(cartilage_thickness_mean__MT=1.5), knee(cartilage_thickness_mean__LT=2.0)
    assessment = assess_prior(current, prior, 24.0, CHANGE, WINDOW)
    assert assessment.note == ("prior or current exam lacks cartilage_thickness_mean:MT: scored without biomarker "
                               "change (baseline-imaging model)")


@pytest.mark.parametrize(("prior_side", "months", "message"), [
    ("right", None, "months_since_prior is required when a prior exam is given"),
    ("right", -3.0, "the prior exam must precede the current one (months_since_prior=-3.0)"),
    ("left", 24.0, "the prior exam is of the left knee, the current one of the right"),
])
def test_contradictory_prior_is_an_error(prior_side: str, months: float | None, message: str) -> None:
    current = knee(cartilage_thickness_mean__MT=1.5)
    prior = knee(prior_side, cartilage_thickness_mean__MT=1.8)
    with pytest.raises(ValueError) as error:
        assess_prior(current, prior, months, CHANGE, WINDOW)
    assert str(error.value) == message
