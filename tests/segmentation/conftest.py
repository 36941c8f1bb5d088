"""Model folders for tests: randomly initialised networks written the way a trained model is."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from app.segmentation.architecture import AutoLabelDetector, SamConfig, build_sam
from app.segmentation.card import SegmentationCard
from app.segmentation.export import export_onnx, write_card


def random_model_folder(folder: Path, name: str = "random-tiny", seed: int = 0) -> Path:
    """A tiny SAM + detector with random weights, card and ONNX export: the chain's plumbing, no skill."""
    torch.manual_seed(seed)
    folder.mkdir(parents=True)
    config = SamConfig.tiny()
    save_file(build_sam(config).state_dict(), folder / "sam.safetensors")
    save_file(AutoLabelDetector().state_dict(), folder / "detector.safetensors")
    card = SegmentationCard(name=name, version="0.0.1", architecture=config.model_dump(mode="json"), files={})
    write_card(folder, card, {"sam": "sam.safetensors", "detector": "detector.safetensors"})
    export_onnx(folder)
    return folder


@pytest.fixture(scope="session")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory (MSKCDS_MODEL_DIR) holding ``random-tiny``."""
    root = tmp_path_factory.mktemp("models")
    random_model_folder(root / "random-tiny")
    return root
