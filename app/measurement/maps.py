"""Pictures people would rather look at than tables: 2D cartilage thickness maps and relaxation maps.

Thickness maps flatten each bone's total subchondral bone area into a plane with a view that keeps
the anatomy recognisable, always with the patient's medial side on the left:

- femur: in the femur's own frame, unrolled around a medio-lateral axis through the condyles' centre of
  curvature (a circle fitted to the cartilage-bearing bone in the sagittal plane); vertical = arc
  length, anterior (trochlea) up,
  posterior condyles down, so trochlea, weight-bearing and posterior regions sit one above the other;
- tibia (both plates): seen from above (axial projection), anterior up;
- patella: projected onto its own principal plane (the plane of its articular surface), superior up.

Each pixel holds the area-weighted mean thickness of the points that fall into it. matplotlib is
imported only when a picture is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from app.measurement.knee import KneeMeasurement
from app.measurement.relaxometry import RelaxationMap
from schemas.labels import Label
from schemas.volume import EchoSeries

#: Pixel size of the thickness maps (mm).
MAP_PIXEL_MM = 0.75
#: Anatomy shown around the fitted cartilage in relaxation map pictures (mm).
CONTEXT_MM = 15.0


@dataclass(frozen=True)
class ThicknessMap:
    """A thickness map: ``values_mm[row, column]``, row 0 at the bottom (``vertical_range`` start)."""

    name: str  # "femur", "tibia" or "patella"
    values_mm: NDArray[np.float64]  # NaN where there is no cartilage-bearing bone
    horizontal_range: tuple[float, float]  # mm, left to right edge
    vertical_range: tuple[float, float]  # mm, bottom to top edge
    horizontal_label: str
    vertical_label: str


def thickness_maps(measurement: KneeMeasurement) -> list[ThicknessMap]:
    """One map per bone with measured cartilage (femur, tibia with both plates, patella)."""
    plates = measurement.plates
    laterality = measurement.biomarkers.laterality
    medial_sign = 1.0 if laterality == "left" else -1.0
    frame = measurement.frame
    maps = []
    if Label.FEMORAL_CARTILAGE in plates:
        thickness = plates[Label.FEMORAL_CARTILAGE].thickness
        assert frame is not None  # femoral plates exist only with a knee frame
        mas = frame.femur_coordinates(thickness.bone_surface.xyz)
        centre = _fit_circle(mas[:, 1], mas[:, 2])
        radius = float(np.median(np.hypot(mas[:, 1] - centre[0], mas[:, 2] - centre[1])))
        angle = np.arctan2(mas[:, 1] - centre[0], -(mas[:, 2] - centre[1]))  # 0 = distal, +90 deg = anterior
        horizontal = (mas[:, 0] - frame.notch_m) * -medial_sign
        maps.append(
            _rasterise(
                "femur",
                horizontal,
                radius * angle,
                thickness.thickness_mm,
                thickness.bone_surface.area_mm2,
                "medial  <-  (mm)  ->  lateral",
                "posterior  <-  arc length (mm)  ->  anterior",
            )
        )
    tibial = [
        plates[label] for label in (Label.MEDIAL_TIBIAL_CARTILAGE, Label.LATERAL_TIBIAL_CARTILAGE) if label in plates
    ]
    if tibial:
        xyz = np.concatenate([p.thickness.bone_surface.xyz for p in tibial])
        mid_line = float(np.median(xyz[:, 0])) if frame is None else float((frame.axes[:, 0] * frame.notch_m)[0])
        maps.append(
            _rasterise(
                "tibia",
                (xyz[:, 0] - mid_line) * -medial_sign,
                xyz[:, 1],
                np.concatenate([p.thickness.thickness_mm for p in tibial]),
                np.concatenate([p.thickness.bone_surface.area_mm2 for p in tibial]),
                "medial  <-  (mm)  ->  lateral",
                "posterior  <-  (mm)  ->  anterior",
            )
        )
    if Label.PATELLAR_CARTILAGE in plates:
        thickness = plates[Label.PATELLAR_CARTILAGE].thickness
        xyz = thickness.bone_surface.xyz
        centred = xyz - np.average(xyz, axis=0, weights=thickness.bone_surface.area_mm2)
        axes = np.linalg.svd(centred, full_matrices=False)[2]
        # Orient the in-plane axes like the patient: first towards lateral, second towards superior.
        order = (0, 1) if abs(axes[0, 0]) >= abs(axes[1, 0]) else (1, 0)
        first, second = axes[order[0]], axes[order[1]]
        first = first * np.sign(first[0] * -medial_sign)
        second = second * np.sign(second[2] if abs(second[2]) > 1e-6 else 1.0)
        maps.append(
            _rasterise(
                "patella",
                centred @ first,
                centred @ second,
                thickness.thickness_mm,
                thickness.bone_surface.area_mm2,
                "medial  <-  (mm)  ->  lateral",
                "inferior  <-  (mm)  ->  superior",
            )
        )
    return maps


def _fit_circle(u: NDArray[np.float64], v: NDArray[np.float64]) -> tuple[float, float]:
    """Centre of the least-squares circle through points (u, v) (Kasa's algebraic fit)."""
    design = np.column_stack([u, v, np.ones_like(u)])
    solution = np.linalg.lstsq(design, u * u + v * v, rcond=None)[0]
    return float(solution[0] / 2), float(solution[1] / 2)


def _rasterise(
    name: str,
    horizontal: NDArray[np.float64],
    vertical: NDArray[np.float64],
    values: NDArray[np.float64],
    weights: NDArray[np.float64],
    horizontal_label: str,
    vertical_label: str,
) -> ThicknessMap:
    low = np.array([horizontal.min(), vertical.min()])
    columns, rows = (np.floor((np.array([horizontal.max(), vertical.max()]) - low) / MAP_PIXEL_MM) + 1).astype(int)
    column = np.minimum(((horizontal - low[0]) / MAP_PIXEL_MM).astype(int), columns - 1)
    row = np.minimum(((vertical - low[1]) / MAP_PIXEL_MM).astype(int), rows - 1)
    weighted = np.zeros((rows, columns))
    total = np.zeros((rows, columns))
    np.add.at(weighted, (row, column), values * weights)
    np.add.at(total, (row, column), weights)
    # Fill isolated empty pixels (sampling gaps) from their neighbours; leave real gaps empty.
    empty = total == 0
    neighbours = ndimage.uniform_filter((~empty).astype(float), 3, mode="constant") * 9
    filled_weighted = ndimage.uniform_filter(weighted, 3, mode="constant")
    filled_total = ndimage.uniform_filter(total, 3, mode="constant")
    gap = empty & (neighbours >= 5)
    weighted[gap], total[gap] = filled_weighted[gap], filled_total[gap]
    with np.errstate(invalid="ignore", divide="ignore"):
        image = np.where(total > 0, weighted / total, np.nan)
    return ThicknessMap(
        name,
        image,
        (float(low[0]), float(low[0] + columns * MAP_PIXEL_MM)),
        (float(low[1]), float(low[1] + rows * MAP_PIXEL_MM)),
        horizontal_label,
        vertical_label,
    )


def render_thickness_map(thickness_map: ThicknessMap, laterality: str, path: Path) -> None:
    """Write ``thickness_map`` as a PNG with a colour bar in mm."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 5.6), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    top = max(4.0, float(np.nanpercentile(thickness_map.values_mm, 99)))
    image = axes.imshow(
        thickness_map.values_mm,
        origin="lower",
        extent=(*thickness_map.horizontal_range, *thickness_map.vertical_range),
        cmap="viridis",
        vmin=0.0,
        vmax=top,
        interpolation="nearest",
    )
    mean = float(np.nanmean(thickness_map.values_mm))
    axes.set_title(
        f"{thickness_map.name.capitalize()} cartilage thickness, {laterality} knee\n(mean of the map {mean:.2f} mm)"
    )
    axes.set_xlabel(thickness_map.horizontal_label)
    axes.set_ylabel(thickness_map.vertical_label)
    figure.colorbar(image, ax=axes, label="cartilage thickness (mm)")
    figure.savefig(path)


def render_relaxation_map(
    relaxation: RelaxationMap, series: EchoSeries, quantity: str, path: Path, slice_index: int | None = None
) -> int:
    """Write the slice with the most valid cartilage voxels (or ``slice_index``) as a PNG; returns the slice.

    The first echo / spin-lock image is shown in grey, cropped to the fitted cartilage with a margin of
    :data:`CONTEXT_MM`, with the fitted values of the voxels that count in the regional means overlaid.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    valid = relaxation.valid
    index = int(np.argmax(valid.sum(axis=(1, 2)))) if slice_index is None else slice_index
    spacing = relaxation.map_ms.spacing_mm
    rows, columns = np.nonzero(valid[index]) if valid[index].any() else np.nonzero(np.ones(valid.shape[1:]))
    margin = np.ceil(CONTEXT_MM / np.asarray(spacing[1:])).astype(int)
    r0, r1 = max(rows.min() - margin[0], 0), min(rows.max() + margin[0] + 1, valid.shape[1])
    c0, c1 = max(columns.min() - margin[1], 0), min(columns.max() + margin[1] + 1, valid.shape[2])
    anatomy = series.array[0, index, r0:r1, c0:c1].astype(np.float64)
    overlay = np.where(valid[index, r0:r1, c0:c1], relaxation.map_ms.array[index, r0:r1, c0:c1], np.nan)
    figure = Figure(figsize=(7.2, 6.4), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    extent = (c0 * spacing[2], c1 * spacing[2], r1 * spacing[1], r0 * spacing[1])
    axes.imshow(anatomy, cmap="gray", extent=extent, vmax=float(np.percentile(anatomy, 99.5)))
    values = overlay[np.isfinite(overlay)]
    low, high = np.percentile(values, [2, 98]) if len(values) else (0.0, 1.0)
    image = axes.imshow(
        overlay, cmap="magma", extent=extent, vmin=float(low), vmax=float(high), interpolation="nearest"
    )
    mean = f", mean {values.mean():.1f} ms over {len(values)} voxels" if len(values) else ""
    axes.set_title(f"{quantity} map, slice {index + 1} of {valid.shape[0]}{mean}")
    axes.set_xlabel("column (mm)")
    axes.set_ylabel("row (mm)")
    figure.colorbar(image, ax=axes, label=f"{quantity} (ms)")
    figure.savefig(path)
    return index
