"""Cartilage thickness over the total subchondral bone area (Eckstein's ThCtAB), in 3D and in mm.

For one cartilage plate on its bone:

1. the bone surface (the boundary of the bone label) and the articular surface (the boundary of bone +
   cartilage where it is not bone, so it includes the plate's edges and the walls of defects, as in
   Eckstein's segmentations) are found to sub-voxel accuracy (:mod:`app.measurement.surfaces`);
2. a bone surface point is *covered* when cartilage lies directly outside it, *denuded* when it is not
   covered but enclosed by covered bone on every side within :data:`DENUDED_SEARCH_MM` and facing the
   same way (a full-thickness defect inside the plate); covered + denuded make the total subchondral
   bone area tAB;
3. the thickness at a covered point is measured from it to the articular surface, by one of two
   methods: ``"normal"`` (default), along the bone's outward normal, the chord through the cartilage
   (how a cartilage layer of known thickness is laid on a bone, and what pymskt reports);
   ``"nearest"``, the distance to the nearest articular surface point (the Euclidean distance
   transformation of Stammberger et al. 1999), refined to the articular surface's tangent plane so
   that the spacing of its sample points does not add to it. Both are ThCtAB in the sense of the
   nomenclature (Eckstein et al. 2006), which leaves the distance to the method; where the thickness
   varies along the plate the normal chord is the longer of the two (by ~t s^2 / 2 for a slope s).
   Denuded points have thickness 0.

Everything happens in patient mm through the affine, so anisotropic voxels and oblique grids need no
special case. Means over the points are area-weighted (each point carries the area it stands for).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import cKDTree

from app.measurement.geometry import bounding_box, crop_affine, linear
from app.measurement.surfaces import (
    BOUNDARY_LEVEL,
    SurfacePoints,
    level_crossings,
    margin_voxels,
    sample,
    smoothed_indicator,
    smoothed_value,
)
from schemas.volume import Volume

#: A bone point is covered when the lightly smoothed cartilage indicator half a voxel outside it exceeds this.
COVERED_LEVEL = 0.25
#: Width (voxels) of the light smoothing used only for the covered / articular decisions.
COVERAGE_SIGMA_VOXELS = 0.5
#: Radius (mm) within which a bare bone point must see covered bone in every direction to be denuded.
DENUDED_SEARCH_MM = 10.0
#: Number of directions (sectors around the surface normal) that must all hold covered bone.
DENUDED_SECTORS = 8
#: Largest angle between a denuded point's normal and the surrounding covered bone's mean normal.
DENUDED_MAX_ANGLE_DEG = 45.0
#: Cell sizes (mm) to which covered and bare points are thinned for the enclosure test (speed only).
_ANCHOR_CELL_MM = 2.0
#: Rays stop here: no articular cartilage is thicker (mm).
MAX_THICKNESS_MM = 10.0
#: Ray-marching step, in units of the finest voxel dimension.
_RAY_STEP_VOXELS = 0.5
_CANDIDATE_CELL_MM = 1.0


@dataclass(frozen=True)
class PlateThickness:
    """Thickness of one cartilage plate at every point of its total subchondral bone area (tAB)."""

    bone_surface: SurfacePoints  # the tAB points, on the bone surface
    thickness_mm: NDArray[np.float64]  # per point; 0 where denuded
    denuded: NDArray[np.bool_]  # per point

    @property
    def area_mm2(self) -> float:
        return float(self.bone_surface.area_mm2.sum())


ThicknessMethod = Literal["normal", "nearest"]


def plate_thickness(
    labels: Volume, cartilage: int, bone: int, method: ThicknessMethod = "normal"
) -> PlateThickness | None:
    """ThCtAB of cartilage label ``cartilage`` resting on bone label ``bone``; None when either is absent."""
    cartilage_mask = labels.array == cartilage
    box = bounding_box(cartilage_mask, margin_voxels(labels.spacing_mm))
    if box is None:
        return None
    crop = labels.array[box.slices]
    bone_mask = crop == bone
    if not bone_mask.any():
        return None
    cartilage_mask = cartilage_mask[box.slices]
    affine = crop_affine(labels.affine, box)
    bone_surface = level_crossings(smoothed_indicator(bone_mask, labels.spacing_mm), affine)
    # Cartilage just outside a bone point covers it; cartilage just inside an outer point makes it articular.
    cartilage_field = ndimage.gaussian_filter(cartilage_mask.astype(np.float32), COVERAGE_SIGMA_VOXELS)
    covered = sample(cartilage_field, _half_voxel_step(bone_surface, affine, +1)) >= COVERED_LEVEL
    if not covered.any():
        return None
    if method == "normal":
        union = smoothed_value(bone_mask | cartilage_mask, labels.spacing_mm)  # no normals needed
        thickness = _along_normal(union, bone_surface.subset(covered), affine)
    else:
        outer = level_crossings(smoothed_indicator(bone_mask | cartilage_mask, labels.spacing_mm), affine)
        articular = outer.subset(sample(cartilage_field, _half_voxel_step(outer, affine, -1)) >= COVERED_LEVEL)
        spacing = float(max(labels.spacing_mm))
        thickness = _distance_to_surface(bone_surface.xyz[covered], articular, spacing)
    denuded = np.zeros(len(bone_surface), dtype=bool)
    bare = np.flatnonzero(~covered)
    denuded[bare] = _enclosed(bone_surface.xyz[bare], bone_surface.normal[bare], bone_surface.subset(covered))
    in_tab = covered | denuded
    values = np.zeros(len(bone_surface))
    values[covered] = thickness
    return PlateThickness(bone_surface.subset(in_tab), values[in_tab], denuded[in_tab])


def _half_voxel_step(surface: SurfacePoints, affine: NDArray[np.float64], sign: int) -> NDArray[np.float64]:
    """Voxel indices of the surface points moved half a voxel along (+1) or against (-1) their normals.

    "Half a voxel" is half the voxel's extent along the normal, so the step lands in the next voxel of
    the label map wherever the smooth surface crosses the voxelised one.
    """
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    normal_axes = linear(surface.normal, (affine[:3, :3] / spacing).T)  # components along the array axes
    extent = (np.abs(normal_axes) * spacing).sum(axis=1)
    return surface.ijk + sign * 0.5 * extent[:, None] * normal_axes / spacing


def _along_normal(union: NDArray[np.float32], start: SurfacePoints, affine: NDArray[np.float64]) -> NDArray:
    """Distance from each bone point along its outward normal to where bone + cartilage ends.

    The ray is marched through the smoothed bone + cartilage indicator in steps of a fraction of the
    finest voxel, and the 0.5 crossing is interpolated linearly between the bracketing steps (the level
    is the profile's inflection point, so linear interpolation is accurate to third order).
    """
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    direction = linear(start.normal, (affine[:3, :3] / spacing**2).T)  # index units per mm along the normal
    step = _RAY_STEP_VOXELS * float(spacing.min())
    thickness = np.full(len(start), np.nan)
    previous_value = sample(union, start.ijk)
    active = np.arange(len(start))
    for k in range(1, int(np.ceil(MAX_THICKNESS_MM / step)) + 1):
        distance = k * step
        value = sample(union, start.ijk[active] + distance * direction[active])
        crossed = value < BOUNDARY_LEVEL
        if crossed.any():
            before = previous_value[crossed]
            fraction = (before - BOUNDARY_LEVEL) / np.maximum(before - value[crossed], 1e-12)
            thickness[active[crossed]] = distance - step + np.clip(fraction, 0, 1) * step
        previous_value = value[~crossed]
        active = active[~crossed]
        if not len(active):
            break
    thickness[active] = MAX_THICKNESS_MM
    return thickness


def _distance_to_surface(points: NDArray[np.float64], surface: SurfacePoints, sample_spacing: float) -> NDArray:
    """Distance from each point to the surface sampled by ``surface``.

    The nearest sample overestimates the distance by up to ``spacing^2 / (2 d)`` when the foot of the
    perpendicular falls between samples; the distance to the nearest sample's tangent plane does not,
    but may underestimate near edges of the surface. The tangent-plane distance is therefore accepted
    only within the range the sampling error allows.
    """
    tree = cKDTree(surface.xyz, balanced_tree=False, compact_nodes=False)
    distance, nearest = tree.query(points, workers=-1)
    to_plane = np.abs(np.einsum("ij,ij->i", points - surface.xyz[nearest], surface.normal[nearest]))
    lowest = np.sqrt(np.maximum(distance**2 - sample_spacing**2, 0.0))
    return np.clip(to_plane, lowest, distance)


def _enclosed(
    candidates: NDArray[np.float64], normals: NDArray[np.float64], covered: SurfacePoints
) -> NDArray[np.bool_]:
    """Which bare bone points lie inside a defect of the plate.

    Inside means: covered bone in every direction around the point (all :data:`DENUDED_SECTORS`
    sectors of its tangent plane within :data:`DENUDED_SEARCH_MM`), and the bare bone facing the same
    way as that covered bone (within :data:`DENUDED_MAX_ANGLE_DEG`): the floor of a defect continues the
    plate's bone surface, whereas bare bone that faces elsewhere (the wall of a crevice between two
    parts of a bone, bone beside the plate) is not part of the plate. Decided per 1 mm cell of bare
    points against covered points thinned to 2 mm cells: the answer does not change at that scale and
    the work drops by two orders of magnitude.
    """
    if not len(candidates) or not len(covered):
        return np.zeros(len(candidates), dtype=bool)
    anchors, anchor_owner = _cell_centres(covered.xyz, _ANCHOR_CELL_MM)
    anchor_normals = _unit(_cell_sums(covered.normal, anchor_owner, len(anchors)))
    centres, owner = _cell_centres(candidates, _CANDIDATE_CELL_MM)
    cell_normals = _unit(_cell_sums(normals, owner, len(centres)))
    tree = cKDTree(anchors)
    near = np.flatnonzero(tree.query(centres, distance_upper_bound=DENUDED_SEARCH_MM)[0] < np.inf)
    enclosed = np.zeros(len(centres), dtype=bool)
    if len(near):
        neighbours = tree.query_ball_point(centres[near], DENUDED_SEARCH_MM)
        counts = np.fromiter((len(n) for n in neighbours), dtype=np.int64, count=len(near))
        pair_owner = np.repeat(np.arange(len(near)), counts)
        anchor_index = np.concatenate(neighbours).astype(np.int64)
        offsets = anchors[anchor_index] - centres[near][pair_owner]
        n = cell_normals[near]
        helper = np.where(np.abs(n[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
        e1 = _unit(np.cross(n, helper))
        e2 = np.cross(n, e1)  # (e1, e2): a basis of each cell's tangent plane
        angle = np.arctan2(
            np.einsum("ij,ij->i", offsets, e2[pair_owner]), np.einsum("ij,ij->i", offsets, e1[pair_owner])
        )
        sector = ((angle + np.pi) / (2 * np.pi) * DENUDED_SECTORS).astype(np.int64) % DENUDED_SECTORS
        seen = np.zeros((len(near), DENUDED_SECTORS), dtype=bool)
        seen[pair_owner, sector] = True
        around = _unit(_cell_sums(anchor_normals[anchor_index], pair_owner, len(near)))
        aligned = np.einsum("ij,ij->i", around, n) >= np.cos(np.radians(DENUDED_MAX_ANGLE_DEG))
        enclosed[near] = seen.all(axis=1) & aligned
    return enclosed[owner]


def _unit(vectors: NDArray[np.float64]) -> NDArray[np.float64]:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _cell_sums(values: NDArray[np.float64], owner: NDArray[np.int64], count: int) -> NDArray[np.float64]:
    return np.stack([np.bincount(owner, values[:, d], minlength=count) for d in range(values.shape[1])], axis=1)


def _cell_centres(points: NDArray[np.float64], cell_mm: float) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Mean position of the points in each occupied cubic cell, and each point's cell."""
    cells = np.floor(points / cell_mm).astype(np.int64)
    cells -= cells.min(axis=0)
    extent = cells.max(axis=0) + 1
    keys = (cells[:, 0] * extent[1] + cells[:, 1]) * extent[2] + cells[:, 2]
    _, owner = np.unique(keys, return_inverse=True)
    counts = np.bincount(owner)
    return _cell_sums(points, owner, len(counts)) / counts[:, None], owner
