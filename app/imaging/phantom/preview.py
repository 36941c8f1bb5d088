"""Preview PNGs of a phantom: representative slices with the labels overlaid.

One figure per protocol: three sagittal slices of the first echo (through the medial condyle, the
intercondylar notch and the lateral condyle) and one coronal reformat through the tibial plateau,
each shown plain and with the label map overlaid, oriented as a radiologist reads them (sagittal:
anterior left, superior up; coronal: patient's right on the viewer's left).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from app.imaging.phantom.anatomy import LC, MC
from app.imaging.phantom.protocols import ProtocolSpec
from app.imaging.phantom.signal import FLUID_STORED_VALUE, fluid_reference, signal_equation
from schemas.labels import Label

if TYPE_CHECKING:
    from app.imaging.phantom.generator import Phantom

#: Overlay colours (RGB 0-1) per label; background is transparent.
LABEL_COLORS: dict[Label, tuple[float, float, float]] = {
    Label.FEMUR: (0.95, 0.85, 0.55),
    Label.TIBIA: (0.85, 0.75, 0.45),
    Label.PATELLA: (0.95, 0.65, 0.35),
    Label.FEMORAL_CARTILAGE: (0.1, 0.8, 0.2),
    Label.MEDIAL_TIBIAL_CARTILAGE: (0.1, 0.5, 1.0),
    Label.LATERAL_TIBIAL_CARTILAGE: (0.0, 0.85, 0.85),
    Label.PATELLAR_CARTILAGE: (0.9, 0.2, 0.9),
    Label.MEDIAL_MENISCUS: (1.0, 0.15, 0.15),
    Label.LATERAL_MENISCUS: (1.0, 0.55, 0.0),
    Label.MUSCLE: (0.75, 0.3, 0.3),
    Label.SUBCUTANEOUS_FAT: (1.0, 1.0, 0.6),
    Label.JOINT_FLUID: (0.3, 0.6, 1.0),
    Label.BONE_MARROW_LESION: (1.0, 0.0, 0.5),
    Label.FIBULA: (0.7, 0.65, 0.4),
    Label.OSTEOPHYTE: (0.55, 0.25, 0.05),
    Label.NERVE: (1.0, 1.0, 0.0),
}


def _overlay(labels: NDArray[np.uint8], alpha: float = 0.45) -> NDArray[np.float64]:
    rgba = np.zeros((*labels.shape, 4))
    for label, color in LABEL_COLORS.items():
        here = labels == label
        rgba[here, :3] = color
        rgba[here, 3] = alpha
    return rgba


def _window(spec: ProtocolSpec) -> float:
    """Display maximum: 1.6 x the stored value of healthy cartilage (fluid may saturate, as radiologists window)."""
    signal = signal_equation(spec, *(np.array([v]) for v in (0.75, 1200.0, 40.0, 24.0, 44.0)))[0][0]
    return float(1.6 * FLUID_STORED_VALUE * signal / fluid_reference(spec))


def _slice_index(phantom: Phantom, affine: NDArray, knee_point: NDArray) -> int:
    ras = phantom.knee_to_ras @ np.append(knee_point, 1.0)
    return round((np.linalg.inv(affine) @ ras)[0])


def write_previews(phantom: Phantom, out_dir: Path) -> list[Path]:
    """Write one PNG per protocol into ``out_dir``; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    out_dir.mkdir(parents=True, exist_ok=True)
    femur = phantom.model.bones.femur.bone
    condyle = {
        name: femur.frame.to_parent(femur.shape.parts[i].center[None])[0]
        for name, i in (("medial", MC), ("lateral", LC))
    }  # type: ignore[attr-defined]
    knee_points = {
        "medial condyle": condyle["medial"],
        "intercondylar notch": np.array([0.0, 0.0, 10.0]),
        "lateral condyle": condyle["lateral"],
    }
    written = []
    for spec in phantom.truth.protocols:
        series = phantom.images[spec.name]
        image = series.array[0]
        labels = _labels_on(phantom, series.affine, image.shape)
        limits = (0.0, _window(spec))
        fig, axes = plt.subplots(2, 4, figsize=(18, 9.6), facecolor="black")
        panels = []
        for title, point in knee_points.items():
            k = int(np.clip(_slice_index(phantom, series.affine, point), 0, image.shape[0] - 1))
            panels.append((f"sagittal, {title} (slice {k + 1})", image[k], labels[k], 1.0))
        spacing = np.linalg.norm(series.affine[:3, :3], axis=0)
        tibia_center = phantom.model.bones.tibia.bone.frame.origin
        column = round((np.linalg.inv(series.affine) @ (phantom.knee_to_ras @ np.append(tibia_center, 1.0)))[2])
        column = int(np.clip(column, 0, image.shape[2] - 1))
        coronal_image = np.flip(image[:, :, column].T, axis=1)
        coronal_labels = np.flip(labels[:, :, column].T, axis=1)
        panels.append(("coronal reformat, tibial plateau", coronal_image, coronal_labels, spacing[1] / spacing[0]))
        for col, (title, img, lab, aspect) in enumerate(panels):
            for row in range(2):
                ax = axes[row, col]
                ax.imshow(img, cmap="gray", vmin=limits[0], vmax=limits[1], aspect=aspect, interpolation="nearest")
                if row == 1:
                    ax.imshow(_overlay(lab), aspect=aspect, interpolation="nearest")
                ax.set_axis_off()
                ax.set_title(title if row == 0 else "with labels", color="white", fontsize=11)
            coronal = col == 3
            left, right = ("R", "L") if coronal and phantom.side == "right" else ("L", "R") if coronal else ("A", "P")
            for row in range(2):
                axes[row, col].text(0.01, 0.5, left, color="yellow", transform=axes[row, col].transAxes, fontsize=12)
                axes[row, col].text(0.97, 0.5, right, color="yellow", transform=axes[row, col].transAxes, fontsize=12)
        present = sorted(set(np.unique(labels)) - {0})
        handles = [
            Patch(color=LABEL_COLORS[Label(v)], label=Label(v).display_name)
            for v in present
            if Label(v) in LABEL_COLORS
        ]
        fig.legend(handles=handles, loc="lower center", ncol=8, fontsize=10, frameon=False, labelcolor="white")
        times = ", ".join(f"{t:g}" for t in spec.times_ms)
        fig.suptitle(
            f"msk-cds phantom seed {phantom.truth.seed}, {phantom.side} knee, grade {phantom.truth.grade} — "
            f"{spec.name} ({'TSL' if spec.signal_model == 't1rho' else 'TE'} {times} ms; first shown)",
            color="white",
            fontsize=13,
        )
        fig.tight_layout(rect=(0, 0.05, 1, 0.96))
        path = out_dir / f"{spec.name}.png"
        fig.savefig(path, dpi=80, facecolor="black")
        plt.close(fig)
        written.append(path)
    return written


def _labels_on(phantom: Phantom, affine: NDArray, shape: tuple[int, ...]) -> NDArray[np.uint8]:
    """The label map resampled (nearest neighbour) onto another series' grid."""
    labels = phantom.labels
    index = np.indices(shape).reshape(3, -1).T.astype(np.float64)
    ras = np.dot(index, affine[:3, :3].T) + affine[:3, 3]
    source = np.rint(labels.index(ras)).astype(int)
    inside = np.all((source >= 0) & (source < np.array(labels.shape)), axis=1)
    out = np.zeros(len(index), dtype=np.uint8)
    out[inside] = labels.array[tuple(source[inside].T)]
    return out.reshape(shape)
