"""3D clean-up of the per-slice masks and the split of medial from lateral.

Slices are segmented one by one; in 3D a few things become clear that no single slice shows: a bone is
one solid object (stray islands are errors), small islands of any tissue far from its main body are
errors, and the medial and lateral tibial cartilage / menisci are the two compartments of one prompt
class, told apart by where they lie along the patient's left-right axis and which knee this is.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from app.segmentation.classes import CLASS_LABELS, SOLID_CLASSES, PromptClass
from schemas.volume import Volume

#: Non-bone components smaller than this fraction of the class's largest component are removed.
MIN_COMPONENT_FRACTION = 0.1
_STRUCTURE = ndimage.generate_binary_structure(3, 1)


def clean_class(mask: NDArray[np.bool_], solid: bool) -> NDArray[np.bool_]:
    """Keep the largest component (``solid``) or every component of a reasonable size."""
    components, count = ndimage.label(mask, structure=_STRUCTURE)
    if count <= 1:
        return mask
    sizes = np.bincount(components.ravel())[1:]
    keep = (
        [int(np.argmax(sizes)) + 1]
        if solid
        else list(np.flatnonzero(sizes >= MIN_COMPONENT_FRACTION * sizes.max()) + 1)
    )
    return np.isin(components, keep)


def clean(classes: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """A class map (0 background, class + 1) with each class cleaned in 3D."""
    out = np.zeros_like(classes)
    for cls in PromptClass:
        mask = classes == cls + 1
        if mask.any():
            out[clean_class(mask, cls in SOLID_CLASSES)] = cls + 1
    return out


#: Each cartilage prompt class and the bone it rests on.
_CARTILAGE_ON_BONE = {
    PromptClass.FEMORAL_CARTILAGE: PromptClass.FEMUR,
    PromptClass.TIBIAL_CARTILAGE: PromptClass.TIBIA,
    PromptClass.PATELLAR_CARTILAGE: PromptClass.PATELLA,
}


def close_interfaces(classes: NDArray[np.uint8], iterations: int = 2) -> NDArray[np.uint8]:
    """Give background voxels lying between a cartilage plate and its bone to the cartilage.

    Masks decoded from separate boxes can leave a voxel-thin seam of background between bone and
    cartilage; the measurement layer would read the bone under such a seam as bare (denuded), which the
    triage cascade treats as full-thickness cartilage loss. Real cartilage always rests on its bone, so a
    seam voxel touching both is cartilage.
    """
    out = classes.copy()
    for _ in range(iterations):
        background = out == 0
        for cartilage, bone in _CARTILAGE_ON_BONE.items():
            near_cartilage = ndimage.binary_dilation(out == cartilage + 1, structure=_STRUCTURE)
            near_bone = ndimage.binary_dilation(out == bone + 1, structure=_STRUCTURE)
            out[background & near_cartilage & near_bone] = cartilage + 1
    return out


def medial_is_lower_x(laterality: Literal["left", "right"]) -> bool:
    """RAS x grows to the patient's right: a right knee's medial side (towards the midline) has lower x."""
    return laterality == "right"


def split_threshold(x: NDArray[np.float64]) -> float:
    """The left-right coordinate between the two compartments: two-means on the voxels' x."""
    low, high = np.percentile(x, [10, 90])
    threshold = (low + high) / 2
    for _ in range(20):
        left, right = x[x < threshold], x[x >= threshold]
        if left.size == 0 or right.size == 0:
            break
        new = (left.mean() + right.mean()) / 2
        if abs(new - threshold) < 1e-3:
            break
        threshold = new
    return float(threshold)


def to_labels(classes: NDArray[np.uint8], grid: Volume, laterality: Literal["left", "right"]) -> NDArray[np.uint8]:
    """Class map -> project label map, splitting tibial cartilage and menisci into medial and lateral."""
    lookup = np.zeros(len(PromptClass) + 1, dtype=np.uint8)
    for cls, members in CLASS_LABELS.items():
        if len(members) == 1:  # the split classes are filled in below
            lookup[cls + 1] = members[0]
    labels = lookup[classes]
    tibial = np.argwhere(classes == PromptClass.TIBIAL_CARTILAGE + 1)
    menisci = np.argwhere(classes == PromptClass.MENISCUS + 1)
    reference = tibial if len(tibial) else menisci
    if not len(reference):
        return labels
    threshold = split_threshold(grid.world(reference)[:, 0])
    lower_is_medial = medial_is_lower_x(laterality)
    for voxels, (medial, lateral) in (
        (tibial, CLASS_LABELS[PromptClass.TIBIAL_CARTILAGE]),
        (menisci, CLASS_LABELS[PromptClass.MENISCUS]),
    ):
        if not len(voxels):
            continue
        lower = grid.world(voxels)[:, 0] < threshold
        values = np.where(lower == lower_is_medial, medial, lateral).astype(np.uint8)
        labels[tuple(voxels.T)] = values
    return labels
