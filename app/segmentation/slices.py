"""Slices in the model's frame: intensity normalisation, square padding, resizing, and the way back.

Training and inference must see slices prepared identically, so both go through this module. A slice of
any shape is scaled so its longest side is the model's input size and padded at the bottom / right
(SAM's own convention); :func:`restore` undoes exactly that for a mask, so any slice shape and aspect
ratio comes back on its own pixel grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch.nn import functional as F

#: SAM's pixel statistics (0-255 RGB); a grey slice is replicated into three channels.
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)


def normalise_volume(array: NDArray) -> NDArray[np.float32]:
    """Intensities to about [0, 1]: the volume's 0.5th-99.5th percentiles, so scanners' scales agree."""
    values = np.asarray(array, dtype=np.float32)
    low, high = np.percentile(values, [0.5, 99.5])
    if not high > low:
        return np.zeros_like(values)
    return np.clip((values - low) / (high - low), 0.0, 1.0)


@dataclass(frozen=True)
class Frame:
    """How a slice of ``shape`` sits in the square model input of side ``size``."""

    shape: tuple[int, int]
    size: int

    @property
    def scale(self) -> float:
        return self.size / max(self.shape)

    @property
    def inner(self) -> tuple[int, int]:
        """Rows and columns the slice occupies after scaling (the rest is padding)."""
        return (round(self.shape[0] * self.scale), round(self.shape[1] * self.scale))


def to_model(slices: NDArray | torch.Tensor, size: int, *, labels: bool = False) -> torch.Tensor:
    """(N, H, W) slices -> (N, size, size): scaled (area-averaged; nearest for labels) and padded."""
    tensor = torch.as_tensor(np.ascontiguousarray(slices))
    frame = Frame(tuple(tensor.shape[-2:]), size)  # type: ignore[arg-type]
    if labels:
        # "nearest-exact", not "nearest": torch's "nearest" samples source pixel floor(i * scale), which put
        # label maps a third to a half of a model pixel off the image along each axis, and the models
        # trained on them drew every mask that far off (tests/segmentation/test_slices.py). An exact 2x
        # reduction stays a quarter pixel off: no source pixel sits at a model pixel's centre.
        scaled = F.interpolate(tensor[:, None].float(), size=frame.inner, mode="nearest-exact")[:, 0]
        scaled = scaled.to(tensor.dtype)
    else:
        scaled = F.interpolate(tensor[:, None].float(), size=frame.inner, mode="bilinear", antialias=True)[:, 0]
    return F.pad(scaled, (0, size - frame.inner[1], 0, size - frame.inner[0]))


def sam_input(images: torch.Tensor) -> torch.Tensor:
    """(N, S, S) images in [0, 1] -> (N, 3, S, S) with SAM's normalisation."""
    mean = torch.tensor(SAM_PIXEL_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(SAM_PIXEL_STD, device=images.device).view(1, 3, 1, 1)
    return (images[:, None].float() * 255.0 - mean) / std


def restore(logits: torch.Tensor, frame: Frame) -> torch.Tensor:
    """(N, m, m) mask logits over the square input -> (N, H, W) on the slice's own grid."""
    m = logits.shape[-1]
    rows, cols = (max(1, round(n * m / frame.size)) for n in frame.inner)
    cropped = logits[:, None, :rows, :cols].float()
    return F.interpolate(cropped, size=frame.shape, mode="bilinear", align_corners=False)[:, 0]
