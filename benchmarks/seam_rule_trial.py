"""The rejected wider seam rule, re-runnable: docs/segmentation.md, "Through triage".

The chain closes one-voxel seams between a cartilage plate and its bone (``close_interfaces``). This trial
adds a wider rule — a background voxel with cartilage on one side and the plate's bone on the other, each
within ``reach`` voxels along one axis, becomes cartilage — and compares the triage of phantoms that are
neither training (seeds < 64), validation (500-502) nor held-out (from 9000): their own labels, the chain
as it is, and the chain with the rule at reach 2 and 3. On seeds 600-602 (grades 0, 1, 3; knee-sam-tiny
0.2.0) the rule at reach 3 removed the false urgent calls on grades 0 and 1 (reach 2: grade 1 only) and, at
both reaches, made the grade-3 knee ``deprioritised``; it was not adopted.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/seam_rule_trial.py [--seeds 600 601 602 --grades 0 1 3]
"""

from __future__ import annotations

import argparse

import numpy as np
from numpy.typing import NDArray

import app.segmentation.chain as chain
from app.clinical.registry import load_clinical_models
from app.imaging.phantom import PROTOCOLS, generate_phantom
from app.measurement import measure_knee
from app.segmentation.postprocess import _CARTILAGE_ON_BONE, close_interfaces, to_labels
from benchmarks.triage_through_chain import describe


def between(classes: NDArray[np.uint8], reach: int) -> NDArray[np.uint8]:
    """``close_interfaces``'s output plus background voxels lying between a plate and its bone."""
    out = classes.copy()
    background = classes == 0
    for cartilage, bone in _CARTILAGE_ON_BONE.items():
        plate, under = classes == cartilage + 1, classes == bone + 1
        fill = np.zeros_like(background)
        for axis in range(3):
            for sign in (1, -1):
                near_plate, near_bone = np.zeros_like(background), np.zeros_like(background)
                for k in range(1, reach + 1):
                    near_plate |= np.roll(plate, -sign * k, axis=axis)
                    near_bone |= np.roll(under, sign * k, axis=axis)
                fill |= near_plate & near_bone
        out[background & fill & (out == 0)] = cartilage + 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[600, 601, 602])
    parser.add_argument("--grades", type=int, nargs="+", default=[0, 1, 3])
    args = parser.parse_args()
    captured: dict[str, NDArray[np.uint8]] = {}

    def capture(classes: NDArray[np.uint8]) -> NDArray[np.uint8]:
        captured["classes"] = classes.copy()  # the merged, cleaned class map before seam closing
        return close_interfaces(classes)

    chain.close_interfaces = capture  # the chain as it is, keeping its input for the trial
    segmenter = chain.Segmenter.from_settings()
    triage = load_clinical_models().triage

    def summary(labels, side: str) -> str:
        return describe(measure_knee(labels, side, "dicom").biomarkers, triage)

    for index, (seed, grade) in enumerate(zip(args.seeds, args.grades, strict=True)):
        side = "right" if index % 2 == 0 else "left"
        phantom = generate_phantom(seed, side, grade, [PROTOCOLS["dess"]])
        image = phantom.images[phantom.truth.protocols[0].name].volume(0)
        segmentation = segmenter.segment(image, side)
        rows = {"own labels": summary(phantom.labels, side), "chain": summary(segmentation.labels, side)}
        for reach in (2, 3):
            classes = between(close_interfaces(captured["classes"]), reach)
            rows[f"chain + rule, reach {reach}"] = summary(image.with_array(to_labels(classes, image, side)), side)
        print(f"seed {seed}, grade {grade}", *(f"  {name}: {row}" for name, row in rows.items()), sep="\n", flush=True)


if __name__ == "__main__":
    main()
