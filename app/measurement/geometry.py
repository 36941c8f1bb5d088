"""Grid geometry shared by the measurement modules: crops, physical smoothing widths, resampling.

Every measurement works in patient millimetres (RAS) through the volume's affine, so the same code is
exact for sagittal, coronal and oblique acquisitions and for anisotropic voxels. The array axes must
be orthogonal in space (true for every DICOM acquisition and for NIfTI files written from them); a
sheared affine is refused rather than measured wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from schemas.volume import Volume

#: Largest |cos| between two array axes that still counts as orthogonal (about 0.06 degrees).
_ORTHOGONALITY_TOLERANCE = 1e-3


def check_orthogonal(volume: Volume) -> None:
    """Refuse grids whose axes are not perpendicular in space (sheared affines).

    Raises:
        ValueError: naming the angle between the worst pair of axes.
    """
    directions = volume.direction
    cosines = np.abs(directions.T @ directions - np.eye(3))
    worst = float(cosines.max())
    if worst > _ORTHOGONALITY_TOLERANCE:
        angle = np.degrees(np.arccos(min(worst, 1.0)))
        raise ValueError(
            f"the label map's voxel axes are not perpendicular (two axes meet at {angle:.2f} degrees); "
            "resample it onto an orthogonal grid first"
        )


@dataclass(frozen=True)
class Box:
    """A rectangular crop of a grid: ``start`` (inclusive) and ``stop`` (exclusive) per axis."""

    start: tuple[int, int, int]
    stop: tuple[int, int, int]

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(a, b) for a, b in zip(self.start, self.stop, strict=True))  # type: ignore[return-value]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(b - a for a, b in zip(self.start, self.stop, strict=True))  # type: ignore[return-value]


def bounding_box(mask: NDArray[np.bool_], margin_voxels: NDArray[np.integer] | tuple[int, ...]) -> Box | None:
    """The box around ``mask``'s true voxels grown by ``margin_voxels`` per axis, or None if empty."""
    if not mask.any():
        return None
    start, stop = [], []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        present = np.flatnonzero(mask.any(axis=other))
        margin = int(margin_voxels[axis])
        start.append(max(int(present[0]) - margin, 0))
        stop.append(min(int(present[-1]) + 1 + margin, mask.shape[axis]))
    return Box(tuple(start), tuple(stop))  # type: ignore[arg-type]


def crop_affine(affine: NDArray[np.float64], box: Box) -> NDArray[np.float64]:
    """The affine of the sub-grid that starts at ``box.start``."""
    shifted = affine.copy()
    shifted[:3, 3] = affine[:3, :3] @ np.asarray(box.start, dtype=np.float64) + affine[:3, 3]
    return shifted


def voxels_for_mm(volume: Volume, mm: float) -> NDArray[np.int64]:
    """How many voxels along each axis cover at least ``mm`` millimetres."""
    return np.ceil(mm / np.asarray(volume.spacing_mm)).astype(np.int64)


def linear(points: NDArray, matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    """``points @ matrix.T`` for an ``(n, 3)`` array (einsum: numpy's matmul is slow for tall, thin arrays)."""
    return np.einsum("ij,kj->ik", np.asarray(points, dtype=np.float64), matrix)


def to_world(affine: NDArray[np.float64], ijk: NDArray) -> NDArray[np.float64]:
    """RAS mm positions of (continuous) voxel indices ``ijk`` of shape ``(n, 3)``."""
    return linear(ijk, affine[:3, :3]) + affine[:3, 3]


def resample_nearest(labels: Volume, target_affine: NDArray[np.float64], target_shape: tuple[int, ...]) -> Volume:
    """``labels`` on another grid: each target voxel takes the label at its centre (nearest neighbour).

    Both grids are related through patient coordinates only (their affines), so a label map drawn on the
    morphology series lands correctly on a T2 series of another orientation, resolution or field of view.
    Target voxels whose centre falls outside the label map get 0 (background).
    """
    target_affine = np.asarray(target_affine, dtype=np.float64)
    shape = tuple(int(n) for n in target_shape[:3])
    if shape == labels.shape and np.allclose(target_affine, labels.affine, atol=1e-6):
        return Volume(labels.array, target_affine)
    mapping = np.linalg.inv(labels.affine) @ target_affine
    # Source index = i * M[:, 0] + j * M[:, 1] + k * M[:, 2] + offset: add the per-axis parts slab by slab.
    in_plane = (
        np.arange(shape[1])[:, None, None] * mapping[:3, 1] + np.arange(shape[2])[None, :, None] * mapping[:3, 2]
    ) + mapping[:3, 3]
    upper = np.asarray(labels.shape) - 1
    out = np.zeros(shape, dtype=labels.array.dtype)
    for i in range(shape[0]):
        source = np.rint(in_plane + i * mapping[:3, 0]).astype(np.int64)
        inside = np.all((source >= 0) & (source <= upper), axis=-1)
        hit = source[inside]
        out[i][inside] = labels.array[hit[:, 0], hit[:, 1], hit[:, 2]]
    return Volume(out, target_affine)


def label_fractions(
    labels: Volume,
    target_affine: NDArray[np.float64],
    voxels: NDArray[np.integer],
    values: tuple[int, ...],
    footprint_mm: tuple[float, float, float] | None = None,
    max_samples_per_axis: int = 12,
) -> NDArray[np.float64]:
    """For target voxels (``(n, 3)`` indices of a grid with ``target_affine``), the fraction of each voxel's
    volume that ``labels`` assigns to each of ``values`` (shape ``(n, len(values))``).

    A voxel's volume is its ``footprint_mm`` per axis, centred on it (default: the grid spacing; a series
    whose slices are thicker or thinner than their spacing passes its slice thickness). It is sampled on a
    regular sub-grid fine enough for the label map (at least 2, at most ``max_samples_per_axis`` points
    per axis), each sample taking the nearest label voxel. This is how a thick-slice series (3 mm T2
    slices) learns which of its voxels hold only cartilage and which also hold fluid or marrow, in plane
    and through the slice.
    """
    target_spacing = np.linalg.norm(target_affine[:3, :3], axis=0)
    extent = target_spacing if footprint_mm is None else np.asarray(footprint_mm, dtype=np.float64)
    per_axis = np.clip(np.ceil(extent / min(labels.spacing_mm)), 2, max_samples_per_axis).astype(int)
    offsets = np.stack(
        np.meshgrid(
            *[
                ((np.arange(n) + 0.5) / n - 0.5) * e / h
                for n, e, h in zip(per_axis, extent, target_spacing, strict=True)
            ],
            indexing="ij",
        ),
        axis=-1,
    ).reshape(-1, 3)
    mapping = np.asarray(np.linalg.inv(labels.affine) @ np.asarray(target_affine), dtype=np.float64)
    result = np.zeros((len(voxels), len(values)))
    chunk = max(1, 2_000_000 // len(offsets))
    upper = np.asarray(labels.shape) - 1
    for start in range(0, len(voxels), chunk):
        points = (voxels[start : start + chunk, None, :] + offsets[None]).reshape(-1, 3)
        source = np.rint(linear(points, mapping[:3, :3]) + mapping[:3, 3]).astype(np.int64)
        inside = np.all((source >= 0) & (source <= upper), axis=1)
        sampled = np.zeros(len(source), dtype=labels.array.dtype)
        sampled[inside] = labels.array[source[inside, 0], source[inside, 1], source[inside, 2]]
        sampled = sampled.reshape(-1, len(offsets))
        for column, value in enumerate(values):
            result[start : start + chunk, column] = (sampled == value).mean(axis=1)
    return result
