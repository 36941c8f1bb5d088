"""AutoLabel's boxes: objectness maps -> one box prompt per tissue per slice, checked along the slices.

A class is present on a slice when enough objectness cells fire; its box is the extent of those cells
(small stray blobs ignored) plus a margin like the training jitter. A detection with no detection of the
same class on either neighbouring slice is dropped: real tissue continues through adjacent slices,
noise rarely does.
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
#: Margin added around each box, model pixels (half a cell plus the training jitter).
MARGIN_PX = 3.0


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
        rows, cols = np.nonzero(cells)
        box = np.array(
            [cols.min() * stride, rows.min() * stride, (cols.max() + 1) * stride, (rows.max() + 1) * stride],
            dtype=np.float32,
        )
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
