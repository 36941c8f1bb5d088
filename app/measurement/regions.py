"""Eckstein / OAI Chondrometrics cartilage regions, from patient geometry and laterality.

Medial and lateral are never read from array order: in RAS patient coordinates the medial side of a
right knee is towards the patient's left (-x) and of a left knee towards the patient's right (+x).
Anterior is +y and superior +z, whatever the acquisition's orientation.

Femur (Eckstein et al. 2006; Wirth & Eckstein 2008), from landmarks found on the femur label
(:func:`knee_frame`):

- medial / lateral: split by the sagittal plane through the middle of the intercondylar notch;
- trochlea ``TrF``: femoral cartilage anterior to the coronal plane through the notch's anterior end;
- central (weight-bearing) ``cMF`` / ``cLF``: from that plane back to 60 % of the distance between the
  notch's anterior end and the posterior end of that condyle;
- the rest, posterior, completes the whole-condyle regions ``MF`` / ``LF``;
- ``cMF`` / ``cLF`` subregions: three bands of equal medio-lateral width, internal (next to the notch),
  central, external.

Tibia (Wirth & Eckstein 2008): in the axial plane, the central subregion is the ellipse centred on the
plate's total subchondral bone area (tAB) that covers 20 % of that area, with axes along the
medio-lateral and antero-posterior directions in proportion to the plate's spread along them; the rest
is split into external, internal (towards the tibial spines), anterior and posterior by the diagonals
of the ellipse's bounding rectangle. (CartiMorph, github.com/YongchengYAO/CartiMorph, builds the same
20 % ellipse and +-45 degree cuts.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from app.measurement.geometry import Box, bounding_box, linear, resample_nearest
from schemas.biomarkers import Laterality
from schemas.labels import Label
from schemas.volume import Volume

#: Fraction of the notch-to-posterior-condyle distance covered by the central femoral region.
CENTRAL_FEMUR_FRACTION = 0.6
#: Fraction of a tibial plate's tAB in its central (elliptical) subregion.
CENTRAL_TIBIA_FRACTION = 0.2
#: How far above its lowest point the femur is searched for the condyles and notch (mm).
_DISTAL_FEMUR_MM = 40.0
#: Grid of the femur height map used to find the notch (mm).
_FRAME_GRID_MM = 1.0
#: Sampling step of the sagittal section through the notch in which its anterior end is found (mm).
_SECTION_STEP_MM = 0.25
#: The shaft axis is fitted from this height above the femur's lowest point (above the epicondyles)...
_SHAFT_START_MM = 45.0
#: ... when at least this much of it is in the field of view (mm).
_MIN_SHAFT_MM = 10.0
#: Height above each condyle's lowest point over which its posterior-distal arc is fitted (mm).
_CONDYLE_WINDOW_MM = 35.0
#: Half the width of the intercondylar notch, left out between the two condyles' halves (mm).
_HALF_NOTCH_MM = 8.0


class RegionError(ValueError):
    """The label map does not allow the anatomical landmarks to be found; the message says which."""


@dataclass(frozen=True)
class KneeFrame:
    """Landmarks of one knee in the femur's own frame, and which way is medial.

    Femur coordinates (mm, origin at the RAS origin): ``s`` along the femoral shaft (superior), ``m``
    along the condyles' geometric centre axis made perpendicular to it (+m towards the patient's
    right), ``a = s x m`` (anterior). The regions are anatomical: a knee scanned flexed or turned in the coil gets the
    same regions as one scanned straight.
    """

    laterality: Laterality
    axes: NDArray[np.float64]  # 3x3, columns: the m, a and s unit vectors in RAS
    shaft_in_view: bool  # False: too little shaft in the field of view; s is the scanner's z
    condyles_fitted: bool  # False: the condyles' centres could not be fitted; m is the scanner's x
    notch_m: float  # sagittal plane through the middle of the intercondylar notch
    notch_a: float  # anterior end of the notch: the femur's lowest point in that plane
    posterior_a_medial: float  # posterior end of the medial condyle
    posterior_a_lateral: float  # posterior end of the lateral condyle

    @property
    def medial_sign(self) -> float:
        """+1 when medial is +m (left knee), -1 when it is -m (right knee)."""
        return 1.0 if self.laterality == "left" else -1.0

    def femur_coordinates(self, xyz: NDArray[np.float64]) -> NDArray[np.float64]:
        """``(m, a, s)`` of RAS points."""
        return linear(xyz, self.axes.T)

    def is_medial(self, mas: NDArray[np.float64]) -> NDArray[np.bool_]:
        return (mas[:, 0] - self.notch_m) * self.medial_sign > 0

    def central_limit_a(self, medial: NDArray[np.bool_]) -> NDArray[np.float64]:
        """Posterior limit of the central femoral region for each point's condyle."""
        posterior = np.where(medial, self.posterior_a_medial, self.posterior_a_lateral)
        return self.notch_a - CENTRAL_FEMUR_FRACTION * (self.notch_a - posterior)


