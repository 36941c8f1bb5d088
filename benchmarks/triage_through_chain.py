"""Triage of the held-out phantoms through the whole chain, beside the triage of their own labels.

The question docs/segmentation.md ("Through triage") answers: does a segmenter good by Dice put knees on
the worklist where their true anatomy would? For each held-out phantom (seeds 9000-9004, grades 0-4,
published ``dess`` protocol, right / left alternating, as ``mskcds evaluate-seg``) the configured segmenter
segments the first echo, the measurement layer measures it, and the shipped triage cascade decides; the
phantom's own label map goes through the same measurement and cascade. Prints one row per knee: priority,
deciding stage and the largest denuded areas, for both.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/triage_through_chain.py [--phantoms 5] [--model DIR]

``--model DIR`` is an MSKCDS_MODEL_DIR holding another ``knee-sam-tiny`` (e.g. an earlier version).
"""

from __future__ import annotations

import argparse
import os

from app.clinical.registry import load_clinical_models
from app.measurement import measure_knee
from app.segmentation.evaluation import held_out_cases
from schemas.biomarkers import BiomarkerSet


def describe(biomarkers: BiomarkerSet, decide) -> str:
    """Priority, the stage that decided, and the plates with most denuded area."""
    result = decide(biomarkers)
    denuded = {
        key.split(":", 1)[1]: value
        for key, value in biomarkers.as_features().items()
        if key.startswith("denuded_area_pct:") and value >= 0.5
    }
    worst = ", ".join(f"{plate} {value:.1f} %" for plate, value in sorted(denuded.items(), key=lambda kv: -kv[1])[:3])
    return f"{result.priority} ({result.reasons[0][:60]}...; denuded {worst or 'none >= 0.5 %'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phantoms", type=int, default=5)
    parser.add_argument("--model", help="MSKCDS_MODEL_DIR for the segmenter (default: the configured one)")
    args = parser.parse_args()
    if args.model:
        os.environ["MSKCDS_MODEL_DIR"] = args.model
    from app.segmentation import Segmenter

    segmenter = Segmenter.from_settings()
    triage = load_clinical_models().triage
    print(f"segmenter {segmenter.model_versions}; held-out phantoms, protocol dess")
    for name, load in held_out_cases(args.phantoms, "dess", 9000):
        case = load()
        predicted = segmenter.segment(case.image, case.laterality).labels
        own = measure_knee(case.reference, case.laterality, "dicom").biomarkers
        chain = measure_knee(predicted, case.laterality, "dicom").biomarkers
        print(f"{name}\n  own labels: {describe(own, triage)}\n  chain:      {describe(chain, triage)}", flush=True)


if __name__ == "__main__":
    main()
