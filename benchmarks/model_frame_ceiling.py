"""What the model frame alone costs: perfect masks drawn at model pixels, brought back, measured.

A segmenter can be no better than its own pixels. For each phantom the reference label map is taken into
the model frame (as training labels are: ``to_model(labels=True)``), brought back to the image's grid the
way the chain brings mask logits back (``restore``: bilinear, then the class with the highest value) and
measured with the measurement layer, against the phantom's exact truth; once over whole slices (the
first pass) and once over the joint-region window at ``--joint-pixel-mm`` (the second pass,
:mod:`app.segmentation.joint`; the window placed from the reference labels). Prints, per knee and pass,
cartilage Dice and plate mean thickness - truth.

The phantoms are seeds 600-604 by default (grades 0-4, published ``dess`` protocol): not the held-out
9000+ knees, which are measured once per model by ``mskcds evaluate-seg``.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/model_frame_ceiling.py [--phantoms 5] [--joint-pixel-mm 0.39]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from app.measurement import measure_knee
from app.segmentation.data import class_map
from app.segmentation.evaluation import THICKNESS, THICKNESS_REGIONS, Case, compared, held_out_cases, truth_values
from app.segmentation.joint import joint_window
from app.segmentation.metrics import label_scores
from app.segmentation.postprocess import to_labels
from app.segmentation.slices import Frame, restore, to_model
from schemas.labels import CARTILAGE

SIZE = 256


def round_trip(classes: np.ndarray, size: int) -> np.ndarray:
    """A class map to the model frame and back, as the chain brings masks back (bilinear, highest wins)."""
    frame = Frame(tuple(classes.shape[1:]), size)  # type: ignore[arg-type]
    small = to_model(classes, size, labels=True)
    logits = [restore((small == value).float() * 2 - 1, frame) for value in range(int(classes.max()) + 1)]
    return torch.stack(logits, 1).argmax(1).numpy().astype(np.uint8)


def report(case: Case, name: str, classes: np.ndarray) -> None:
    labels = case.image.with_array(to_labels(classes, case.image, case.laterality))
    dice = {s.label.name.lower(): s.dice for s in label_scores(labels, case.reference) if s.label in CARTILAGE}
    measured = compared(measure_knee(labels, case.laterality, case.laterality_source).biomarkers)
    truth = truth_values(case.truth) if case.truth else {}
    errors = []
    for region in THICKNESS_REGIONS:
        key = f"{THICKNESS.value}:{region}"
        if key in measured and key in truth:
            errors.append(f"{region} {measured[key] - truth[key]:+.2f}")
    dice_text = ", ".join(f"{label} {value:.3f}" for label, value in dice.items() if value is not None)
    print(f"  {name:<28} Dice {dice_text}\n  {'':<28} thickness - truth mm: {', '.join(errors)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phantoms", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=600)
    parser.add_argument("--joint-pixel-mm", type=float, default=0.39)
    args = parser.parse_args()
    print(f"model input {SIZE} px; phantoms {args.first_seed}-{args.first_seed + args.phantoms - 1}, protocol dess")
    for name, load in held_out_cases(args.phantoms, "dess", args.first_seed):
        case = load()
        classes = class_map(case.reference.array)
        spacing = case.image.spacing_mm
        print(f"{name} (in-plane pixel {spacing[1]:.2f} mm)")
        report(case, f"whole slice ({spacing[1] * max(classes.shape[1:]) / SIZE:.2f} mm px)", round_trip(classes, SIZE))
        window = joint_window(classes, (spacing[1], spacing[2]), SIZE, args.joint_pixel_mm)
        if window is None:
            print("  joint window: none (it would be most of the slice)")
            continue
        joint = classes.copy()
        joint[:, window.rows, window.cols] = round_trip(classes[:, window.rows, window.cols], SIZE)
        report(case, f"joint window ({spacing[1] * max(window.shape) / SIZE:.2f} mm px)", joint)


if __name__ == "__main__":
    main()
