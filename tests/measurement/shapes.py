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


def capsule_distance(xyz: NDArray, start, end, radius: float) -> NDArray[np.float64]:
    """Signed distance to the capsule of ``radius`` around the segment ``start``-``end``."""
    start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    axis = end - start
    t = np.clip((xyz - start) @ axis / (axis @ axis), 0.0, 1.0)
    return np.linalg.norm(xyz - start - t[..., None] * axis, axis=-1) - radius


def box_distance(xyz: NDArray, low, high) -> NDArray[np.float64]:
    """Signed distance to an axis-aligned box (exact outside)."""
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    centre, half = (low + high) / 2, (high - low) / 2
    q = np.abs(xyz - centre) - half
    return np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(q.max(axis=-1), 0.0)


#: The toy knee (right knee in RAS: medial is -x). Every number the tests check comes from here.
TOY = {
    "condyle_x": 20.0,  # condyle axes at x = -20 (medial) and +20 (lateral)
    "condyle_radius": 12.0,
    "condyle_y": (-10.0, 15.0),  # condyle axis from y = -10 to 15: posterior ends at y = -22
    "notch_anterior_y": 20.0,  # the trochlear groove's lowest point (a cylinder along x), y of the notch's end
    "cartilage_mm": 2.0,
    "plateau_z": -16.0,  # top of the tibia
    "tibia_half_width": 35.0,
    "medial_meniscus_outer_x": 40.0,  # |x| of the medial meniscus' outer edge: 5 mm beyond the plateau
    "lateral_meniscus_outer_x": 33.0,  # 2 mm inside the plateau's edge
    "meniscus_height": 3.5,
}


def toy_knee(affine: NDArray[np.float64], shape: tuple[int, ...], side: str = "right") -> Volume:
    """A blocky knee with exactly known landmarks (see :data:`TOY`); ``side="left"`` mirrors it in x."""
    xyz = voxel_centres(affine, shape)
    if side == "left":
        xyz = xyz * np.array([-1.0, 1.0, 1.0])
    cx, r, (y0, y1) = TOY["condyle_x"], TOY["condyle_radius"], TOY["condyle_y"]
    femur = np.minimum.reduce(
        [
            capsule_distance(xyz, (-cx, y0, 0.0), (-cx, y1, 0.0), r),
            capsule_distance(xyz, (cx, y0, 3.0), (cx, y1, 3.0), r),
            capsule_distance(xyz, (-30, TOY["notch_anterior_y"], 4.0), (30, TOY["notch_anterior_y"], 4.0), 8.0),
            box_distance(xyz, (-30, 12, 4), (30, 28, 40)),  # trochlea above the groove
            box_distance(xyz, (-15, -10, 10), (15, 30, 60)),  # shaft; its underside is the notch roof
        ]
    )
    half, top = TOY["tibia_half_width"], TOY["plateau_z"]
    tibia = box_distance(xyz, (-half, -25, -60), (half, 25, top))
    t = TOY["cartilage_mm"]
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    labels = np.zeros(shape, dtype=np.int16)
    not_in_notch = (np.abs(x) > 8) | (y > TOY["notch_anterior_y"] + 2)
    labels[(femur > 0) & (femur < t) & (z < 6) & (np.abs(x) < 32) & not_in_notch] = Label.FEMORAL_CARTILAGE
    plate = (tibia > 0) & (z < top + t) & (np.abs(y) < 20)
    labels[plate & (x < -6) & (x > -32)] = Label.MEDIAL_TIBIAL_CARTILAGE
    labels[plate & (x > 6) & (x < 32)] = Label.LATERAL_TIBIAL_CARTILAGE
    meniscus = (np.abs(y) < 5) & (z > top + t) & (z < top + t + TOY["meniscus_height"])
    labels[meniscus & (x < -26) & (x > -TOY["medial_meniscus_outer_x"])] = Label.MEDIAL_MENISCUS
    labels[meniscus & (x > 26) & (x < TOY["lateral_meniscus_outer_x"])] = Label.LATERAL_MENISCUS
    labels[femur <= 0] = Label.FEMUR
    labels[tibia <= 0] = Label.TIBIA
    return Volume(labels, affine)
