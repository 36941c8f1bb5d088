"""Stored models reproduce the fitted libraries' own predictions (lifelines, scikit-learn)."""

import warnings

import numpy as np
import pandas as pd
import pytest

from app.clinical.cohort import binary_at_horizon, feature_matrix
from app.clinical.fitting import COX_PENALIZER, LOGISTIC_C, fit_cox, fit_logistic, standardised
from app.clinical.linear import linear_predictors, probabilities
from app.clinical.simulation import simulate_cohort

KEYS = ["age_years", "sex_female", "bmi", "cartilage_thickness_mean:MT", "meniscus_extrusion:MM"]


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return simulate_cohort(3000, seed=5)


def test_cox_model_file_matches_lifelines_survival_at_horizon(cohort: pd.DataFrame) -> None:
    from lifelines import CoxPHFitter

    matrix = feature_matrix(cohort, KEYS, (6, 60))
    linear, baseline = fit_cox(matrix, cohort["tkr_months"], cohort["tkr"], 48)
    ours = probabilities(baseline, linear_predictors(linear, {k: matrix[k].to_numpy() for k in KEYS}))

    data = pd.DataFrame(standardised(matrix, linear.features), columns=KEYS)
    data["months"], data["event"] = cohort["tkr_months"], cohort["tkr"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)
        fitter = CoxPHFitter(penalizer=COX_PENALIZER).fit(data, "months", "event", fit_options={"step_size": 0.3})
    curves = fitter.predict_survival_function(data[KEYS].iloc[:20])  # Breslow step function at event times
    survival = curves[curves.index <= 48.0].iloc[-1].to_numpy()
    assert ours[:20] == pytest.approx(1 - survival, rel=1e-6)
    assert linear.coefficients == pytest.approx(fitter.params_.tolist())


def test_logistic_model_file_matches_scikit_learn(cohort: pd.DataFrame) -> None:
    from sklearn.linear_model import LogisticRegression

    label = binary_at_horizon(cohort, "incident_oa", 48)
    rows = label.notna()
    matrix = feature_matrix(cohort[rows], KEYS, (6, 60))
    linear = fit_logistic(matrix, label[rows])
    ours = probabilities(None, linear_predictors(linear, {k: matrix[k].to_numpy() for k in KEYS}))
    reference = LogisticRegression(C=LOGISTIC_C, max_iter=2000).fit(standardised(matrix, linear.features),
                                                                     label[rows].astype(int))
    assert ours == pytest.approx(reference.predict_proba(standardised(matrix, linear.features))[:, 1], rel=1e-9)
    standard_errors = np.sqrt(np.diag(np.asarray(linear.covariance)))
    assert np.all(standard_errors > 0) and np.all(standard_errors < 0.5)
