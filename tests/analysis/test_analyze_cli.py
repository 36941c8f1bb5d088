"""``mskcds analyze`` and ``mskcds segment`` on phantom folders.

Input errors are found before any model loads; the runs through the real Segmenter (default model) and
the shipped clinical models are ``slow``. Grade 0 and grade 4 phantoms must land where a radiologist
would put them: not urgent, and urgent.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest
from fhir.resources.R4B.bundle import Bundle
from rich.console import Console
from typer.testing import CliRunner

from app.cli import cli
from app.cli.analyze import print_summary
from schemas.analysis import AnalysisResult
from tests.analysis.served import serve

runner = CliRunner()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def unlabelled_study(phantom_factory, tmp_path_factory) -> Path:
    """A phantom whose files say nothing about the side (no Laterality, no side in any description)."""
    target = tmp_path_factory.mktemp("unlabelled") / "study"
    shutil.copytree(phantom_factory(seed=5), target)
    for path in target.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        del ds.Laterality
        ds.save_as(path)
    return target


def test_laterality_missing_without_side_is_an_error(unlabelled_study: Path) -> None:
    result = run("analyze", unlabelled_study, "--json")
    assert result.exit_code == 1
    assert "laterality unknown" in result.stderr and "--side left or --side right" in result.stderr
    assert result.stdout == ""


def test_side_contradicting_the_images_is_an_error(phantom_dir: Path) -> None:
    result = run("analyze", phantom_dir, "--side", "left")
    assert result.exit_code == 1
    assert "--side left contradicts the images, whose dicom says right" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--sex", "other"), "--sex must be female or male, got 'other'"),
        (("--fhir-bundle", "out.json"), "--fhir-bundle and --post need --patient Patient/<id>"),
        (("--months-since-prior", "12"), "--months-since-prior needs --prior"),
    ],
)
def test_bad_flags_are_errors(phantom_dir: Path, args: tuple[str, ...], message: str) -> None:
    result = run("analyze", phantom_dir, *args)
    assert result.exit_code == 1 and message in result.stderr


def test_no_study_is_an_error(tmp_path: Path) -> None:
    result = run("analyze", tmp_path / "nowhere")
    assert result.exit_code == 1 and "no such file or folder" in result.stderr
    url = run("analyze", "http://pacs.test/dicom-web/studies/not-a-uid")
    assert url.exit_code == 1 and "is not a DICOMweb study URL" in url.stderr


@pytest.fixture(scope="module")
def grade4(phantom_factory, tmp_path_factory) -> tuple[AnalysisResult, Path, str]:
    """Grade 4 with full demographics, bundle written; (result, bundle path, stderr)."""
    out = tmp_path_factory.mktemp("grade4")
    result = run("analyze", phantom_factory(seed=11, side="left", grade=4), "--json", "--age", "67", "--sex",
                 "female", "--bmi", "31.5", "--fhir-bundle", out / "bundle.json", "--patient", "Patient/p1",
                 "--maps", out / "maps")
    assert result.exit_code == 0, result.stderr
    return AnalysisResult.model_validate_json(result.stdout), out / "bundle.json", result.stderr


@pytest.mark.slow
def test_grade_4_is_urgent_with_risk(grade4: tuple[AnalysisResult, Path, str]) -> None:
    result, bundle_path, _stderr = grade4
    assert result.triage is not None
    assert result.triage.priority == "urgent", result.triage.reasons
    assert [r.outcome for r in result.risk] == ["incident_oa", "tkr"]
    for risk in result.risk:
        assert risk.ci_low <= risk.probability <= risk.ci_high and not risk.used_prior
    bundle = Bundle.model_validate(json.loads(bundle_path.read_text()))
    kinds = [entry.resource.get_resource_type() for entry in bundle.entry]
    assert kinds.count("Observation") == len(result.measurements.biomarkers)
    assert kinds.count("RiskAssessment") == 2 and kinds.count("DiagnosticReport") == 1
    assert (bundle_path.parent / "maps" / "t2_map.nii.gz").is_file()
    assert list((bundle_path.parent / "maps").glob("thickness_*.png"))


@pytest.mark.slow
def test_grade_0_is_not_urgent_and_names_the_missing_flag(phantom_factory, grade4) -> None:
    run_result = run("analyze", phantom_factory(seed=11, side="left", grade=0), "--json", "--age", "45",
                     "--sex", "male")
    assert run_result.exit_code == 0, run_result.stderr
    result = AnalysisResult.model_validate_json(run_result.stdout)
    assert result.triage is not None
    assert result.triage.priority in ("deprioritised", "routine"), result.triage.reasons
    assert result.risk == []
    assert "risk not estimated: give --age, --sex and --bmi (missing --bmi)" in run_result.stderr
    assert result.notes == ["risk not estimated: give --age, --sex and --bmi (missing --bmi)"]


@pytest.mark.slow
def test_prior_exam_enters_the_change_model(phantom_factory, grade4, tmp_path: Path) -> None:
    earlier, _, _ = grade4
    prior = tmp_path / "prior.json"
    prior.write_text(earlier.model_dump_json())
    result = run("analyze", phantom_factory(seed=11, side="left", grade=4), "--json", "--age", "68", "--sex",
                 "female", "--bmi", "31.5", "--prior", prior, "--months-since-prior", "24")
    assert result.exit_code == 0, result.stderr
    risks = AnalysisResult.model_validate_json(result.stdout).risk
    assert [r.outcome for r in risks] == ["incident_oa", "tkr"] and all(r.used_prior for r in risks)
    other_knee = run("analyze", phantom_factory(seed=11, side="right", grade=4), "--age", "68", "--sex",
                     "female", "--bmi", "31.5", "--prior", prior, "--months-since-prior", "24")
    assert other_knee.exit_code == 1
    assert "the prior exam is of the left knee, the current one of the right" in other_knee.stderr


@pytest.mark.slow
def test_summary_names_priority_stage_and_risks(grade4) -> None:
    result, _, _ = grade4
    console = Console(record=True, width=160)
    print_summary(console, result)
    text = console.export_text()
    assert result.triage is not None
    assert f"Triage: {result.triage.priority} (stage {result.triage.stage_index} {result.triage.stage}" in text
    assert "cartilage thickness mean" in text and "demographics only" in text and "incident_oa" in text


@pytest.mark.slow
def test_segment_writes_labels_on_the_image_grid(phantom_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "labels.nii.gz"
    result = run("segment", phantom_dir, "--out", out)
    assert result.exit_code == 0, result.stderr
    image = nibabel.load(out)
    from app.imaging import load_acquisitions, select_series

    morphology = select_series(load_acquisitions(phantom_dir)).morphology
    assert image.shape == morphology.shape
    np.testing.assert_allclose(image.affine, morphology.echoes.affine, atol=1e-4)
    assert set(np.unique(np.asarray(image.dataobj))) >= {0, 1, 2, 4}
    assert "femoral cartilage" in result.stdout and "confidence" in result.stdout


@pytest.mark.slow
def test_analyze_a_dicomweb_study_url(phantom_dir: Path) -> None:
    with serve(phantom_dir) as study:
        result = run("analyze", f"{study.base_url}/studies/{study.study_instance_uid}", "--json")
    assert result.exit_code == 0, result.stderr
    analysed = AnalysisResult.model_validate_json(result.stdout)
    assert analysed.study_instance_uid == study.study_instance_uid
    assert [s.role for s in analysed.series] == ["morphology", "t2", "t1rho"]
    assert analysed.notes[0] == "risk not estimated: give --age, --sex and --bmi (missing --age, --sex, --bmi)"
