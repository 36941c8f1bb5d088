"""Slice geometry: orientation, geometric sort order, slice spacing and the RAS affine of a stack.

Slices are ordered by the projection of ImagePositionPatient on the slice normal (row x column
direction of ImageOrientationPatient), never by file name or InstanceNumber. The spacing comes from
those projections, not from SliceThickness or SpacingBetweenSlices (which scanners fill with the
nominal, not the actual, value). A stack is refused when the projections reveal a missing slice,
a duplicated one, or images that are not stacked along the normal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from app.imaging.acquisition import Orientation
from app.imaging.errors import LoaderError, name_files
from schemas.volume import LPS_TO_RAS

#: Cosines may differ by this much and still count as one orientation.
DIRECTION_TOLERANCE = 1e-3
#: Gaps between slices may differ by this fraction of the spacing (plus 0.01 mm).
SPACING_TOLERANCE = 0.05
#: A slice plane counts as sagittal / coronal / axial when its normal is within ~37 degrees of the axis.
_PLANE_COSINE = 0.8


def directions(ds: Dataset) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Unit vectors (LPS) along a row (column index), down a column (row index), and the slice normal."""
    iop = np.asarray([float(v) for v in ds.ImageOrientationPatient], dtype=np.float64)
    row, col = iop[:3] / np.linalg.norm(iop[:3]), iop[3:] / np.linalg.norm(iop[3:])
    normal = np.cross(row, col)
    return row, col, normal / np.linalg.norm(normal)


def classify_orientation(normal_lps: NDArray[np.float64]) -> Orientation:
    """sagittal / coronal / axial by the dominant axis of the slice normal, oblique when none dominates."""
    axis = int(np.argmax(np.abs(normal_lps)))
    if abs(normal_lps[axis]) < _PLANE_COSINE:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]  # type: ignore[return-value]


@dataclass(frozen=True)
class Stack:
    """Slices of one time point in geometric order, with the stack's RAS affine."""

    order: list[int]  # indices into the input, sorted along the normal
    positions_mm: NDArray[np.float64]  # projections on the normal, sorted
    affine: NDArray[np.float64]  # (slice, row, column) -> RAS mm


def stack(datasets: Sequence[Dataset], origins: Sequence[str], what: str) -> Stack:
    """Sort one time point's slices and build the affine; ``what`` names the stack in errors."""
    row, col, normal = directions(datasets[0])
    ipp = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in datasets], dtype=np.float64)
    along = ipp @ normal
    order = [int(i) for i in np.argsort(along, kind="stable")]
    positions = along[order]
    pixel = [float(v) for v in datasets[0].PixelSpacing]  # (between rows, between columns)

    if len(order) > 1:
        gaps = np.diff(positions)
        spacing = float(np.median(gaps))
        duplicated = np.flatnonzero(gaps < max(0.01, SPACING_TOLERANCE * spacing))
        if duplicated.size or spacing <= 0:
            i = int(duplicated[0]) if duplicated.size else 0
            files = [origins[order[i]], origins[order[i + 1]]]
            raise LoaderError(
                f"{what}: duplicated slice at position {positions[i]:.2f} mm along the slice normal "
                f"({name_files(files)})"
            )
        irregular = np.flatnonzero(np.abs(gaps - spacing) > SPACING_TOLERANCE * spacing + 0.01)
        if irregular.size:
            i = int(irregular[0])
            files = [origins[order[i]], origins[order[i + 1]]]
            kind = "missing slice" if gaps[i] > spacing else "irregular slice spacing"
            raise LoaderError(
                f"{what}: {kind}: gap of {gaps[i]:.2f} mm between slices at {positions[i]:.2f} and "
                f"{positions[i + 1]:.2f} mm where the spacing is {spacing:.2f} mm ({name_files(files)})"
            )
        in_plane = (ipp[order] - ipp[order[0]]) - np.outer(positions - positions[0], normal)
        shear = float(np.abs(in_plane).max())
        if shear > 0.05 * min(pixel) + 0.01:
            raise LoaderError(
                f"{what}: slices are not stacked along their normal (in-plane offsets up to {shear:.2f} mm); "
                f"sheared or tilted stacks are not supported ({name_files(list(origins))})"
            )
    else:
        ds = datasets[0]
        spacing = float(ds.get("SpacingBetweenSlices") or ds.get("SliceThickness") or 1.0)

    affine_lps = np.eye(4)
    affine_lps[:3, 0] = normal * spacing
    affine_lps[:3, 1] = col * pixel[0]
    affine_lps[:3, 2] = row * pixel[1]
    affine_lps[:3, 3] = ipp[order[0]]
    return Stack(order, positions, LPS_TO_RAS @ affine_lps)


def same_orientation(a: Dataset, b: Dataset) -> bool:
    """Whether two images share ImageOrientationPatient (within :data:`DIRECTION_TOLERANCE`)."""
    ia = np.asarray([float(v) for v in a.ImageOrientationPatient])
    ib = np.asarray([float(v) for v in b.ImageOrientationPatient])
    return bool(np.abs(ia - ib).max() <= DIRECTION_TOLERANCE)
