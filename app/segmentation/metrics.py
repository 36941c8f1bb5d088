"""Overlap and boundary agreement of a predicted label map with a reference: Dice and HD95 in mm.

Distances are in millimetres through the label maps' affine (its column norms, as
:attr:`schemas.volume.Volume.spacing_mm`), so a one-voxel error across 0.7 mm slices and one across
0.36 mm pixels are told apart; the grids are assumed orthogonal, as the measurement layer requires.

Empty masks are reported, never hidden behind a number:

- Dice of two empty masks is undefined (``None``); one empty and the other not gives 0.
- HD95 of two empty masks is undefined (``None``); exactly one empty gives ``math.inf`` (a missed or a
  hallucinated structure has no finite boundary error). Summaries count these cases separately.

HD95 is the symmetric form of MONAI's ``compute_hausdorff_distance(percentile=95)``: the
larger of the two directed 95th percentiles of surface-to-surface distances (reference surface voxels to
the nearest predicted surface voxel, and back). Surface voxels are mask voxels with a face neighbour
outside the mask; distances are Euclidean between voxel centres (scipy's exact distance transform with
the voxel spacing), computed in the bounding box of both masks only, which keeps a 160 x 384 x 384 knee
fast.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from schemas.labels import Label
from schemas.volume import Volume

#: The knee labels the chain segments (the client's convention, values 1-9).
KNEE_LABELS: tuple[Label, ...] = tuple(Label(value) for value in range(1, 10))
#: Face connectivity: a voxel touching the outside only at an edge or corner is interior.
_FACES = ndimage.generate_binary_structure(3, 1)


@dataclass(frozen=True)
class LabelScore:
    """Agreement of one label; voxel counts say why a score is ``None`` or infinite."""

    label: Label
    dice: float | None
    hd95_mm: float | None
    reference_voxels: int
    predicted_voxels: int


def dice(predicted: NDArray[np.bool_], reference: NDArray[np.bool_]) -> float | None:
    """2|A∩B| / (|A| + |B|); ``None`` when both masks are empty."""
    total = int(np.count_nonzero(predicted)) + int(np.count_nonzero(reference))
    if total == 0:
        return None
    return 2.0 * int(np.count_nonzero(predicted & reference)) / total


def _surface(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    return mask & ~ndimage.binary_erosion(mask, structure=_FACES, border_value=0)


def _directed(from_surface: NDArray[np.bool_], to_surface: NDArray[np.bool_], spacing: tuple[float, ...]) -> NDArray:
    """Distance (mm) from each voxel of ``from_surface`` to the nearest voxel of ``to_surface``."""
    distance = ndimage.distance_transform_edt(~to_surface, sampling=spacing)
    return distance[from_surface]


def hd95(
    predicted: NDArray[np.bool_], reference: NDArray[np.bool_], spacing_mm: tuple[float, float, float]
) -> float | None:
    """Symmetric 95th-percentile Hausdorff distance in mm (module docstring); ``inf`` if one mask is empty."""
    has_predicted, has_reference = bool(predicted.any()), bool(reference.any())
    if not has_predicted and not has_reference:
        return None
    if has_predicted != has_reference:
        return math.inf
    box = ndimage.find_objects((predicted | reference).astype(np.uint8))[0]
    box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
    a, b = _surface(predicted[box]), _surface(reference[box])
    forward = np.percentile(_directed(a, b, spacing_mm), 95)
    backward = np.percentile(_directed(b, a, spacing_mm), 95)
    return float(max(forward, backward))


def label_scores(predicted: Volume, reference: Volume, labels: Iterable[Label] = KNEE_LABELS) -> list[LabelScore]:
    """Dice and HD95 per label of two label maps on one grid (resample before calling otherwise)."""
    if predicted.shape != reference.shape or not np.allclose(predicted.affine, reference.affine, atol=1e-3):
        raise ValueError(f"predicted {predicted.shape} and reference {reference.shape} label maps are not on one grid")
    spacing = reference.spacing_mm
    scores = []
    for label in labels:
        a = predicted.array == label
        b = reference.array == label
        scores.append(
            LabelScore(label, dice(a, b), hd95(a, b, spacing), int(np.count_nonzero(b)), int(np.count_nonzero(a)))
        )
    return scores


def where_predicted(predicted: Volume, reference: Volume, labels: Iterable[Label]) -> dict[str, dict[str, int]]:
    """For each predicted label, its voxels counted by the reference label they fall on (names as keys).

    Dice says how much a label is wrong; this says where: into its bone (its bone surface, and so its
    thickness, is wrong there), into joint fluid or a meniscus, or into another plate.
    """
    out: dict[str, dict[str, int]] = {}
    for label in labels:
        values, counts = np.unique(reference.array[predicted.array == label], return_counts=True)
        out[label.name.lower()] = {_label_name(int(v)): int(c) for v, c in zip(values, counts, strict=True)}
    return out


def _label_name(value: int) -> str:
    try:
        return Label(value).name.lower()
    except ValueError:  # a site's reference may carry values outside the convention
        return f"label {value}"
