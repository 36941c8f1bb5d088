"""Real knee data: pymskt's label map and thickness result; real T2 and T1rho series with hand-picked ROIs."""

from __future__ import annotations

from pathlib import Path

import nibabel
import numpy as np
import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.imaging import load_acquisitions
from app.measurement import measure_knee
from app.measurement.io import label_mapping, read_label_map, save_maps, translate
from app.measurement.reference import agreement, sample_thickness
from app.measurement.statistics import weighted_mean
from app.measurement.vtk import read_polydata
from schemas.biomarkers import BiomarkerSet
from schemas.labels import Label
from schemas.volume import LPS_TO_RAS, Volume
from tests.measurement.real_rois import MESE_T2_BOX, cubequant_t1rho_roi, mese_t2_roi

#: pymskt's published mean femoral cartilage thickness over its femur vertices with cartilage (mm).
PYMSKT_MEAN_MM = 2.2447


@pytest.mark.realdata
@pytest.mark.slow
def test_femoral_thickness_agrees_with_pymskt_on_its_own_real_label_map(pymskt_dir: Path) -> None:
    labels = translate(read_label_map(pymskt_dir / "right_knee_example.nrrd"), label_mapping("pymskt"))
    measurement = measure_knee(labels, "right", "user")
    plate = measurement.plates[Label.FEMORAL_CARTILAGE].thickness
    covered = ~plate.denuded
    # Their number: mean over the vertices whose normal ray crossed cartilage; ours: mean over covered bone.
    reference = read_polydata(pymskt_dir / "femur_thickness_mm_10k_pts.vtk")
    theirs = reference.point_data["thickness (mm)"]
    assert theirs[theirs > 0].mean() == pytest.approx(PYMSKT_MEAN_MM, abs=1e-4)
    ours_mean = weighted_mean(plate.thickness_mm[covered], plate.bone_surface.area_mm2[covered])
    assert ours_mean == pytest.approx(PYMSKT_MEAN_MM, abs=0.15)
    # Point by point, at their vertices (their mesh is in LPS).
    ours, near = sample_thickness(plate, reference.points @ LPS_TO_RAS[:3, :3].T, max_distance_mm=1.0)
    compared = near & (theirs > 0)
    assert compared.sum() > 0.95 * (theirs > 0).sum()
    stats = agreement(ours[compared], theirs[compared])
    assert abs(stats.bias) < 0.05
    assert stats.sd < 0.12
    assert stats.correlation > 0.98
    # The whole document is sane for a healthy knee (literature ranges, Eckstein et al. 2001, 2006).
    values = measurement.biomarkers.as_features()
    for plate_name in ("MT", "LT", "cMF", "cLF", "TrF", "P"):
        assert 1.2 < values[f"cartilage_thickness_mean:{plate_name}"] < 3.2
    assert 5000 < values["cartilage_volume:F"] < 25000
    assert np.isclose(
        values["cartilage_thickness_mean:MFTC"],
        values["cartilage_thickness_mean:MT"] + values["cartilage_thickness_mean:cMF"],
        atol=0.002,
    )


def _measure_cli(study: Path, roi_labels: Volume, tmp_path: Path) -> tuple[BiomarkerSet, str, Path]:
    """``mskcds measure STUDY --labels roi.nii.gz --side right --json --maps DIR`` on a real series."""
    labels_path = tmp_path / "roi.nii.gz"
    nibabel.save(nibabel.Nifti1Image(roi_labels.array, roi_labels.affine), labels_path)
    maps = tmp_path / "maps"
    result = CliRunner().invoke(
        cli, ["measure", str(study), "--labels", str(labels_path), "--side", "right", "--json", "--maps", str(maps)]
    )
    assert result.exit_code == 0, result.stderr
    return BiomarkerSet.model_validate_json(result.stdout), result.stderr, maps


