"""The joint-region pass: where the chain looks again, at finer pixels, and how its boxes move there.

The model sees a whole slice at its input size (256 px: 0.54 mm for a 14 cm field of view), where a 2 mm
cartilage plate is four pixels thick. Drawing plates at that scale and restoring them to the image's grid
costs about 0.05 Dice and thins them by about 0.15 mm even with perfect masks (reference labels taken to
the model frame and back, docs/segmentation.md). The cartilage and menisci lie in a small part of the
slice, so a second pass crops every slice to one window around them, sized so a model pixel is the
card's ``joint_pass_pixel_mm`` (a scale the model was trained at), and decodes the first pass's boxes,
moved into the window, again. Bones are redrawn inside the window too, so all classes compete on one
footing there; outside it the first pass stands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.segmentation.classes import PromptClass
from app.segmentation.slices import Frame

#: Classes the window must hold: the tissues whose thickness and volume are measured finely.
JOINT_CLASSES = (
    PromptClass.FEMORAL_CARTILAGE,
    PromptClass.TIBIAL_CARTILAGE,
    PromptClass.PATELLAR_CARTILAGE,
    PromptClass.MENISCUS,
)
#: Context kept around those tissues on every side, mm.
MARGIN_MM = 10.0
#: Share of the tissues' voxels allowed outside the window at each end (rows, columns), percent.
OUTLIER_PERCENT = 0.5
#: A window whose longest side is this close to the slice's (a fraction) gains too little to be worth a pass.
MOST_OF_SLICE = 0.85
#: Smallest clipped box side kept in the window, model pixels (a sliver at the edge is no prompt).
MIN_BOX_PX = 2.0


@dataclass(frozen=True)
class Window:
    """Rows and columns of every slice that the joint pass re-segments (the same for all slices)."""

    rows: slice
    cols: slice

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows.stop - self.rows.start, self.cols.stop - self.cols.start)

    def shifted(self, by: tuple[int, int], extent: tuple[int, int]) -> Window:
        """The window moved ``by`` (rows, columns), kept inside a slice of ``extent``."""
        starts = [
            min(max(0, span.start + step), limit - (span.stop - span.start))
            for span, step, limit in zip((self.rows, self.cols), by, extent, strict=True)
        ]
        rows, cols = self.shape
        return Window(slice(starts[0], starts[0] + rows), slice(starts[1], starts[1] + cols))

    def move(self, boxes: dict[int, NDArray[np.float32]], whole: Frame, size: int) -> dict[int, NDArray[np.float32]]:
        """Boxes in the whole slice's model frame -> the same boxes in the window's (clipped to it)."""
        inner = Frame(self.shape, size)
        origin = np.array([self.cols.start, self.rows.start] * 2, dtype=np.float32)
        limit = np.array([self.shape[1], self.shape[0]] * 2, dtype=np.float32) * inner.scale
        moved: dict[int, NDArray[np.float32]] = {}
        for cls, box in boxes.items():
            inside = np.clip((box / whole.scale - origin) * inner.scale, 0.0, limit)
            if min(inside[2] - inside[0], inside[3] - inside[1]) >= MIN_BOX_PX:
                moved[cls] = inside.astype(np.float32)
        return moved


def joint_window(
    winner: NDArray[np.uint8],
    spacing_mm: tuple[float, float],
    size: int,
    pixel_mm: float,
    most_of_slice: float = MOST_OF_SLICE,
) -> Window | None:
    """The square window (mm) around the first pass's cartilage and menisci, ``None`` when there is no
    cartilage or the window would span ``most_of_slice`` of the slice or more.

    Its side is ``size`` model pixels of ``pixel_mm``, or larger when the tissues and margin need more
    room; it is shifted, not shrunk, to stay inside the slice.
    """
    present = np.isin(winner, [int(c) + 1 for c in JOINT_CLASSES])
    if not present.any():
        return None
    spacing = np.asarray(spacing_mm, dtype=float)
    where = np.argwhere(present)[:, 1:]
    # percentiles of the voxels, not the extremes: a stray blob of the first pass on a few slices (before
    # the 3D clean-up) must not stretch the window
    low = np.percentile(where, OUTLIER_PERCENT, axis=0) * spacing - MARGIN_MM
    high = (np.percentile(where, 100 - OUTLIER_PERCENT, axis=0) + 1) * spacing + MARGIN_MM
    side_mm = max(float((high - low).max()), size * pixel_mm)
    extent = np.array(present.shape[1:])
    side = np.minimum(np.round(side_mm / spacing).astype(int), extent)
    if side.max() >= most_of_slice * extent.max():  # the model frame scales by the longest side
        return None
    centre = (low + high) / 2 / spacing
    start = np.clip(np.round(centre - side / 2).astype(int), 0, extent - side)
    return Window(slice(int(start[0]), int(start[0] + side[0])), slice(int(start[1]), int(start[1] + side[1])))
