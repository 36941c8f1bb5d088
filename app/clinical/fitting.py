"""Fitting the linear models the model files store: logistic (scikit-learn) and Cox (lifelines).

Inputs are clipped to their 0.5th-99.5th percentiles and standardised before fitting, so coefficients are
"per SD" and comparable across features; the same clipping and standardisation are stored and applied at
scoring time. The covariance of the coefficients is stored for confidence intervals.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from app.clinical.errors import CohortError
from app.clinical.features import parse_feature_key
from app.clinical.model_files import CoxBaseline, FeatureSpec, LinearModel

#: Weak L2 penalty (inverse strength, on standardised inputs) of the risk models: keeps separable small cohorts
#: finite while leaving coefficients of cohorts with hundreds of events practically unpenalised.
LOGISTIC_C = 100.0
COX_PENALIZER = 0.001
BASELINE_STEP_MONTHS = 3.0


def feature_specs(features: pd.DataFrame, floors: dict[str, float] | None = None) -> list[FeatureSpec]:
    """Standardisation and clipping range of each column (training data).

    ``floors`` raises the lower clipping bound of some features, so values below it (e.g. denuded areas within
    segmentation noise) all count the same.
    """
    specs = []
    for key in features.columns:
        values = features[key].to_numpy(dtype=float)
        low, high = np.quantile(values, [0.005, 0.995])
        low = max(low, (floors or {}).get(key, low))
        high = max(high, low)
        clipped = np.clip(values, low, high)
        sd = float(clipped.std())
        if not sd > 0:
            raise CohortError(f"feature {key} does not vary in the training data; it cannot enter a model")
        specs.append(FeatureSpec(key=key, unit=parse_feature_key(key).unit, mean=float(clipped.mean()), sd=sd,
                                 low=float(low), high=float(high)))
    return specs


def standardised(features: pd.DataFrame, specs: list[FeatureSpec]) -> np.ndarray:
    """Clip and standardise columns as the specs say."""
    return np.column_stack([
        (np.clip(features[s.key].to_numpy(dtype=float), s.low, s.high) - s.mean) / s.sd for s in specs
    ])


def fit_logistic(features: pd.DataFrame, label: pd.Series, c: float = LOGISTIC_C,
                 floors: dict[str, float] | None = None) -> LinearModel:
    """Logistic regression (L2 penalty 1/c) on complete rows; covariance = inverse penalised Fisher information."""
    from sklearn.linear_model import LogisticRegression

    specs = feature_specs(features, floors)
    z = standardised(features, specs)
    y = label.to_numpy(dtype=int)
    if len(set(y)) < 2:
        raise CohortError("the outcome does not vary in the training rows: nothing to fit")
    fitted = LogisticRegression(C=c, max_iter=2000).fit(z, y)
    design = np.column_stack([np.ones(len(z)), z])
    p = fitted.predict_proba(z)[:, 1]
    information = design.T @ (design * (p * (1 - p))[:, None])
    information[1:, 1:] += np.eye(z.shape[1]) / c
    return LinearModel(
        features=specs,
        coefficients=[float(b) for b in fitted.coef_[0]],
        intercept=float(fitted.intercept_[0]),
        covariance=np.linalg.inv(information).tolist(),
    )


def fit_cox(features: pd.DataFrame, months: pd.Series, event: pd.Series, horizon_months: float
            ) -> tuple[LinearModel, CoxBaseline]:
    """Cox proportional hazards (lifelines) with the baseline re-expressed at standardised inputs = 0."""
    from lifelines import CoxPHFitter

    specs = feature_specs(features)
    z = standardised(features, specs)
    if event.sum() < 2:
        raise CohortError("fewer than 2 events in the training rows: a Cox model cannot be fitted")
    data = pd.DataFrame(z, columns=[f"x{i}" for i in range(z.shape[1])])
    data["months"] = months.to_numpy(dtype=float)
    data["event"] = event.to_numpy(dtype=int)
    fitter = CoxPHFitter(penalizer=COX_PENALIZER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)
        # A smaller Newton step than lifelines' default: the default diverges on cohorts with a few
        # very-high-risk knees (events within weeks).
        fitter.fit(data, duration_col="months", event_col="event", fit_options={"step_size": 0.3})
    beta = fitter.params_.to_numpy()
    # lifelines' baseline is at the training means of the covariates; move it to z = 0.
    shift = float(np.exp(-(z.mean(axis=0) @ beta)))
    hazard = fitter.baseline_cumulative_hazard_.iloc[:, 0]
    times = hazard.index.to_numpy(dtype=float)
    values = hazard.to_numpy(dtype=float) * shift

    def at(month: float) -> float:
        position = np.searchsorted(times, month, side="right") - 1
        return float(values[position]) if position >= 0 else 0.0

    grid = np.arange(0.0, max(float(times.max()), horizon_months) + BASELINE_STEP_MONTHS, BASELINE_STEP_MONTHS)
    baseline = CoxBaseline(
        horizon_survival=float(np.exp(-at(horizon_months))),
        times_months=[float(t) for t in grid],
        cumulative_hazard=[at(t) for t in grid],
    )
    linear = LinearModel(features=specs, coefficients=[float(b) for b in beta], intercept=None,
                         covariance=fitter.variance_matrix_.to_numpy().tolist())
    return linear, baseline
