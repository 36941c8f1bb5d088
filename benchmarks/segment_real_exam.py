"""The default segmenter on the one real knee exam here (GE MR750 3 T DESS): it runs; how good it is, unknown.

No expert labels exist for this exam, so nothing here is an accuracy figure: the script prints what the
chain produced (label volumes, plate thickness, the model's own confidence, timings) next to typical
literature values, and draws the segmentation on three sagittal slices (lateral, central, medial) to
``docs/images/real_dess_segmentation.png`` for a person to judge.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/segment_real_exam.py
"""

from __future__ import annotations

import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from app.imaging import load_acquisitions, select_series
from app.measurement import measure_knee
from app.segmentation import Segmenter
from schemas.labels import Label
from tests.data import REPO_ROOT, shared_data_dir, unpacked

PICTURE = REPO_ROOT / "docs" / "images" / "real_dess_segmentation.png"
COLOURS = {
    1: "#e6c229", 2: "#f17105", 3: "#d11149", 4: "#6610f2", 5: "#1a8fe3",
    6: "#00c2a8", 7: "#ff5dc8", 8: "#7cfc00", 9: "#00ffff",
}


def main() -> None:
    folder = unpacked(shared_data_dir() / "real-knee-ge-3t" / "dess.tar.xz") / "DESS"
    morphology = select_series(load_acquisitions(folder)).morphology
    image = morphology.volume(0)
    side = morphology.laterality or "right"  # the exam's README: a right knee
    started = time.perf_counter()
    segmentation = Segmenter.from_settings().segment(image, side)
    seconds = time.perf_counter() - started
    labels = segmentation.labels
    print(f"{morphology.description}: {image.shape} voxels {tuple(round(v, 3) for v in image.spacing_mm)} mm, "
          f"{side} knee ({morphology.laterality_source}); segmented in {seconds:.1f} s "
          + ", ".join(f"{k} {v:.1f} s" for k, v in segmentation.timings_s.items()))
    for value in range(1, 10):
        volume = float((labels.array == value).sum() * labels.voxel_volume_mm3) / 1000
        name = Label(value).name.lower()
        print(f"  {name:26s} {volume:7.2f} mL   confidence {segmentation.confidence.get(name, float('nan')):.3f}")
    biomarkers = measure_knee(labels, side, "dicom").biomarkers
    for region in ("F", "cMF", "cLF", "MT", "LT", "P"):
        value = next((b.value for b in biomarkers.biomarkers
                      if b.name == "cartilage_thickness_mean" and b.region == region), None)
        print(f"  mean cartilage thickness {region:4s} {value if value is None else round(value, 2)} mm")
    print("  literature, healthy knees at 3 T: femoral cartilage about 1.8-2.5 mm mean, several mL")
    _draw(image.array, labels.array)
    print(f"wrote {PICTURE.relative_to(REPO_ROOT)}")


def _draw(image: np.ndarray, labels: np.ndarray) -> None:
    cartilage = np.isin(labels, [4, 5, 6, 7]).sum(axis=(1, 2))
    slices = np.flatnonzero(cartilage)
    chosen = [int(np.percentile(slices, q)) for q in (20, 50, 80)] if slices.size else [image.shape[0] // 2]
    figure, axes = plt.subplots(1, len(chosen), figsize=(6 * len(chosen), 6))
    for axis, k in zip(np.atleast_1d(axes), chosen, strict=True):
        axis.imshow(image[k], cmap="gray")
        for value, colour in COLOURS.items():
            if (labels[k] == value).any():
                axis.contour(labels[k] == value, [0.5], colors=colour, linewidths=0.8)
        axis.set_title(f"slice {k + 1} of {image.shape[0]}")
        axis.axis("off")
    handles = [plt.Line2D([], [], color=c, label=Label(v).name.lower().replace("_", " ")) for v, c in COLOURS.items()]
    figure.legend(handles=handles, loc="lower center", ncol=5, fontsize=8)
    figure.suptitle("knee-sam-tiny on the real GE 3 T DESS exam (no expert labels: judge by eye)")
    figure.savefig(PICTURE, dpi=90, bbox_inches="tight")


if __name__ == "__main__":
    main()
