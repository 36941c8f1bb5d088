"""Boxes from objectness, the slice-consistency check, 3D clean-up and the medial / lateral split."""

from __future__ import annotations

import numpy as np
import pytest

from app.segmentation.classes import PromptClass
from app.segmentation.postprocess import clean, close_interfaces, to_labels
from app.segmentation.prompts import consistent, slice_boxes
from schemas.labels import Label
from schemas.volume import Volume

TIBIAL = PromptClass.TIBIAL_CARTILAGE + 1
MENISCUS = PromptClass.MENISCUS + 1
FEMUR = PromptClass.FEMUR + 1


def test_box_is_the_extent_of_the_firing_region_in_model_pixels_and_stray_cells_are_ignored() -> None:
    objectness = np.zeros((len(PromptClass), 64, 64), np.float32)
    objectness[PromptClass.TIBIA, 30:40, 10:50] = 0.9
    objectness[PromptClass.TIBIA, 5, 5] = 0.9  # one stray cell, far smaller than the tibia
    objectness[PromptClass.PATELLA, 2, 2:4] = 0.9  # two cells: too few to be a detection
    boxes = slice_boxes(objectness, stride=4)
    assert set(boxes) == {PromptClass.TIBIA}
    # cells 10-49 x 30-39 of 4 pixels: pixels 40-199 x 120-159, the 0.5 crossing between cells
    np.testing.assert_allclose(boxes[PromptClass.TIBIA], [40.0, 120.0, 200.0, 160.0])


def test_a_detection_without_neighbours_is_dropped() -> None:
    box = np.array([0, 0, 10, 10], np.float32)
    per_slice = [{0: box}, {0: box, 1: box}, {0: box}, {}, {2: box}]
    kept = consistent(per_slice)
    assert [sorted(k) for k in kept] == [[0], [0], [0], [], []]


def _sagittal_grid(shape: tuple[int, int, int]) -> Volume:
    """Axis 0 along +x (patient left to right), 0.5 mm voxels."""
    return Volume(np.zeros(shape, np.uint8), np.diag([0.5, 0.5, 0.5, 1.0]))


def test_bones_keep_their_largest_component_and_small_islands_of_cartilage_go() -> None:
    classes = np.zeros((20, 30, 30), np.uint8)
    classes[2:18, 2:20, 2:20] = FEMUR
    classes[0, 28, 28] = FEMUR  # an island of bone
    classes[5:15, 22:24, 5:25] = TIBIAL
    classes[0:1, 0:1, 25:26] = TIBIAL  # 1 voxel, < 10 % of the plate
    cleaned = clean(classes)
    assert cleaned[0, 28, 28] == 0 and cleaned[0, 0, 25] == 0
    assert (cleaned == FEMUR).sum() == 16 * 18 * 18
    assert (cleaned == TIBIAL).sum() == 10 * 2 * 20


@pytest.mark.parametrize("side", ["right", "left"])
def test_medial_and_lateral_follow_laterality_and_patient_x(side: str) -> None:
    """RAS x grows to the patient's right: a right knee's medial compartment has the lower x."""
    classes = np.zeros((40, 10, 10), np.uint8)
    classes[2:15, 4:6, 2:8] = TIBIAL  # low x
    classes[25:38, 4:6, 2:8] = TIBIAL  # high x
    classes[3:14, 6, 2:8] = MENISCUS
    classes[26:37, 6, 2:8] = MENISCUS
    labels = to_labels(classes, _sagittal_grid(classes.shape), side)  # type: ignore[arg-type]
    low, high = ("MEDIAL", "LATERAL") if side == "right" else ("LATERAL", "MEDIAL")
    assert (labels[2:15, 4:6, 2:8] == Label[f"{low}_TIBIAL_CARTILAGE"]).all()
    assert (labels[25:38, 4:6, 2:8] == Label[f"{high}_TIBIAL_CARTILAGE"]).all()
    assert (labels[3:14, 6, 2:8] == Label[f"{low}_MENISCUS"]).all()
    assert (labels[26:37, 6, 2:8] == Label[f"{high}_MENISCUS"]).all()
    assert set(np.unique(labels)) == {0, 5, 6, 8, 9}


def test_a_seam_between_cartilage_and_its_bone_becomes_cartilage_and_nothing_else_changes() -> None:
    classes = np.zeros((6, 12, 12), np.uint8)
    classes[:, :5] = FEMUR
    classes[:, 6:8] = PromptClass.FEMORAL_CARTILAGE + 1  # row 5 is a background seam
    classes[:, 10:] = PromptClass.TIBIA + 1  # femoral cartilage does not rest on the tibia: rows 8-9 stay
    closed = close_interfaces(classes)
    assert (closed[:, 5] == PromptClass.FEMORAL_CARTILAGE + 1).all()
    assert (closed[:, 8:10] == 0).all()
    np.testing.assert_array_equal(np.delete(closed, 5, axis=1), np.delete(classes, 5, axis=1))
