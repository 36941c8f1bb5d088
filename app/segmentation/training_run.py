"""A whole training run: data, trainer, then a model folder with weights, card and ONNX export.

This is what ``mskcds train-seg`` does; kept apart from the CLI so a test can run it on a tiny budget.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from app.segmentation.architecture import SamConfig
from app.segmentation.card import SegmentationCard
from app.segmentation.data import SliceSet
from app.segmentation.export import export_onnx, write_card
from app.segmentation.networks import read_state
from app.segmentation.recipe import TrainingData
from app.segmentation.training import TrainConfig, Trainer, TrainState

CHECKPOINT = "training/checkpoint.pt"


def train_model(
    out: Path,
    name: str,
    version: str,
    sam_config: SamConfig,
    config: TrainConfig,
    data: tuple[SliceSet, SliceSet],
    data_description: TrainingData,
    from_checkpoint: Path | None = None,
    resume: bool = False,
    on_step: Callable[[TrainState, dict[str, float]], None] | None = None,
    device: str = "cpu",
    detector_from: Path | None = None,
) -> SegmentationCard:
    """Train, then write ``out`` as a model folder (best weights, ONNX graphs, card); the checkpoint stays
    in ``out/training/`` for ``resume``. ``from_checkpoint`` / ``detector_from`` start the SAM / the
    detector from earlier weights (a fine-tune) instead of from scratch."""
    checkpoint = out / CHECKPOINT
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(
        sam_config,
        config,
        read_state(from_checkpoint) if from_checkpoint else None,
        device,
        read_state(detector_from) if detector_from else None,
    )
    if resume and checkpoint.is_file():
        trainer.resume(checkpoint)
    train, validation = data
    state = trainer.fit(train, validation, checkpoint, on_step, weights_dir=out)
    training = {
        "command": shlex.join(["mskcds", *sys.argv[1:]]) if sys.argv and "mskcds" in sys.argv[0] else None,
        "fine_tuned_from": str(from_checkpoint) if from_checkpoint else None,
        "detector_from": str(detector_from) if detector_from else None,
    }
    return package_model(out, name, version, sam_config, config, state, data_description, data, training)


def package_model(
    out: Path,
    name: str,
    version: str,
    sam_config: SamConfig,
    config: TrainConfig,
    state: TrainState,
    data_description: TrainingData,
    data: tuple[SliceSet, SliceSet],
    training: dict,
) -> SegmentationCard:
    """Card + ONNX export for the best weights a run left in ``out`` (``sam`` / ``detector`` safetensors)."""
    best = max(state.history, key=lambda row: row["mean"]) if state.history else {}
    card = SegmentationCard(
        name=name,
        version=version,
        architecture=sam_config.model_dump(mode="json"),
        files={},
        description="SAM-family promptable segmenter with an AutoLabel box detector (msk-cds).",
        joint_pass_pixel_mm=data_description.joint_pass_pixel_mm,
        training={
            **training,
            "data": data_description.model_dump(mode="json"),
            "slices": {"training": len(data[0]), "validation": len(data[1])},
            "recipe": config.model_dump(mode="json"),
            "steps_run": state.step,
            "history": state.history,
        },
        metrics={
            "validation_dice_best": {
                key: round(value, 4) for key, value in best.items() if key not in ("sam_loss", "detector_loss")
            }
        },
    )
    write_card(out, card, {"sam": "sam.safetensors", "detector": "detector.safetensors"})
    return export_onnx(out)
