"""Sub-voxel surfaces of voxelised structures, as weighted point sets in patient millimetres.

A label map samples each tissue's indicator function at voxel centres. Its voxel faces (and distance
transforms between voxel centres) misplace a boundary by up to half a voxel on each side of a plate,
and a curved boundary becomes a staircase of one-voxel terraces. Two things follow for thickness: a
systematic half-voxel bias if boundaries are taken at voxel centres, and a downward bias of any
nearest-point distance to a rough surface (the nearest point is picked from the bumps).

Here a boundary is the 0.5 level of the indicator convolved with an isotropic Gaussian (in mm) whose
width equals the largest voxel dimension (:data:`SIGMA_PER_VOXEL`):

- for a locally flat boundary the 0.5 level lies exactly on it, whatever its orientation or sub-voxel
  offset (the kernel is symmetric and the indicators of bone and cartilage add linearly, so a thin
  layer on a large body is reproduced exactly), and 0.5 is the edge profile's inflection point, so
  linear interpolation between voxels finds it to third order;
- a kernel as wide as the largest voxel averages the staircase away; what remains is the curvature
  shift ``~sigma^2 / R``, which moves the bone and articular surfaces alike (0.02 mm for a 20 mm condyle
  at 0.7 mm voxels) and so cancels in thickness to < 0.01 mm;
- gradients are filtered (derivative of Gaussian), not differenced, so normals carry no grid bias.

Surface points are the level crossings along every grid edge. Each carries its outward unit normal
and the surface area it stands for: a crossing on an edge along axis ``a`` represents
``|n_a| * h_b * h_c`` mm^2 (``b``, ``c`` the other axes), because edges along ``a`` pierce a surface
element ``dA`` at a rate ``|n_a| dA / (h_b h_c)`` and ``sum_a n_a^2 = 1``. Summing the weights gives
the area of the surface for any orientation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from app.measurement.geometry import linear, to_world

#: Width (standard deviation) of the smoothing Gaussian, in units of the grid's largest voxel dimension.
SIGMA_PER_VOXEL = 1.0
#: Kernel truncation, in standard deviations.
TRUNCATE = 2.5
#: The level of a smoothed indicator that marks the boundary.
BOUNDARY_LEVEL = 0.5


def sigma_voxels(spacing: NDArray[np.float64] | tuple[float, ...]) -> NDArray[np.float64]:
    """Per-axis Gaussian width in voxels giving an isotropic kernel of :data:`SIGMA_PER_VOXEL` voxels (mm)."""
    spacing = np.asarray(spacing, dtype=np.float64)
    return SIGMA_PER_VOXEL * spacing.max() / spacing


def margin_voxels(spacing: NDArray[np.float64] | tuple[float, ...]) -> NDArray[np.int64]:
    """Voxels to add around a structure so its smoothed field is not cut off by a crop."""
    return np.ceil(TRUNCATE * sigma_voxels(spacing)).astype(np.int64) + 2


@dataclass(frozen=True)
class SmoothField:
    """A smoothed 0/1 indicator and its gradient (per voxel index), both filtered with the same Gaussian."""

    value: NDArray[np.float32]
    gradient: tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]


def smoothed_indicator(mask: NDArray[np.bool_], spacing: tuple[float, float, float]) -> SmoothField:
    """The smoothed indicator of ``mask`` on a grid of voxel size ``spacing`` (mm), with its gradient."""
    sigma = sigma_voxels(spacing)

    def along(values: NDArray[np.float32], axis: int, order: int = 0) -> NDArray[np.float32]:
        return ndimage.gaussian_filter1d(values, sigma[axis], axis=axis, order=order, mode="nearest", truncate=TRUNCATE)

    # Separable filters, sharing the passes the value and the three derivatives have in common (9, not 12).
    smooth_2 = along(mask.astype(np.float32), 2)
    smooth_12 = along(smooth_2, 1)
    value = along(smooth_12, 0)
    d0 = along(smooth_12, 0, order=1)
    d1 = along(along(smooth_2, 1, order=1), 0)
    d2 = along(along(along(mask.astype(np.float32), 2, order=1), 1), 0)
    return SmoothField(value, (d0, d1, d2))


def smoothed_value(mask: NDArray[np.bool_], spacing: tuple[float, float, float]) -> NDArray[np.float32]:
    """The smoothed indicator alone (same filter as :func:`smoothed_indicator`), when no normals are needed."""
    return ndimage.gaussian_filter(mask.astype(np.float32), sigma_voxels(spacing), mode="nearest", truncate=TRUNCATE)


@dataclass(frozen=True)
class SurfacePoints:
    """Points on a surface in RAS mm, with outward unit normals and the area (mm^2) each stands for."""

    xyz: NDArray[np.float64]
    normal: NDArray[np.float64]
    area_mm2: NDArray[np.float64]
    #: Continuous voxel index of each point in the grid the surface was found in.
    ijk: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.xyz)

    def subset(self, keep: NDArray[np.bool_]) -> SurfacePoints:
        return SurfacePoints(self.xyz[keep], self.normal[keep], self.area_mm2[keep], self.ijk[keep])


def level_crossings(smooth: SmoothField, affine: NDArray[np.float64]) -> SurfacePoints:
    """Points where the field crosses :data:`BOUNDARY_LEVEL`, normals pointing to lower values.

    ``affine`` maps this field's voxel indices to RAS mm; its axes must be orthogonal.
    """
    field = smooth.value
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    directions = affine[:3, :3] / spacing
    points, normals, areas, indices = [], [], [], []
    for axis in range(3):
        lower = [slice(None)] * 3
        upper = [slice(None)] * 3
        lower[axis] = slice(0, -1)
        upper[axis] = slice(1, None)
        a = field[tuple(lower)]
        b = field[tuple(upper)]
        crossing = (a >= BOUNDARY_LEVEL) != (b >= BOUNDARY_LEVEL)
        start = np.argwhere(crossing)
        if not len(start):
            continue
        fa = a[crossing].astype(np.float64)
        fb = b[crossing].astype(np.float64)
        fraction = (fa - BOUNDARY_LEVEL) / (fa - fb)
        end = start.copy()
        end[:, axis] += 1
        gradient = np.empty((len(start), 3))
        for component, values in enumerate(smooth.gradient):
            g0 = values[start[:, 0], start[:, 1], start[:, 2]]
            g1 = values[end[:, 0], end[:, 1], end[:, 2]]
            gradient[:, component] = (1 - fraction) * g0 + fraction * g1
        gradient /= spacing  # per mm, along the array axes
        norm = np.linalg.norm(gradient, axis=1)
        norm[norm == 0] = 1.0
        outward_axes = -gradient / norm[:, None]
        others = [o for o in range(3) if o != axis]
        areas.append(np.abs(outward_axes[:, axis]) * spacing[others[0]] * spacing[others[1]])
        ijk = start.astype(np.float64)
        ijk[:, axis] += fraction
        indices.append(ijk)
        points.append(to_world(affine, ijk))
        normals.append(linear(outward_axes, directions))
    if not points:
        empty = np.empty((0, 3))
        return SurfacePoints(empty, empty, np.empty(0), empty)
    return SurfacePoints(*(np.concatenate(part) for part in (points, normals, areas, indices)))


def sample(field: NDArray[np.float32], ijk: NDArray[np.float64]) -> NDArray[np.float64]:
    """Trilinear interpolation of ``field`` at continuous voxel indices ``ijk`` (shape ``(n, 3)``)."""
    if not len(ijk):
        return np.empty(0)
    return ndimage.map_coordinates(field, ijk.T, order=1, mode="nearest").astype(np.float64)
