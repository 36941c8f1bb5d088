"""Resampling label maps between grids through patient coordinates."""

from __future__ import annotations

import numpy as np
import pytest

from app.measurement.geometry import label_fractions, resample_nearest
from schemas.volume import Volume
from tests.measurement.shapes import grid_affine, rotation


def test_nearest_neighbour_resampling_follows_the_affines() -> None:
    rng = np.random.default_rng(0)
    source = Volume(rng.integers(0, 10, (20, 24, 16)).astype(np.int16), grid_affine((0.7, 0.5, 0.9), (20, 24, 16)))
    target_affine = grid_affine((0.8, 1.1, 0.6), (9, 11, 13), rotation(10, -20, 35), centre=(0.3, -0.2, 0.1))
    result = resample_nearest(source, target_affine, (9, 11, 13))
    inverse = np.linalg.inv(source.affine)
    for ijk in np.ndindex(9, 11, 13):
        xyz = target_affine @ np.array([*ijk, 1.0])
        index = np.rint(inverse @ xyz)[:3].astype(int)
        inside = np.all((index >= 0) & (index < source.shape))
        assert result.array[ijk] == (source.array[tuple(index)] if inside else 0)
    np.testing.assert_array_equal(result.affine, target_affine)


def test_same_grid_is_returned_unchanged() -> None:
    source = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.diag([0.5, 0.5, 2.0, 1.0]))
    assert resample_nearest(source, source.affine, source.shape).array is source.array


def test_label_fractions_measure_each_voxels_footprint() -> None:
    # Fine labels: 1 below z = 0.3 mm, 2 above. Thick target voxels (3 mm along z) straddling the boundary.
    fine = grid_affine((0.1, 0.1, 0.1), (20, 20, 120))
    z = (np.indices((20, 20, 120))[2] - 59.5) * 0.1
    labels = Volume(np.where(z < 0.3, 1, 2).astype(np.int16), fine)
    thick = grid_affine((1.0, 1.0, 3.0), (1, 1, 3))  # voxel centres at z = -3, 0, 3 mm
    fractions = label_fractions(labels, thick, np.array([[0, 0, 0], [0, 0, 1], [0, 0, 2]]), (1, 2))
    np.testing.assert_allclose(fractions[:, 0], [1.0, 0.6, 0.0], atol=1 / 12 + 1e-9)  # 12 samples along z
    np.testing.assert_allclose(fractions.sum(axis=1), 1.0)


def test_a_slice_thicker_than_its_spacing_sees_more_of_its_neighbours() -> None:
    # 3 mm slices reconstructed every 1.5 mm (CubeQuant): the voxel at z = 1.5 mm reaches down to 0 mm.
    fine = grid_affine((0.1, 0.1, 0.1), (10, 10, 80))
    z = (np.indices((10, 10, 80))[2] - 39.5) * 0.1
    labels = Volume(np.where(z < 0.3, 1, 2).astype(np.int16), fine)
    spaced = grid_affine((1.0, 1.0, 1.5), (1, 1, 3))  # voxel centres at z = -1.5, 0, 1.5 mm
    voxel = np.array([[0, 0, 2]])
    assert label_fractions(labels, spaced, voxel, (1,))[0, 0] == 0.0  # its 1.5 mm spacing: all above 0.75
    thick = label_fractions(labels, spaced, voxel, (1,), footprint_mm=(1.0, 1.0, 3.0))[0, 0]
    assert thick == pytest.approx(0.3 / 3.0, abs=1 / 12)  # z in [0, 0.3) of [0, 3)
