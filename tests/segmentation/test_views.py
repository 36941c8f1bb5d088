"""Test-time views: each slice also decoded shifted or mirrored, boxes moved alike, the logits averaged in register."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.segmentation.card import CARD_FILE, ModelCardError, read_card
from app.segmentation.chain import Segmenter
from app.segmentation.views import View, average, mirror_boxes
from app.settings import Settings
from schemas.labels import Label
from schemas.volume import Volume
from tests.segmentation.conftest import random_model_folder
from tests.segmentation.fakes import BoxFilling

SHIFT_PX = 3  # model pixels


class LeaningBoxFilling(BoxFilling):
    """Fills each box shifted right by ``SHIFT_PX``: a model with a left-right bias, which mirroring reverses."""

    def decode(self, embedding: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, iou = super().decode(embedding, boxes)
        return np.roll(logits, SHIFT_PX, axis=-1), iou


def _knee() -> Volume:
    array = np.zeros((4, 256, 256), np.float32)
    array[:, 40:140, 40:200] = 0.4  # "femur"
    array[:, 140:160, 80:184] = 0.8  # "cartilage"
    return Volume(array, np.diag([1.0, 0.5, 0.5, 1.0]))


def test_mirrored_boxes_lie_on_the_mirrored_frame() -> None:
    boxes = np.array([[10.0, 20.0, 50.0, 60.0], [0.0, 0.0, 256.0, 128.0]], np.float32)
    np.testing.assert_array_equal(mirror_boxes(boxes, 256), [[206, 20, 246, 60], [0, 0, 256, 128]])
    np.testing.assert_array_equal(mirror_boxes(mirror_boxes(boxes, 256), 256), boxes)


def test_a_shift_brings_in_the_near_edge_not_the_far_one() -> None:
    slices = np.zeros((1, 256, 256), np.float32)
    slices[:, 0] = 0.25  # first row
    slices[:, -3:] = 1.0  # last rows: bright, as a shaft at the far edge would be
    shown = View(shift=(2, 0)).show(slices, 256)
    np.testing.assert_allclose(shown[0, :3], 0.25)  # the first row, repeated
    np.testing.assert_allclose(shown[0, -1], 1.0)  # the far edge moved down, partly pushed out
    assert shown[0, 3:-1].max() == 0.0


def test_views_are_averaged_only_where_they_saw_the_slice() -> None:
    plain = np.full((2, 4, 5), 2.0, np.float32)
    moved = np.full((2, 3, 3), 4.0, np.float32)  # a view moved by (1, 2): the last row and two columns unseen
    averaged = average([plain, moved], (4, 5))
    np.testing.assert_array_equal(averaged[:, :3, :3], 3.0)
    np.testing.assert_array_equal(averaged[:, 3, :], 2.0)
    np.testing.assert_array_equal(averaged[:, :, 3:], 2.0)
    alone = average([moved], (4, 5))
    assert np.isneginf(alone[:, 3, :]).all() and np.isneginf(alone[:, :, 3:]).all()


def test_a_symmetric_model_gives_the_same_labels_with_flip_averaging() -> None:
    image = _knee()
    plain = Segmenter(BoxFilling(), {}, batch=4).segment(image, "right")
    averaged = Segmenter(BoxFilling(), {}, batch=4, views=(View(), View(mirror=True))).segment(image, "right")
    assert (plain.labels.array == Label.FEMORAL_CARTILAGE).any()
    np.testing.assert_array_equal(plain.labels.array, averaged.labels.array)


def test_flip_averaging_cancels_a_left_right_bias() -> None:
    image = _knee()
    plain = Segmenter(LeaningBoxFilling(), {}, batch=4).segment(image, "right")
    averaged = Segmenter(LeaningBoxFilling(), {}, batch=4, views=(View(), View(mirror=True))).segment(image, "right")
    truth = image.array == np.float32(0.8)
    for result, offset in ((plain, SHIFT_PX), (averaged, 0)):
        cartilage = result.labels.array == Label.FEMORAL_CARTILAGE
        shift = np.argwhere(cartilage)[:, 2].mean() - np.argwhere(truth)[:, 2].mean()
        assert abs(shift - offset) < 0.6, (offset, shift)


def test_a_shifted_view_comes_back_in_register() -> None:
    image = _knee()
    plain = Segmenter(BoxFilling(), {}, batch=4).segment(image, "right")
    for views in (
        (View(shift=(3, 0)),),
        (View(shift=(0, 5)),),
        (View(), View(shift=(1, 2)), View(shift=(2, 1), mirror=True)),
    ):
        moved = Segmenter(BoxFilling(), {}, batch=4, views=views).segment(image, "right")
        for label in (Label.FEMUR, Label.FEMORAL_CARTILAGE):
            a, b = plain.labels.array == label, moved.labels.array == label
            # box edges fall on other pixel centres in a shifted frame: a row may flip at an edge, no more
            assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.95, (views, label.name)
            np.testing.assert_allclose(np.argwhere(a).mean(axis=0), np.argwhere(b).mean(axis=0), atol=0.5)


def test_the_card_chooses_the_views(tmp_path: Path) -> None:
    folder = random_model_folder(tmp_path / "random-tiny")
    settings = Settings(model_dir=tmp_path, segmentation_model="random-tiny")
    assert Segmenter.from_settings(settings, runtime="torch").views == (View(),)  # a card without views
    card = json.loads((folder / CARD_FILE).read_text())
    card["test_time_views"] = [{"shift": [0, 0]}, {"shift": [1, 2], "mirror": True}]
    (folder / CARD_FILE).write_text(json.dumps(card))
    assert Segmenter.from_settings(settings, runtime="torch").views == (View(), View(shift=(1, 2), mirror=True))
    for wrong in ([], [{"shift": [1, 2], "flip": True}]):
        (folder / CARD_FILE).write_text(json.dumps(card | {"test_time_views": wrong}))
        with pytest.raises(ModelCardError, match="test_time_views"):
            read_card(folder)
