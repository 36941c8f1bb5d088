"""How long a phantom study takes to generate, against reading the same study back as a baseline.

    PYTHONPATH=. .venv/bin/python benchmarks/phantom_generation.py [--full]

Prints wall-clock and CPU seconds of ``generate_phantom`` (test-size study by default; ``--full`` adds
the default 160 x 384 x 384 DESS + T2 + T1rho study), of ``write_phantom``, and of
``load_acquisitions`` on the written folder (the baseline: reading a study of the same size), with
the generate / load ratio measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from app.imaging import load_acquisitions
from app.imaging.phantom import DEFAULT_PROTOCOLS, SMALL_PROTOCOLS, generate_phantom, write_phantom


def _timed(step: Callable[[], object]) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = step()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def bench(name: str, protocols: tuple[str, ...]) -> None:
    phantom, gen_wall, gen_cpu = _timed(lambda: generate_phantom(seed=1, protocols=list(protocols)))
    with tempfile.TemporaryDirectory() as folder:
        _, write_wall, _ = _timed(lambda: write_phantom(phantom, Path(folder)))  # type: ignore[arg-type]
        _, load_wall, load_cpu = _timed(lambda: load_acquisitions(folder))
    voxels = sum(series.array[0].size for series in phantom.images.values())  # type: ignore[attr-defined]
    print(
        f"{name:>6}: {voxels / 1e6:5.1f} M voxels per time point | generate {gen_wall:6.1f} s wall "
        f"({gen_cpu:6.1f} s CPU) | write {write_wall:5.1f} s | load (baseline) {load_wall:5.1f} s wall "
        f"({load_cpu:5.1f} s CPU) | generate / load {gen_wall / load_wall:4.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also the default full-resolution study")
    args = parser.parse_args()
    bench("small", SMALL_PROTOCOLS)
    if args.full:
        bench("full", DEFAULT_PROTOCOLS)


if __name__ == "__main__":
    main()
