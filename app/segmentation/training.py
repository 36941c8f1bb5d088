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
from collections.abc import Callable
from dataclasses import dataclass, field
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
    validate_every: int = Field(default=200, ge=1)
    patience: int = Field(default=5, ge=1, description="validations without improvement before stopping")
    seed: int = 0


@dataclass
class TrainState:
    """What a checkpoint holds besides the weights."""

    step: int = 0
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
    """Trains one SAM + detector pair on a training and a validation :class:`SliceSet`."""

    def __init__(self, sam_config: SamConfig, config: TrainConfig, sam_state: dict | None = None) -> None:
        torch.manual_seed(config.seed)
        self.config = config
        self.sam_config = sam_config
        self.sam = build_sam(sam_config)
        if sam_state is not None:
            self.sam.load_state_dict(sam_state)
        self.decoder = BoxDecoder(self.sam)
        self.detector = AutoLabelDetector()
        if config.freeze_prompt_encoder:
            self.sam.prompt_encoder.requires_grad_(False)
        trainable = [p for p in self.sam.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            [
                {"params": trainable, "lr": config.learning_rate},
                {"params": list(self.detector.parameters()), "lr": config.detector_learning_rate},
            ],
            weight_decay=config.weight_decay,
        )
        self.state = TrainState()
        self.generator = torch.Generator().manual_seed(config.seed)

    def _lr_factor(self, step: int) -> float:
        warm = self.config.warmup_steps
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, self.config.steps - warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    def _batch(self, data: SliceSet) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(len(data), (self.config.batch_size,), generator=self.generator).numpy()
        images = torch.from_numpy(data.images[index].astype(np.float32))
        classes = torch.from_numpy(data.classes[index])
        images, classes = _affine_augment(images, classes, self.generator)
        return _intensity_augment(images, self.generator), classes

    def _sam_loss(self, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        embeddings = self.sam.image_encoder(sam_input(images))
        losses = []
        for k in range(images.shape[0]):
            present, boxes = class_boxes(classes[k], self.config.box_jitter_px, self.generator)
            if not present:
                continue
            logits, _ = self.decoder(embeddings[k : k + 1], boxes)
            target = torch.stack([(classes[k] == cls + 1).float() for cls in present])[:, None]
            if target.shape[-1] != logits.shape[-1]:
                target = F.interpolate(target, size=logits.shape[-2:], mode="area").round()
            losses.append(dice_bce(logits, target))
        return torch.stack(losses).mean() if losses else embeddings.sum() * 0.0

    def step(self, data: SliceSet) -> dict[str, float]:
        """One optimisation step on a random augmented batch."""
        self.sam.train()
        self.detector.train()
        for group, base in zip(
            self.optimizer.param_groups, (self.config.learning_rate, self.config.detector_learning_rate), strict=True
        ):
            group["lr"] = base * self._lr_factor(self.state.step)
        images, classes = self._batch(data)
        sam_loss = self._sam_loss(images, classes)
        det_logits = self.detector(images[:, None])
        det_loss = dice_bce(det_logits.flatten(0, 1), detector_targets(classes).flatten(0, 1))
        self.optimizer.zero_grad(set_to_none=True)
        (sam_loss + det_loss).backward()
        self.optimizer.step()
        self.state.step += 1
        return {"sam_loss": sam_loss.item(), "detector_loss": det_loss.item()}

    @torch.no_grad()
    def validate(self, data: SliceSet, batch: int = 16) -> dict[str, float]:
        """Dice per prompt class with reference boxes (no jitter), and the detector's cell Dice."""
        self.sam.eval()
        self.detector.eval()
        inter = np.zeros(CLASSES)
        total = np.zeros(CLASSES)
        det_inter = det_total = 0.0
        for start in range(0, len(data), batch):
            images = torch.from_numpy(data.images[start : start + batch].astype(np.float32))
            classes = torch.from_numpy(data.classes[start : start + batch])
            embeddings = self.sam.image_encoder(sam_input(images))
            for k in range(images.shape[0]):
                present, boxes = class_boxes(classes[k], 0.0, None)
                if not present:
                    continue
                logits, _ = self.decoder(embeddings[k : k + 1], boxes)
                pred = F.interpolate(logits, size=classes.shape[-2:], mode="bilinear")[:, 0] > 0
                for row, cls in enumerate(present):
                    truth = classes[k] == cls + 1
                    inter[cls] += float((pred[row] & truth).sum())
                    total[cls] += float(pred[row].sum() + truth.sum())
            det = torch.sigmoid(self.detector(images[:, None])) > 0.5
            target = detector_targets(classes) > 0.5
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
        on_step: Callable[[int, dict[str, float]], None] | None = None,
        weights_dir: Path | None = None,
    ) -> TrainState:
        """Train until ``steps`` or early stopping; the best weights go to ``weights_dir`` (default: beside
        ``checkpoint``) as safetensors."""
        while self.state.step < self.config.steps:
            losses = self.step(train)
            if on_step:
                on_step(self.state.step, losses)
            if self.state.step % self.config.validate_every == 0 or self.state.step == self.config.steps:
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

    def save(self, path: Path) -> None:
        """Everything needed to resume (tensors and plain values only: loads with weights_only=True)."""
        torch.save(
            {
                "sam": self.sam.state_dict(),
                "detector": self.detector.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(),
                "state": {"step": self.state.step, "best_dice": self.state.best_dice, "stale": self.state.stale},
                "history": self.state.history,
            },
            path,
        )

    def resume(self, path: Path) -> None:
        """Continue a run from :meth:`save`'s checkpoint."""
        saved = torch.load(path, weights_only=True)
        self.sam.load_state_dict(saved["sam"])
        self.detector.load_state_dict(saved["detector"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.generator.set_state(saved["generator"])
        self.state = TrainState(**saved["state"], history=list(saved["history"]))


def save_weights(trainer: Trainer, directory: Path) -> None:
    """The current SAM and detector weights as safetensors (what a model folder ships)."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in trainer.sam.state_dict().items()}, directory / "sam.safetensors")
    save_file({k: v.contiguous() for k, v in trainer.detector.state_dict().items()}, directory / "detector.safetensors")
