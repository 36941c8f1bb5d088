"""Scoring a stored linear model: clip, standardise, linear predictor, its standard error, probabilities.

Clipping each input to the training range (0.5th-99.5th percentile) keeps a linear model from extrapolating
on an implausible measurement (a segmentation failure, a phantom unlike any knee); the clipped values are
what the factors report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from app.clinical.model_files import CoxBaseline, LinearModel

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class LinearScore:
    """A model's linear predictor for one input, with what each feature contributed."""

    lp: float
    se: float
    contributions: dict[str, float]
    clipped: dict[str, float]


def missing_features(model: LinearModel, values: Mapping[str, float]) -> list[str]:
    """The model's features absent from ``values`` (or not finite)."""
    return [k for k in model.keys if k not in values or not math.isfinite(values[k])]


def design_row(model: LinearModel, values: Mapping[str, float]) -> np.ndarray:
    """Standardised, clipped inputs in the model's feature order."""
    return np.array(
        [(min(max(values[f.key], f.low), f.high) - f.mean) / f.sd for f in model.features], dtype=float
    )


def score(model: LinearModel, values: Mapping[str, float]) -> LinearScore:
    """Linear predictor, delta-method standard error, and per-feature contributions (coefficient x z)."""
    z = design_row(model, values)
    beta = np.asarray(model.coefficients, dtype=float)
    terms = beta * z
    lp = float(terms.sum()) + (model.intercept or 0.0)
    x = np.concatenate([[1.0], z]) if model.intercept is not None else z
    se = float(math.sqrt(max(float(x @ np.asarray(model.covariance) @ x), 0.0)))
    clipped = {f.key: min(max(values[f.key], f.low), f.high) for f in model.features}
    return LinearScore(lp=lp, se=se, contributions=dict(zip(model.keys, terms.tolist(), strict=True)), clipped=clipped)


def logistic(lp: float) -> float:
    """P = 1 / (1 + exp(-lp)), computed without overflow."""
    if lp >= 0:
        return 1.0 / (1.0 + math.exp(-lp))
    e = math.exp(lp)
    return e / (1.0 + e)


def cox_probability(baseline: CoxBaseline, lp: float) -> float:
    """P(event by horizon) = 1 - S0(horizon) ** exp(lp)."""
    return 1.0 - baseline.horizon_survival ** math.exp(min(lp, 50.0))


def probability(model: LinearModel, baseline: CoxBaseline | None, lp: float) -> float:
    """The outcome probability for a linear predictor (logistic or Cox)."""
    return logistic(lp) if baseline is None else cox_probability(baseline, lp)


def probability_interval(
    model: LinearModel, baseline: CoxBaseline | None, result: LinearScore
) -> tuple[float, float, float]:
    """(estimate, low, high): the 95 % interval of the linear predictor, mapped through the link.

    For Cox models the baseline survival is treated as known (its uncertainty is small next to the
    coefficients' in cohorts of thousands; the docs say so).
    """
    estimate = probability(model, baseline, result.lp)
    low = probability(model, baseline, result.lp - Z_95 * result.se)
    high = probability(model, baseline, result.lp + Z_95 * result.se)
    return estimate, min(low, estimate), max(high, estimate)


def linear_predictors(model: LinearModel, features: Mapping[str, np.ndarray]) -> np.ndarray:
    """Vectorised :func:`score` (linear predictor only) for many knees; NaN where an input is missing."""
    total = np.full(len(next(iter(features.values()))), model.intercept or 0.0, dtype=float)
    for spec, beta in zip(model.features, model.coefficients, strict=True):
        values = np.asarray(features[spec.key], dtype=float)
        total = total + beta * (np.clip(values, spec.low, spec.high) - spec.mean) / spec.sd
    return total


def probabilities(baseline: CoxBaseline | None, lp: np.ndarray) -> np.ndarray:
    """Vectorised :func:`probability`."""
    if baseline is None:
        return 1.0 / (1.0 + np.exp(-lp))
    return 1.0 - baseline.horizon_survival ** np.exp(np.minimum(lp, 50.0))
