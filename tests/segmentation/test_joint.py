"""The joint-region pass: its window, boxes moved into it, the chain's second pass, and training windows."""

from __future__ import annotations

import numpy as np

from app.segmentation.chain import Segmenter
from app.segmentation.classes import PromptClass
from app.segmentation.data import training_slices
from app.segmentation.joint import MARGIN_MM, Window, joint_window
from app.segmentation.slices import Frame
from schemas.labels import Label
from schemas.volume import Volume
from tests.segmentation.fakes import BoxFilling

CARTILAGE = int(PromptClass.FEMORAL_CARTILAGE) + 1
FEMUR = int(PromptClass.FEMUR) + 1


def _class_map(shape: tuple[int, int, int] = (4, 200, 200)) -> np.ndarray:
    classes = np.zeros(shape, np.uint8)
    classes[:, 20:120, 30:150] = FEMUR
    classes[:, 110:130, 60:140] = CARTILAGE
    return classes


def test_window_holds_the_cartilage_with_its_margin_at_the_pixel_asked_for() -> None:
    classes = _class_map()
    window = joint_window(classes, (0.5, 0.5), 256, 0.25)  # 64 mm window in a 100 mm slice
    assert window is not None
    assert window.shape == (128, 128)  # side = 256 px x 0.25 mm, on 0.5 mm pixels
    margin = int(MARGIN_MM / 0.5)
    assert window.rows.start <= 110 - margin and window.rows.stop >= 130 + margin
    assert window.cols.start <= 60 - margin and window.cols.stop >= 140 + margin


def test_window_grows_for_wide_tissue_and_stays_inside_the_slice() -> None:
    classes = np.zeros((2, 300, 300), np.uint8)
    classes[:, 280:300, 10:150] = CARTILAGE  # 70 mm wide, at the bottom edge of a 150 mm slice
    window = joint_window(classes, (0.5, 0.5), 256, 0.25)
    assert window is not None
    assert window.shape[0] == window.shape[1] >= 140 + 2 * MARGIN_MM / 0.5
    assert window.rows.stop == 300 and window.rows.start >= 0  # shifted up, not cut


def test_no_window_without_cartilage_or_when_it_would_be_most_of_the_slice() -> None:
    assert joint_window(np.zeros((2, 50, 50), np.uint8), (1.0, 1.0), 256, 0.4) is None
    assert joint_window(_class_map(), (0.5, 0.5), 256, 0.38) is None  # 97 mm of a 100 mm slice


def test_stray_voxels_do_not_stretch_the_window() -> None:
    classes = _class_map((20, 200, 200))
    reference = joint_window(classes, (0.5, 0.5), 256, 0.25)
    classes[3, 195, 195] = CARTILAGE  # one stray voxel in a far corner
    assert joint_window(classes, (0.5, 0.5), 256, 0.25) == reference


def test_boxes_move_to_the_same_tissue_in_the_window() -> None:
    whole = Frame((200, 200), 256)
    window = Window(slice(40, 168), slice(50, 178))
    native = np.array([60.0, 110.0, 140.0, 130.0], np.float32)  # x0, y0, x1, y1 in slice pixels
    moved = window.move({3: native * whole.scale, 0: np.array([0, 0, 10, 10], np.float32)}, whole, 256)
    assert list(moved) == [3]  # the box outside the window is dropped
    expected = (native - np.array([50, 40, 50, 40])) * Frame(window.shape, 256).scale
    np.testing.assert_allclose(moved[3], expected, atol=1e-3)


def test_shifted_window_keeps_its_size_inside_the_slice() -> None:
    window = Window(slice(10, 110), slice(50, 150)).shifted((-30, 80), (200, 200))
    assert window == Window(slice(0, 100), slice(100, 200))


def test_joint_pass_redraws_the_window_in_register_with_the_first_pass() -> None:
    array = np.zeros((6, 240, 240), np.float32)
    array[:, 40:140, 40:200] = 0.4  # "femur"
    array[:, 140:160, 80:184] = 0.8  # "cartilage": 26 x 52 mm on 0.5 mm pixels
    image = Volume(array, np.diag([1.0, 0.5, 0.5, 1.0]))
    one_pass = Segmenter(BoxFilling(), {}, batch=4).segment(image, "right")
    joint = Segmenter(BoxFilling(), {}, batch=4, joint_pixel_mm=0.3).segment(image, "right")
    assert one_pass.timings_s["joint"] == 0.0 and joint.timings_s["joint"] > 0.0
    for label in (Label.FEMUR, Label.FEMORAL_CARTILAGE):
        a, b = one_pass.labels.array == label, joint.labels.array == label
        # box edges fall on other pixel centres in the window's frame: a row may flip at an edge, no more
        assert a.any() and 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.95, label.name
        centroid = [np.argwhere(mask).mean(axis=0) for mask in (a, b)]
        np.testing.assert_allclose(centroid[0], centroid[1], atol=0.5)


def test_training_adds_joint_windows_with_labels_on_their_images() -> None:
    labels = np.zeros((8, 300, 300), np.int16)
    labels[:, 60:200, 80:240] = Label.FEMUR
    labels[:, 200:215, 100:220] = Label.FEMORAL_CARTILAGE
    image = np.where(labels == Label.FEMORAL_CARTILAGE, 1.0, np.where(labels > 0, 0.5, 0.1)).astype(np.float32)
    whole = training_slices(image, labels, 64, [0], (0.5, 0.5))
    both = training_slices(image, labels, 64, [0], (0.5, 0.5), 0.6)
    assert len(both) == 2 * len(whole)
    np.testing.assert_array_equal(both.classes[: len(whole)], whole.classes)
    windows, images = both.classes[len(whole) :], both.images[len(whole) :].astype(np.float32)
    cartilage = windows == CARTILAGE
    # image and label map were cut by one window: the bright band lies where the cartilage label does
    rows = np.arange(windows.shape[1])[None, :, None]
    bright = images > 0.75
    assert abs((rows * bright).sum() / bright.sum() - (rows * cartilage).sum() / cartilage.sum()) < 1.0
    # and the window is a zoom: the same cartilage covers more model pixels
    assert cartilage.sum() > 1.5 * (whole.classes == CARTILAGE).sum()
