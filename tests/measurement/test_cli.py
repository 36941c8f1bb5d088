"""``mskcds measure`` on label maps written to disk (NIfTI and NRRD), its options and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel
import nrrd
import numpy as np
import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.cli.measure import MeasureError, resolve_laterality
from app.measurement.io import LabelMapError, read_label_map
from schemas.biomarkers import BiomarkerSet
from schemas.labels import EXTERNAL_LABEL_MAPS
from schemas.volume import LPS_TO_RAS, Volume
from tests.measurement.shapes import grid_affine, rotation, shape_for, toy_knee

runner = CliRunner()


@pytest.fixture(scope="module")
def toy_labels() -> Volume:
    spacing = (0.9, 0.9, 1.1)
    shape = shape_for((90, 90, 80), spacing)
    return toy_knee(grid_affine(spacing, shape, rotation(0, 0, 7), centre=(0, 5, -5)), shape)


def write_nifti(labels: Volume, path: Path) -> Path:
    nibabel.save(nibabel.Nifti1Image(labels.array, labels.affine), path)
    return path


def write_nrrd_lps(array: np.ndarray, affine_ras: np.ndarray, path: Path) -> Path:
    """As 3D Slicer and pymskt write it: LPS space, one row of 'space directions' per array axis."""
    affine = LPS_TO_RAS @ affine_ras
    header = {
        "space": "left-posterior-superior",
        "space directions": affine[:3, :3].T,
        "space origin": affine[:3, 3],
        "kinds": ["domain"] * 3,
    }
    nrrd.write(str(path), array, header)
    return path


def assert_same(first: BiomarkerSet, second: BiomarkerSet) -> None:
    """Same document; values may differ by one voxel's worth where a NIfTI float32 affine moves a tie."""
    assert (first.laterality, first.laterality_source) == (second.laterality, second.laterality_source)
    a, b = first.as_features(), second.as_features()
    assert list(a) == list(b)
    assert b == pytest.approx(a, rel=0.005, abs=1e-6)


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, ["measure", *args])
    return result.exit_code, result.stdout, result.stderr


def test_nifti_and_lps_nrrd_give_the_same_biomarkers(tmp_path: Path, toy_labels: Volume) -> None:
    nifti = write_nifti(toy_labels, tmp_path / "labels.nii.gz")
    nrrd_path = write_nrrd_lps(toy_labels.array, toy_labels.affine, tmp_path / "labels.nrrd")
    read_back = read_label_map(nrrd_path)
    np.testing.assert_allclose(read_back.affine, toy_labels.affine, atol=1e-9)
    np.testing.assert_array_equal(read_back.array, toy_labels.array)
    code, out, err = run("--labels", str(nifti), "--side", "right", "--json")
    assert code == 0, err
    from_nifti = BiomarkerSet.model_validate_json(out)
    code, out, err = run("--labels", str(nrrd_path), "--side", "right", "--json")
    assert code == 0, err
    assert_same(BiomarkerSet.model_validate_json(out), from_nifti)
    assert from_nifti.laterality == "right" and from_nifti.laterality_source == "user"
    assert from_nifti.get("cartilage_thickness_mean", "MT") is not None


def test_foreign_label_values_are_translated_by_name_or_json_file(tmp_path: Path, toy_labels: Volume) -> None:
    ours = write_nifti(toy_labels, tmp_path / "ours.nii.gz")
    pymskt = {int(target): source for source, target in EXTERNAL_LABEL_MAPS["pymskt"].items()}
    foreign = np.zeros_like(toy_labels.array)
    for target, source in pymskt.items():
        foreign[toy_labels.array == target] = source
    theirs = write_nrrd_lps(foreign, toy_labels.affine, tmp_path / "theirs.nrrd")
    mapping_file = tmp_path / "mapping.json"
    mapping_file.write_text(json.dumps({str(s): int(t) for s, t in EXTERNAL_LABEL_MAPS["pymskt"].items()}))
    expected = run("--labels", str(ours), "--side", "left", "--json")[1]
    for mapping in ("pymskt", str(mapping_file)):
        code, out, err = run("--labels", str(theirs), "--label-map", mapping, "--side", "left", "--json")
        assert code == 0, err
        assert_same(BiomarkerSet.model_validate_json(out), BiomarkerSet.model_validate_json(expected))


def test_table_output_and_maps(tmp_path: Path, toy_labels: Volume) -> None:
    nifti = write_nifti(toy_labels, tmp_path / "labels.nii.gz")
    code, out, err = run("--labels", str(nifti), "--side", "right", "--maps", str(tmp_path / "maps"))
    assert code == 0, err
    assert "right knee (laterality from user)" in out
    assert "cartilage_thickness_mean" in out
    assert f"maps: 4 files in {tmp_path / 'maps'}" in err  # femur and tibia (the toy has no patella)
    for bone in ("femur", "tibia"):
        picture = tmp_path / "maps" / f"thickness_{bone}.png"
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        values = np.load(tmp_path / "maps" / f"thickness_{bone}.npy")
        assert values.ndim == 2 and np.isfinite(values).any()
        assert 0.5 < np.nanmedian(values) < 2.5  # 2 mm of cartilage, whole voxels on the tibia's flat top
    femur = np.load(tmp_path / "maps" / "thickness_femur.npy")
    assert np.nanmedian(femur) == pytest.approx(2.0, abs=0.2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--side", "right"], "label map {missing} does not exist"),
        (["--side", "right", "--label-map", "nonsense"], "label mapping 'nonsense' is neither a built-in mapping"),
        ([], "laterality unknown: the images carry none"),
    ],
)
def test_bad_input_is_refused_with_a_message(tmp_path: Path, toy_labels: Volume, args: list[str], message: str) -> None:
    labels = write_nifti(toy_labels, tmp_path / "labels.nii.gz")
    missing = tmp_path / "missing.nii.gz"
    target = missing if "does not exist" in message else labels
    code, out, err = run("--labels", str(target), *args)
    assert code == 1
    assert out == ""
    assert err.startswith("error: " + message.format(missing=missing))


def test_laterality_comes_from_the_images_then_the_user() -> None:
    assert resolve_laterality("left", "dicom", None) == ("left", "dicom")
    assert resolve_laterality("right", "series_description", "right") == ("right", "series_description")
    assert resolve_laterality(None, None, "left") == ("left", "user")
    with pytest.raises(MeasureError, match="--side right contradicts the images, whose dicom says left"):
        resolve_laterality("left", "dicom", "right")


def test_label_map_files_that_are_not_label_maps(tmp_path: Path) -> None:
    image = tmp_path / "image.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.full((4, 4, 4), 0.5, dtype=np.float32), np.eye(4)), image)
    with pytest.raises(LabelMapError, match="holds non-integer values; is it an image rather than labels"):
        read_label_map(image)
    series = tmp_path / "series.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.zeros((4, 4, 4, 2), dtype=np.int16), np.eye(4)), series)
    with pytest.raises(LabelMapError, match=r"has shape \(4, 4, 4, 2\); a label map is a 3D array"):
        read_label_map(series)
    other = tmp_path / "labels.mha"
    other.write_bytes(b"x")
    with pytest.raises(LabelMapError, match="unsupported file type; use NIfTI"):
        read_label_map(other)
    scanner = tmp_path / "scanner.nrrd"
    nrrd.write(
        str(scanner), np.zeros((2, 2, 2), dtype=np.uint8), {"space": "scanner-xyz", "space directions": np.eye(3)}
    )
    with pytest.raises(LabelMapError, match="NRRD space 'scanner-xyz' is not supported"):
        read_label_map(scanner)
