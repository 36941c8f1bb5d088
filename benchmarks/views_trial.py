"""What test-time views are worth: the configured model through the whole chain with several view sets.

The same weights segment each phantom once per view set (:mod:`app.segmentation.views`; the card's own
``test_time_views`` are ignored here), scored as ``mskcds evaluate-seg`` scores a case: Dice against the
reference labels and plate mean thickness against the phantom's exact truth. Prints one row per knee and
view set, then the mean per view set with the chain's seconds per knee (this machine, nothing else
should run).

The phantoms are seeds 600-604 by default (grades 0-4, published ``dess`` protocol): not the held-out
9000+ knees, which are measured once per model by ``mskcds evaluate-seg``. The three views evaluated on
those (docs/segmentation.md, "Test-time views: measured, not shipped") were chosen from this script's output.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/views_trial.py [--phantoms 5] [--sets plain,mirror,...]
"""

from __future__ import annotations

import argparse

import numpy as np

from app.segmentation.chain import Segmenter
from app.segmentation.evaluation import THICKNESS, THICKNESS_REGIONS, evaluate_case, held_out_cases
from app.segmentation.views import View

VIEW_SETS: dict[str, tuple[View, ...]] = {
    "plain": (View(),),
    "mirror": (View(), View(mirror=True)),
    "diagonal": (View(), View(shift=(1, 1)), View(shift=(2, 2))),
    "lattice": (View(), View(shift=(1, 2)), View(shift=(2, 1))),
    "lattice-mirror": (View(), View(shift=(1, 2), mirror=True), View(shift=(2, 1))),
    "lattice-both": (
        View(),
        View(shift=(1, 2)),
        View(shift=(2, 1)),
        View(mirror=True),
        View(shift=(1, 2), mirror=True),
        View(shift=(2, 1), mirror=True),
    ),
}
LABELS = {1: "Fe", 2: "Ti", 3: "Pa", 4: "FC", 5: "MT", 6: "LT", 7: "PC", 8: "MM", 9: "LM"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phantoms", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=600)
    parser.add_argument("--sets", default="plain,mirror,diagonal,lattice,lattice-mirror")
    parser.add_argument("--runtime", choices=["onnx", "torch"], default="onnx")
    args = parser.parse_args()
    sets = args.sets.split(",")
    unknown = set(sets) - set(VIEW_SETS)
    if unknown:
        parser.error(f"unknown view sets {sorted(unknown)}; known: {', '.join(VIEW_SETS)}")
    cases = [load() for _, load in held_out_cases(args.phantoms, "dess", args.first_seed)]
    segmenter = Segmenter.from_settings(runtime=args.runtime)
    print(f"model {segmenter.model_versions}, runtime {args.runtime}; phantoms {cases[0].name} .. {cases[-1].name}")
    print("Dice per label (Fe/Ti/Pa bones, FC/MT/LT/PC cartilage, MM/LM menisci); plate thickness - truth, mm")
    for name in sets:
        segmenter.views = VIEW_SETS[name]
        dice, errors, seconds = [], [], []
        for case in cases:
            result, _ = evaluate_case(case, segmenter)
            dice.append({LABELS[int(s.label)]: s.dice for s in result.scores})
            errors.append(
                {
                    r: result.predicted[key] - result.truth[key]
                    for r in THICKNESS_REGIONS
                    if (key := f"{THICKNESS.value}:{r}") in result.predicted and key in result.truth
                }
            )
            seconds.append(result.timings_s["chain"])
            row = " ".join(f"{k} {v:.3f}" for k, v in dice[-1].items())
            error_row = " ".join(f"{k} {v:+.2f}" for k, v in errors[-1].items())
            print(f"{name:<15} {case.name:<22} {row} | {error_row} | {seconds[-1]:.1f} s", flush=True)
        mean = " ".join(f"{k} {np.mean([d[k] for d in dice]):.3f}" for k in LABELS.values())
        regions = [r for r in THICKNESS_REGIONS if all(r in e for e in errors)]
        absolute = " ".join(f"{r} {np.mean([abs(e[r]) for e in errors]):.2f}" for r in regions)
        print(f"{name:<15} {'MEAN':<22} {mean} | mean |error| {absolute} | {np.mean(seconds):.1f} s", flush=True)


if __name__ == "__main__":
    main()
