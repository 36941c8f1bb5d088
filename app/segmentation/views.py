"""Views of a slice for test-time augmentation: the chain averages the model's logits over several."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from numpy.typing import NDArray

from app.segmentation.card import TestTimeView
from app.segmentation.slices import Frame, restore, to_model


class View(TestTimeView):
    """A card's view of a slice (``shift`` rows down and columns right in the slice's own pixels, then
    ``mirror`` left-right in the model frame), with the operations that show it to the model and bring the
    logits back in register.

    Averaging views (test-time augmentation) can help because each is in the training distribution
    (random shifts and anterior-posterior flips) and their errors differ: a shift by a fraction of a model
    pixel samples the slice at another phase, so boundaries come back finer than one frame's pixels, and a
    mirror cancels left-right biases of the model. Whether it helps a given model is measured, not assumed
    (``benchmarks/views_trial.py``): for the default it raised Dice but drew plates over denuded bone, so
    its card lists no views (docs/segmentation.md, "Test-time views").
    """

    def show(self, slices: NDArray[np.float32], size: int) -> NDArray[np.float32]:
        """(N, H, W) normalised slices -> (N, size, size) model inputs seen this way. The rows and columns
        a shift brings in repeat the slice's first row / column (wrapping the far edge round would put, say,
        the tibial shaft beside the femoral one); those it pushes out are not seen."""
        rows, cols = self.shift
        moved = np.pad(slices, ((0, 0), (rows, 0), (cols, 0)), mode="edge")[:, : slices.shape[1], : slices.shape[2]]
        images = to_model(moved, size).numpy()
        return np.ascontiguousarray(images[..., ::-1]) if self.mirror else images

    def boxes(self, boxes: NDArray[np.float32], frame: Frame) -> NDArray[np.float32]:
        """(N, 4) boxes in the plain model frame -> the same boxes in this view's."""
        rows, cols = self.shift
        moved = boxes + np.array([cols, rows, cols, rows], np.float32) * np.float32(frame.scale)
        return mirror_boxes(moved, frame.size) if self.mirror else moved

    def restore(self, logits: NDArray[np.float32], frame: Frame) -> NDArray[np.float32]:
        """(N, m, m) mask logits of this view -> (N, H - rows, W - columns) on the slice's own grid, in
        register from its first row and column: the slice's last ``shift`` rows and columns were not seen."""
        if self.mirror:
            logits = logits[..., ::-1]
        restored = restore(torch.from_numpy(np.ascontiguousarray(logits)), frame).numpy()
        rows, cols = self.shift
        return restored[:, rows:, cols:]


def average(parts: Iterable[NDArray[np.float32]], shape: tuple[int, int]) -> NDArray[np.float32]:
    """(N, h, w) logits of each view (:meth:`View.restore`) -> (N, H, W): per pixel, the mean over the
    views that saw it; -inf where none did, so nothing is drawn there."""
    total: NDArray[np.float32] | None = None
    count = np.zeros(shape, np.float32)
    for part in parts:
        if total is None:
            total = np.zeros((len(part), *shape), np.float32)
        h, w = part.shape[-2:]
        total[:, :h, :w] += part
        count[:h, :w] += 1
    if total is None:
        raise ValueError("no view to average")
    return np.where(count > 0, total / np.maximum(count, 1), -np.inf).astype(np.float32)


def mirror_boxes(boxes: NDArray[np.float32], size: int) -> NDArray[np.float32]:
    """(N, 4) x0, y0, x1, y1 boxes in a ``size``-pixel frame -> the same boxes on the frame mirrored left-right."""
    mirrored = boxes.copy()
    mirrored[:, 0], mirrored[:, 2] = size - boxes[:, 2], size - boxes[:, 0]
    return mirrored
