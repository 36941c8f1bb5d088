"""Evaluating a risk model file on a cohort: every variant on the same knees, gaps with paired CIs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.clinical.cohort import binary_at_horizon, feature_matrix
from app.clinical.errors import CohortError
from app.clinical.linear import linear_predictors, probabilities
from app.clinical.metrics import Progress, auc, brier, c_index, calibration, with_intervals
from app.clinical.model_files import Interval, RiskModelFile

#: Comparisons reported as "gap" rows: (richer variant, simpler variant).
GAPS = (("imaging", "demographics"), ("imaging_change", "demographics"), ("imaging_change", "imaging"))


@dataclass
class RiskEvaluation:
    """Predictions and metrics of every variant on the knees all variants can score."""

    model: RiskModelFile
    label: np.ndarray
    months: np.ndarray | None
    event: np.ndarray | None
    probability: dict[str, np.ndarray]
    lp: dict[str, np.ndarray]
    metrics: dict[str, dict[str, Interval]]
    n_boot: int

    @property
    def n(self) -> int:
        return len(self.label)

    @property
    def n_events(self) -> int:
        return int(self.label.sum())


def evaluate_risk(model: RiskModelFile, frame: pd.DataFrame, n_boot: int, seed: int,
                  progress: Progress | None = None) -> RiskEvaluation:
    """AUC, Brier, calibration (and C-index for Cox) per variant, and AUC gaps, all with bootstrap CIs.

    Knees censored before the horizon without an event have an unknown status and are left out (complete-case
    evaluation); under loss to follow-up this overstates the observed rate a little (``observed_expected``).
    The C-index uses the full follow-up of the same knees.
    """
    label = binary_at_horizon(frame, model.outcome, model.horizon_months)
    keys = sorted({k for v in model.variants.values() for k in v.linear.keys})
    matrix = feature_matrix(frame, keys, model.change_window_months)
    rows = (label.notna() & matrix.notna().all(axis=1)).to_numpy()
    if rows.sum() == 0 or label[rows].nunique() < 2:
        raise CohortError(
            f"no knees with a known {model.outcome} status at {model.horizon_months} months and every feature of "
            f"{model.model_id} (features: {', '.join(keys)}), or the outcome does not vary"
        )
    y = label.to_numpy()[rows].astype(int)
    features = {k: matrix[k].to_numpy()[rows] for k in keys}
    lp = {name: linear_predictors(v.linear, features) for name, v in model.variants.items()}
    probability = {name: probabilities(model.variants[name].baseline, values) for name, values in lp.items()}
    months = event = None
    if model.method == "cox":
        months = frame[f"{model.outcome}_months"].to_numpy(dtype=float)[rows]
        event = frame[model.outcome].to_numpy(dtype=float)[rows].astype(int)

    def statistic(sample: np.ndarray) -> dict[str, float]:
        out: dict[str, float] = {}
        for name in model.variants:
            p = probability[name][sample]
            out[f"{name}|auc"] = auc(y[sample], p)
            out[f"{name}|brier"] = brier(y[sample], p)
            out[f"{name}|calibration_slope"] = calibration(y[sample], p)[1]
            out[f"{name}|observed_expected"] = float(y[sample].mean() / p.mean())
            if months is not None and event is not None:
                out[f"{name}|c_index"] = c_index(months[sample], event[sample], lp[name][sample])
        for richer, simpler in GAPS:
            if richer in model.variants and simpler in model.variants:
                out[f"gap:{richer}-{simpler}|auc"] = out[f"{richer}|auc"] - out[f"{simpler}|auc"]
        return out

    subjects = frame["subject_id"].to_numpy()[rows]
    flat = with_intervals(statistic, len(y), subjects, n_boot, seed, progress)
    metrics: dict[str, dict[str, Interval]] = {}
    for key, interval in flat.items():
        group, metric = key.split("|")
        metrics.setdefault(group, {})[metric] = interval
    return RiskEvaluation(model, y, months, event, probability, lp, metrics, n_boot)
