"""Accuracy of ``measure`` against the phantoms' exact truth, over seeds, sides, grades and resolutions.

For each study: generate the phantom (morphology at the stated resolution, optionally with the default
T2 MESE and T1rho CubeQuant series on their own grids), measure it, and print the error of every
plate's mean thickness (mm), of the cartilage, bone and meniscus volumes (%), of T2 and T1rho per plate
(ms), and the denuded share (percentage points). The last lines summarise the worst errors against the
targets (0.1 mm, 2 %, 1.5 ms). Several minutes per full-resolution study.

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python benchmarks/measure_phantom_accuracy.py
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from app.imaging.phantom import generate_phantom
from app.measurement import measure_knee

RESOLUTIONS = {
    "0.36x0.36x0.7": "dess",
    "0.5x0.5x1.0": "dess:matrix=256,pixel=0.5,slices=112,thickness=1.0,spacing=1.0",
    "0.7x0.7x1.4": "dess:matrix=192,pixel=0.7,slices=80,thickness=1.4,spacing=1.4",
}
#: (seed, side, grade, morphology resolution, with T2 and T1rho series)
STUDIES = [
    (1, "right", 0, "0.36x0.36x0.7", True),
    (2, "left", 0, "0.5x0.5x1.0", True),
    (3, "left", 4, "0.5x0.5x1.0", False),
    (4, "right", 4, "0.36x0.36x0.7", False),
    (5, "right", 2, "0.7x0.7x1.4", False),
    (6, "left", 3, "0.36x0.36x0.7", True),
]
VOLUMES = {
    "cartilage_volume:F": "femoral_cartilage",
    "cartilage_volume:MT": "medial_tibial_cartilage",
    "cartilage_volume:LT": "lateral_tibial_cartilage",
    "cartilage_volume:P": "patellar_cartilage",
    "bone_volume:femur": "femur",
    "bone_volume:tibia": "tibia",
    "bone_volume:patella": "patella",
    "meniscus_volume:MM": "medial_meniscus",
    "meniscus_volume:LM": "lateral_meniscus",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, nargs="*", help="indices into STUDIES (default: all)")
    args = parser.parse_args()
    worst = {"thickness_mm": 0.0, "volume_pct": 0.0, "t2_ms": 0.0, "t1rho_ms": 0.0}
    for index in args.studies if args.studies is not None else range(len(STUDIES)):
        seed, side, grade, resolution, relaxometry = STUDIES[index]
        protocols = [RESOLUTIONS[resolution], *(["t2-mese", "t1rho-cubequant"] if relaxometry else [])]
        phantom = generate_phantom(seed=seed, side=side, grade=grade, protocols=protocols)
        # The slice thickness travels with each series, as the CLI takes it from DICOM SliceThickness.
        series = {
            spec.name: replace(phantom.images[spec.name], slice_thickness_mm=spec.slice_thickness_mm)
            for spec in phantom.truth.protocols
        }
        start = time.perf_counter()
        result = measure_knee(
            phantom.labels, side, "user", t2=series.get("t2-mese"), t1rho=series.get("t1rho-cubequant")
        )
        elapsed = time.perf_counter() - start
        values = result.biomarkers.as_features()
        truth = phantom.truth
        series = " + T2, T1rho" if relaxometry else ""
        print(f"\nseed {seed}, {side} knee, grade {grade}, morphology {resolution} mm{series} ({elapsed:.1f} s)")
        for note in result.notes:
            print(f"  note: {note}")
        errors = {
            plate: values[f"cartilage_thickness_mean:{plate}"] - value for plate, value in truth.thickness_mm.items()
        }
        print("  thickness error (mm):  " + "  ".join(f"{p} {e:+.3f}" for p, e in errors.items()))
        worst["thickness_mm"] = max(worst["thickness_mm"], max(abs(e) for e in errors.values()))
        volume = {key.split(":")[1]: 100 * (values[key] / truth.volume_mm3[name] - 1) for key, name in VOLUMES.items()}
        print("  volume error (%):      " + "  ".join(f"{p} {e:+.2f}" for p, e in volume.items()))
        worst["volume_pct"] = max(worst["volume_pct"], max(abs(e) for e in volume.values()))
        denuded = {p: values[f"denuded_area_pct:{p}"] - v for p, v in truth.denuded_area_pct.items() if v > 0}
        if denuded:
            print("  denuded share error (points):  " + "  ".join(f"{p} {e:+.1f}" for p, e in denuded.items()))
        extrusion = values.get("meniscus_extrusion:MM", np.nan)
        print(f"  medial meniscus extrusion {extrusion:.1f} mm; findings: {'; '.join(truth.findings[:3]) or 'none'}")
        for quantity in ("t2", "t1rho") if relaxometry else ():
            errors = {p: values[f"{quantity}_mean:{p}"] - v for p, v in getattr(truth, f"{quantity}_ms").items()}
            print(f"  {quantity} error (ms): ".ljust(25) + "  ".join(f"{p} {e:+.2f}" for p, e in errors.items()))
            worst[f"{quantity}_ms"] = max(worst[f"{quantity}_ms"], max(abs(e) for e in errors.values()))
    print(
        f"\nworst |error|: thickness {worst['thickness_mm']:.3f} mm (target 0.1), volumes {worst['volume_pct']:.2f} % "
        f"(target 2), T2 {worst['t2_ms']:.2f} ms, T1rho {worst['t1rho_ms']:.2f} ms (target 1.5)"
    )


if __name__ == "__main__":
    main()
