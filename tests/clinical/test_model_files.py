"""Model files: validators refuse bad files with exact messages; folders write, read back and verify sha256."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.checksums import sha256_of
from app.clinical.errors import ClinicalModelError
from app.clinical.model_files import CoxBaseline, FeatureSpec, RiskModelFile, TriageModelFile
from app.clinical.model_io import load_model_folder, write_model_folder
from tests.clinical.builders import AGE, MT, linear, logistic_risk_model, triage_model


def _message(error: pytest.ExceptionInfo[ValidationError]) -> str:
    return error.value.errors()[0]["msg"]


def _risk_with(**changes: object) -> dict:
    data = logistic_risk_model().model_dump(mode="json")
    data.update(changes)
    return data


def test_feature_unit_must_match_the_naming_scheme() -> None:
    with pytest.raises(ValidationError) as error:
        FeatureSpec(key="cartilage_thickness_mean:MT", unit="mm3", mean=1.0, sd=0.2, low=0, high=3)
    assert _message(error) == "Value error, feature cartilage_thickness_mean:MT is expressed in 'mm', not 'mm3'"


def test_feature_sd_must_be_positive() -> None:
    with pytest.raises(ValidationError) as error:
        FeatureSpec(key="bmi", unit="kg/m2", mean=28, sd=0, low=15, high=50)
    assert _message(error) == "Input should be greater than 0"


def test_coefficient_count_must_match_features() -> None:
    data = linear([AGE, MT], [0.1, 0.2], 0.0).model_dump()
    data["coefficients"] = [0.1]
    with pytest.raises(ValidationError) as error:
        type(linear([AGE], [0.1], 0.0)).model_validate(data)
    assert _message(error) == "Value error, 1 coefficients for 2 features"


def test_covariance_shape_includes_the_intercept() -> None:
    data = linear([AGE], [0.1], 0.0).model_dump()
    data["covariance"] = [[0.01]]
    with pytest.raises(ValidationError) as error:
        type(linear([AGE], [0.1], 0.0)).model_validate(data)
    assert _message(error) == "Value error, covariance must be 2x2 (intercept first when there is one)"


def test_demographics_variant_reads_demographics_only() -> None:
    data = _risk_with()
    data["variants"]["demographics"] = data["variants"]["imaging"]
    with pytest.raises(ValidationError) as error:
        RiskModelFile.model_validate(data)
    assert _message(error) == "Value error, variant 'demographics' may use only age_years, sex_female and bmi"


def test_imaging_variant_must_not_need_a_prior() -> None:
    data = _risk_with()
    data["variants"]["imaging"] = data["variants"]["imaging_change"]
    with pytest.raises(ValidationError) as error:
        RiskModelFile.model_validate(data)
    assert _message(error) == ("Value error, variant 'imaging' must not use change features (it is the no-prior "
                               "fallback)")


def test_fallback_variants_are_required() -> None:
    data = _risk_with()
    del data["variants"]["imaging"]
    with pytest.raises(ValidationError) as error:
        RiskModelFile.model_validate(data)
    assert _message(error) == ("Value error, variant 'imaging' is required (it is the fallback when inputs are "
                               "missing)")


def test_logistic_and_cox_parts_do_not_mix() -> None:
    data = _risk_with(method="cox")
    with pytest.raises(ValidationError) as error:
        RiskModelFile.model_validate(data)
    assert _message(error) == "Value error, variant 'demographics': a Cox model needs a baseline and no intercept"


def test_cumulative_hazard_must_not_decrease() -> None:
    with pytest.raises(ValidationError) as error:
        CoxBaseline(horizon_survival=0.9, times_months=[0, 12, 24], cumulative_hazard=[0.0, 0.2, 0.1])
    assert _message(error) == "Value error, cumulative_hazard must not decrease"


def test_cascade_must_end_with_one_classifier() -> None:
    data = triage_model().model_dump(mode="json")
    data["stages"] = data["stages"][:2]
    with pytest.raises(ValidationError) as error:
        TriageModelFile.model_validate(data)
    assert _message(error) == "Value error, the cascade must end with exactly one classifier stage"


def test_deprioritise_threshold_cannot_exceed_urgent_threshold() -> None:
    data = triage_model().model_dump(mode="json")
    data["stages"][-1]["deprioritise_threshold"] = 0.6
    with pytest.raises(ValidationError) as error:
        TriageModelFile.model_validate(data)
    assert _message(error) == ("Value error, stage biomarker-classifier: deprioritise_threshold 0.6 exceeds "
                               "urgent_threshold 0.5")


def test_reason_template_placeholders_are_checked() -> None:
    data = triage_model().model_dump(mode="json")
    data["stages"][0]["reason"] = "loss over {area}"
    with pytest.raises(ValidationError) as error:
        TriageModelFile.model_validate(data)
    assert _message(error) == ("Value error, stage full-thickness-cartilage-loss: reason template has an unknown "
                               "placeholder 'area'")


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError) as error:
        RiskModelFile.model_validate(_risk_with(pickle_blob="gASV"))
    assert _message(error) == "Extra inputs are not permitted"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    model = logistic_risk_model()
    write_model_folder(tmp_path / "risk-test", model, "a test model", lambda sha: f"# risk-test\n\nsha256 {sha}\n")
    return tmp_path / "risk-test"


def test_write_and_read_back(folder: Path) -> None:
    assert load_model_folder(folder) == logistic_risk_model()
    card = json.loads((folder / "model_card.json").read_text())
    assert card == {"name": "risk-test", "version": "9.9.9", "kind": "risk", "summary": "a test model",
                    "files": {"model.json": sha256_of(folder / "model.json"),
                              "README.md": sha256_of(folder / "README.md")}}
    assert (folder / "README.md").read_text() == f"# risk-test\n\nsha256 {sha256_of(folder / 'model.json')}\n"


def test_changed_file_fails_loudly(folder: Path) -> None:
    path = folder / "model.json"
    expected = sha256_of(path)
    path.write_text(path.read_text().replace('"intercept": -2.0', '"intercept": 2.0'))
    with pytest.raises(ClinicalModelError) as error:
        load_model_folder(folder)
    assert str(error.value) == (f"{path}: sha256 {sha256_of(path)} differs from {expected} in model_card.json; the "
                                "file was changed or corrupted: restore it or rebuild the model (see the folder's "
                                "README)")


def test_missing_card_and_missing_file(folder: Path) -> None:
    (folder / "README.md").unlink()
    with pytest.raises(ClinicalModelError) as error:
        load_model_folder(folder)
    assert str(error.value) == f"{folder}: README.md is listed in model_card.json but missing"
    (folder / "model_card.json").unlink()
    with pytest.raises(ClinicalModelError) as error:
        load_model_folder(folder)
    assert str(error.value) == f"{folder}: no model_card.json; a model folder needs its card (name, version, sha256)"


def test_invalid_model_file_with_matching_hash_is_refused(folder: Path) -> None:
    data = json.loads((folder / "model.json").read_text())
    data["horizon_months"] = 0
    (folder / "model.json").write_text(json.dumps(data))
    card = json.loads((folder / "model_card.json").read_text())
    card["files"]["model.json"] = sha256_of(folder / "model.json")
    (folder / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ClinicalModelError) as error:
        load_model_folder(folder)
    assert str(error.value) == (f"{folder / 'model.json'}: not a valid risk model file: horizon_months: Input should "
                                "be greater than 0")
