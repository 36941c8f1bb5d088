"""Risk and triage scores on hand-built model files, checked against hand-worked arithmetic."""

import math

import pytest

from app.clinical.errors import MissingFeatureError
from app.clinical.linear import Z_95, logistic, score
from app.clinical.risk import RiskModel
from app.clinical.triage import TriageModel
from schemas.analysis import Demographics
from tests.clinical.builders import cox_risk_model, knee, logistic_risk_model, triage_model

PERSON = Demographics(age_years=70, sex="female", bmi=33)  # every standardised demographic input = 1


def test_logistic_risk_with_imaging_matches_hand_arithmetic() -> None:
    result = RiskModel(logistic_risk_model()).score(knee(cartilage_thickness_mean__MT=1.1), PERSON)
    # lp = -2 + 0.5 + 0.2 + 0.3 + (-0.6)(-2) = 0.2; var = 0.01 * (1 + 1 + 1 + 1 + 4)
    se = math.sqrt(0.08)
    assert result.probability == pytest.approx(logistic(0.2))
    assert (result.ci_low, result.ci_high) == pytest.approx((logistic(0.2 - Z_95 * se), logistic(0.2 + Z_95 * se)))
    assert result.demographics_only_probability == pytest.approx(logistic(-1.0))
    assert (result.method, result.used_prior, result.outcome, result.horizon_months) == (
        "logistic", False, "incident_oa", 48)
    assert result.notes == ["no prior exam: scored without biomarker change (baseline-imaging model)"]
    top = result.top_factors[0]
    assert (top.feature, top.value, top.unit, top.contribution) == ("cartilage_thickness_mean:MT", 1.1, "mm", 1.2)
    assert top.text == ("mean cartilage thickness of the medial tibia 1.10 mm (cohort average 1.70 mm) raises the "
                        "risk")
    assert result.top_factors[1].text == "age 70.0 years (cohort average 60.0 years) raises the risk"


def test_prior_exam_selects_the_change_variant() -> None:
    current, prior = knee(cartilage_thickness_mean__MT=1.1), knee(cartilage_thickness_mean__MT=1.3)
    result = RiskModel(logistic_risk_model()).score(current, PERSON, prior, 24.0)
    # change = -0.1 mm/a, z = (-0.1 + 0.02) / 0.05 = -1.6, contribution 0.64; lp = 0.2 + 0.64
    assert result.used_prior and result.notes == []
    assert result.probability == pytest.approx(logistic(0.84))
    change = next(f for f in result.top_factors if f.feature.startswith("change:"))
    assert change.text == ("yearly change in mean cartilage thickness of the medial tibia -0.10 mm per year (cohort "
                           "average -0.02 mm per year) raises the risk")


def test_cox_probability_is_one_minus_baseline_survival_to_the_exp_lp() -> None:
    result = RiskModel(cox_risk_model()).score(knee(cartilage_thickness_mean__MT=1.7), PERSON)
    assert result.method == "cox"
    assert result.probability == pytest.approx(1 - 0.9 ** math.exp(0.5))
    assert result.demographics_only_probability == pytest.approx(1 - 0.9 ** math.exp(0.5))


def test_missing_demographics_or_biomarkers_are_named() -> None:
    model = RiskModel(logistic_risk_model())
    with pytest.raises(MissingFeatureError) as error:
        model.score(knee(cartilage_thickness_mean__MT=1.1), Demographics(age_years=70, sex="female"))
    assert str(error.value) == "risk-test needs bmi, which the study or request does not provide"
    with pytest.raises(MissingFeatureError) as error:
        model.score(knee(cartilage_thickness_mean__LT=2.0), PERSON)
    assert error.value.missing == ["cartilage_thickness_mean:MT"]


def test_inputs_are_clipped_to_the_training_range() -> None:
    model = logistic_risk_model().variants["imaging"].linear
    implausible = score(model, {"age_years": 60, "sex_female": 0.5, "bmi": 28, "cartilage_thickness_mean:MT": 9.0})
    at_limit = score(model, {"age_years": 60, "sex_female": 0.5, "bmi": 28, "cartilage_thickness_mean:MT": 2.5})
    assert implausible.lp == at_limit.lp
    assert implausible.clipped["cartilage_thickness_mean:MT"] == 2.5


def test_denuded_bone_is_urgent_at_the_first_stage() -> None:
    result = TriageModel(triage_model()).decide(knee(denuded_area_pct__cMF=4.2, cartilage_thickness_mean__MT=1.7))
    assert (result.priority, result.stage, result.stage_index) == ("urgent", "full-thickness-cartilage-loss", 0)
    assert result.reasons == ["Full-thickness cartilage loss (denuded bone) over 4.20 % of the central "
                              "(weight-bearing) medial femur plate (urgent above 1.00 %)"]
    assert [b.key for b in result.deciding_biomarkers] == ["denuded_area_pct:cMF"]
    assert (result.model_id, result.model_version, result.probability_urgent) == ("triage-test", "2.0.0", None)


def test_thinning_relative_to_the_healthy_reference() -> None:
    result = TriageModel(triage_model()).decide(knee(cartilage_thickness_mean__MT=1.0, denuded_area_pct__MT=0.5))
    assert (result.priority, result.stage) == ("urgent", "severe-cartilage-thinning")
    assert result.reasons == ["Cartilage of the medial tibia thinned to a mean of 1.00 mm, 58% of the healthy "
                              "reference 1.73 mm (urgent below 70%)"]


CLEARED = "No rule-in stage found full-thickness cartilage loss, severe thinning or pathological extrusion"
BOUNDS = "(deprioritised below 0.10, urgent from 0.50)"


@pytest.mark.parametrize(("thickness", "priority", "probability", "reasons"), [
    (2.2, "deprioritised", logistic(-1 - 2 * (2.2 - 1.7) / 0.3),
     [f"{CLEARED}; classifier probability of important damage 0.01 {BOUNDS}"]),
    (1.7, "routine", logistic(-1.0), [f"{CLEARED}; classifier probability of important damage 0.27 {BOUNDS}"]),
    (1.25, "urgent", logistic(2.0), [
        f"Pattern of cartilage and meniscus measurements typical of important damage: classifier probability 0.88 "
        f"{BOUNDS}",
        "Measurements that raised the probability most: mean cartilage thickness of the medial tibia 1.25 mm"]),
])
def test_classifier_stage_thresholds(thickness: float, priority: str, probability: float, reasons: list[str]) -> None:
    result = TriageModel(triage_model()).decide(knee(cartilage_thickness_mean__MT=thickness))
    assert (result.priority, result.stage, result.stage_index) == (priority, "biomarker-classifier", 2)
    assert result.probability_urgent == pytest.approx(probability)
    assert result.reasons == reasons


def test_classifier_never_deprioritises_incomplete_measurements() -> None:
    result = TriageModel(triage_model()).decide(knee(cartilage_thickness_mean__LT=2.2))
    assert result.priority == "routine"
    assert result.reasons == [f"{CLEARED}; the classifier could not run because cartilage_thickness_mean:MT was not "
                              "measured, and a study is never deprioritised on incomplete measurements"]
