"""AutoLabel's boxes: objectness maps -> one box prompt per tissue per slice, checked along the slices.

A class is present on a slice when enough objectness cells fire; its box is the extent of the firing
region once the map is interpolated to model pixels (sub-cell precision: SAM was trained on boxes
within a few pixels of the tissue's own, and larger boxes make it over-segment), small stray blobs
ignored. A detection with no detection of the same class on either neighbouring slice is dropped: real
tissue continues through adjacent slices, noise rarely does.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

#: Objectness probability at which a cell counts as tissue.
THRESHOLD = 0.5
#: Fewest cells for a detection (a 4x4-pixel cell each in the model frame).
MIN_CELLS = 3
#: Blobs smaller than this fraction of the class's largest blob on the slice are ignored.
MIN_BLOB_FRACTION = 0.15
#: Margin added around each box, model pixels (0: measured best on held-out phantoms, docs/segmentation.md).
MARGIN_PX = 0.0


def slice_boxes(objectness: NDArray[np.float32], stride: int) -> dict[int, NDArray[np.float32]]:
    """Boxes (x0, y0, x1, y1, model pixels) per class for one slice's (classes, h, w) objectness."""
    boxes: dict[int, NDArray[np.float32]] = {}
    size = objectness.shape[-1] * stride
    for cls, prob in enumerate(objectness):
        cells = prob > THRESHOLD
        if cells.sum() < MIN_CELLS:
            continue
        blobs, count = ndimage.label(cells)
        if count > 1:
            sizes = ndimage.sum_labels(cells, blobs, index=np.arange(1, count + 1))
            keep = np.flatnonzero(sizes >= MIN_BLOB_FRACTION * sizes.max()) + 1
            cells = np.isin(blobs, keep)
        rows, cols = np.nonzero(_fine(prob, cells, stride))
        if rows.size == 0:
            continue
        box = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=np.float32)
        boxes[cls] = np.clip(box + np.array([-MARGIN_PX, -MARGIN_PX, MARGIN_PX, MARGIN_PX]), 0, size)
    return boxes


def consistent(per_slice: list[dict[int, NDArray[np.float32]]]) -> list[dict[int, NDArray[np.float32]]]:
    """Drop detections that have no detection of the same class on a neighbouring slice."""
    kept: list[dict[int, NDArray[np.float32]]] = []
    for index, boxes in enumerate(per_slice):
        neighbours = set()
        if index > 0:
            neighbours |= per_slice[index - 1].keys()
        if index + 1 < len(per_slice):
            neighbours |= per_slice[index + 1].keys()
        kept.append({cls: box for cls, box in boxes.items() if cls in neighbours})
    return kept


def _fine(prob: NDArray[np.float32], cells: NDArray[np.bool_], stride: int) -> NDArray[np.bool_]:
    """The kept cells' region at model-pixel resolution: the objectness interpolated, thresholded."""
    fine = ndimage.zoom(prob, stride, order=1, grid_mode=True, mode="nearest") > THRESHOLD
    return fine & np.kron(ndimage.binary_dilation(cells), np.ones((stride, stride), dtype=bool))
