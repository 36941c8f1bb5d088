import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from app.clinical.prior import months_since_prior, read_prior_exam
from schemas.analysis import AnalysisResult
from tests.clinical.builders import knee


def test_prior_from_an_analysis_result(tmp_path: Path) -> None:
    result = AnalysisResult(study_instance_uid="1.2.3", study_date=date(2023, 3, 1), model_versions={},
                            measurements=knee(cartilage_thickness_mean__MT=1.8),
                            created_at=datetime(2023, 3, 1, tzinfo=UTC))
    (tmp_path / "prior.json").write_text(result.model_dump_json())
    prior = read_prior_exam(tmp_path / "prior.json")
    assert prior.study_date == date(2023, 3, 1)
    assert prior.biomarkers.get("cartilage_thickness_mean", "MT") == 1.8
    assert months_since_prior(prior, date(2025, 3, 1), None) == pytest.approx(731 / 30.4375)
    assert months_since_prior(prior, date(2025, 3, 1), 23.0) == 23.0


def test_prior_from_a_biomarker_document_needs_the_interval(tmp_path: Path) -> None:
    (tmp_path / "prior.json").write_text(knee(cartilage_thickness_mean__MT=1.8).model_dump_json())
    prior = read_prior_exam(tmp_path / "prior.json")
    assert prior.study_date is None
    with pytest.raises(ValueError) as error:
        months_since_prior(prior, date(2025, 3, 1), None)
    assert str(error.value) == ("the interval to the prior exam is unknown (a study date is missing): give "
                                "--months-since-prior")


def test_other_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError) as error:
        read_prior_exam(tmp_path / "x.json")
    assert str(error.value) == (f"{tmp_path / 'x.json'}: neither an analysis result (mskcds analyze --json) nor a "
                                "biomarker document (mskcds measure --json)")
