"""Fine-tuning a SAM (or training the small default from scratch) and the AutoLabel detector on slices.

The recipe is the source paper's: 2D slices, box prompts from the reference masks with a few pixels of
jitter, Dice + binary cross-entropy, the prompt encoder frozen, AdamW with a cosine schedule, early
stopping on validation Dice. Each slice's image embedding is computed once and decoded for all of its
boxes, the same saving the inference chain makes. Domain randomisation (geometry, contrast, noise) is
applied on the fly. Runs are deterministic for a seed on one machine; a checkpoint after every
validation lets an interrupted run resume where it stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.nn import functional as F

from app.log import get_logger
from app.segmentation.architecture import AutoLabelDetector, BoxDecoder, SamConfig, build_sam
from app.segmentation.classes import PromptClass
from app.segmentation.data import SliceSet
from app.segmentation.slices import sam_input

log = get_logger(__name__)
CLASSES = len(PromptClass)


class TrainConfig(BaseModel):
    """Hyper-parameters of one training run (stored in the model card)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: int = Field(default=3000, ge=1)
    batch_size: int = Field(default=6, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0)
    detector_learning_rate: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    warmup_steps: int = Field(default=100, ge=0)
    box_jitter_px: float = Field(default=3.0, ge=0, description="uniform jitter of each box edge, model pixels")
    freeze_prompt_encoder: bool = True
    train_detector: bool = Field(
        default=True, description="False keeps the detector as loaded (a SAM fine-tune that trusts its boxes)"
    )
    validate_every: int = Field(default=200, ge=1)
    patience: int = Field(default=5, ge=1, description="validations without improvement before stopping")
    seed: int = 0
    minutes: float | None = Field(
        default=None,
        gt=0,
        description="wall-clock budget: after the first steps are timed, the run is shortened to fit it "
        "(the learning-rate schedule with it); the card records the steps actually run",
    )


#: Steps timed before a wall-clock budget fixes the length of the run.
CALIBRATION_STEPS = 50
#: Share of a budget planned for optimisation steps; the rest covers validations and checkpoints.
BUDGET_SHARE = 0.9


