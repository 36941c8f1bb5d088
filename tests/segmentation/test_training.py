"""Training runs: the loss falls, an interrupted run resumes to the very same weights, folders load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.imaging.phantom import PROTOCOLS
from app.segmentation.architecture import SamConfig
from app.segmentation.card import read_card
from app.segmentation.data import SliceSet, phantom_slices, volume_slices
from app.segmentation.recipe import TrainingData
from app.segmentation.training import TrainConfig, Trainer
from app.segmentation.training_run import train_model

#: A SAM small enough to train for a few steps in a test.
MICRO = SamConfig(
    image_size=64,
    patch_size=4,
    encoder_embed_dim=32,
    encoder_depth=1,
    encoder_num_heads=2,
    window_size=4,
    prompt_embed_dim=32,
    decoder_depth=1,
    decoder_mlp_dim=64,
    decoder_num_heads=2,
)


@pytest.fixture(scope="module")
def slices() -> SliceSet:
    every = phantom_slices(1, MICRO.image_size, PROTOCOLS["dess-small"])
    return SliceSet(every.images[::3], every.classes[::3])  # a third of the slices: faster validations


def test_phantom_slices_hold_every_prompt_class_in_the_model_frame(slices: SliceSet) -> None:
    assert slices.images.shape[1:] == (64, 64) and slices.images.dtype == np.float16
    assert float(slices.images.min()) >= 0.0 and float(slices.images.max()) <= 1.0
    assert set(np.unique(slices.classes)) == set(range(8))  # background + 7 prompt classes


def test_slices_need_image_and_labels_on_one_grid() -> None:
    with pytest.raises(ValueError, match="not on one grid"):
        volume_slices(np.zeros((3, 8, 8)), np.zeros((3, 8, 9), np.int16), 64)


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {**trainer.sam.state_dict(), **{f"d.{k}": v for k, v in trainer.detector.state_dict().items()}}


def test_an_interrupted_run_resumes_to_the_same_weights(slices: SliceSet, tmp_path: Path) -> None:
    config = TrainConfig(steps=4, batch_size=2, validate_every=2, warmup_steps=1, seed=3)
    straight = Trainer(MICRO, config)
    straight.fit(slices, slices, tmp_path / "a" / "checkpoint.pt")

    class Interrupted(Exception):
        pass

    def stop_after_checkpoint(step: int, losses: dict[str, float]) -> None:
        if step == 3:
            raise Interrupted

    first = Trainer(MICRO, config)
    with pytest.raises(Interrupted):
        first.fit(slices, slices, tmp_path / "b" / "checkpoint.pt", stop_after_checkpoint)
    resumed = Trainer(MICRO, config)
    resumed.resume(tmp_path / "b" / "checkpoint.pt")
    assert resumed.state.step == 2
    resumed.fit(slices, slices, tmp_path / "b" / "checkpoint.pt")
    for name, value in _weights(straight).items():
        assert torch.equal(value, _weights(resumed)[name]), name
    assert [row["step"] for row in resumed.state.history] == [2.0, 4.0]


def test_the_loss_falls_on_a_fixed_batch(slices: SliceSet) -> None:
    trainer = Trainer(MICRO, TrainConfig(steps=30, batch_size=4, warmup_steps=1, learning_rate=3e-3, seed=0))
    busiest = np.argsort((slices.classes > 0).sum(axis=(1, 2)))[-4:]  # slices through the joint
    few = SliceSet(slices.images[busiest], slices.classes[busiest])
    losses = [trainer.step(few)["sam_loss"] for _ in range(30)]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


def test_a_training_run_writes_a_complete_model_folder(slices: SliceSet, tmp_path: Path) -> None:
    config = TrainConfig(steps=2, batch_size=2, validate_every=1, warmup_steps=1)
    card = train_model(tmp_path / "m", "micro", "0.0.1", MICRO, config, (slices, slices), TrainingData(phantoms=1))
    assert set(card.files) == {"sam", "detector", "encoder_onnx", "decoder_onnx", "detector_onnx"}
    assert read_card(tmp_path / "m") == card
    assert card.training["steps_run"] == 2 and card.training["recipe"]["freeze_prompt_encoder"] is True
    assert set(card.metrics["validation_dice_best"]) >= {"mean", "detector", "femur"}
