"""The three networks of a model folder behind one interface, on torch or ONNX Runtime.

``encode`` / ``detect`` take slices already in the model frame, values in [0, 1]; SAM's pixel
normalisation and the detector's sigmoid are part of the graphs (:class:`EncoderGraph`,
:class:`DetectorGraph`), so the exported ONNX files and the torch modules compute the same function.
Checkpoints load without unpickling: safetensors, or ``torch.load(weights_only=True)`` for the ``.pth``
files SAM and MedSAM are distributed as.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from app.segmentation.architecture import AutoLabelDetector, BoxDecoder, SamConfig, build_sam
from app.segmentation.card import ModelCardError, SegmentationCard, verified_file
from app.segmentation.slices import SAM_PIXEL_MEAN, SAM_PIXEL_STD

Runtime = Literal["onnx", "torch"]


class EncoderGraph(nn.Module):
    """(B, 1, S, S) slices in [0, 1] -> SAM image embeddings (B, C, h, w)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("mean", torch.tensor(SAM_PIXEL_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(SAM_PIXEL_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder((images.expand(-1, 3, -1, -1) * 255.0 - self.mean) / self.std)


class DetectorGraph(nn.Module):
    """(B, 1, S, S) slices in [0, 1] -> objectness probabilities (B, classes, S/4, S/4)."""

    def __init__(self, detector: AutoLabelDetector) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.detector(images))


class Networks(Protocol):
    """What the chain needs from a model, whatever runs it."""

    config: SamConfig

    def detect(self, images: NDArray[np.float32]) -> NDArray[np.float32]: ...

    def encode(self, images: NDArray[np.float32]) -> NDArray[np.float32]: ...

    def decode(self, embedding: NDArray[np.float32], boxes: NDArray[np.float32]) -> tuple[NDArray, NDArray]: ...


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or a weights-only torch file (``{"model": ...}`` wrappers unwrapped)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError and friends for anything not plain tensors
        raise ModelCardError(f"{path} is not a weights-only checkpoint (refusing to unpickle it): {exc}") from exc
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ModelCardError(f"{path} does not hold a state dict")
    return state


class TorchNetworks:
    """The torch modules (training's own code path; also inference without ONNX files)."""

    def __init__(self, config: SamConfig, sam_state: dict, detector_state: dict) -> None:
        self.config = config
        sam = build_sam(config)
        sam.load_state_dict(sam_state)
        detector = AutoLabelDetector()
        detector.load_state_dict(detector_state)
        self.encoder = EncoderGraph(sam.image_encoder).eval()
        self.decoder = BoxDecoder(sam).eval()
        self.detector = DetectorGraph(detector).eval()

    @torch.inference_mode()
    def detect(self, images: NDArray[np.float32]) -> NDArray[np.float32]:
        return self.detector(torch.from_numpy(images)[:, None]).numpy()

    @torch.inference_mode()
    def encode(self, images: NDArray[np.float32]) -> NDArray[np.float32]:
        return self.encoder(torch.from_numpy(images)[:, None]).numpy()

    @torch.inference_mode()
    def decode(self, embedding: NDArray[np.float32], boxes: NDArray[np.float32]) -> tuple[NDArray, NDArray]:
        masks, iou = self.decoder(torch.from_numpy(embedding), torch.from_numpy(boxes))
        return masks[:, 0].numpy(), iou[:, 0].numpy()


class OnnxNetworks:
    """The exported graphs on ONNX Runtime: CUDA / TensorRT providers when installed (gpu extra), else CPU."""

    def __init__(self, config: SamConfig, encoder: Path, decoder: Path, detector: Path) -> None:
        import onnxruntime as ort

        self.config = config
        wanted = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
        providers = [p for p in wanted if p in ort.get_available_providers()]
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.encoder, self.decoder, self.detector = (
            ort.InferenceSession(str(path), options, providers=providers) for path in (encoder, decoder, detector)
        )

    def detect(self, images: NDArray[np.float32]) -> NDArray[np.float32]:
        return self.detector.run(None, {"images": images[:, None]})[0]

    def encode(self, images: NDArray[np.float32]) -> NDArray[np.float32]:
        return self.encoder.run(None, {"images": images[:, None]})[0]

    def decode(self, embedding: NDArray[np.float32], boxes: NDArray[np.float32]) -> tuple[NDArray, NDArray]:
        masks, iou = self.decoder.run(None, {"image_embedding": embedding, "boxes": boxes})
        return masks[:, 0], iou[:, 0]


def load_networks(
    folder: Path, card: SegmentationCard, detector: tuple[Path, SegmentationCard], runtime: Runtime
) -> Networks:
    """The model in ``folder`` on ``runtime``; ``detector`` is the folder + card that provides the detector."""
    config = SamConfig.model_validate(card.architecture)
    detector_folder, detector_card = detector
    if runtime == "torch":
        return TorchNetworks(
            config,
            read_state(verified_file(folder, card, "sam")),
            read_state(verified_file(detector_folder, detector_card, "detector")),
        )
    missing = [role for role in ("encoder_onnx", "decoder_onnx") if role not in card.files]
    if missing or "detector_onnx" not in detector_card.files:
        raise ModelCardError(
            f"model {card.name!r} has no ONNX export ({', '.join(missing) or 'detector_onnx'} missing): "
            f"run `mskcds export-onnx {card.name}` or set MSKCDS_SEGMENTATION_RUNTIME=torch"
        )
    return OnnxNetworks(
        config,
        verified_file(folder, card, "encoder_onnx"),
        verified_file(folder, card, "decoder_onnx"),
        verified_file(detector_folder, detector_card, "detector_onnx"),
    )
