"""Dice and HD95 on hand-made masks with known answers, and against a brute-force surface distance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from app.segmentation.metrics import dice, hd95, label_scores
from schemas.labels import Label
from schemas.volume import Volume

SPACING = (0.7, 0.36, 0.5)


def _cube(shape: tuple[int, int, int], corner: tuple[int, int, int], side: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(c, c + side) for c in corner)] = True
    return mask


@pytest.mark.parametrize(("axis", "k"), [(0, 1), (0, 3), (1, 2), (2, 5)])
def test_cubes_offset_by_k_voxels(axis: int, k: int) -> None:
    """Every face voxel moves exactly k voxels, no surface voxel moves more: HD95 = k x that axis' spacing."""
    side = 12
    corner = [4, 4, 4]
    a = _cube((30, 30, 30), tuple(corner), side)
    corner[axis] += k
    b = _cube((30, 30, 30), tuple(corner), side)
    assert dice(a, b) == pytest.approx((side - k) / side)
    assert hd95(a, b, SPACING) == pytest.approx(k * SPACING[axis])


def test_identical_masks() -> None:
    a = _cube((20, 20, 20), (3, 5, 7), 6)
    assert dice(a, a) == 1.0
    assert hd95(a, a, SPACING) == 0.0


def test_empty_masks_are_reported_not_scored() -> None:
    empty = np.zeros((8, 8, 8), dtype=bool)
    full = _cube((8, 8, 8), (2, 2, 2), 3)
    assert dice(empty, empty) is None
    assert hd95(empty, empty, SPACING) is None
    assert dice(full, empty) == 0.0
    assert hd95(full, empty, SPACING) == math.inf
    assert hd95(empty, full, SPACING) == math.inf


def _brute_force_hd95(a: np.ndarray, b: np.ndarray, spacing: tuple[float, ...]) -> float:
    """Surface = a mask voxel with a face neighbour outside the mask or the grid; KD-tree in mm."""

    def surface_points(mask: np.ndarray) -> np.ndarray:
        padded = np.pad(mask, 1)
        inner = padded.copy()
        for axis in range(3):
            for shift in (-1, 1):
                inner &= np.roll(padded, shift, axis=axis)
        return np.argwhere(mask & ~inner[1:-1, 1:-1, 1:-1]) * np.asarray(spacing)

    pa, pb = surface_points(a), surface_points(b)
    forward = np.percentile(cKDTree(pb).query(pa)[0], 95)
    backward = np.percentile(cKDTree(pa).query(pb)[0], 95)
    return float(max(forward, backward))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hd95_matches_brute_force_on_blobs(seed: int) -> None:
    """Smooth random blobs, one touching the grid's edge: the cropped distance transform agrees with a KD-tree."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal((24, 28, 32)), 3.0)
    a = field > 0.02
    b = ndimage.shift(field, (1.3, -2.0, 0.7), order=1) > 0.03
    assert a.any() and b.any()
    assert hd95(a, b, SPACING) == pytest.approx(_brute_force_hd95(a, b, SPACING), abs=1e-9)


def test_label_scores_per_label_and_grid_check() -> None:
    affine = np.diag([*SPACING, 1.0])
    reference = np.zeros((20, 20, 20), dtype=np.uint8)
    reference[2:8, 2:8, 2:8] = Label.FEMUR
    reference[10:14, 10:14, 10:14] = Label.PATELLA
    predicted = reference.copy()
    predicted[10:14, 10:14, 10:14] = 0  # patella missed
    predicted[15:17, 15:17, 15:17] = Label.MEDIAL_MENISCUS  # meniscus invented
    scores = {s.label: s for s in label_scores(Volume(predicted, affine), Volume(reference, affine))}
    assert len(scores) == 9
    assert scores[Label.FEMUR].dice == 1.0 and scores[Label.FEMUR].hd95_mm == 0.0
    assert scores[Label.PATELLA].dice == 0.0 and scores[Label.PATELLA].hd95_mm == math.inf
    assert scores[Label.PATELLA].predicted_voxels == 0 and scores[Label.PATELLA].reference_voxels == 64
    assert scores[Label.MEDIAL_MENISCUS].hd95_mm == math.inf
    assert scores[Label.TIBIA].dice is None and scores[Label.TIBIA].hd95_mm is None
    with pytest.raises(ValueError, match="not on one grid"):
        label_scores(Volume(predicted[:-1], affine), Volume(reference, affine))
