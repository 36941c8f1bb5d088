"""Views of a slice for test-time augmentation: the chain averages the model's logits over several."""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray

from app.segmentation.card import TestTimeView
from app.segmentation.slices import Frame, restore, to_model


class View(TestTimeView):
    """A card's view of a slice (``shift`` rows down and columns right in the slice's own pixels, then
    ``mirror`` left-right in the model frame), with the operations that show it to the model and bring the
    logits back in register.

    Averaging views (test-time augmentation) is worth its cost because each is in the training
    distribution (random shifts and anterior-posterior flips) and their errors differ: a shift by a
    fraction of a model pixel samples the slice at another phase, so boundaries come back finer than
    one frame's pixels, and a mirror cancels left-right biases of the model.
    """

    def show(self, slices: NDArray[np.float32], size: int) -> NDArray[np.float32]:
        """(N, H, W) normalised slices -> (N, size, size) model inputs seen this way."""
        moved = np.roll(slices, self.shift, axis=(1, 2)) if any(self.shift) else slices
        images = to_model(moved, size).numpy()
        return np.ascontiguousarray(images[..., ::-1]) if self.mirror else images

    def boxes(self, boxes: NDArray[np.float32], frame: Frame) -> NDArray[np.float32]:
        """(N, 4) boxes in the plain model frame -> the same boxes in this view's."""
        rows, cols = self.shift
        moved = boxes + np.array([cols, rows, cols, rows], np.float32) * np.float32(frame.scale)
        return mirror_boxes(moved, frame.size) if self.mirror else moved

    def restore(self, logits: NDArray[np.float32], frame: Frame) -> NDArray[np.float32]:
        """(N, m, m) mask logits of this view -> (N, H, W) on the slice's own grid, in register."""
        if self.mirror:
            logits = logits[..., ::-1]
        restored = restore(torch.from_numpy(np.ascontiguousarray(logits)), frame).numpy()
        return np.roll(restored, (-self.shift[0], -self.shift[1]), axis=(1, 2)) if any(self.shift) else restored


def mirror_boxes(boxes: NDArray[np.float32], size: int) -> NDArray[np.float32]:
    """(N, 4) x0, y0, x1, y1 boxes in a ``size``-pixel frame -> the same boxes on the frame mirrored left-right."""
    mirrored = boxes.copy()
    mirrored[:, 0], mirrored[:, 2] = size - boxes[:, 2], size - boxes[:, 0]
    return mirrored
