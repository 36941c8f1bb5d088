"""Point-wise agreement of our thickness with another tool's result on its own surface points.

Other tools report thickness at the vertices of their own bone mesh (pymskt: a femur mesh of 10,000
points, 0 where their ray found no cartilage). Our thickness is sampled at each of their points from
the nearest point of our total subchondral bone area; points farther than ``max_distance_mm`` from our
surface are not compared (the two surfaces do not cover exactly the same bone).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from app.measurement.thickness import PlateThickness


@dataclass(frozen=True)
class Agreement:
    """Bland-Altman statistics of measured vs reference values at the same points."""

    n_points: int
    measured_mean: float
    reference_mean: float
    bias: float  # mean of measured - reference
    sd: float  # SD of the differences
    correlation: float  # Pearson r

    @property
    def limits_of_agreement(self) -> tuple[float, float]:
        return self.bias - 1.96 * self.sd, self.bias + 1.96 * self.sd


def sample_thickness(
    plate: PlateThickness, points_ras: NDArray[np.float64], max_distance_mm: float
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Our thickness at each point (from the nearest tAB point) and whether that point is near enough."""
    distance, nearest = cKDTree(plate.bone_surface.xyz).query(points_ras)
    return plate.thickness_mm[nearest], distance <= max_distance_mm


def agreement(measured: NDArray[np.float64], reference: NDArray[np.float64]) -> Agreement:
    difference = measured - reference
    return Agreement(
        n_points=len(measured),
        measured_mean=float(measured.mean()),
        reference_mean=float(reference.mean()),
        bias=float(difference.mean()),
        sd=float(difference.std(ddof=1)),
        correlation=float(np.corrcoef(measured, reference)[0, 1]),
    )
