"""Acquisition grids and the hierarchical rasteriser that samples the knee model on them.

A :class:`SagittalGrid` is what a sagittal acquisition covers: axes (slice, row, column) as DICOM
displays them (ImageOrientationPatient [0,1,0,0,0,-1]: columns run posterior, rows run inferior,
slices run towards the patient's right), with its RAS affine.

:func:`rasterize` evaluates the model at every voxel centre, but coarse to fine: it evaluates block
centres first and fills a whole block from one evaluation when the model's clearance (a lower bound
on the distance to any boundary) exceeds the block's half-diagonal, which is exact, not approximate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.imaging.phantom.model import KneeModel, PointSample
from app.imaging.phantom.protocols import ProtocolSpec

#: Target block edges (mm) of the coarse levels, coarsest first.
_LEVEL_MM = (6.4, 1.6, 0.8)
#: Points per model evaluation (keeps the working set in cache).
_CHUNK = 65536


@dataclass(frozen=True)
class SagittalGrid:
    """Voxel centres of a sagittal acquisition: ``shape`` (slices, rows, columns) and the RAS affine."""

    shape: tuple[int, int, int]
    affine: NDArray[np.float64]

    @staticmethod
    def for_protocol(spec: ProtocolSpec, center_ras: NDArray[np.float64]) -> SagittalGrid:
        """The protocol's slab centred on ``center_ras``: slices along +x (R), rows down (-z), columns back (-y)."""
        affine = np.zeros((4, 4))
        affine[:3, 0] = [spec.slice_spacing_mm, 0.0, 0.0]
        affine[:3, 1] = [0.0, 0.0, -spec.pixel_mm]
        affine[:3, 2] = [0.0, -spec.pixel_mm, 0.0]
        affine[3, 3] = 1.0
        shape = (spec.slices, spec.matrix, spec.matrix)
        half = (np.array(shape) - 1) / 2.0
        affine[:3, 3] = center_ras - affine[:3, :3] @ half
        return SagittalGrid(shape, affine)

    @property
    def spacing_mm(self) -> NDArray[np.float64]:
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    def mirrored(self) -> SagittalGrid:
        """The same slab mirrored in the patient's x (a left knee's grid); slice k <-> slice n-1-k."""
        flip = np.diag([-1.0, 1.0, 1.0, 1.0])
        last = np.array([self.shape[0] - 1, 0.0, 0.0, 1.0])
        affine = self.affine.copy()
        affine[:3, 3] = (flip @ self.affine @ last)[:3]
        return SagittalGrid(self.shape, affine)

    def points(self, index: NDArray) -> NDArray[np.float64]:
        """RAS coordinates of (continuous) voxel indices, shape ``(..., 3)``."""
        return np.dot(index, self.affine[:3, :3].T) + self.affine[:3, 3]


@dataclass
class RasterSample:
    """Model values on a grid (arrays of the grid's shape)."""

    label: NDArray[np.uint8]
    tissue: NDArray[np.uint8]
    t2_ms: NDArray[np.float32]
    t1rho_ms: NDArray[np.float32]
    subregion: NDArray[np.uint8]


_FIELDS = ("label", "tissue", "t2_ms", "t1rho_ms", "subregion")


def _level_blocks(spacing: NDArray) -> list[NDArray[np.intp]]:
    """Block sizes (voxels per axis) of each level, each a multiple of the next, finest = 1."""
    blocks = [np.ones(3, dtype=int)]
    for edge in reversed(_LEVEL_MM):
        finer = blocks[0]
        block = finer * np.maximum(1, np.round(edge / (finer * spacing))).astype(int)
        if np.any(block > finer):
            blocks.insert(0, block)
    return blocks


def _evaluate(model: KneeModel, points: NDArray, clearance: bool) -> PointSample:
    """``model.evaluate`` in chunks."""
    parts = [model.evaluate(points[i : i + _CHUNK], clearance) for i in range(0, max(len(points), 1), _CHUNK)]
    merged = PointSample(*(np.concatenate([getattr(p, k) for p in parts]) for k in _FIELDS))
    if clearance:
        merged.clearance = np.concatenate([p.clearance for p in parts])  # type: ignore[misc]
    return merged


def rasterize(model: KneeModel, grid: SagittalGrid, slice_offset: float = 0.0) -> RasterSample:
    """Sample ``model`` at the voxel centres of ``grid`` (shifted by ``slice_offset`` voxels along the slice axis)."""
    to_knee = np.linalg.inv(model.pose.as_matrix()) @ grid.affine
    spacing = grid.spacing_mm
    levels = _level_blocks(spacing)
    padded = tuple(int(np.ceil(n / levels[0][i]) * levels[0][i]) for i, n in enumerate(grid.shape))
    result: dict[str, NDArray] = {}
    resolved = np.zeros(0, dtype=bool)  # at the current level: value already known
    values: dict[str, NDArray] = {}

    for level, block in enumerate(levels):
        counts = tuple(p // b for p, b in zip(padded, block, strict=True))
        if level == 0:
            todo = np.ones(counts, dtype=bool)
        else:
            ratio = levels[level - 1] // block
            todo = ~np.repeat(np.repeat(np.repeat(resolved, ratio[0], 0), ratio[1], 1), ratio[2], 2)
            values = {
                k: np.repeat(np.repeat(np.repeat(v, ratio[0], 0), ratio[1], 1), ratio[2], 2) for k, v in values.items()
            }
        index = np.argwhere(todo)
        centre = index * block + (block - 1) / 2.0
        centre[:, 0] += slice_offset
        knee = np.dot(centre, to_knee[:3, :3].T) + to_knee[:3, 3]
        last = level == len(levels) - 1
        sample = _evaluate(model, knee, clearance=not last)
        if level == 0:
            values = {k: np.zeros(counts, dtype=getattr(sample, k).dtype) for k in _FIELDS}
        for k in _FIELDS:
            values[k][tuple(index.T)] = getattr(sample, k)
        if not last:
            half_diagonal = 0.5 * float(np.linalg.norm((block - 1) * spacing)) + 1e-6
            uniform = np.zeros(counts, dtype=bool)
            uniform[tuple(index.T)] = sample.clearance > half_diagonal  # type: ignore[operator]
            resolved = uniform if level == 0 else (uniform | ~todo)
    sl = tuple(slice(0, n) for n in grid.shape)
    for k in _FIELDS:
        result[k] = values[k][sl]
    return RasterSample(**result)  # type: ignore[arg-type]


def rasterize_points(model: KneeModel, ras: NDArray[np.float64]) -> PointSample:
    """The model at arbitrary RAS points (right-canonical patient space)."""
    return model.evaluate(model.pose.to_local(ras))
