"""The segmentation chain: AutoLabel boxes -> SAM masks -> 3D clean-up -> a label map in the project's convention.

Unlike the source paper's code, which runs the image encoder once per box, each slice is encoded once
(in batches) and that embedding is decoded for all of the slice's boxes; the detector runs on the same
batches. Masks are brought back to each slice's own grid from the model frame (averaged over the card's
test-time views, :mod:`app.segmentation.views`), and tissues are merged by taking, voxel by voxel, the
class with the highest mask logit, so no voxel carries two labels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from app.log import get_logger
from app.segmentation.card import configured_model
from app.segmentation.classes import PromptClass
from app.segmentation.joint import Window, joint_window
from app.segmentation.networks import Networks, Runtime, load_networks
from app.segmentation.postprocess import clean, close_interfaces, to_labels
from app.segmentation.prompts import consistent, slice_boxes
from app.segmentation.slices import Frame, normalise_volume, to_model
from app.segmentation.views import View, average
from app.settings import Settings, get_settings
from schemas.labels import Label
from schemas.volume import Volume

log = get_logger(__name__)


class SegmentationError(ValueError):
    """An image the chain cannot segment (wrong dimensions, nothing detected); the message says why."""


@dataclass(frozen=True)
class Segmentation:
    """A label map on the image's grid, how sure the model was of each label, and where the time went."""

    labels: Volume
    confidence: dict[str, float]
    timings_s: dict[str, float] = field(default_factory=dict)


