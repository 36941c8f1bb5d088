"""Analytic test shapes sampled on arbitrary grids, with their exact answers.

A label map here is what a perfect segmentation of a continuous shape is: each voxel takes the label
of the tissue at its centre. Grids may be isotropic, anisotropic, oblique and in any axis order, so
the measurements are checked against geometry, not against the grid.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from schemas.labels import Label
from schemas.volume import Volume


def rotation(x_deg: float = 0.0, y_deg: float = 0.0, z_deg: float = 0.0) -> NDArray[np.float64]:
    """Rotation about x, then y, then z (degrees)."""
    result = np.eye(3)
    for axis, degrees in enumerate((x_deg, y_deg, z_deg)):
        c, s = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
        i, j = [(1, 2), (2, 0), (0, 1)][axis]
        r = np.eye(3)
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        result = r @ result
    return result


def grid_affine(
    spacing: tuple[float, float, float],
    shape: tuple[int, int, int],
    rotate: NDArray[np.float64] | None = None,
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0),
    axis_order: tuple[int, int, int] = (0, 1, 2),
) -> NDArray[np.float64]:
    """An affine whose grid is centred on ``centre``: array axis ``a`` runs along rotated RAS axis ``axis_order[a]``."""
    directions = (np.eye(3) if rotate is None else rotate)[:, list(axis_order)]
    affine = np.eye(4)
    affine[:3, :3] = directions * np.asarray(spacing)
    affine[:3, 3] = np.asarray(centre) - affine[:3, :3] @ ((np.asarray(shape) - 1) / 2)
    return affine


def shape_for(extent_mm: float | tuple[float, float, float], spacing: tuple[float, float, float]) -> tuple[int, ...]:
    """Voxels per axis covering ``extent_mm`` (per axis or the same for all)."""
    extent = np.broadcast_to(np.asarray(extent_mm, dtype=np.float64), (3,))
    return tuple(int(np.ceil(e / s)) for e, s in zip(extent, spacing, strict=True))


def voxel_centres(affine: NDArray[np.float64], shape: tuple[int, ...]) -> NDArray[np.float64]:
    """RAS mm of every voxel centre, shape ``(*shape, 3)``."""
    index = np.indices(shape, dtype=np.float64).reshape(3, -1)
    return (affine[:3, :3] @ index + affine[:3, 3:4]).T.reshape(*shape, 3)


def labelled(
    affine: NDArray[np.float64], shape: tuple[int, ...], tissues: list[tuple[Label, Callable[[NDArray], NDArray]]]
) -> Volume:
    """A label map where each voxel takes the first tissue whose predicate holds at its centre."""
    xyz = voxel_centres(affine, shape)
    labels = np.zeros(shape, dtype=np.int16)
    for label, inside in reversed(tissues):
        labels[inside(xyz)] = label
    return Volume(labels, affine)


def ball(centre: tuple[float, float, float], radius: float) -> Callable[[NDArray], NDArray]:
    c = np.asarray(centre)
    return lambda xyz: np.linalg.norm(xyz - c, axis=-1) < radius


def spherical_shell(affine: NDArray, shape: tuple[int, ...], centre, radius: float, thickness: float) -> Volume:
    """Femur = ball of ``radius``; femoral cartilage = the shell around it of ``thickness``."""
    return labelled(
        affine,
        shape,
        [(Label.FEMUR, ball(centre, radius)), (Label.FEMORAL_CARTILAGE, ball(centre, radius + thickness))],
    )


def ray_to_sphere(points: NDArray, normals: NDArray, centre: NDArray, radius: float) -> NDArray[np.float64]:
    """Distance from each point along its normal to a sphere that contains it (the exact normal thickness)."""
    offset = points - centre
    b = np.einsum("ij,ij->i", offset, normals)
    c = np.einsum("ij,ij->i", offset, offset) - radius**2
    return -b + np.sqrt(b * b - c)
