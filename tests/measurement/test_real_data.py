"""Real knee data: pymskt's label map and thickness result (and, with the loader, real T2 / T1rho series)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.measurement import measure_knee
from app.measurement.io import label_mapping, read_label_map, translate
from app.measurement.reference import agreement, sample_thickness
from app.measurement.statistics import weighted_mean
from app.measurement.vtk import read_polydata
from schemas.labels import Label
from schemas.volume import LPS_TO_RAS

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
