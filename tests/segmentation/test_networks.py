"""ONNX Runtime and torch compute the same networks; slices of any shape come back on their own grid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from app.segmentation.architecture import SamConfig
from app.segmentation.card import ModelCardError, find_model, read_card
from app.segmentation.networks import load_networks, read_state
from app.segmentation.slices import Frame, restore, to_model
from app.settings import Settings


def _networks(root: Path, runtime: str):
    settings = Settings(model_dir=root)
    folder = find_model("random-tiny", settings)
    card = read_card(folder)
    return load_networks(folder, card, (folder, card), runtime)  # type: ignore[arg-type]


def test_onnx_matches_torch_on_the_same_inputs(random_model: Path) -> None:
    onnx, reference = _networks(random_model, "onnx"), _networks(random_model, "torch")
    rng = np.random.default_rng(1)
    slices = rng.random((3, 256, 256), dtype=np.float32)
    assert np.abs(onnx.encode(slices) - reference.encode(slices)).max() < 1e-4
    assert np.abs(onnx.detect(slices) - reference.detect(slices)).max() < 1e-5
    embedding = reference.encode(slices[:1])
    for count in (1, 4):  # the decoder's box count is dynamic
        boxes = np.sort(rng.uniform(0, 256, (count, 2, 2)), axis=1).reshape(count, 4)[:, [0, 2, 1, 3]]
        masks, iou = onnx.decode(embedding, boxes.astype(np.float32))
        masks_ref, iou_ref = reference.decode(embedding, boxes.astype(np.float32))
        assert masks.shape == (count, 256, 256)
        assert np.abs(masks - masks_ref).max() < 1e-3
        assert np.abs(iou - iou_ref).max() < 1e-4


@pytest.mark.parametrize("shape", [(384, 384), (256, 320), (400, 180)])
def test_a_mask_returns_to_the_slices_own_grid_whatever_its_aspect(shape: tuple[int, int]) -> None:
    """A rectangle drawn on the slice survives the trip into the square model frame and back."""
    truth = np.zeros(shape, np.float32)
    rows, cols = shape
    truth[rows // 4 : rows // 2, cols // 3 : cols * 2 // 3] = 1.0
    in_frame = to_model(truth[None], 256)
    assert in_frame.shape == (1, 256, 256)
    assert in_frame[0, 255].sum() == 0 or rows >= cols  # padding sits at the bottom / right
    logits = (in_frame - 0.5) * 20
    back = restore(logits, Frame(shape, 256)).numpy()[0] > 0
    assert back.shape == shape
    agreement = (back & (truth > 0)).sum() * 2 / (back.sum() + truth.sum())
    assert agreement > 0.97


def test_a_tampered_weight_file_is_refused(random_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "random-tiny"
    folder.mkdir()
    for path in (random_model / "random-tiny").iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    data = bytearray((folder / "decoder.onnx").read_bytes())
    data[-1] ^= 0xFF
    (folder / "decoder.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelCardError, match="sha256"):
        _networks(tmp_path, "onnx")


def test_missing_onnx_files_say_how_to_export(random_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "random-tiny"
    folder.mkdir()
    card = json.loads((random_model / "random-tiny" / "model.json").read_text())
    for role in ("encoder_onnx", "decoder_onnx", "detector_onnx"):
        del card["files"][role]
    for name in ("sam.safetensors", "detector.safetensors"):
        (folder / name).write_bytes((random_model / "random-tiny" / name).read_bytes())
    (folder / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match="export-onnx random-tiny"):
        _networks(tmp_path, "onnx")
    assert _networks(tmp_path, "torch").config == SamConfig.tiny()


def test_a_pickled_checkpoint_is_never_unpickled(tmp_path: Path) -> None:
    """weights_only loading refuses arbitrary objects (a pickle could run code)."""

    class Payload:
        def __reduce__(self):
            return (print, ("this must not run",))

    path = tmp_path / "evil.pth"
    torch.save({"model": Payload()}, path)
    with pytest.raises(ModelCardError, match="refusing to unpickle"):
        read_state(path)


def test_boxes_of_many_slices_decode_in_one_call_as_they_do_slice_by_slice() -> None:
    """Training batches boxes across slices (forward_pairs): each must equal SAM's own per-slice decoding."""
    from app.segmentation.architecture import BoxDecoder, build_sam

    torch.manual_seed(0)
    sam = build_sam(SamConfig.tiny()).eval()
    decoder = BoxDecoder(sam)
    with torch.no_grad():
        embeddings = sam.image_encoder(torch.randn(3, 3, 256, 256))
        boxes = torch.tensor([[10, 20, 90, 120], [40, 40, 200, 180], [0, 100, 256, 256], [5, 5, 60, 60.0]])
        owner = torch.tensor([0, 0, 2, 1])
        batched = decoder.forward_pairs(embeddings[owner], boxes)
        for row, (k, box) in enumerate(zip(owner, boxes, strict=True)):
            alone, _ = decoder(embeddings[k : k + 1], box[None])
            assert torch.allclose(batched[row], alone[0], atol=1e-5)
