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

from app.measurement.geometry import Box, bounding_box, resample_nearest
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
#: Depth (mm) above its floor within which the notch floor counts as reached (finds its anterior end).
_NOTCH_FLOOR_TOLERANCE_MM = 1.0


class RegionError(ValueError):
    """The label map does not allow the anatomical landmarks to be found; the message says which."""


@dataclass(frozen=True)
class KneeFrame:
    """Anatomical landmarks of one knee in RAS mm, plus which way is medial."""

    laterality: Laterality
    notch_x: float  # sagittal plane through the middle of the intercondylar notch
    trochlear_y: float  # coronal plane through the notch's anterior end
    posterior_y_medial: float  # posterior end of the medial condyle
    posterior_y_lateral: float  # posterior end of the lateral condyle

    @property
    def medial_sign(self) -> float:
        """+1 when medial is +x (left knee), -1 when it is -x (right knee)."""
        return 1.0 if self.laterality == "left" else -1.0

    def is_medial(self, xyz: NDArray[np.float64]) -> NDArray[np.bool_]:
        return (xyz[:, 0] - self.notch_x) * self.medial_sign > 0

    def central_limit_y(self, medial: NDArray[np.bool_]) -> NDArray[np.float64]:
        """Posterior limit of the central femoral region for each point's condyle."""
        posterior = np.where(medial, self.posterior_y_medial, self.posterior_y_lateral)
        return self.trochlear_y - CENTRAL_FEMUR_FRACTION * (self.trochlear_y - posterior)


