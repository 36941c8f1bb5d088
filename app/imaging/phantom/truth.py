"""Exact ground truth of a phantom: what ``truth.json`` and ``thickness_truth.nii.gz`` say.

**Thickness** (``thickness_mm``): for each Eckstein plate (definitions in ``cartilage.py``), the mean of
the analytic thickness ``t(p)`` over the bone-cartilage interface, weighted by area, with denuded areas
(inside full-thickness defects) counting 0 mm. It is a surface integral computed by midpoint
quadrature on the exact parametrisation of the bone surfaces (``surface.py``, 0.25 mm spacing), not by
counting voxels, so it does not depend on any image grid. ``interface_area_mm2`` and
``denuded_area_pct`` come from the same integral.

**Volumes** (``volume_mm3``): per label, inside the morphology series' field of view. Voxels of the
morphology grid whose six neighbours carry the same label count whole; voxels at a boundary that
involves the patella, fibula, cartilage, menisci, fluid, lesions or nerves are re-sampled at 2 x 2 x 2
points, and on grids coarser than 1 mm femur and tibia boundaries too (so that cartilage thinner than
a voxel at the plate margins is found).
Label-map voxel counts converge to these values as the grid is refined; the values themselves agree
within 0.3 % between 1.4 x 1.4 x 2.8 mm and 0.7 x 0.7 x 1.4 mm grids of the same field of view.

**Relaxation** (``t2_ms``, ``t1rho_ms``): the volume-weighted mean of the true T2 / T1rho of each
plate's cartilage, from the same samples.

**Thickness map** (``thickness_truth.nii.gz``): on the morphology grid, bone voxels of femur, tibia and
patella whose centre lies within one voxel (the largest spacing) under the bone-cartilage interface
hold ``t(p)`` at their closest surface point ``p`` (0 where denuded); every other voxel is NaN.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field
from scipy.ndimage import binary_erosion

from app.imaging.phantom.cartilage import PLATES
from app.imaging.phantom.model import KneeModel
from app.imaging.phantom.protocols import ProtocolSpec
from app.imaging.phantom.raster import RasterSample, SagittalGrid
from app.imaging.phantom.surface import bone_surface
from app.imaging.phantom.tissues import Tissue
from schemas.labels import Label

#: Surface quadrature spacing (mm) for thickness integrals.
SURFACE_SPACING_MM = 0.25
#: Sub-samples per axis in boundary voxels for volumes and relaxation means.
SUPERSAMPLING = 2
#: Labels whose boundary voxels are supersampled (small structures, where partial volume matters).
_FINE_LABELS = (
    Label.PATELLA,
    Label.FIBULA,
    Label.FEMORAL_CARTILAGE,
    Label.MEDIAL_TIBIAL_CARTILAGE,
    Label.LATERAL_TIBIAL_CARTILAGE,
    Label.PATELLAR_CARTILAGE,
    Label.MEDIAL_MENISCUS,
    Label.LATERAL_MENISCUS,
    Label.JOINT_FLUID,
    Label.BONE_MARROW_LESION,
    Label.OSTEOPHYTE,
    Label.NERVE,
)
#: On grids coarser than this (mm), femur and tibia boundaries are supersampled too: cartilage thinner
#: than a voxel at the plate margins can hide between voxel centres there.
COARSE_GRID_MM = 1.0


class PhantomTruth(BaseModel):
    """``truth.json``: the exact answers for one phantom study (see the module docstring)."""

    schema_version: Literal["1"] = "1"
    seed: int
    side: Literal["left", "right"]
    grade: int = Field(ge=0, le=4)
    protocols: list[ProtocolSpec]
    morphology_protocol: str = Field(description="the protocol whose grid labels.nii.gz shares")
    study_instance_uid: str
    thickness_mm: dict[str, float] = Field(description="area-weighted mean cartilage thickness per plate")
    interface_area_mm2: dict[str, float] = Field(description="bone-cartilage interface area per plate")
    denuded_area_pct: dict[str, float] = Field(description="share of the interface with no cartilage")
    volume_mm3: dict[str, float] = Field(description="per label name, within the morphology field of view")
    t2_ms: dict[str, float] = Field(description="volume-weighted mean cartilage T2 per plate")
    t1rho_ms: dict[str, float] = Field(description="volume-weighted mean cartilage T1rho per plate")
    findings: list[str]
    femur_frame: list[list[float]] = Field(description="4x4: femur coordinates (mm) -> patient RAS (mm)")
    landmarks_mm: dict[str, float] = Field(description="Eckstein landmarks in femur coordinates")
    size_factor: float


def surface_truth(model: KneeModel) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """(mean thickness, interface area, denuded %) per plate, by surface quadrature."""
    weighted: dict[str, float] = {}
    area: dict[str, float] = {}
    denuded: dict[str, float] = {}
    for articulation in model.bones.articulations:
        model_c = articulation.cartilage

        def covered(samples, model_c=model_c):
            return model_c.taper(samples.point, samples.normal, samples.part) > 0

        surface = bone_surface(articulation.bone, articulation.bone.articular, SURFACE_SPACING_MM, covered)
        sample = model_c.sample(surface.point, surface.normal, surface.part)
        for plate, regions in PLATES.items():
            mask = sample.covered & np.isin(sample.subregion, [int(r) for r in regions])
            if not mask.any():
                continue
            weight = surface.area_mm2[mask]
            weighted[plate] = weighted.get(plate, 0.0) + float(np.sum(weight * sample.thickness_mm[mask]))
            area[plate] = area.get(plate, 0.0) + float(np.sum(weight))
            denuded[plate] = denuded.get(plate, 0.0) + float(np.sum(weight[sample.thickness_mm[mask] <= 0.0]))
    thickness = {plate: weighted[plate] / area[plate] for plate in PLATES if area.get(plate)}
    percent = {plate: 100.0 * denuded[plate] / area[plate] for plate in PLATES if area.get(plate)}
    return thickness, {p: area[p] for p in PLATES if area.get(p)}, percent


def fine_labels(spacing_mm: NDArray[np.float64]) -> tuple[Label, ...]:
    """Labels whose boundary voxels are supersampled on a grid of this spacing."""
    coarse = float(np.max(spacing_mm)) > COARSE_GRID_MM
    return (*_FINE_LABELS, Label.FEMUR, Label.TIBIA) if coarse else _FINE_LABELS


def _boundary(labels: NDArray[np.uint8], fine_set: tuple[Label, ...]) -> NDArray[np.bool_]:
    """Voxels with a 6-neighbour of another label, where that boundary involves a fine label."""
    fine = np.isin(labels, [int(label) for label in fine_set])
    mixed = np.zeros(labels.shape, dtype=bool)
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        differs = (labels[tuple(lo)] != labels[tuple(hi)]) & (fine[tuple(lo)] | fine[tuple(hi)])
        mixed[tuple(lo)] |= differs
        mixed[tuple(hi)] |= differs
    return mixed


def volume_truth(
    model: KneeModel, grid: SagittalGrid, center: RasterSample
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """(volume per label, mean T2 per plate, mean T1rho per plate) over the grid's field of view."""
    voxel = abs(float(np.linalg.det(grid.affine[:3, :3])))
    mixed = _boundary(center.label, fine_labels(grid.spacing_mm))
    plain = ~mixed
    n_labels = max(Label) + 1
    counts = np.bincount(center.label[plain], minlength=n_labels).astype(np.float64)
    cartilage = plain & (center.tissue == Tissue.CARTILAGE)
    relax_sum: dict[str, dict[str, float]] = {"t2": {}, "t1rho": {}}
    relax_weight: dict[str, float] = {}

    def accumulate(subregion: NDArray, t2: NDArray, t1rho: NDArray, weight: float) -> None:
        for plate, regions in PLATES.items():
            here = np.isin(subregion, [int(r) for r in regions])
            if here.any():
                relax_sum["t2"][plate] = relax_sum["t2"].get(plate, 0.0) + weight * float(t2[here].sum())
                relax_sum["t1rho"][plate] = relax_sum["t1rho"].get(plate, 0.0) + weight * float(t1rho[here].sum())
                relax_weight[plate] = relax_weight.get(plate, 0.0) + weight * int(here.sum())

    accumulate(center.subregion[cartilage], center.t2_ms[cartilage], center.t1rho_ms[cartilage], 1.0)
    index = np.argwhere(mixed).astype(np.float64)
    k = SUPERSAMPLING
    offsets = (np.arange(k) + 0.5) / k - 0.5
    sub = np.stack(np.meshgrid(offsets, offsets, offsets, indexing="ij"), axis=-1).reshape(-1, 3)
    to_knee = np.linalg.inv(model.pose.as_matrix()) @ grid.affine
    chunk = max(1, 131072 // len(sub))
    for start in range(0, len(index), chunk):
        points = (index[start : start + chunk, None, :] + sub[None]).reshape(-1, 3)
        sample = model.evaluate(np.dot(points, to_knee[:3, :3].T) + to_knee[:3, 3])
        counts += np.bincount(sample.label, minlength=n_labels) / len(sub)
        is_cartilage = sample.tissue == Tissue.CARTILAGE
        accumulate(
            sample.subregion[is_cartilage], sample.t2_ms[is_cartilage], sample.t1rho_ms[is_cartilage], 1 / len(sub)
        )
    volumes = {label.name.lower(): float(counts[label] * voxel) for label in Label if label != Label.BACKGROUND}
    t2 = {plate: relax_sum["t2"][plate] / w for plate, w in relax_weight.items() if w > 0}
    t1rho = {plate: relax_sum["t1rho"][plate] / w for plate, w in relax_weight.items() if w > 0}
    return volumes, t2, t1rho


def thickness_map(model: KneeModel, grid: SagittalGrid, labels: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Analytic thickness at bone voxels just under the interface, NaN elsewhere (module docstring)."""
    result = np.full(labels.shape, np.nan, dtype=np.float32)
    shell = float(grid.spacing_mm.max())
    to_knee = np.linalg.inv(model.pose.as_matrix()) @ grid.affine
    for articulation in model.bones.articulations:
        bone = labels == articulation.bone.label
        depth = int(np.ceil(shell / grid.spacing_mm.min()))
        near_surface = bone & ~binary_erosion(bone, iterations=depth, border_value=1)
        index = np.argwhere(near_surface)
        if index.size == 0:
            continue
        knee = np.dot(index.astype(np.float64), to_knee[:3, :3].T) + to_knee[:3, 3]
        query, part = articulation.bone.query(knee, shell)
        sample = articulation.cartilage.sample(query.point, query.normal, part)
        keep = sample.covered & (query.distance > -shell) & (query.distance <= 0)
        result[tuple(index[keep].T)] = sample.thickness_mm[keep]
    return result
