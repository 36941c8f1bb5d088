"""The model frame: a label map must land on the very pixels its image lands on.

A training label map shifted against its image teaches the model to draw every mask shifted; for a
cartilage plate four pixels thick, half a pixel is an eighth of its Dice.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.segmentation.slices import to_model


def _centroid(weights: np.ndarray) -> np.ndarray:
    grid = np.indices(weights.shape).reshape(2, -1)
    return (grid * weights.reshape(-1)).sum(axis=1) / weights.sum()


@pytest.mark.parametrize(
    ("shape", "tolerance"),
    [
        ((384, 384), 0.1),
        ((224, 224), 0.1),
        ((448, 448), 0.1),
        ((288, 320), 0.1),
        # an exact 2x reduction has no source pixel at any model pixel's centre: point sampling is a
        # quarter of a model pixel off whichever neighbour it takes (torch's "nearest" too)
        ((512, 400), 0.3),
    ],
)
def test_labels_and_image_land_on_the_same_pixels(shape: tuple[int, int], tolerance: float) -> None:
    """Edge positions quantise each rectangle's centroid by up to a third of a pixel either way; what must be
    zero is the mean offset over many (torch's "nearest" gave +0.33 to +0.5 px along both axes)."""
    rng = np.random.default_rng(sum(shape))
    offsets = []
    for _ in range(100):
        labels = np.zeros((1, *shape), np.uint8)
        top, left = rng.integers(20, shape[0] // 2), rng.integers(20, shape[1] // 2)
        labels[0, top : top + rng.integers(9, 60), left : left + rng.integers(9, 90)] = 3
        image = to_model(labels.astype(np.float32), 256).numpy()[0]  # area-averaged, centred
        mask = to_model(labels, 256, labels=True).numpy()[0]
        assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 3}
        offsets.append(_centroid((mask == 3).astype(np.float64)) - _centroid(image.astype(np.float64)))
    mean = np.mean(offsets, axis=0)
    assert np.all(np.abs(mean) < tolerance), mean
