"""Metrics with bootstrap confidence intervals: AUC, C-index, Brier, calibration, net benefit, proportions.

Bootstraps resample subjects (all knees of a resampled person come along), so two knees of one person do
not count as independent evidence. Intervals are percentile intervals (2.5th-97.5th).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from scipy.stats import norm, rankdata

from app.clinical.model_files import Interval

Progress = Callable[[], None]


def auc(label: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count one half)."""
    positives = label == 1
    n1, n0 = int(positives.sum()), int((~positives).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positives].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def brier(label: np.ndarray, probability: np.ndarray) -> float:
    """Mean squared difference between predicted probability and outcome."""
    return float(np.mean((probability - label) ** 2))


def calibration(label: np.ndarray, probability: np.ndarray) -> tuple[float, float]:
    """(intercept, slope) of the logistic recalibration ``logit P(y) = a + b logit(p)``; ideal slope 1."""
    p = np.clip(probability, 1e-6, 1 - 1e-6)
    x = np.column_stack([np.ones(len(p)), np.log(p / (1 - p))])
    coefficients = np.array([0.0, 1.0])
    for _ in range(25):  # Newton-Raphson; converges in a handful of steps
        fitted = 1 / (1 + np.exp(-(x @ coefficients)))
        weights = fitted * (1 - fitted)
        step = np.linalg.solve(x.T @ (x * weights[:, None]) + 1e-9 * np.eye(2), x.T @ (label - fitted))
        coefficients = coefficients + step
        if np.abs(step).max() < 1e-8:
            break
    return float(coefficients[0]), float(coefficients[1])


def c_index(months: np.ndarray, event: np.ndarray, risk_score: np.ndarray, chunk: int = 256) -> float:
    """Harrell's concordance: a higher risk score should mean an earlier event (ties in score count one half).

    A pair is comparable when the earlier time is an event; at equal times an event precedes a censoring (as
    lifelines counts). Vectorised over events in chunks: fast enough to bootstrap thousands of times.
    """
    events = np.flatnonzero(event == 1)
    concordant = comparable = 0.0
    for start in range(0, len(events), chunk):
        index = events[start:start + chunk]
        t, s = months[index][:, None], risk_score[index][:, None]
        at_risk = (months[None, :] > t) | ((months[None, :] == t) & (event[None, :] == 0))
        comparable += at_risk.sum()
        concordant += (at_risk & (risk_score[None, :] < s)).sum() + 0.5 * (at_risk & (risk_score[None, :] == s)).sum()
    return float(concordant / comparable) if comparable else float("nan")


def net_benefit(label: np.ndarray, probability: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Decision-curve net benefit of treating those above each threshold: TP/n - FP/n * t / (1 - t)."""
    n = len(label)
    out = np.empty(len(thresholds))
    for i, t in enumerate(thresholds):
        treated = probability >= t
        out[i] = (np.sum(treated & (label == 1)) - np.sum(treated & (label == 0)) * t / (1 - t)) / n
    return out


def wilson_lower_bound(successes: int, total: int, confidence: float) -> float:
    """One-sided lower confidence bound of a proportion (Wilson score); the point estimate if confidence is 0."""
    if total == 0:
        return 0.0
    p = successes / total
    if confidence <= 0:
        return p
    z = float(norm.ppf(confidence))
    centre = p + z * z / (2 * total)
    margin = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return float((centre - margin) / (1 + z * z / total))


def subject_bootstrap(subjects: np.ndarray, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Row indices of ``n_boot`` resamples drawn subject by subject."""
    rng = np.random.default_rng(seed)
    unique, inverse = np.unique(subjects, return_inverse=True)
    order = np.argsort(inverse, kind="stable")  # rows grouped by subject
    single = len(unique) == len(subjects)  # then order[i] is subject i's only row
    rows_of = [] if single else np.split(order, np.cumsum(np.bincount(inverse))[:-1])
    for _ in range(n_boot):
        drawn = rng.integers(0, len(unique), len(unique))
        yield order[drawn] if single else np.concatenate([rows_of[i] for i in drawn])


def with_intervals(
    statistic: Callable[[np.ndarray], dict[str, float]],
    n_rows: int,
    subjects: np.ndarray,
    n_boot: int,
    seed: int,
    progress: Progress | None = None,
) -> dict[str, Interval]:
    """Point estimates on all rows and percentile 95 % intervals over subject bootstraps."""
    estimates = statistic(np.arange(n_rows))
    samples: dict[str, list[float]] = {key: [] for key in estimates}
    for rows in subject_bootstrap(subjects, n_boot, seed):
        for key, value in statistic(rows).items():
            samples[key].append(value)
        if progress is not None:
            progress()
    intervals = {}
    for key, estimate in estimates.items():
        values = np.array(samples[key], dtype=float)
        values = values[np.isfinite(values)]
        low, high = (np.percentile(values, [2.5, 97.5]) if len(values) else (np.nan, np.nan))
        intervals[key] = Interval(estimate=round(estimate, 4), ci_low=round(float(low), 4),
                                  ci_high=round(float(high), 4))
    return intervals
