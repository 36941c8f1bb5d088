"""Meniscus morphometry: volume, mean thickness and extrusion beyond the tibial plateau.

Definitions (patient RAS axes, so they hold for any acquisition orientation):

- ``meniscus_volume``: voxel count times voxel volume (unbiased for a label map sampled at voxel centres).
- ``meniscus_thickness_mean``: the meniscus's mean superior-inferior height over its footprint on the
  axial plane, i.e. volume / footprint area. The footprint is taken on a grid aligned with the patient
  axes at the label map's finest voxel size.
- ``meniscus_extrusion``: how far the meniscus's outer (peripheral) edge lies beyond the tibial
  plateau's edge, medially for the medial meniscus and laterally for the lateral one, measured in the
  coronal sections (1 mm apart) through the middle third of the meniscus's antero-posterior extent,
  maximum over those sections. The plateau edge in a section is the outermost tibia under or beyond
  that section of the meniscus (not the tibial spines inside it) and within :data:`PLATEAU_DEPTH_MM` of
  its top, so the flare of the metaphysis below does not count. Negative values mean the meniscus stays
  inside the plateau's edge. (Clinically, extrusion is read on the mid-coronal slice, excluding
  osteophytes; this is an automated 3D counterpart, not the same reading. Osteophytes labelled as such
  are not tibia and never count as the plateau's edge.)
"""

from __future__ import annotations

import numpy as np

from app.measurement.geometry import bounding_box, crop_affine, resample_nearest, to_world, voxels_for_mm
from schemas.biomarkers import Laterality
from schemas.labels import Label
from schemas.volume import Volume

#: Depth below the plateau's top within which tibia counts as plateau (mm).
PLATEAU_DEPTH_MM = 5.0
#: Width of the coronal sections in which extrusion is measured (mm).
_SECTION_MM = 1.0
#: How far around the meniscus the tibia is looked at (mm).
_SEARCH_MM = 15.0


def meniscus_volume_mm3(labels: Volume, meniscus: Label) -> float:
    return float(np.count_nonzero(labels.array == meniscus)) * labels.voxel_volume_mm3


def meniscus_thickness_mm(labels: Volume, meniscus: Label) -> float | None:
    """Mean superior-inferior height: volume divided by the axial footprint area; None if absent."""
    mask = labels.array == meniscus
    box = bounding_box(mask, (1, 1, 1))
    if box is None:
        return None
    corners = (
        np.array(
            [
                [i, j, k]
                for i in (box.start[0], box.stop[0])
                for j in (box.start[1], box.stop[1])
                for k in (box.start[2], box.stop[2])
            ],
            dtype=np.float64,
        )
        - 0.5
    )
    world = to_world(labels.affine, corners)
    cell = float(min(labels.spacing_mm))
    origin = world.min(axis=0)
    shape = tuple(int(n) for n in np.ceil((world.max(axis=0) - origin) / cell) + 1)
    grid = np.diag([cell, cell, cell, 1.0])
    grid[:3, 3] = origin
    footprint = (resample_nearest(labels, grid, shape).array == meniscus).any(axis=2)
    area = float(footprint.sum()) * cell * cell
    return meniscus_volume_mm3(labels, meniscus) / area if area > 0 else None


def meniscus_extrusion_mm(labels: Volume, meniscus: Label, laterality: Laterality) -> float | None:
    """Maximum peripheral extrusion over the central third (see the module docstring); None if unmeasurable."""
    box = bounding_box(labels.array == meniscus, voxels_for_mm(labels, _SEARCH_MM))
    if box is None:
        return None
    crop = labels.array[box.slices]
    affine = crop_affine(labels.affine, box)
    meniscus_xyz = to_world(affine, np.argwhere(crop == meniscus))
    tibia_xyz = to_world(affine, np.argwhere(crop == Label.TIBIA))
    medial_sign = 1.0 if laterality == "left" else -1.0
    outward = medial_sign if meniscus == Label.MEDIAL_MENISCUS else -medial_sign
    y_low, y_high = meniscus_xyz[:, 1].min(), meniscus_xyz[:, 1].max()
    third = (y_high - y_low) / 3
    extrusions = []
    for start in np.arange(y_low + third, y_high - third, _SECTION_MM):
        meniscus_in = meniscus_xyz[(meniscus_xyz[:, 1] >= start) & (meniscus_xyz[:, 1] < start + _SECTION_MM)]
        tibia_in = tibia_xyz[(tibia_xyz[:, 1] >= start) & (tibia_xyz[:, 1] < start + _SECTION_MM)]
        # The plateau under and beyond this section of the meniscus (not the spines inside it), near its top.
        tibia_in = (
            tibia_in[tibia_in[:, 0] * outward >= (meniscus_in[:, 0] * outward).min()]
            if len(meniscus_in)
            else tibia_in[:0]
        )
        if len(tibia_in):
            plateau = tibia_in[tibia_in[:, 2] >= tibia_in[:, 2].max() - PLATEAU_DEPTH_MM]
            extrusions.append((meniscus_in[:, 0] * outward).max() - (plateau[:, 0] * outward).max())
    return float(max(extrusions)) if extrusions else None
