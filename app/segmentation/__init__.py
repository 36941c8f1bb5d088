"""Knee segmentation: AutoLabel box prompts + a SAM-family segmenter (see ``docs/segmentation.md``).

``Segmenter`` and ``Segmentation`` are imported lazily: API pods import :mod:`app.segmentation.card`
(model versions) and have no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.segmentation.chain import Segmentation, SegmentationError, Segmenter

__all__ = ["Segmentation", "SegmentationError", "Segmenter"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from app.segmentation import chain

        return getattr(chain, name)
    raise AttributeError(f"module 'app.segmentation' has no attribute {name!r}")