def knee_frame(labels: Volume, laterality: Laterality) -> KneeFrame:
    """Find the femur's axes, the intercondylar notch and the condyles' posterior ends on the femur label.

    1. The axes (:func:`_femur_axes`): the shaft, a line fitted through the centroids of the femur's
       axial sections from :data:`_SHAFT_START_MM` above its lowest point to the top of the field of
       view; and the axis through the centres of the posterior condyles.
    2. In the femur frame, the distal surface as a height map: the lowest femur point above each
       ``(m, a)``. Along ``m``, the lowest point of each sagittal section is low at the condyles and high
       over the notch (there the lowest bone is the notch roof or the trochlear groove); the notch is the
       interval where it stays above halfway between the higher condyle and the notch's top, and its
       middle is the medio-lateral split.
    3. The anterior end of the notch: the lowest femur point in the sagittal plane through the notch
       (where the trochlear groove meets the notch roof), the middle of the points tied at the lowest.
    4. The posterior end of each condyle: the femur's most posterior point on that side of the notch.
    """
    box = bounding_box(labels.array == Label.FEMUR, (0, 0, 0))
    if box is None:
        raise RegionError("no femur in the label map: femoral regions need the femur label")
    corners = labels.world(
        np.array([[i, j, k] for i in box_limits(box, 0) for j in box_limits(box, 1) for k in box_limits(box, 2)])
    )
    axes, shaft_in_view, condyles_fitted = _femur_axes(labels, corners)
    mask, origin = _femur_grid(labels, corners, axes, _FRAME_GRID_MM)
    lowest = int(np.argmax(mask.any(axis=(0, 1))))
    mask[:, :, lowest + int(_DISTAL_FEMUR_MM / _FRAME_GRID_MM) + 1 :] = False
    heights = origin[2] + _FRAME_GRID_MM * np.argmax(mask, axis=2).astype(np.float64)
    heights[~mask.any(axis=2)] = np.inf  # height map H[m, a]
    profile = heights.min(axis=1)  # lowest point of each sagittal section
    columns = np.flatnonzero(np.isfinite(profile))
    width = columns[-1] - columns[0]
    central = np.arange(columns[0] + width // 4, columns[-1] - width // 4 + 1)
    top = int(central[np.argmax(profile[central])])
    left_low = float(profile[columns[0] : top].min()) if top > columns[0] else np.inf
    right_low = float(profile[top + 1 : columns[-1] + 1].min()) if top < columns[-1] else np.inf
    if not np.isfinite(max(left_low, right_low)) or profile[top] - max(left_low, right_low) < 2.0:
        raise RegionError(
            "could not find the intercondylar notch on the femur label (no gap between two condyles "
            "in the distal femur); is the femur complete and the label map a knee?"
        )
    threshold = (max(left_low, right_low) + profile[top]) / 2
    start, stop = top, top
    while start > 0 and profile[start - 1] >= threshold:
        start -= 1
    while stop < len(profile) - 1 and profile[stop + 1] >= threshold:
        stop += 1
    notch_m = origin[0] + _FRAME_GRID_MM * (start + stop) / 2
    notch_a = _notch_anterior_end(labels, axes, notch_m, origin, mask.shape)

    m = origin[0] + _FRAME_GRID_MM * np.arange(mask.shape[0])
    a = origin[1] + _FRAME_GRID_MM * np.arange(mask.shape[1])
    medial_columns = (m - notch_m) * (1.0 if laterality == "left" else -1.0) > 0
    in_section = np.asarray(mask.any(axis=2), dtype=bool)  # [m, a]

    def posterior_end(side: NDArray[np.bool_]) -> float:
        return float(a[np.argmax(in_section[side].any(axis=0))])

    return KneeFrame(
        laterality=laterality,
        axes=axes,
        shaft_in_view=shaft_in_view,
        condyles_fitted=condyles_fitted,
        notch_m=float(notch_m),
        notch_a=notch_a,
        posterior_a_medial=posterior_end(medial_columns),
        posterior_a_lateral=posterior_end(~medial_columns),
    )


def _femur_grid(
    labels: Volume, corners: NDArray[np.float64], axes: NDArray[np.float64], step: float
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """The femur resampled onto a grid of ``step`` mm along ``axes`` covering ``corners``; and its origin."""
    local = linear(corners, axes.T)
    origin = np.floor(local.min(axis=0)) - step
    shape = tuple(int(n) for n in np.ceil((local.max(axis=0) - origin) / step) + 2)
    grid = np.eye(4)
    grid[:3, :3] = axes * step
    grid[:3, 3] = axes @ origin
    return resample_nearest(labels, grid, shape).array == Label.FEMUR, origin


def _femur_axes(labels: Volume, corners: NDArray[np.float64]) -> tuple[NDArray[np.float64], bool, bool]:
    """The femur frame's axes (columns m, a, s), and whether the shaft and both condyles were measured.

    ``s`` follows the shaft (the scanner's z when too little shaft is in view); ``m`` is the condyles'
    geometric centre axis (through the centres of the circles that fit the posterior condyles in
    sagittal section, the knee's flexion axis) made perpendicular to ``s`` (the scanner's x when the
    condyles cannot be fitted). Together they keep the anterior-posterior region limits anatomical when
    the knee lies flexed or turned in the coil.
    """
    mask, _ = _femur_grid(labels, corners, np.eye(3), _FRAME_GRID_MM)
    present = np.flatnonzero(mask.any(axis=(0, 1)))
    levels = present[present >= present[0] + int(_SHAFT_START_MM / _FRAME_GRID_MM)]
    shaft = np.array([0.0, 0.0, 1.0])
    shaft_in_view = len(levels) * _FRAME_GRID_MM >= _MIN_SHAFT_MM
    if shaft_in_view:
        centroids = np.array([np.argwhere(mask[:, :, k]).mean(axis=0) for k in levels]) * _FRAME_GRID_MM
        slope_x, slope_y = np.polyfit(levels * _FRAME_GRID_MM, centroids, 1)[0]
        shaft = np.array([slope_x, slope_y, 1.0]) / np.sqrt(1.0 + slope_x**2 + slope_y**2)
    m = _perpendicular(np.array([1.0, 0.0, 0.0]), shaft)
    axes = np.column_stack([m, np.cross(shaft, m), shaft])
    flexion_axis = _condylar_axis(labels, corners, axes)
    if flexion_axis is not None:
        m = _perpendicular(flexion_axis, shaft)
        axes = np.column_stack([m, np.cross(shaft, m), shaft])
    return axes, bool(shaft_in_view), flexion_axis is not None


def _perpendicular(vector: NDArray[np.float64], axis: NDArray[np.float64]) -> NDArray[np.float64]:
    """``vector`` without its component along the unit ``axis``, normalised."""
    result = vector - (vector @ axis) * axis
    return result / np.linalg.norm(result)


def _condylar_axis(
    labels: Volume, corners: NDArray[np.float64], axes: NDArray[np.float64]
) -> NDArray[np.float64] | None:
    """RAS direction from the medial-side to the lateral-side condyle centre (or the reverse), or None.

    Each half of the distal femur (split at the middle of its width, leaving out the notch) gives the
    posterior-most femur point of every sagittal column and level up to :data:`_CONDYLE_WINDOW_MM`
    above that condyle's lowest point: the posterior-distal arc of the condyle. A circle fitted to those
    points in the (a, s) plane, at the side's mean ``m``, is the condyle's centre.
    """
    mask, _ = _femur_grid(labels, corners, axes, _FRAME_GRID_MM)
    columns = np.flatnonzero(mask.any(axis=(1, 2)))
    if len(columns) < 2 * _HALF_NOTCH_MM / _FRAME_GRID_MM + 10:
        return None
    middle = (columns[0] + columns[-1]) // 2
    gap = int(_HALF_NOTCH_MM / _FRAME_GRID_MM)
    centres = []
    for side in (slice(columns[0], middle - gap), slice(middle + gap, columns[-1] + 1)):
        half = mask[side]
        lowest = int(np.argmax(half.any(axis=(0, 1))))
        window = half[:, :, lowest : lowest + int(_CONDYLE_WINDOW_MM / _FRAME_GRID_MM)]
        column, level = np.nonzero(window.any(axis=1))
        if len(column) < 20:
            return None
        posterior = np.argmax(window[column, :, level], axis=1).astype(np.float64)  # first a with bone
        level = level.astype(np.float64)
        design = np.column_stack([posterior, level, np.ones_like(level)])
        solution = np.linalg.lstsq(design, posterior**2 + level**2, rcond=None)[0]
        centres.append(np.array([side.start + column.mean(), solution[0] / 2, lowest + solution[1] / 2]))
    direction = axes @ (centres[1] - centres[0])
    return direction / np.linalg.norm(direction)


def _notch_anterior_end(
    labels: Volume, axes: NDArray[np.float64], notch_m: float, origin: NDArray[np.float64], shape: tuple[int, ...]
) -> float:
    """The ``a`` of the lowest femur point in the sagittal plane ``m = notch_m``.

    The trochlear groove's floor is nearly flat along ``a`` where it meets the notch roof, so a lowest
    point read off voxels would wander by millimetres between tied voxels. The distal surface is
    therefore measured to sub-voxel precision: sagittal sections at ``notch_m`` and 1 and 2 mm either
    side (the floor is flat across the notch's middle) are sampled finely, smoothed with a Gaussian as
    wide as the label map's largest voxel, and their 0.5 crossing gives the surface height along ``a``;
    the mean profile's minimum is refined with a parabola through its neighbours.
    """
    step = _SECTION_STEP_MM
    count_a = int(shape[1] * _FRAME_GRID_MM / step)
    count_s = int(shape[2] * _FRAME_GRID_MM / step)
    offsets = np.arange(-2.0, 2.5, 1.0)
    grid = np.eye(4)
    grid[:3, :3] = axes * np.array([1.0, step, step])
    grid[:3, 3] = axes @ np.array([notch_m + offsets[0], origin[1], origin[2]])
    sections = resample_nearest(labels, grid, (len(offsets), count_a, count_s)).array == Label.FEMUR
    sigma = max(labels.spacing_mm) / step
    smooth = ndimage.gaussian_filter(sections.astype(np.float32), (0, sigma, sigma))
    inside = smooth >= 0.5
    has_bone = inside.any(axis=2)
    if not has_bone.any(axis=0).any():
        raise RegionError("could not find the anterior end of the intercondylar notch on the femur label")
    first = np.argmax(inside, axis=2)  # first s index inside bone, per section and a
    before = np.take_along_axis(smooth, np.maximum(first - 1, 0)[..., None], axis=2)[..., 0]
    after = np.take_along_axis(smooth, first[..., None], axis=2)[..., 0]
    height = first - (after - 0.5) / np.maximum(after - before, 1e-6)  # sub-pixel 0.5 crossing
    height = np.where(has_bone & (first > 0), height, np.nan)
    seen = ~np.isnan(height)
    if not seen.any(axis=0).any():
        raise RegionError("could not find the anterior end of the intercondylar notch on the femur label")
    profile = np.where(
        seen.any(axis=0), np.where(seen, height, 0).sum(axis=0) / np.maximum(seen.sum(axis=0), 1), np.inf
    )
    lowest = int(np.argmin(profile))
    shift = 0.0
    if 0 < lowest < len(profile) - 1 and np.all(np.isfinite(profile[lowest - 1 : lowest + 2])):
        left, middle, right = profile[lowest - 1 : lowest + 2]
        curvature = left - 2 * middle + right
        shift = float(np.clip(0.5 * (left - right) / curvature, -1, 1)) if curvature > 0 else 0.0
    return float(origin[1] + step * (lowest + shift))


def box_limits(box: Box, axis: int) -> tuple[int, int]:
    """The first and last index of ``box`` along ``axis``."""
    return box.start[axis], box.stop[axis] - 1


def femoral_plates(xyz: NDArray[np.float64], frame: KneeFrame) -> NDArray[np.str_]:
    """``TrF``, ``cMF``, ``cLF``, ``pMF`` or ``pLF`` (posterior, part of MF / LF only) for RAS points."""
    mas = frame.femur_coordinates(xyz)
    medial = frame.is_medial(mas)
    plate = np.where(medial, "pMF", "pLF").astype("<U3")
    central = mas[:, 1] >= frame.central_limit_a(medial)
    plate[central] = np.where(medial[central], "cMF", "cLF")
    plate[mas[:, 1] > frame.notch_a] = "TrF"
    return plate


def femoral_subregions(xyz: NDArray[np.float64], frame: KneeFrame) -> NDArray[np.str_]:
    """``i``, ``c`` or ``e``: thirds of one central femoral plate's medio-lateral width (internal = notch side)."""
    away_from_notch = np.abs(frame.femur_coordinates(xyz)[:, 0] - frame.notch_m)
    low, high = away_from_notch.min(), away_from_notch.max()
    third = (away_from_notch - low) / max(high - low, 1e-9) * 3
    return np.array(["i", "c", "e"])[np.clip(third.astype(np.int64), 0, 2)]


def tibial_subregions(
    xyz: NDArray[np.float64], area_mm2: NDArray[np.float64], laterality: Laterality, medial_plate: bool
) -> NDArray[np.str_]:
    """``c``, ``e``, ``i``, ``a`` or ``p`` for each point of one tibial plate's tAB (see the module docstring).

    Internal is towards the other plate (the tibial spines): lateral for MT, medial for LT.
    """
    centre = np.average(xyz[:, :2], axis=0, weights=area_mm2)
    offset = xyz[:, :2] - centre
    spread = np.sqrt(np.average(offset**2, axis=0, weights=area_mm2))
    normalised = offset / np.maximum(spread, 1e-9)
    radius = np.hypot(normalised[:, 0], normalised[:, 1])
    order = np.argsort(radius)
    cumulative = np.cumsum(area_mm2[order]) / area_mm2.sum()
    limit = radius[order][min(int(np.searchsorted(cumulative, CENTRAL_TIBIA_FRACTION)), len(order) - 1)]
    towards_medial = normalised[:, 0] * (1.0 if laterality == "left" else -1.0) > 0
    external = towards_medial if medial_plate else ~towards_medial
    sub = np.where(external, "e", "i").astype("<U1")
    along_ap = np.abs(normalised[:, 1]) >= np.abs(normalised[:, 0])
    sub[along_ap] = np.where(normalised[along_ap, 1] > 0, "a", "p")
    sub[radius <= limit] = "c"
    return sub
