"""The GPU benchmark script runs end to end on CPU with tiny settings, and both ways give the same masks."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "segmentation_gpu.py"
TINY = ["--encoder", "tiny", "--image-size", "64", "--slices", "3", "--size", "40", "--batch", "2"]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("segmentation_gpu", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_prints_both_and_the_ratio(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    figures = bench.main([*TINY, "--baseline-slices", "2", "--dtype", "fp32", "--device", "cpu"])
    out = capsys.readouterr().out
    assert "s per knee" in out and "faster" in out and "scaled x1.50" in out
    assert "ours+" in out and figures["ours_s"] > 0 and figures["ours+_s"] > 0 and figures["paper_s"] > 0
    assert figures["ours_ratio"] == pytest.approx(figures["paper_s"] / figures["ours_s"])


def test_shared_embedding_decodes_what_one_pass_per_box_decodes(bench: ModuleType) -> None:
    """Reusing a slice's embedding for its boxes is a saving, not an approximation (fp32, random weights)."""
    args = bench.parse_args([*TINY, "--device", "cpu"])
    torch.manual_seed(0)
    config = bench.SamConfig.tiny().model_copy(update={"image_size": args.image_size})
    sam, detector = bench.build_sam(config).eval(), bench.AutoLabelDetector().eval()
    volume = bench.synthetic_knee(args.slices, args.size)
    boxes = bench.synthetic_boxes(args.slices, config.image_size, torch.Generator().manual_seed(1))
    cpu = torch.device("cpu")
    shared, _ = bench.shared_embedding(sam, detector, volume, boxes, args.batch, torch.float32, cpu)
    separate, _ = bench.per_box(sam, detector, volume, boxes, torch.float32, cpu)
    assert shared.shape == (3, 40, 40)
    assert (shared > 0).any()
    assert (shared == separate).float().mean() > 0.999


def test_fused_attention_is_segment_anythings_attention(bench: ModuleType) -> None:
    """Folding the relative positions into q and k gives the same encoder output (non-zero positions,
    windowed and global attention)."""
    torch.manual_seed(0)
    config = bench.SamConfig.tiny().model_copy(update={"image_size": 64, "encoder_global_attn_indexes": (1,)})
    sam = bench.build_sam(config).eval()
    for module in sam.image_encoder.modules():
        if isinstance(module, bench.Attention):
            torch.nn.init.normal_(module.rel_pos_h, std=0.5)
            torch.nn.init.normal_(module.rel_pos_w, std=0.5)
    images = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        expected = sam.image_encoder(images)
        fused = bench.with_fused_attention(sam).image_encoder(images)
    assert torch.allclose(fused, expected, atol=1e-5, rtol=1e-4)
