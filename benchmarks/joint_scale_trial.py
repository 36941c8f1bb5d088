"""Has a model learnt the joint pass's scale? Its Dice in its own frame, whole slices against windows.

The joint-region pass (chain step 5, :mod:`app.segmentation.joint`) shows the model a window around the
joint at finer pixels than the whole slice. That helps only if the model segments as well at those
pixels as at the whole slice's. This script takes that question apart from the chain: for each phantom
it cuts the window the chain would cut (placed from the reference labels) at each ``--pixel-mm``, brings
slices and reference class maps into the model frame with training's own code (``model_slices``), gives
the model each present class's box as training does (``class_boxes``, no jitter), and scores the masks
in model pixels (pooled Dice per prompt class, every class judged alone, no merge). Equal Dice at the
whole slice and at a window means the window's finer pixels turn into finer boundaries on the image;
lower Dice at a window means the model has not learnt that scale, and the chain's pass will do worse
than no pass.

The phantoms are seeds 600-604 by default (grades 0-4, published ``dess`` protocol), as for
``views_trial.py`` and ``model_frame_ceiling.py``: never training, validation or held-out knees.

    MSKCDS_MODEL_DIR=DIR PYTHONPATH=$PWD .venv/bin/python benchmarks/joint_scale_trial.py \
        [--phantoms 5] [--first-seed 600] [--pixel-mm 0.39 0.45]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from app.segmentation.chain import Segmenter
from app.segmentation.classes import PromptClass
from app.segmentation.data import SliceSet, class_map, model_slices
from app.segmentation.evaluation import held_out_cases
from app.segmentation.joint import joint_window
from app.segmentation.networks import Networks
from app.segmentation.slices import normalise_volume
from app.segmentation.training import class_boxes


def pooled_dice(networks: Networks, slices: SliceSet, batch: int = 8) -> np.ndarray:
    """Per prompt class, 2|A∩B| / (|A| + |B|) pooled over the slices, each present class given its box as
    training and validation give it (:func:`class_boxes`, no jitter)."""
    size = slices.images.shape[-1]
    overlap, total = np.zeros(len(PromptClass)), np.zeros(len(PromptClass))
    for start in range(0, len(slices), batch):
        embeddings = networks.encode(slices.images[start : start + batch].astype(np.float32))
        for row, classes in enumerate(slices.classes[start : start + batch]):
            present, boxes = class_boxes(torch.from_numpy(classes), 0.0, None)
            if not present:
                continue
            logits, _ = networks.decode(embeddings[row : row + 1], boxes.numpy())
            masks = F.interpolate(torch.from_numpy(logits)[:, None], size=(size, size), mode="bilinear")[:, 0] > 0
            for cls, mask in zip(present, masks.numpy(), strict=True):
                truth = classes == cls + 1
                overlap[cls] += 2 * (mask & truth).sum()
                total[cls] += mask.sum() + truth.sum()
    return np.divide(overlap, total, out=np.full(len(overlap), np.nan), where=total > 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phantoms", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=600)
    parser.add_argument("--pixel-mm", type=float, nargs="+", default=[0.39, 0.45])
    args = parser.parse_args()
    segmenter = Segmenter.from_settings(runtime="onnx")
    size = segmenter.networks.config.image_size
    names = " ".join(f"{c.name.lower():>18}" for c in PromptClass)
    print(f"model {segmenter.model_versions}; model-frame Dice with reference boxes\n{'':<48}{names}")
    for name, load in held_out_cases(args.phantoms, "dess", args.first_seed):
        case = load()
        normalised, classes = normalise_volume(case.image.array), class_map(case.reference.array)
        spacing = (case.image.spacing_mm[1], case.image.spacing_mm[2])
        rows = {f"whole slice ({spacing[0] * max(classes.shape[1:]) / size:.2f} mm px)": (slice(None),) * 3}
        for pixel in args.pixel_mm:
            window = joint_window(classes, spacing, size, pixel)
            if window is not None:
                window_pixel = spacing[0] * max(window.shape) / size
                rows[f"window ({window_pixel:.2f} mm px)"] = (slice(None), window.rows, window.cols)
        for label, cut in rows.items():
            dice = pooled_dice(segmenter.networks, model_slices(normalised[cut], classes[cut], size))
            print(f"{name:<22}{label:<26}" + " ".join(f"{value:>18.3f}" for value in dice), flush=True)


if __name__ == "__main__":
    main()