def knee_frame(labels: Volume, laterality: Laterality) -> KneeFrame:
    """Find the intercondylar notch and the posterior ends of the condyles on the femur label.

    The femur is resampled onto a 1 mm grid aligned with the patient axes, and its distal surface is
    described by a height map: the lowest femur point above each (x, y). Along x, the lowest point of
    each sagittal section is low at the condyles and high over the notch (there the lowest bone is the
    notch roof or the trochlear groove): the notch is the interval where it stays above halfway between
    the higher condyle and the notch's top, and its middle is the medio-lateral split. In the sagittal
    section through the notch the height falls along the notch roof towards anterior until it reaches
    the floor of the trochlear groove: that corner is the notch's anterior end.
    """
    box = bounding_box(labels.array == Label.FEMUR, (0, 0, 0))
    if box is None:
        raise RegionError("no femur in the label map: femoral regions need the femur label")
    corners = np.array([[i, j, k] for i in box_limits(box, 0) for j in box_limits(box, 1) for k in box_limits(box, 2)])
    world = labels.world(corners)
    origin = np.floor(world.min(axis=0)) - _FRAME_GRID_MM
    shape = tuple(int(n) for n in np.ceil((world.max(axis=0) - origin) / _FRAME_GRID_MM) + 2)
    grid = np.diag([_FRAME_GRID_MM] * 3 + [1.0])
    grid[:3, 3] = origin
    mask = resample_nearest(labels, grid, shape).array == Label.FEMUR
    lowest = int(np.argmax(mask.any(axis=(0, 1))))
    mask[:, :, lowest + int(_DISTAL_FEMUR_MM / _FRAME_GRID_MM) + 1 :] = False
    heights = origin[2] + _FRAME_GRID_MM * np.argmax(mask, axis=2).astype(np.float64)
    heights[~mask.any(axis=2)] = np.nan  # height map H[x, y]
    present = ~np.all(np.isnan(heights), axis=1)
    profile = np.full(shape[0], -np.inf)
    profile[present] = np.nanmin(heights[present], axis=1)  # lowest point of each sagittal section

    columns = np.flatnonzero(present)
    width = columns[-1] - columns[0]
    central = np.arange(columns[0] + width // 4, columns[-1] - width // 4 + 1)
    top = int(central[np.argmax(profile[central])])
    left_low = float(np.min(profile[columns[0] : top])) if top > columns[0] else np.nan
    right_low = float(np.min(profile[top + 1 : columns[-1] + 1])) if top < columns[-1] else np.nan
    if not (np.isfinite(left_low) and np.isfinite(right_low)) or profile[top] - max(left_low, right_low) < 2.0:
        raise RegionError(
            "could not find the intercondylar notch on the femur label (no gap between two condyles "
            "in the distal femur); is the femur complete and the label map a knee?"
        )
    threshold = (max(left_low, right_low) + profile[top]) / 2
    start, stop = top, top
    while start > 0 and profile[start - 1] >= threshold:
        start -= 1
    while stop < shape[0] - 1 and profile[stop + 1] >= threshold:
        stop += 1
    notch_x = origin[0] + _FRAME_GRID_MM * (start + stop) / 2

    # Anterior end of the notch: in the middle third of the notch, the most posterior point where the
    # distal surface has come down to within a tolerance of its lowest level (the groove's floor).
    third = max((stop - start) // 6, 0)
    middle = heights[(start + stop) // 2 - third : (start + stop) // 2 + third + 1]
    seen = ~np.isnan(middle)
    section = np.where(
        seen.any(axis=0), np.where(seen, middle, 0).sum(axis=0) / np.maximum(seen.sum(axis=0), 1), np.nan
    )
    if np.all(np.isnan(section)):
        raise RegionError("could not find the anterior end of the intercondylar notch on the femur label")
    floor = np.nanmin(section)
    reached = np.flatnonzero(section <= floor + _NOTCH_FLOOR_TOLERANCE_MM)
    trochlear_y = origin[1] + _FRAME_GRID_MM * float(reached[0])

    x = origin[0] + _FRAME_GRID_MM * np.arange(shape[0])
    y = origin[1] + _FRAME_GRID_MM * np.arange(shape[1])
    medial_columns = (x - notch_x) * (1.0 if laterality == "left" else -1.0) > 0
    in_section = mask.any(axis=2)  # [x, y]

    def posterior_end(columns: NDArray[np.bool_]) -> float:
        return float(y[np.argmax(in_section[columns].any(axis=0))])

    return KneeFrame(
        laterality=laterality,
        notch_x=float(notch_x),
        trochlear_y=float(trochlear_y),
        posterior_y_medial=posterior_end(medial_columns),
        posterior_y_lateral=posterior_end(~medial_columns),
    )


def box_limits(box: Box, axis: int) -> tuple[int, int]:
    """The first and last index of ``box`` along ``axis``."""
    return box.start[axis], box.stop[axis] - 1


def femoral_plates(xyz: NDArray[np.float64], frame: KneeFrame) -> NDArray[np.str_]:
    """``TrF``, ``cMF``, ``cLF``, ``pMF`` or ``pLF`` (posterior, part of MF / LF only) for each point."""
    medial = frame.is_medial(xyz)
    plate = np.where(medial, "pMF", "pLF").astype("<U3")
    central = xyz[:, 1] >= frame.central_limit_y(medial)
    plate[central] = np.where(medial[central], "cMF", "cLF")
    plate[xyz[:, 1] > frame.trochlear_y] = "TrF"
    return plate


def femoral_subregions(xyz: NDArray[np.float64], frame: KneeFrame) -> NDArray[np.str_]:
    """``i``, ``c`` or ``e``: thirds of one central femoral plate's medio-lateral width (internal = notch side)."""
    away_from_notch = np.abs(xyz[:, 0] - frame.notch_x)
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
    limit = radius[order][min(np.searchsorted(cumulative, CENTRAL_TIBIA_FRACTION), len(order) - 1)]
    towards_medial = normalised[:, 0] * (1.0 if laterality == "left" else -1.0) > 0
    external = towards_medial if medial_plate else ~towards_medial
    sub = np.where(external, "e", "i").astype("<U1")
    along_ap = np.abs(normalised[:, 1]) >= np.abs(normalised[:, 0])
    sub[along_ap] = np.where(normalised[along_ap, 1] > 0, "a", "p")
    sub[radius <= limit] = "c"
    return sub
