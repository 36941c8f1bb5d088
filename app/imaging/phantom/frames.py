"""Rigid frames and the bone model: a union of exact shapes placed in the knee frame.

Coordinates, all in mm:

- **knee frame** (right-canonical): +m towards the knee's lateral side, +a anterior, +s superior; the
  origin is the centre of the tibial plateau's top. For a right knee it is parallel to RAS (lateral =
  patient's right); a left knee is generated as a right knee and mirrored in the patient's x.
- **bone frames**: each bone is modelled in its own anatomical frame (femur: origin in the notch at the
  level of the distal condyles; tibia: origin at the plateau top; patella: its centre), placed in the
  knee frame by a rigid transform, so pose changes never distort a bone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.imaging.phantom.shapes import Points, SurfaceQuery, Union, extent_of, near_box, transform_extent
from schemas.labels import Label

E_M = np.array([1.0, 0.0, 0.0])
E_A = np.array([0.0, 1.0, 0.0])
E_S = np.array([0.0, 0.0, 1.0])


def axes(u: NDArray, v: NDArray, w: NDArray) -> NDArray[np.float64]:
    """A 3x3 matrix with the (unit) local axes u, v, w as columns."""
    return np.stack([u, v, w], axis=1).astype(np.float64)


def band_axes(direction: NDArray, across: NDArray) -> NDArray[np.float64]:
    """Axes for a slab extruded along ``direction``, its long cross-section axis as close to ``across``."""
    w = direction / np.linalg.norm(direction)
    u = across - (across @ w) * w
    u /= np.linalg.norm(u)
    return axes(u, np.cross(w, u), w)


@dataclass(frozen=True)
class RigidFrame:
    """Maps local coordinates to parent coordinates: ``parent = rotation @ local + origin``."""

    rotation: NDArray[np.float64]
    origin: NDArray[np.float64]

    @staticmethod
    def identity() -> RigidFrame:
        return RigidFrame(np.eye(3), np.zeros(3))

    def to_local(self, points: Points) -> Points:
        return np.dot(points - self.origin, self.rotation)

    def to_parent(self, points: Points) -> Points:
        return np.dot(points, self.rotation.T) + self.origin

    def vectors_to_parent(self, vectors: Points) -> Points:
        return np.dot(vectors, self.rotation.T)

    def vectors_to_local(self, vectors: Points) -> Points:
        return np.dot(vectors, self.rotation)

    def then(self, outer: RigidFrame) -> RigidFrame:
        """This frame followed by ``outer`` (local -> self's parent -> outer's parent)."""
        return RigidFrame(outer.rotation @ self.rotation, outer.rotation @ self.origin + outer.origin)

    def as_matrix(self) -> NDArray[np.float64]:
        matrix = np.eye(4)
        matrix[:3, :3], matrix[:3, 3] = self.rotation, self.origin
        return matrix


@dataclass(frozen=True)
class Bone:
    """A bone: its label, its shape in its own frame, where it sits, and which parts carry cartilage."""

    label: Label
    shape: Union
    frame: RigidFrame  # bone -> knee
    articular: frozenset[int]

    def query(self, knee_points: Points, margin: float) -> tuple[SurfaceQuery, NDArray[np.intp]]:
        """Closest-point query in BONE coordinates for knee-frame points.

        Parts whose bounding box is farther than ``margin`` from a point are not evaluated for it; such
        points report ``inf`` distance and part ``-1`` when no part is near.
        """
        best, which, _ = self.query_articular(knee_points, margin)
        return best, which

    def query_articular(
        self, knee_points: Points, margin: float, knee_extent: tuple[NDArray, NDArray] | None = None
    ) -> tuple[SurfaceQuery, NDArray[np.intp], NDArray[np.float64]]:
        """:meth:`query`, plus the distance to the nearest articular part (``inf`` when none is near).

        ``knee_extent`` (a box holding the points, in the knee frame) saves recomputing it.
        """
        local = self.frame.to_local(knee_points)
        n = len(local)
        best = SurfaceQuery(np.full(n, np.inf), np.zeros((n, 3)), np.zeros((n, 3)))
        which = np.full(n, -1, dtype=np.intp)
        articular = np.full(n, np.inf)
        if knee_extent is not None:
            extent = transform_extent(knee_extent, self.frame.rotation.T, -self.frame.rotation.T @ self.frame.origin)
        else:
            extent = extent_of(local) if n else None
        for index, part in enumerate(self.shape.parts):
            low, high = part.bounds()
            idx = near_box(local, low - margin, high + margin, extent)
            if idx is None:
                continue
            q = part.query(local[idx])
            closer = q.distance < best.distance[idx]
            sel = idx[closer]
            best.distance[sel] = q.distance[closer]
            best.point[sel] = q.point[closer]
            best.normal[sel] = q.normal[closer]
            which[sel] = index
            if index in self.articular:
                articular[idx] = np.minimum(articular[idx], q.distance)
        return best, which, articular

    def distance(self, knee_points: Points, margin: float = np.inf) -> NDArray[np.float64]:
        """Signed distance to the bone surface (exact outside) for knee-frame points."""
        return self.shape.distance(self.frame.to_local(knee_points), margin)

    def knee_bounds(self, margin: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Axis-aligned box in the knee frame that holds the bone dilated by ``margin``."""
        low, high = self.shape.bounds()
        corners = np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])])
        knee = self.frame.to_parent(corners)
        return knee.min(axis=0) - margin, knee.max(axis=0) + margin
