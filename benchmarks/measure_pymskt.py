"""Femoral cartilage thickness against pymskt's own result on the same real knee label map.

pymskt (github.com/gattia/pymskt) published, for its example label map ``right_knee_example.nrrd``
(OAI DESS geometry, oblique, 0.365 x 0.365 x 0.7 mm), the femoral cartilage thickness at the 10,000
vertices of a femur mesh (``femur_thickness_mm_10k_pts.vtk``, LPS mm). Their value at a vertex is the
length of the chord that a ray along the bone normal cuts through their (smoothed, marching-cubes)
cartilage mesh, and 0 where the ray does not cross the cartilage exactly twice; "their mean" is the mean
over the non-zero vertices (their vertices are spread evenly over the bone, so it is an area mean over
covered bone).

Printed: their mean; our area-weighted mean over covered bone (ThCcAB, the comparable number) and over
the whole tAB (ThCtAB, denuded bone at 0); our thickness sampled at their non-zero vertices; and the
point-wise Bland-Altman statistics, for both of our thickness methods. Writes a scatter and a
Bland-Altman plot to ``docs/images/pymskt_thickness_agreement.png`` and our thickness maps of this knee
to ``docs/images/thickness_map_{femur,tibia,patella}_pymskt.png``.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/measure_pymskt.py
"""

from __future__ import annotations

import argparse
import lzma
import tempfile
import time
from pathlib import Path

import numpy as np

from app.measurement import measure_knee
from app.measurement.io import label_mapping, read_label_map, translate
from app.measurement.maps import render_thickness_map, thickness_maps
from app.measurement.reference import Agreement, agreement, sample_thickness
from app.measurement.statistics import weighted_mean
from app.measurement.vtk import read_polydata
from schemas.labels import Label
from schemas.volume import LPS_TO_RAS
from tests.data import shared_data_dir, verified

REPO_ROOT = Path(__file__).resolve().parent.parent
FIGURE = REPO_ROOT / "docs" / "images" / "pymskt_thickness_agreement.png"
#: Their vertices farther than this from our bone surface are not compared (mm).
MAX_DISTANCE_MM = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figure", type=Path, default=FIGURE)
    args = parser.parse_args()
    source = shared_data_dir() / "pymskt-knee"
    with tempfile.TemporaryDirectory() as scratch:
        nrrd = Path(scratch) / "right_knee_example.nrrd"
        nrrd.write_bytes(lzma.decompress(verified(source / "right_knee_example.nrrd.xz").read_bytes()))
        labels = translate(read_label_map(nrrd), label_mapping("pymskt"))
    reference = read_polydata(verified(source / "femur_thickness_mm_10k_pts.vtk"))
    points = reference.points @ LPS_TO_RAS[:3, :3].T
    theirs = reference.point_data["thickness (mm)"]
    covered = theirs > 0
    print(f"pymskt: {len(theirs)} femur vertices, {covered.sum()} with cartilage")
    print(f"  their mean over the vertices with cartilage {theirs[covered].mean():.3f} mm")

    results: dict[str, tuple[Agreement, np.ndarray, np.ndarray]] = {}
    for method in ("normal", "nearest"):
        start = time.perf_counter()
        measurement = measure_knee(labels, "right", "user", thickness_method=method)
        if method == "normal":
            for thickness_map in thickness_maps(measurement):
                render_thickness_map(
                    thickness_map, "right", args.figure.parent / f"thickness_map_{thickness_map.name}_pymskt.png"
                )
        elapsed = time.perf_counter() - start
        plate = measurement.plates[Label.FEMORAL_CARTILAGE].thickness
        area = plate.bone_surface.area_mm2
        bare = plate.denuded
        ours, near = sample_thickness(plate, points, MAX_DISTANCE_MM)
        compared = covered & near
        stats = agreement(ours[compared], theirs[compared])
        results[method] = (stats, ours[compared], theirs[compared])
        print(f"\nours, thickness method {method!r} ({elapsed:.1f} s for the whole knee):")
        print(f"  ThCcAB (covered bone, area mean)   {weighted_mean(plate.thickness_mm[~bare], area[~bare]):.3f} mm")
        denuded = 100 * area[bare].sum() / area.sum()
        print(f"  ThCtAB (tAB, {denuded:.2f} % denuded)    {weighted_mean(plate.thickness_mm, area):.3f} mm")
        print(f"  at their {stats.n_points} covered vertices within {MAX_DISTANCE_MM} mm of our surface:")
        print(f"    mean ours {stats.measured_mean:.3f} mm, theirs {stats.reference_mean:.3f} mm")
        low, high = stats.limits_of_agreement
        print(f"    bias {stats.bias:+.3f} mm, SD {stats.sd:.3f} mm, r = {stats.correlation:.3f}")
        print(f"    limits of agreement {low:+.3f} .. {high:+.3f} mm")
    _plot(*results["normal"], args.figure)
    print(f"\nfigure: {args.figure}")


def _plot(stats: Agreement, ours: np.ndarray, theirs: np.ndarray, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.8), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    scatter, bland_altman = figure.subplots(1, 2)
    top = float(max(ours.max(), theirs.max())) * 1.05
    scatter.scatter(theirs, ours, s=3, alpha=0.4)
    scatter.plot([0, top], [0, top], color="black", linewidth=0.8)
    scatter.set(
        xlim=(0, top), ylim=(0, top), aspect="equal", xlabel="pymskt thickness (mm)", ylabel="msk-cds thickness (mm)"
    )
    scatter.set_title(f"femoral cartilage, {stats.n_points} vertices, r = {stats.correlation:.3f}")
    mean = (ours + theirs) / 2
    bland_altman.scatter(mean, ours - theirs, s=3, alpha=0.4)
    low, high = stats.limits_of_agreement
    for value, style in ((stats.bias, "-"), (low, "--"), (high, "--")):
        bland_altman.axhline(value, color="black", linestyle=style, linewidth=0.8)
    bland_altman.set(xlabel="mean of the two (mm)", ylabel="msk-cds - pymskt (mm)")
    bland_altman.set_title(f"bias {stats.bias:+.3f} mm, limits of agreement {low:+.2f} .. {high:+.2f} mm")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


if __name__ == "__main__":
    main()
