"""Evaluation cases, the comparison with truth, and the report files, without a model.

The prediction here is the reference itself (an oracle built in the test, not a segmenter): its Dice must
be 1, its errors against the reference 0, and against the truth the measurement layer's own error.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from app.measurement import measure_knee
from app.segmentation.evaluation import (
    THICKNESS_REGIONS,
    Case,
    CaseResult,
    EvaluationError,
    compared,
    folder_cases,
    held_out_cases,
    load_case,
    truth_values,
)
from app.segmentation.metrics import label_scores, where_predicted
from app.segmentation.report import markdown, summarise, write_overlay, write_report
from schemas.labels import CARTILAGE, MENISCI, Label


@pytest.fixture(scope="module")
def case() -> Case:
    return held_out_cases(1, "dess-small", 9000)[0][1]()


def _oracle_result(case: Case, predicted_array: np.ndarray | None = None) -> CaseResult:
    predicted = case.reference if predicted_array is None else case.reference.with_array(predicted_array)
    plates_and_menisci = sorted(CARTILAGE | MENISCI)
    measured = compared(measure_knee(predicted, case.laterality, case.laterality_source).biomarkers)
    reference = compared(measure_knee(case.reference, case.laterality, case.laterality_source).biomarkers)
    return CaseResult(
        name=case.name,
        laterality=case.laterality,
        grade=case.truth.grade if case.truth else None,
        scores=label_scores(predicted, case.reference),
        predicted=measured,
        reference=reference,
        truth=truth_values(case.truth) if case.truth else {},
        timings_s={"chain": 0.0},
        confidence={},
        where=where_predicted(predicted, case.reference, plates_and_menisci),
    )


def test_held_out_layout() -> None:
    loaders = held_out_cases(5, "dess", 9000)
    assert [name for name, _ in loaders] == [
        "seed9000-right-grade0",
        "seed9001-left-grade1",
        "seed9002-right-grade2",
        "seed9003-left-grade3",
        "seed9004-right-grade4",
    ]


def test_case_is_the_morphology_first_echo_with_labels_on_its_grid(case: Case) -> None:
    assert case.image.shape == case.reference.shape == (40, 96, 96)
    assert np.allclose(case.image.affine, case.reference.affine)
    assert case.truth is not None and case.truth.seed == 9000 and case.laterality == "right"


def test_truth_keys_match_the_measured_keys(case: Case) -> None:
    truth = truth_values(case.truth)
    assert {f"cartilage_thickness_mean:{r}" for r in THICKNESS_REGIONS} <= set(truth)
    assert truth["bone_volume:femur"] == case.truth.volume_mm3["femur"]
    measured = compared(measure_knee(case.reference, case.laterality, case.laterality_source).biomarkers)
    assert set(measured) == set(truth)


def test_report_of_a_perfect_prediction(case: Case, tmp_path: Path) -> None:
    results = [_oracle_result(case), _oracle_result(case)]
    summary = summarise(results, {"model_versions": {"oracle": "test"}, "source": "test", "runtime": "none"})
    for row in summary["labels"]:
        assert row["dice"]["mean"] == 1.0 and row["hd95_mm"]["mean"] == 0.0 and row["hd95_infinite"] == 0
    versus_reference = summary["agreement"]["reference"]["biomarkers"]
    assert all(row["bias"] == 0.0 and row["max_abs_error"] == 0.0 for row in versus_reference.values())
    thickness_mt = summary["agreement"]["truth"]["biomarkers"]["cartilage_thickness_mean:MT"]
    assert thickness_mt["n"] == 2 and 0 < thickness_mt["max_abs_error"] < 0.3  # 1.4 x 2.8 mm voxels
    written = write_report(summary, results, tmp_path)
    assert {p.name for p in written} == {"report.md", "report.json", "bland_altman.png"}
    mt = summary["cases"][0]["predicted"]["cartilage_thickness_mean:MT"]
    lines = (tmp_path / "report.md").read_text().splitlines()
    cells = next(line for line in lines if line.startswith(f"| {case.name}")).strip("| ").split(" | ")
    assert cells[2:6] == ["1.000"] * 4  # Dice F, MT, LT, P
    truth_mt = summary["cases"][0]["truth"]["cartilage_thickness_mean:MT"]
    assert cells[6] == f"{mt:.2f} / {truth_mt:.2f}"  # MT predicted / truth
    assert json.loads((tmp_path / "report.json").read_text())["cases"][0]["name"] == case.name
    overlay = write_overlay(case, case.reference, tmp_path / "overlay.png")
    assert overlay.read_bytes()[:4] == b"\x89PNG"


def test_a_missed_label_is_counted_not_averaged(case: Case) -> None:
    without_patella = np.where(case.reference.array == Label.PATELLA, 0, case.reference.array)
    summary = summarise([_oracle_result(case, without_patella)], {"model_versions": {}, "source": "t"})
    patella = next(row for row in summary["labels"] if row["label"] == Label.PATELLA)
    assert patella["dice"]["mean"] == 0.0
    assert patella["hd95_infinite"] == 1 and patella["hd95_mm"]["n"] == 0
    assert summary["cases"][0]["scores"][2]["hd95_mm"] == "inf"
    assert "bone_volume:patella" not in summary["cases"][0]["predicted"]
    text = markdown(summary)
    assert "| 3 patella | 0.000 ± n/a (1) | n/a (0) | 1 | 0 |" in text
    assert not math.isnan(summary["labels"][0]["dice"]["mean"])


def test_case_folders(phantom_factory, tmp_path: Path) -> None:
    folder = phantom_factory(seed=3, side="left", grade=2, protocols=["dess-small"])
    loaders = folder_cases(folder)
    assert [name for name, _ in loaders] == [folder.name]
    loaded = load_case(folder)
    assert loaded.laterality == "left" and loaded.truth is not None and loaded.truth.grade == 2
    assert loaded.image.shape == loaded.reference.shape
    with pytest.raises(EvaluationError, match=r"no labels\.nii\.gz"):
        folder_cases(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in folder.iterdir():
        (broken / item.name).symlink_to(item)
    (broken / "truth.json").unlink()
    (broken / "truth.json").write_text('{"seed": "x"}')
    with pytest.raises(EvaluationError, match=r"truth\.json is not a phantom truth"):
        load_case(broken)


def test_the_report_says_where_a_plate_spilled(case: Case) -> None:
    """A medial tibial plate grown one voxel into its bone: the table puts exactly those voxels on bone."""
    from scipy import ndimage

    labels = case.reference.array
    plate = labels == Label.MEDIAL_TIBIAL_CARTILAGE
    spilled = ndimage.binary_dilation(plate) & (labels == Label.TIBIA)
    predicted = np.where(spilled, Label.MEDIAL_TIBIAL_CARTILAGE, labels).astype(labels.dtype)
    summary = summarise([_oracle_result(case, predicted)], {"model_versions": {}, "source": "t"})
    row = summary["where_predicted"]["medial_tibial_cartilage"]
    assert row["groups"]["bone"] == int(spilled.sum()) > 0
    assert row["groups"]["same label"] == int(plate.sum())
    assert row["voxels"] == int(plate.sum() + spilled.sum())
    assert summary["where_predicted"]["lateral_tibial_cartilage"]["groups"]["same label"] > 0
    share = 100 * spilled.sum() / row["voxels"]
    assert f"| medial_tibial_cartilage | {row['voxels']} | {100 - share:.1f} % | {share:.1f} % |" in markdown(summary)