class Segmenter:
    """A configured model (registry + card) ready to segment knee volumes."""

    def __init__(
        self,
        networks: Networks,
        model_versions: dict[str, str],
        batch: int = 8,
        joint_pixel_mm: float | None = None,
        views: tuple[View, ...] = (View(),),
    ) -> None:
        self.networks = networks
        self.model_versions = model_versions
        self.batch = batch
        self.joint_pixel_mm = joint_pixel_mm  # None: one pass over whole slices (app.segmentation.joint)
        self.views = views  # each slice is decoded once per view and the views' logits averaged

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, runtime: Runtime | None = None) -> Segmenter:
        """The model MSKCDS_SEGMENTATION_MODEL from MSKCDS_MODEL_DIR (or models/), on the configured runtime."""
        settings = settings or get_settings()
        model = configured_model(settings)
        runtime = runtime or settings.segmentation_runtime
        networks = load_networks(model.folder, model.card, (model.detector_folder, model.detector_card), runtime)
        log.info("segmentation model loaded", model=model.card.name, version=model.card.version, runtime=runtime)
        views = tuple(View.model_validate(view.model_dump()) for view in model.card.test_time_views)
        return cls(networks, model.versions, settings.segmentation_batch, model.card.joint_pass_pixel_mm, views)

    def segment(self, image: Volume, laterality: Literal["left", "right"], *, progress: bool = False) -> Segmentation:
        """Segment ``image`` slice by slice along axis 0 (sagittal for the knee protocols it was trained on)."""
        if min(image.shape) < 2:
            raise SegmentationError(f"image of shape {image.shape} is not a 3D volume")
        size = self.networks.config.image_size
        frame = Frame(tuple(image.shape[1:]), size)  # type: ignore[arg-type]
        normalised = normalise_volume(image.array)
        best = np.full(image.shape, -np.inf, dtype=np.float32)
        winner = np.zeros(image.shape, dtype=np.uint8)
        timings = dict.fromkeys(("detector", "encoder", "decoder", "joint", "postprocess"), 0.0)

        starts = list(range(0, image.shape[0], self.batch))
        batches = [to_model(normalised[s : s + self.batch], size).numpy() for s in starts]
        objectness: list[NDArray[np.float32]] = []
        with _progress(progress, "detecting", len(batches)) as advance:
            for batch in batches:
                began = time.perf_counter()
                objectness.extend(self.networks.detect(batch))
                timings["detector"] += time.perf_counter() - began
                advance()
        stride = size // objectness[0].shape[-1]
        boxes = consistent([slice_boxes(o, stride) for o in objectness])
        if not any(boxes):
            raise SegmentationError("the detector found no knee tissue in any slice: is this a knee MRI?")

        with _progress(progress, "segmenting", len(batches)) as advance:
            for start, batch in zip(starts, batches, strict=True):
                wanted = [k for k in range(len(batch)) if boxes[start + k]]
                if wanted:
                    began = time.perf_counter()
                    embeddings = self._encode(normalised[[start + k for k in wanted]], size)
                    timings["encoder"] += time.perf_counter() - began
                    began = time.perf_counter()
                    for row, k in enumerate(wanted):
                        self._decode(embeddings, row, boxes[start + k], frame, best[start + k], winner[start + k])
                    timings["decoder"] += time.perf_counter() - began
                advance()

        window = None
        if self.joint_pixel_mm is not None:
            window = joint_window(winner, image.spacing_mm[1:], size, self.joint_pixel_mm)  # type: ignore[arg-type]
        if window is not None:
            began = time.perf_counter()
            self._joint_pass(normalised, [window.move(b, frame, size) for b in boxes], window, best, winner, progress)
            timings["joint"] = time.perf_counter() - began

        began = time.perf_counter()
        classes = close_interfaces(clean(np.where(best > 0, winner, 0).astype(np.uint8)))
        labels = to_labels(classes, image, laterality)
        confidence = _confidence(labels, best)
        timings["postprocess"] = time.perf_counter() - began
        log.info("segmented", slices=image.shape[0], **{f"{k}_s": round(v, 3) for k, v in timings.items()})
        return Segmentation(image.with_array(labels), confidence, timings)

    def _joint_pass(
        self,
        normalised: NDArray[np.float32],
        boxes: list[dict[int, NDArray[np.float32]]],
        window: Window,
        best: NDArray[np.float32],
        winner: NDArray[np.uint8],
        progress: bool,
    ) -> None:
        """Re-segment ``window`` of every slice with ``boxes`` (already in the window's frame), replacing the
        first pass there; ``best`` / ``winner`` are updated through views of the window."""
        size = self.networks.config.image_size
        frame = Frame(window.shape, size)
        crop = normalised[:, window.rows, window.cols]
        region_best, region_winner = best[:, window.rows, window.cols], winner[:, window.rows, window.cols]
        starts = list(range(0, len(crop), self.batch))
        with _progress(progress, "refining the joint", len(starts)) as advance:
            for start in starts:
                wanted = [k for k in range(start, min(start + self.batch, len(crop))) if boxes[k]]
                if wanted:
                    embeddings = self._encode(crop[wanted], size)
                    for row, k in enumerate(wanted):
                        region_best[k] = -np.inf
                        region_winner[k] = 0
                        self._decode(embeddings, row, boxes[k], frame, region_best[k], region_winner[k])
                advance()

    def _encode(self, slices: NDArray[np.float32], size: int) -> list[NDArray[np.float32]]:
        """Image embeddings of normalised slices (their own grid), one array per view."""
        return [self.networks.encode(view.show(slices, size)) for view in self.views]

    def _decode(
        self,
        embeddings: list[NDArray[np.float32]],
        row: int,
        boxes: dict[int, NDArray[np.float32]],
        frame: Frame,
        best: NDArray[np.float32],
        winner: NDArray[np.uint8],
    ) -> None:
        """Decode one slice's boxes in every view, average the logits on the slice's grid, and keep, per
        pixel, the class with the highest mean logit."""
        order = sorted(boxes)
        prompts = np.stack([boxes[c] for c in order]).astype(np.float32)
        logits = average(
            (
                view.restore(self.networks.decode(embedding[row : row + 1], view.boxes(prompts, frame))[0], frame)
                for view, embedding in zip(self.views, embeddings, strict=True)
            ),
            frame.shape,
        )
        for cls, logit in zip(order, logits, strict=True):
            better = logit > best
            best[better] = logit[better]
            winner[better] = cls + 1


def _confidence(labels: NDArray[np.uint8], best: NDArray[np.float32]) -> dict[str, float]:
    """Mean mask probability inside each label: low values flag a tissue the model was unsure of."""
    probability = 1.0 / (1.0 + np.exp(-np.clip(best, -30, 30)))
    return {
        Label(int(value)).name.lower(): round(float(probability[labels == value].mean()), 4)
        for value in np.unique(labels)
        if value
    }


@contextmanager
def _progress(enabled: bool, what: str, total: int) -> Iterator[Callable[[], None]]:
    """Yields ``advance()``: a rich progress bar over batches when asked (CLI), nothing otherwise (service)."""
    if not enabled:
        yield lambda: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task(what, total=total)
        yield lambda: progress.advance(task)


__all__ = ["PromptClass", "Segmentation", "SegmentationError", "Segmenter"]
