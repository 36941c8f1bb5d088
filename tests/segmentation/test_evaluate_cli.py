"""``mskcds evaluate-seg`` end to end on one small held-out phantom.

The plumbing test uses ``random-tiny`` from ``tests/segmentation/conftest.py`` (randomly initialised,
written and exported like a trained model): it checks chain -> measurement -> scores -> files and exit
status 0 on poor scores, not segmentation quality. The trained default's quality on the published
protocol is measured by ``mskcds evaluate-seg`` itself (docs/segmentation-evaluation.md); here it only
has to run on a small, coarse phantom, with a loose floor.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.segmentation.card import BUILTIN_MODEL_DIR, CARD_FILE
from app.settings import get_settings

runner = CliRunner()


@pytest.fixture
def model_dir(random_model: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MSKCDS_MODEL_DIR", str(random_model))
    get_settings.cache_clear()
    return random_model


@pytest.mark.slow
def test_one_small_phantom_with_a_random_model(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    args = ["evaluate-seg", "--phantoms", "1", "--protocol", "dess-small", "--model", "random-tiny"]
    result = runner.invoke(cli, [*args, "--runtime", "onnx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Labels" in result.output and "femur" in result.output
    written = {p.name for p in out.iterdir()}
    assert {"report.md", "report.json", "bland_altman.png", "overlay_seed9000-right-grade0.png"} <= written
    report = json.loads((out / "report.json").read_text())
    assert report["model_versions"] == {"random-tiny": "0.0.1"}
    assert report["source"] == "held-out phantoms, seeds 9000-9000, protocol dess-small"
    (case,) = report["cases"]
    assert len(case["scores"]) == 9 and all(s["reference_voxels"] > 0 for s in case["scores"])
    assert case["reference"]["cartilage_thickness_mean:MT"] > 0  # the reference is measured whatever the model does
    assert set(case["truth"]) >= set(case["reference"])
    if case["failure"] is None:
        assert {"detector", "encoder", "decoder", "postprocess", "chain", "measurement"} <= set(case["timings_s"])


def test_bad_input_is_an_error_not_a_report(model_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["evaluate-seg", "--protocol", "no-such", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "unknown protocol" in result.output
    result = runner.invoke(cli, ["evaluate-seg", "--cases", str(tmp_path), "--model", "random-tiny"])
    assert result.exit_code == 1 and "no labels.nii.gz" in result.output
    result = runner.invoke(cli, ["evaluate-seg", "--phantoms", "1", "--protocol", "dess-small", "--model", "nope"])
    assert result.exit_code == 1 and "not found" in result.output


@pytest.mark.slow
def test_case_folders_as_mskcds_phantom_writes_them(model_dir: Path, phantom_factory, tmp_path: Path) -> None:
    """DICOM loaded and the series selected as the analysis does; laterality from DICOM; truth.json read."""
    folder = phantom_factory(seed=9001, side="left", grade=1, protocols=["dess-small"])
    out = tmp_path / "eval"
    result = runner.invoke(cli, ["evaluate-seg", "--cases", str(folder), "--model", "random-tiny", "--out", str(out)])
    assert result.exit_code == 0, result.output
    (case,) = json.loads((out / "report.json").read_text())["cases"]
    assert case["name"] == folder.name and case["laterality"] == "left" and case["grade"] == 1
    assert case["truth"]["cartilage_thickness_mean:F"] > 0
    assert (out / f"overlay_{folder.name}.png").is_file()


DEFAULT_MODEL = BUILTIN_MODEL_DIR / "knee-sam-tiny" / CARD_FILE


@pytest.mark.slow
@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="the trained default model is not in models/ yet")
def test_default_model_segments_a_small_held_out_phantom(tmp_path: Path) -> None:
    """The trained default through the whole chain: labels come back and the bones overlap (dess-small's
    1.4 x 1.4 x 2.8 mm voxels are coarser than anything it trained on, so only a loose floor is asserted)."""
    out = tmp_path / "eval"
    result = runner.invoke(cli, ["evaluate-seg", "--phantoms", "1", "--protocol", "dess-small", "--out", str(out)])
    assert result.exit_code == 0, result.output
    (case,) = json.loads((out / "report.json").read_text())["cases"]
    assert case["failure"] is None
    dice = {score["label"]: score["dice"] for score in case["scores"]}
    assert dice[1] > 0.5 and dice[2] > 0.5, dice
