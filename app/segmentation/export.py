"""Model folders: write a card with every file's sha256, and export the networks to ONNX.

The exported graphs stop where the slice's own geometry begins: the decoder returns masks over the
square model input, and :func:`app.segmentation.slices.restore` crops and resizes them per slice. That
avoids the trap of segment-anything's ``SamOnnxModel``, which bakes one input aspect ratio into its
full-size mask output.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from app.checksums import sha256_of
from app.segmentation.architecture import AutoLabelDetector, BoxDecoder, SamConfig, build_sam
from app.segmentation.card import CARD_FILE, FileRole, ModelFile, SegmentationCard, read_card, verified_file
from app.segmentation.networks import DetectorGraph, EncoderGraph, read_state

OPSET = 17


def write_card(folder: Path, card: SegmentationCard, files: dict[FileRole, str]) -> SegmentationCard:
    """Record ``files`` (role -> name in ``folder``) with their sha256 in the card and write model.json."""
    entries = dict(card.files)
    entries.update({role: ModelFile(path=name, sha256=sha256_of(folder / name)) for role, name in files.items()})
    card = card.model_copy(update={"files": entries})
    (folder / CARD_FILE).write_text(json.dumps(card.model_dump(mode="json", exclude_none=True), indent=2) + "\n")
    return card


def _export(
    module: torch.nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], dynamic: dict
) -> None:
    """TorchScript-based export: the input size is fixed per model, so the tracer's shape constants are right."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        _trace(module, args, path, inputs, outputs, dynamic)


def _trace(
    module: torch.nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], dynamic: dict
) -> None:
    torch.onnx.export(
        module.eval(),
        args,
        str(path),
        input_names=inputs,
        output_names=outputs,
        dynamic_axes=dynamic,
        opset_version=OPSET,
        dynamo=False,
    )


def export_onnx(folder: Path) -> SegmentationCard:
    """Export encoder, decoder and (when the folder has its own) detector to ONNX; update the card."""
    card = read_card(folder)
    config = SamConfig.model_validate(card.architecture)
    sam = build_sam(config)
    sam.load_state_dict(read_state(verified_file(folder, card, "sam")))
    size, grid = config.image_size, config.embedding_size
    files: dict[FileRole, str] = {}
    with torch.no_grad():
        _export(
            EncoderGraph(sam.image_encoder),
            (torch.rand(2, 1, size, size),),
            folder / "encoder.onnx",
            ["images"],
            ["embeddings"],
            {"images": {0: "slices"}, "embeddings": {0: "slices"}},
        )
        files["encoder_onnx"] = "encoder.onnx"
        boxes = torch.tensor([[10.0, 20.0, size / 2, size / 2], [5.0, 5.0, size - 5.0, size / 3]])
        _export(
            BoxDecoder(sam),
            (torch.randn(1, config.prompt_embed_dim, grid, grid), boxes),
            folder / "decoder.onnx",
            ["image_embedding", "boxes"],
            ["masks", "iou"],
            {"boxes": {0: "boxes"}, "masks": {0: "boxes"}, "iou": {0: "boxes"}},
        )
        files["decoder_onnx"] = "decoder.onnx"
        if "detector" in card.files:
            detector = AutoLabelDetector()
            detector.load_state_dict(read_state(verified_file(folder, card, "detector")))
            _export(
                DetectorGraph(detector),
                (torch.rand(2, 1, size, size),),
                folder / "detector.onnx",
                ["images"],
                ["objectness"],
                {"images": {0: "slices"}, "objectness": {0: "slices"}},
            )
            files["detector_onnx"] = "detector.onnx"
    return write_card(folder, card, files)
