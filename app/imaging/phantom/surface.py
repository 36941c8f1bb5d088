"""Quadrature on bone surfaces: points, outward normals and exact area elements.

The ground-truth mean thickness of a plate is an area integral over the bone-cartilage interface.
:func:`slab_surface` parametrises a :class:`RoundedSlab`'s surface exactly (rim band, two rounded
edges, two flat faces) and gives each midpoint sample the area of its parameter cell, so sums over
samples converge to the integrals as the spacing shrinks (midpoint rule). :func:`bone_surface` keeps,
for a union, the samples that are not buried inside another part: exactly the union's surface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.imaging.phantom.frames import Bone
from app.imaging.phantom.shapes import Points, RoundedSlab


@dataclass(frozen=True)
class SurfaceSamples:
    """Surface samples in the owning bone's coordinates."""

    point: Points
    normal: Points
    area_mm2: NDArray[np.float64]
    part: NDArray[np.intp]

    def select(self, mask: NDArray[np.bool_]) -> SurfaceSamples:
        return SurfaceSamples(self.point[mask], self.normal[mask], self.area_mm2[mask], self.part[mask])

    @staticmethod
    def concatenate(items: list[SurfaceSamples]) -> SurfaceSamples:
        return SurfaceSamples(
            np.concatenate([s.point for s in items]),
            np.concatenate([s.normal for s in items]),
            np.concatenate([s.area_mm2 for s in items]),
            np.concatenate([s.part for s in items]),
        )


def _midpoints(start: float, stop: float, count: int) -> tuple[NDArray[np.float64], float]:
    step = (stop - start) / count
    return start + step * (np.arange(count) + 0.5), step


def _slab_patches(slab: RoundedSlab, spacing_mm: float) -> list[tuple[Points, Points, NDArray]]:
    """(points, normals, areas) of each smooth patch of a slab's surface, in slab coordinates."""
    a, b, h, r = slab.a, slab.b, slab.half_length, slab.radius
    perimeter = np.pi * (3 * (a + b) - np.sqrt((3 * a + b) * (a + 3 * b)))  # Ramanujan
    theta, d_theta = _midpoints(0.0, 2 * np.pi, max(int(np.ceil(perimeter / spacing_mm)), 16))
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    speed = np.hypot(a * sin_t, b * cos_t)
    n_e = np.stack([b * cos_t, a * sin_t], axis=1) / speed[:, None]
    curvature = a * b / speed**3
    ellipse = np.stack([a * cos_t, b * sin_t], axis=1)
    patches: list[tuple[Points, Points, NDArray]] = []

    if h > 0:  # rim band: the ellipse offset by r, extruded along w
        w, d_w = _midpoints(-h, h, max(int(np.ceil(2 * h / spacing_mm)), 1))
        tt, ww = np.meshgrid(np.arange(len(theta)), w, indexing="ij")
        tt, ww = tt.ravel(), ww.ravel()
        normal = np.column_stack([n_e[tt], np.zeros(len(tt))])
        point = np.column_stack([ellipse[tt] + r * n_e[tt], ww])
        patches.append((point, normal, (1 + r * curvature[tt]) * speed[tt] * d_theta * d_w))
    if r > 0:  # rounded edges: quarter tubes around the ellipse at w = +-h
        phi, d_phi = _midpoints(0.0, np.pi / 2, max(int(np.ceil(np.pi / 2 * r / spacing_mm)), 2))
        tt, pp = np.meshgrid(np.arange(len(theta)), phi, indexing="ij")
        tt, pp = tt.ravel(), pp.ravel()
        for sign in (1.0, -1.0):
            normal = np.column_stack([np.cos(pp)[:, None] * n_e[tt], sign * np.sin(pp)])
            point = np.column_stack([ellipse[tt], np.full(len(tt), sign * h)]) + r * normal
            patches.append((point, normal, r * (1 + r * np.cos(pp) * curvature[tt]) * speed[tt] * d_theta * d_phi))
    # flat faces: the solid ellipse at w = +-(h + r), in polar coordinates (u, v) = (a rho cos, b rho sin)
    rho, d_rho = _midpoints(0.0, 1.0, max(int(np.ceil(max(a, b) / spacing_mm)), 2))
    tt, rr = np.meshgrid(np.arange(len(theta)), rho, indexing="ij")
    tt, rr = tt.ravel(), rr.ravel()
    for sign in (1.0, -1.0):
        point = np.column_stack([a * rr * cos_t[tt], b * rr * sin_t[tt], np.full(len(tt), sign * (h + r))])
        normal = np.tile([0.0, 0.0, sign], (len(tt), 1))
        patches.append((point, normal, a * b * rr * d_rho * d_theta))
    return patches


def _to_parent(slab: RoundedSlab, patch: tuple[Points, Points, NDArray], part: int) -> SurfaceSamples:
    point, normal, area = patch
    return SurfaceSamples(
        np.dot(point, slab.axes.T) + slab.center, np.dot(normal, slab.axes.T), area, np.full(len(area), part)
    )


def slab_surface(slab: RoundedSlab, spacing_mm: float, part: int = 0) -> SurfaceSamples:
    """Midpoint samples of a rounded slab's surface, about ``spacing_mm`` apart."""
    return SurfaceSamples.concatenate([_to_parent(slab, p, part) for p in _slab_patches(slab, spacing_mm)])


#: Spacing of the first look at each patch when only some samples are wanted.
_SCOUT_SPACING_MM = 1.5


def bone_surface(
    bone: Bone,
    parts: frozenset[int] | set[int],
    spacing_mm: float,
    keep: Callable[[SurfaceSamples], NDArray[np.bool_]] | None = None,
) -> SurfaceSamples:
    """Samples of the surface of ``bone``'s union that belongs to the given (slab) parts.

    ``keep`` pre-selects samples (e.g. those under cartilage) before the costlier test against the
    other parts.
    """
    collected = []
    for index in sorted(parts):
        slab = bone.shape.parts[index]
        if not isinstance(slab, RoundedSlab):
            raise TypeError(f"part {index} of {bone.label.name} is not a RoundedSlab; cartilage needs slabs")
        if keep is None:
            samples = slab_surface(slab, spacing_mm, index)
        else:  # sample finely only the patches a coarse look finds wanted samples on
            scouts = [_to_parent(slab, p, index) for p in _slab_patches(slab, _SCOUT_SPACING_MM)]
            fine = _slab_patches(slab, spacing_mm)
            wanted = [_to_parent(slab, f, index) for f, scout in zip(fine, scouts, strict=True) if keep(scout).any()]
            if not wanted:
                continue
            samples = SurfaceSamples.concatenate(wanted)
            samples = samples.select(keep(samples))
        exposed = np.ones(len(samples.area_mm2), dtype=bool)
        for other_index, other in enumerate(bone.shape.parts):
            if other_index != index:
                exposed &= other.distance(samples.point) >= -1e-9
        collected.append(samples.select(exposed))
    return SurfaceSamples.concatenate(collected)
