"""The chain on the shipped default model, and a site's own SAM ViT-B checkpoint plugged in by configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.imaging.phantom import PROTOCOLS, generate_phantom
from app.segmentation import Segmenter
from app.segmentation.architecture import SamConfig, build_sam
from app.segmentation.card import SegmentationCard, read_card, segmentation_versions
from app.segmentation.export import write_card
from app.settings import Settings
from schemas.labels import Label
from schemas.volume import Volume


@pytest.fixture(scope="module")
def small_knee() -> tuple[Volume, Volume]:
    """A small held-out phantom (seed >= 9000, published protocol shrunk): image echo 0 and its labels."""
    phantom = generate_phantom(9100, "left", 2, [PROTOCOLS["dess-small"]])
    return phantom.images["dess-small"].volume(0), phantom.labels


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))


@pytest.mark.slow
def test_default_model_segments_a_held_out_phantom_on_both_runtimes(small_knee: tuple[Volume, Volume]) -> None:
    image, truth = small_knee
    onnx = Segmenter.from_settings(Settings(), runtime="onnx").segment(image, "left")
    torch_result = Segmenter.from_settings(Settings(), runtime="torch").segment(image, "left")
    assert onnx.labels.shape == image.shape and np.allclose(onnx.labels.affine, image.affine)
    agreement = (onnx.labels.array == torch_result.labels.array).mean()
    assert agreement > 0.999  # the runtimes differ only by float rounding at mask edges
    for label in (Label.FEMUR, Label.TIBIA):
        assert _dice(onnx.labels.array == label, truth.array == label) > 0.8, label.name
    assert set(onnx.confidence) >= {"femur", "tibia", "femoral_cartilage"}
    assert all(0.0 <= value <= 1.0 for value in onnx.confidence.values())
    assert set(onnx.timings_s) == {"detector", "encoder", "decoder", "joint", "postprocess"}


def test_model_versions_come_from_the_card_without_torch_weights() -> None:
    versions = segmentation_versions(Settings())
    card = read_card(Path(__file__).resolve().parents[2] / "models" / "knee-sam-tiny")
    assert versions == {card.name: card.version}


@pytest.mark.slow
def test_a_site_sam_vit_b_checkpoint_is_used_when_configured(small_knee: tuple[Volume, Volume], tmp_path: Path) -> None:
    """A randomly initialised ViT-B saved as SAM's own .pth (a state dict), a card, MSKCDS_MODEL_DIR: it runs."""
    folder = tmp_path / "site-sam-vit-b"
    folder.mkdir()
    torch.manual_seed(0)
    torch.save(build_sam(SamConfig.vit_b()).state_dict(), folder / "sam_vit_b.pth")
    card = SegmentationCard(
        name="site-sam-vit-b",
        version="2026.11",
        architecture=SamConfig.vit_b().model_dump(mode="json"),
        files={},
        detector_from="knee-sam-tiny",
    )
    write_card(folder, card, {"sam": "sam_vit_b.pth"})
    settings = Settings(model_dir=tmp_path, segmentation_model="site-sam-vit-b", segmentation_runtime="torch")
    segmenter = Segmenter.from_settings(settings)
    assert segmenter.networks.config == SamConfig.vit_b()
    assert set(segmenter.model_versions) == {"site-sam-vit-b", "knee-sam-tiny"}
    image, _ = small_knee
    middle = image.shape[0] // 2
    affine = image.affine.copy()
    affine[:3, 3] += affine[:3, 0] * (middle - 2)
    crop = Volume(image.array[middle - 2 : middle + 2], affine)  # 4 slices: ViT-B on a CPU is slow
    result = segmenter.segment(crop, "left")
    assert result.labels.shape == crop.shape
    assert result.labels.array.dtype == np.uint8
