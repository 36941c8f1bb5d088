"""Seconds per knee on this CPU for the configured segmentation model, stage by stage, torch vs ONNX Runtime.

    python benchmarks/segmentation_cpu.py                        # published dess: 160 x 384 x 384
    python benchmarks/segmentation_cpu.py --protocol dess-small  # a quick check (40 x 96 x 96)

One phantom (held-out seed 9000, right knee, grade 2) is generated with the protocol, and its first echo
goes through :meth:`Segmenter.segment` once per runtime after one warm-up run on its middle 8 slices
(session creation and first-call allocations are paid once per worker, not per knee). Stages are the
chain's own ``Segmentation.timings_s`` (detector, image encoder, mask decoder, the joint-region pass when
the model card asks for one, 3D post-processing); the total is the wall time of ``segment`` and so
includes the slice preparation the stages leave out.
Threads: whatever torch and ONNX Runtime choose on this machine (printed); run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.volume import Volume

STAGES = ("detector", "encoder", "decoder", "joint", "postprocess")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", default="dess", help="phantom protocol (default: the published dess)")
    parser.add_argument("--model", help="model folder name (default: MSKCDS_SEGMENTATION_MODEL)")
    parser.add_argument("--runtimes", nargs="+", default=["torch", "onnx"], choices=("torch", "onnx"))
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per runtime (the fastest is shown)")
    return parser.parse_args(argv)


def middle_slices(image: Volume, count: int) -> Volume:
    """``count`` slices through the middle of the knee (the detector needs knee tissue to give boxes)."""
    start = max(0, (image.shape[0] - count) // 2)
    affine = image.affine.copy()
    affine[:3, 3] += start * affine[:3, 0]
    return Volume(image.array[start : start + count], affine)


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Print the table; return ``{runtime: {stage: seconds, "total": seconds}}`` of the fastest run."""
    args = parse_args(argv)
    import torch

    from app.imaging.phantom import generate_phantom
    from app.segmentation.chain import Segmenter
    from app.segmentation.data import HELD_OUT_SEED
    from app.settings import get_settings

    settings = get_settings()
    if args.model:
        settings = settings.model_copy(update={"segmentation_model": args.model})
    phantom = generate_phantom(HELD_OUT_SEED, "right", 2, [args.protocol])
    image = phantom.images[args.protocol].volume(0)
    warm_up = middle_slices(image, 8)
    results: dict[str, dict[str, float]] = {}
    versions = ""
    for runtime in args.runtimes:
        segmenter = Segmenter.from_settings(settings, runtime=runtime)
        versions = ", ".join(f"{k} {v}" for k, v in segmenter.model_versions.items())
        segmenter.segment(warm_up, "right")
        runs = []
        for _ in range(args.repeats):
            began = time.perf_counter()
            segmentation = segmenter.segment(image, "right")
            runs.append({**segmentation.timings_s, "total": time.perf_counter() - began})
        results[runtime] = min(runs, key=lambda run: run["total"])
    print(f"model: {versions}; protocol {args.protocol}: {' x '.join(map(str, image.shape))} voxels")
    print(f"CPU: {os.cpu_count()} logical cores, torch {torch.__version__} with {torch.get_num_threads()} threads")
    print(f"{'runtime':<8}" + "".join(f"{stage:>13}" for stage in (*STAGES, "total")) + "   (seconds per knee)")
    for runtime, timings in results.items():
        print(f"{runtime:<8}" + "".join(f"{timings.get(stage, 0.0):13.2f}" for stage in (*STAGES, "total")))
    return results


if __name__ == "__main__":
    main()