@dataclass
class TrainState:
    """What a checkpoint holds besides the weights."""

    step: int = 0
    total_steps: int = 0
    best_dice: float = -1.0
    stale: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def _affine_augment(
    images: torch.Tensor, classes: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random rotation, scale, shift and anterior-posterior flip, the same for image and class map."""
    n = images.shape[0]
    angle = (torch.rand(n, generator=gen) - 0.5) * math.radians(30.0)
    scale = 0.85 + 0.3 * torch.rand(n, generator=gen)
    shift = (torch.rand(n, 2, generator=gen) - 0.5) * 0.16
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, shift[:, 0]], 1), torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(images[:, None].shape), align_corners=False)
    warped = F.grid_sample(images[:, None], grid, mode="bilinear", align_corners=False)[:, 0]
    labels = F.grid_sample(classes[:, None].float(), grid, mode="nearest", align_corners=False)[:, 0]
    return warped, labels.round().to(torch.uint8)


def _intensity_augment(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random gamma, contrast and noise per slice: scanners and protocols differ."""
    n = images.shape[0]
    gamma = torch.exp((torch.rand(n, 1, 1, generator=gen) - 0.5) * 0.9)
    out = images.clamp(0, 1) ** gamma
    out = out * (0.7 + 0.6 * torch.rand(n, 1, 1, generator=gen)) + (torch.rand(n, 1, 1, generator=gen) - 0.5) * 0.2
    out = out + torch.randn(out.shape, generator=gen) * 0.04 * torch.rand(n, 1, 1, generator=gen)
    return out.clamp(0, 1)


def class_boxes(classes: torch.Tensor, jitter: float, gen: torch.Generator | None) -> tuple[list[int], torch.Tensor]:
    """Box prompts (x0, y0, x1, y1) of every prompt class present in one (S, S) class map."""
    present: list[int] = []
    boxes: list[list[float]] = []
    size = classes.shape[-1]
    for cls in range(CLASSES):
        rows, cols = torch.nonzero(classes == cls + 1, as_tuple=True)
        if rows.numel() < 4:
            continue
        box = torch.tensor([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=torch.float32)
        if gen is not None and jitter > 0:
            box = box + (torch.rand(4, generator=gen) - 0.5) * 2 * jitter
        present.append(cls)
        boxes.append(box.clamp(0, size).tolist())
    return present, torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)


def dice_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice + binary cross-entropy, averaged over masks (the paper's loss)."""
    prob = torch.sigmoid(logits).flatten(1)
    flat = target.flatten(1)
    dice = 1 - (2 * (prob * flat).sum(1) + 1) / (prob.sum(1) + flat.sum(1) + 1)
    return dice.mean() + F.binary_cross_entropy_with_logits(logits, target)


def detector_targets(classes: torch.Tensor) -> torch.Tensor:
    """(B, S, S) class maps -> (B, classes, S/4, S/4): a cell is positive when any of its pixels is."""
    onehot = torch.stack([(classes == cls + 1).float() for cls in range(CLASSES)], 1)
    return F.max_pool2d(onehot, 4)


class Trainer:
    """Trains one SAM + detector pair on a training and a validation :class:`SliceSet`.

    Batches are drawn and augmented on the CPU (one seeded generator, so a seed gives the same run on any
    device); the networks run on ``device``.
    """

    def __init__(
        self,
        sam_config: SamConfig,
        config: TrainConfig,
        sam_state: dict | None = None,
        device: str | torch.device = "cpu",
        detector_state: dict | None = None,
    ) -> None:
        torch.manual_seed(config.seed)
        self.config = config
        self.sam_config = sam_config
        self.device = torch.device(device)
        self.sam = build_sam(sam_config)
        if sam_state is not None:
            self.sam.load_state_dict(sam_state)
        self.sam.to(self.device)
        self.decoder = BoxDecoder(self.sam)
        self.detector = AutoLabelDetector()
        if detector_state is not None:
            self.detector.load_state_dict(detector_state)
        self.detector.to(self.device)
        if config.freeze_prompt_encoder:
            self.sam.prompt_encoder.requires_grad_(False)
        if not config.train_detector:
            self.detector.requires_grad_(False)
        trainable = [p for p in self.sam.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            [
                {"params": trainable, "lr": config.learning_rate},
                {
                    "params": [p for p in self.detector.parameters() if p.requires_grad],
                    "lr": config.detector_learning_rate,
                },
            ],
            weight_decay=config.weight_decay,
        )
        self.state = TrainState(total_steps=config.steps)
        self.generator = torch.Generator().manual_seed(config.seed)

    def _lr_factor(self, step: int) -> float:
        warm = self.config.warmup_steps
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, self.state.total_steps - warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    def _batch(self, data: SliceSet) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(len(data), (self.config.batch_size,), generator=self.generator).numpy()
        images = torch.from_numpy(data.images[index].astype(np.float32))
        classes = torch.from_numpy(data.classes[index])
        images, classes = _affine_augment(images, classes, self.generator)
        return _intensity_augment(images, self.generator), classes

    def _prompts(
        self, classes: torch.Tensor, jitter: float, gen: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every box of a batch of (B, S, S) class maps: (slice index, class index, box), on the device."""
        index: list[int] = []
        present: list[int] = []
        boxes: list[torch.Tensor] = []
        for k in range(classes.shape[0]):
            found, slice_boxes = class_boxes(classes[k], jitter, gen)
            index += [k] * len(found)
            present += found
            boxes.append(slice_boxes)
        as_device = partial(torch.tensor, dtype=torch.long, device=self.device)
        return as_device(index), as_device(present), torch.cat(boxes).to(self.device)

    def _masks(
        self, images: torch.Tensor, classes: torch.Tensor, jitter: float, gen: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Mask logits of every box of a batch (images on the device, class maps on the CPU), decoded in
        one call, with their targets (or None)."""
        index, present, boxes = self._prompts(classes, jitter, gen)
        embeddings = self.sam.image_encoder(sam_input(images))
        if index.numel() == 0:
            return None
        logits = self.decoder.forward_pairs(embeddings.index_select(0, index), boxes)  # deterministic backward
        target = (classes.to(self.device)[index] == (present + 1)[:, None, None]).float()[:, None]
        return logits, target, present

    def _sam_loss(self, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        masks = self._masks(images, classes, self.config.box_jitter_px, self.generator)
        if masks is None:  # no tissue in any slice of the batch: nothing for the SAM to learn
            return torch.zeros((), device=self.device)
        logits, target, _ = masks
        if target.shape[-1] != logits.shape[-1]:
            target = F.interpolate(target, size=logits.shape[-2:], mode="area").round()
        return dice_bce(logits, target)

    def step(self, data: SliceSet) -> dict[str, float]:
        """One optimisation step on a random augmented batch."""
        self.sam.train()
        self.detector.train()
        for group, base in zip(
            self.optimizer.param_groups, (self.config.learning_rate, self.config.detector_learning_rate), strict=True
        ):
            group["lr"] = base * self._lr_factor(self.state.step)
        images, classes = self._batch(data)
        images = images.to(self.device)
        total = sam_loss = self._sam_loss(images, classes)
        losses = {"sam_loss": sam_loss.item()}
        if self.config.train_detector:
            det_logits = self.detector(images[:, None])
            det_target = detector_targets(classes.to(self.device))
            det_loss = dice_bce(det_logits.flatten(0, 1), det_target.flatten(0, 1))
            total = sam_loss + det_loss
            losses["detector_loss"] = det_loss.item()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.state.step += 1
        return losses

    @torch.no_grad()
    def validate(self, data: SliceSet, batch: int = 16) -> dict[str, float]:
        """Dice per prompt class with reference boxes (no jitter), and the detector's cell Dice."""
        self.sam.eval()
        self.detector.eval()
        inter = np.zeros(CLASSES)
        total = np.zeros(CLASSES)
        det_inter = det_total = 0.0
        for start in range(0, len(data), batch):
            images = torch.from_numpy(data.images[start : start + batch].astype(np.float32)).to(self.device)
            classes = torch.from_numpy(data.classes[start : start + batch])
            masks = self._masks(images, classes, 0.0, None)
            if masks is not None:
                logits, target, present = masks
                pred = (F.interpolate(logits, size=target.shape[-2:], mode="bilinear") > 0).flatten(1)
                truth = (target > 0.5).flatten(1)
                inter += _per_class(present, (pred & truth).sum(1))
                total += _per_class(present, pred.sum(1) + truth.sum(1))
            det = torch.sigmoid(self.detector(images[:, None])) > 0.5
            target = detector_targets(classes.to(self.device)) > 0.5
            det_inter += float((det & target).sum())
            det_total += float(det.sum() + target.sum())
        dice = {PromptClass(c).name.lower(): float(2 * inter[c] / total[c]) for c in range(CLASSES) if total[c] > 0}
        dice["mean"] = float(np.mean(list(dice.values())))
        dice["detector"] = 2 * det_inter / max(det_total, 1.0)
        return dice

    def fit(
        self,
        train: SliceSet,
        validation: SliceSet,
        checkpoint: Path,
        on_step: Callable[[TrainState, dict[str, float]], None] | None = None,
        weights_dir: Path | None = None,
    ) -> TrainState:
        """Train until ``steps`` (or the time budget) or early stopping; the best weights go to
        ``weights_dir`` (default: beside ``checkpoint``) as safetensors."""
        started, first = time.monotonic(), self.state.step
        while self.state.step < self.state.total_steps:
            losses = self.step(train)
            if on_step:
                on_step(self.state, losses)
            if self.config.minutes is not None and self.state.step == first + CALIBRATION_STEPS:
                self._fit_budget(time.monotonic() - started)
            if self.state.step % self.config.validate_every == 0 or self.state.step == self.state.total_steps:
                scores = self.validate(validation)
                self.state.history.append({"step": float(self.state.step), **losses, **scores})
                improved = scores["mean"] > self.state.best_dice
                self.state.best_dice = max(self.state.best_dice, scores["mean"])
                self.state.stale = 0 if improved else self.state.stale + 1
                log.info(
                    "validation", step=self.state.step, improved=improved, **{k: round(v, 4) for k, v in scores.items()}
                )
                if improved:
                    save_weights(self, weights_dir or checkpoint.parent)
                self.save(checkpoint)
                if self.state.stale >= self.config.patience:
                    log.info("early stopping", step=self.state.step, best_dice=round(self.state.best_dice, 4))
                    break
        return self.state

    def _fit_budget(self, elapsed_s: float) -> None:
        """Shorten the run so that it ends within ``minutes``, judged by the calibration steps' pace."""
        assert self.config.minutes is not None
        per_step = elapsed_s / CALIBRATION_STEPS
        affordable = self.state.step + int((self.config.minutes * 60 * BUDGET_SHARE - elapsed_s) / per_step)
        self.state.total_steps = max(self.state.step, min(self.state.total_steps, affordable))
        log.info("time budget", seconds_per_step=round(per_step, 4), total_steps=self.state.total_steps)

    def save(self, path: Path) -> None:
        """Everything needed to resume (tensors and plain values only: loads with weights_only=True)."""
        torch.save(
            {
                "sam": self.sam.state_dict(),
                "detector": self.detector.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(),
                "state": {
                    "step": self.state.step,
                    "total_steps": self.state.total_steps,
                    "best_dice": self.state.best_dice,
                    "stale": self.state.stale,
                },
                "history": self.state.history,
            },
            path,
        )

    def resume(self, path: Path) -> None:
        """Continue a run from :meth:`save`'s checkpoint."""
        saved = torch.load(path, weights_only=True, map_location=self.device)
        self.sam.load_state_dict(saved["sam"])
        self.detector.load_state_dict(saved["detector"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.generator.set_state(saved["generator"].cpu())
        # checkpoints from before time budgets hold no total_steps: the configured length applies
        self.state = TrainState(**{"total_steps": self.config.steps, **saved["state"]}, history=list(saved["history"]))


def _per_class(classes: torch.Tensor, values: torch.Tensor) -> np.ndarray:
    """Sum of ``values`` per prompt class (one value per mask, ``classes`` its class)."""
    return np.bincount(classes.cpu().numpy(), weights=values.double().cpu().numpy(), minlength=CLASSES)


def save_weights(trainer: Trainer, directory: Path) -> None:
    """The current SAM and detector weights as safetensors (what a model folder ships)."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    for name, module in (("sam", trainer.sam), ("detector", trainer.detector)):
        state = {key: value.detach().cpu().contiguous() for key, value in module.state_dict().items()}
        save_file(state, directory / f"{name}.safetensors")
