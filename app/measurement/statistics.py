"""Area-weighted statistics over surface points (each point stands for a piece of bone surface)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def weighted_mean(values: NDArray[np.float64], weights: NDArray[np.float64]) -> float:
    return float(np.average(values, weights=weights))


def weighted_percentile(values: NDArray[np.float64], weights: NDArray[np.float64], percent: float) -> float:
    """The ``percent`` percentile of ``values`` where each value counts in proportion to its weight.

    Each sorted value sits at the middle of its share of the cumulative weight, and percentiles in
    between are interpolated linearly (for equal weights this is numpy's "hazen" percentile).
    """
    order = np.argsort(values)
    sorted_values = values[order]
    sorted_weights = weights[order]
    position = (np.cumsum(sorted_weights) - 0.5 * sorted_weights) / sorted_weights.sum()
    return float(np.interp(percent / 100.0, position, sorted_values))