@pytest.mark.realdata
def test_t2_of_real_cartilage_from_the_real_multi_echo_series(mese_t2_dir: Path, tmp_path: Path) -> None:
    (acquisition,) = load_acquisitions(mese_t2_dir)
    assert acquisition.role == "t2" and len(acquisition.echoes.times_ms) == 8
    roi = mese_t2_roi(acquisition.shape)
    labels = Volume(np.where(roi, int(Label.FEMORAL_CARTILAGE), 0).astype(np.int16), acquisition.echoes.affine)
    biomarkers, report, maps = _measure_cli(mese_t2_dir, labels, tmp_path)
    # Healthy knee cartilage at 3 T: T2 ~ 25-45 ms (e.g. Mosher & Dardzinski 2004; OAI reference values).
    assert 25.0 < biomarkers.get("t2_mean", "F") < 45.0
    assert 3.0 < biomarkers.get("t2_sd", "F") < 20.0
    assert "t2: 378 cartilage voxels fitted" in report  # 3 x 6 x 21 voxels, all of them cartilage
    assert (maps / "t2_map.png").read_bytes()[:4] == b"\x89PNG"
    fitted = nibabel.load(maps / "t2_map.nii.gz")  # cropped to the ROI and one voxel around it
    corner = np.array([box.start - 1 for box in MESE_T2_BOX])
    expected = acquisition.echoes.affine.copy()
    expected[:3, 3] += expected[:3, :3] @ corner
    np.testing.assert_allclose(fitted.affine, expected, atol=1e-3)
    values = np.asarray(fitted.dataobj)
    assert np.isfinite(values[1:-1, 1:-1, 1:-1]).all() and np.isnan(values[0]).all()


@pytest.mark.realdata
def test_t1rho_of_real_cartilage_from_the_four_spin_lock_series(real_knee_dir: Path, tmp_path: Path) -> None:
    (acquisition,) = load_acquisitions(real_knee_dir / "cubeQuant")
    assert acquisition.role == "t1rho" and acquisition.echoes.times_ms == (1.0, 10.0, 30.0, 60.0)
    roi = cubequant_t1rho_roi(acquisition.echoes.array[0])
    labels = Volume(np.where(roi, int(Label.FEMORAL_CARTILAGE), 0).astype(np.int16), acquisition.echoes.affine)
    measurement = measure_knee(labels, "right", "user", t1rho=acquisition.echoes)
    report = measurement.relaxation["t1rho"].report
    # CubeQuant's slices are 3 mm thick every 1.5 mm: a slice's slab reaches half a voxel into each
    # neighbour (25 % of its signal each), so only ROI voxels with both slice neighbours in the ROI are pure.
    assert acquisition.echoes.slice_thickness_mm == 3.0
    pure = roi.copy()
    pure[1:] &= roi[:-1]
    pure[:-1] &= roi[1:]
    pure[[0, -1]] = False
    assert report.n_voxels == pure.sum() and report.n_valid > 0.95 * report.n_voxels
    # Cartilage T1rho at 3 T: ~30-60 ms healthy, higher with degeneration (e.g. Li et al. 2011).
    assert 30.0 < measurement.biomarkers.get("t1rho_mean", "F") < 70.0
    written = save_maps(measurement, {"t1rho": acquisition.echoes}, tmp_path)
    assert [p.name for p in written] == ["t1rho_map.nii.gz", "t1rho_map.png"]
    saved = nibabel.load(tmp_path / "t1rho_map.nii.gz")
    values = np.asarray(saved.dataobj)
    assert values.shape == tuple(np.ptp(np.argwhere(pure), axis=0) + 3)  # cropped to the fitted voxels + 1
    corner = np.argwhere(pure).min(axis=0) - 1
    np.testing.assert_allclose(
        saved.affine[:3, 3], acquisition.echoes.affine[:3, :3] @ corner + acquisition.echoes.affine[:3, 3], atol=1e-3
    )
