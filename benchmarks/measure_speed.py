"""How long ``measure`` takes on a full-size knee: 160 x 384 x 384 label map (DESS grid) + a 7-echo T2 series.

A grade-0 phantom with the default ``dess`` (160 slices of 384 x 384, 0.36 x 0.36 x 0.7 mm) and ``t2-mese``
(27 slices of 384 x 384, 7 echoes) protocols is generated (not timed; cached with ``--cache``), then:

- the stages of the measurement, each timed on its own: knee frame (notch, femur axes), thickness of
  the four plates, the whole morphology (``measure`` without images), the whole ``measure`` with T2;
- two baselines measured in the same run: the per-voxel ``scipy.optimize.curve_fit`` the vectorised fit
  replaces (timed on a sample of cartilage voxels and scaled to all of them), and one Gaussian filter
  pass over the whole label map (a yardstick of this machine's speed).

The target is a whole ``measure`` under 5 s on 2 cores; the figures are printed, never asserted.

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python benchmarks/measure_speed.py --cache /tmp/mskcds-speed-phantom.npz
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from scipy import ndimage, optimize

from app.measurement import measure
from app.measurement.knee import PURE_FRACTION, pure_cartilage
from app.measurement.regions import knee_frame
from app.measurement.relaxometry import fit_monoexponential
from app.measurement.thickness import plate_thickness
from schemas.labels import CARTILAGE_BONE
from schemas.volume import EchoSeries, Volume

T = TypeVar("T")


def load_phantom(cache: Path | None) -> tuple[Volume, EchoSeries, str]:
    if cache is not None and cache.exists():
        data = np.load(cache)
        return (
            Volume(data["labels"], data["affine"]),
            EchoSeries(data["t2"], data["t2_affine"], tuple(data["times"])),
            str(data["side"]),
        )
    from app.imaging.phantom.generator import generate_phantom

    phantom = generate_phantom(seed=0, side="right", grade=0, protocols=["dess", "t2-mese"])
    t2 = phantom.images["t2-mese"]
    if cache is not None:
        np.savez(cache, labels=phantom.labels.array, affine=phantom.labels.affine, t2=t2.array,
                 t2_affine=t2.affine, times=np.array(t2.times_ms), side=phantom.side)  # fmt: skip
    return phantom.labels, t2, phantom.side


def timed(function: Callable[[], T], repeat: int = 3) -> tuple[float, T]:
    """Best of ``repeat`` wall-clock times (s) and the last result."""
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="keep the generated phantom here (.npz) for later runs")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs per stage")
    args = parser.parse_args()
    labels, t2, side = load_phantom(args.cache)
    labels = Volume(labels.array.astype(np.int16), labels.affine)
    print(f"label map {labels.shape} at {np.round(labels.spacing_mm, 4).tolist()} mm; T2 series {t2.array.shape}")
    print(f"cpus available: {len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f}\n")

    rows: list[tuple[str, float]] = []
    rows.append(("knee frame (femur axes, notch)", timed(lambda: knee_frame(labels, side), args.repeat)[0]))
    for cartilage, bone in CARTILAGE_BONE.items():
        seconds = timed(lambda c=cartilage, b=bone: plate_thickness(labels, c, b), args.repeat)[0]
        rows.append((f"thickness, {cartilage.display_name}", seconds))
    morphology = timed(lambda: measure(labels, side, "user"), args.repeat)[0]
    whole, result = timed(lambda: measure(labels, side, "user", t2=t2), args.repeat)
    rows += [("measure: morphology only", morphology), ("measure: morphology + T2", whole)]
    for name, seconds in rows:
        print(f"  {name:<38s} {seconds:6.2f} s")
    t2_regions = sum(b.name.value == "t2_mean" for b in result.biomarkers)
    print(f"\n  biomarkers: {len(result.biomarkers)}; T2 regions: {t2_regions}")

    # Baselines, same run.
    from app.measurement.geometry import resample_nearest

    on_grid = resample_nearest(labels, t2.affine, t2.array.shape[1:]).array
    mask = np.zeros(on_grid.shape, dtype=bool)
    for cartilage in CARTILAGE_BONE:
        mask |= pure_cartilage(labels, on_grid, t2, cartilage, PURE_FRACTION)
    signal = t2.array[:, mask].T.astype(np.float64)
    times = np.asarray(t2.times_ms)
    vectorised = timed(lambda: fit_monoexponential(signal, times, 10.0), args.repeat)[0]
    sample = signal[:: max(1, len(signal) // 300)]
    start = time.perf_counter()
    for voxel in sample:
        optimize.curve_fit(
            lambda t, s0, tau: s0 * np.exp(-t / tau), times, voxel, p0=(voxel[0] * 1.2, 40.0), maxfev=200
        )
    per_voxel = (time.perf_counter() - start) / len(sample) * len(signal)
    filtering = timed(lambda: ndimage.gaussian_filter(labels.array.astype(np.float32), 1.0), args.repeat)[0]
    print(f"\n  T2 fit of {len(signal)} cartilage voxels x {len(times)} echoes: vectorised {vectorised:.2f} s;")
    print(f"    scipy curve_fit voxel by voxel (baseline: {len(sample)} timed, scaled) {per_voxel:.1f} s")
    print(f"    -> the vectorised fit is {per_voxel / vectorised:.0f}x faster")
    print(
        f"  yardstick: one Gaussian filter over the {labels.array.size / 1e6:.1f} M-voxel label map {filtering:.2f} s"
    )
    verdict = "met" if whole < 5 else "NOT met"
    print(f"\n  whole measure = {whole / filtering:.1f} x that filter; target < 5 s: {verdict} ({whole:.2f} s)")


if __name__ == "__main__":
    main()
