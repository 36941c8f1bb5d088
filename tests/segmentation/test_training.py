"""Training runs: the loss falls, an interrupted run resumes to the very same weights, folders load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.imaging.phantom import PROTOCOLS
from app.segmentation.architecture import SamConfig
from app.segmentation.card import read_card
from app.segmentation.data import SliceSet, phantom_slices, training_slices
from app.segmentation.recipe import TrainingData
from app.segmentation.training import TrainConfig, Trainer, TrainState
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
        training_slices(np.zeros((3, 8, 8)), np.zeros((3, 8, 9), np.int16), 64, [0], (1.0, 1.0))


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {**trainer.sam.state_dict(), **{f"d.{k}": v for k, v in trainer.detector.state_dict().items()}}


def test_an_interrupted_run_resumes_to_the_same_weights(slices: SliceSet, tmp_path: Path) -> None:
    config = TrainConfig(steps=4, batch_size=2, validate_every=2, warmup_steps=1, seed=3)
    straight = Trainer(MICRO, config)
    straight.fit(slices, slices, tmp_path / "a" / "checkpoint.pt")

    class Interrupted(Exception):
        pass

    def stop_after_checkpoint(state: TrainState, losses: dict[str, float]) -> None:
        if state.step == 3:
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
    data = TrainingData(phantoms=1, joint_pass_pixel_mm=0.4)
    card = train_model(tmp_path / "m", "micro", "0.0.1", MICRO, config, (slices, slices), data)
    assert card.joint_pass_pixel_mm == 0.4  # the chain makes the second pass the model was trained for
    assert set(card.files) == {"sam", "detector", "encoder_onnx", "decoder_onnx", "detector_onnx"}
    assert read_card(tmp_path / "m") == card
    assert card.training["steps_run"] == 2 and card.training["recipe"]["freeze_prompt_encoder"] is True
    assert set(card.metrics["validation_dice_best"]) >= {"mean", "detector", "femur"}


def test_a_time_budget_shortens_the_run_and_its_schedule(slices: SliceSet, tmp_path: Path) -> None:
    """A lent GPU gives minutes, not steps: the timed first steps fix a run length that fits the budget."""
    from app.segmentation.training import CALIBRATION_STEPS

    few = SliceSet(slices.images[:8], slices.classes[:8])
    config = TrainConfig(steps=100_000, batch_size=1, validate_every=10_000, warmup_steps=1, minutes=1e-4)
    trainer = Trainer(MICRO, config)
    assert trainer._lr_factor(CALIBRATION_STEPS) > 0.99  # planned for 100 000 steps
    state = trainer.fit(few, few, tmp_path / "checkpoint.pt")
    assert state.step == state.total_steps == CALIBRATION_STEPS  # 6 ms do not buy one step more
    assert [row["step"] for row in state.history] == [float(CALIBRATION_STEPS)]  # validated at the end
    assert trainer._lr_factor(CALIBRATION_STEPS) == pytest.approx(0.0)  # the schedule ended with it
    resumed = Trainer(MICRO, config)
    resumed.resume(tmp_path / "checkpoint.pt")
    assert resumed.state.total_steps == CALIBRATION_STEPS


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on the lent GPU machine)")
def test_training_on_a_gpu_matches_the_cpu_batch_for_batch(slices: SliceSet, tmp_path: Path) -> None:
    """Batches come from one CPU generator, so a seed gives the same first losses on either device."""
    config = TrainConfig(steps=3, batch_size=2, warmup_steps=1, seed=5)
    cpu, gpu = Trainer(MICRO, config), Trainer(MICRO, config, device="cuda")
    for _ in range(3):
        on_cpu, on_gpu = cpu.step(slices), gpu.step(slices)
        assert on_gpu["sam_loss"] == pytest.approx(on_cpu["sam_loss"], rel=1e-2)


def test_train_seg_says_so_when_preparing_slices_spent_the_whole_budget(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from app.cli import cli

    args = ["train-seg", "--out", str(tmp_path / "m"), "--phantoms", "1", "--validation-phantoms", "1"]
    result = CliRunner().invoke(cli, [*args, "--minutes", "0.01"])
    assert result.exit_code == 1
    assert "nothing is left to train" in result.output
    assert not (tmp_path / "m").exists()  # no half-written model folder


def test_a_fine_tune_starts_from_a_given_detector_and_can_leave_it_untouched(slices: SliceSet) -> None:
    """A SAM fine-tune on a CPU need not spend its steps re-learning boxes the detector already draws."""
    base = Trainer(MICRO, TrainConfig(steps=2, batch_size=2, warmup_steps=1, seed=1))
    base.step(slices)
    detector = {k: v.clone() for k, v in base.detector.state_dict().items()}
    sam = {k: v.clone() for k, v in base.sam.state_dict().items()}
    config = TrainConfig(steps=3, batch_size=2, warmup_steps=1, seed=2, train_detector=False)
    tuned = Trainer(MICRO, config, sam, detector_state=detector)
    losses = [tuned.step(slices) for _ in range(3)]
    assert all(set(row) == {"sam_loss"} for row in losses)
    for name, value in tuned.detector.state_dict().items():
        assert torch.equal(value, detector[name]), name  # the detector is exactly the one given
    assert any(not torch.equal(v, sam[k]) for k, v in tuned.sam.state_dict().items())  # the SAM learned


def test_phantoms_can_be_drawn_from_chosen_grades(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.segmentation import data

    drawn: list[int] = []
    real = data.generate_phantom

    def recording(seed: int, side: str, grade: int, protocols: list) -> object:
        drawn.append(grade)
        return real(seed, side, grade, protocols)

    monkeypatch.setattr(data, "generate_phantom", recording)
    small = PROTOCOLS["dess-small"]
    for seed in range(4):
        assert len(phantom_slices(seed, 32, small, grades=[3, 4])) > 0
    assert set(drawn) <= {3, 4} and len(set(drawn)) == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"phantoms": 10, "first_seed": 495}, "overlap the validation seeds"),
        ({"phantoms": 10, "first_seed": 8995}, "held-out seeds"),
        ({"phantoms": 1, "grades": [5]}, "grades must be 0-4"),
    ],
)
def test_training_data_keeps_clear_of_validation_and_held_out_phantoms(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainingData(**fields)
    assert TrainingData(phantoms=10, first_seed=100, grades=[3, 4, 4]).first_seed == 100


def test_train_seg_refuses_to_freeze_a_detector_it_was_not_given(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from app.cli import cli

    result = CliRunner().invoke(cli, ["train-seg", "--out", str(tmp_path / "m"), "--freeze-detector"])
    assert result.exit_code == 1
    assert "--detector-from" in result.output
