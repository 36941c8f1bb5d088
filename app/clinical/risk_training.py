"""Training a risk model file from a cohort table: nested variants, complete cases, one method."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import pandas as pd

from app.clinical.cohort import binary_at_horizon, feature_matrix
from app.clinical.errors import CohortError
from app.clinical.features import DEMOGRAPHIC_FEATURES, change_key
from app.clinical.fitting import fit_cox, fit_logistic
from app.clinical.model_files import DEMONSTRATION_NOTICE, RiskModelFile, RiskVariant, TrainingCohort, VariantName
from schemas.clinical import Outcome

#: Baseline imaging features of the default risk models: the femorotibial plates Chondrometrics reports for
#: the OAI (mean thickness, denuded area) plus medial meniscal extrusion.
DEFAULT_IMAGING_FEATURES = [
    "cartilage_thickness_mean:MT",
    "cartilage_thickness_mean:LT",
    "cartilage_thickness_mean:cMF",
    "cartilage_thickness_mean:cLF",
    "denuded_area_pct:MT",
    "denuded_area_pct:cMF",
    "meniscus_extrusion:MM",
]
#: Change features of the default models: yearly change of mean thickness in the four femorotibial plates.
DEFAULT_CHANGE_FEATURES = [change_key(k) for k in DEFAULT_IMAGING_FEATURES[:4]]
OUTCOME_DEFINITIONS: dict[str, str] = {
    "incident_oa": "radiographic knee OA (Kellgren-Lawrence grade >= 2) within the horizon, in a knee with KL <= 1 "
                   "at the current exam",
    "tkr": "total knee replacement of this knee within the horizon",
}
#: The fewest events a variant needs before it is fitted (about 10 events per coefficient is the usual floor).
MIN_EVENTS_PER_FEATURE = 5
Method = Literal["cox", "logistic"]


@dataclass
class RiskTrainingSpec:
    """What to fit: outcome, method, horizon and the candidate features (absent columns are dropped)."""

    outcome: Outcome
    method: Method
    horizon_months: int = 48
    imaging_features: list[str] = field(default_factory=lambda: list(DEFAULT_IMAGING_FEATURES))
    change_features: list[str] = field(default_factory=lambda: list(DEFAULT_CHANGE_FEATURES))
    change_window_months: tuple[float, float] = (6.0, 60.0)


@dataclass
class TrainingLog:
    """What training decided, in sentences the CLI prints and the model card repeats."""

    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)


def available(frame: pd.DataFrame, keys: list[str], window: tuple[float, float], log: TrainingLog) -> list[str]:
    """The keys with at least some values in the cohort; says which were dropped."""
    matrix = feature_matrix(frame, keys, window)
    kept = [k for k in keys if matrix[k].notna().any()]
    dropped = [k for k in keys if k not in kept]
    if dropped:
        log.add(f"not in the cohort, left out: {', '.join(dropped)}")
    return kept


def _fit_variant(frame: pd.DataFrame, spec: RiskTrainingSpec, keys: list[str], name: str, log: TrainingLog
                 ) -> tuple[RiskVariant, int, int] | None:
    matrix = feature_matrix(frame, keys, spec.change_window_months)
    if spec.method == "logistic":
        label = binary_at_horizon(frame, spec.outcome, spec.horizon_months)
        rows = matrix.notna().all(axis=1) & label.notna()
        events = int(label[rows].sum())
    else:
        months_column = f"{spec.outcome}_months"
        if months_column not in frame:
            raise CohortError(f"a Cox model needs {months_column!r} (months to event or censoring)")
        event, months = frame[spec.outcome].astype(float), frame[months_column].astype(float)
        rows = matrix.notna().all(axis=1) & event.notna() & (months > 0)
        events = int(event[rows].sum())
    if events < MIN_EVENTS_PER_FEATURE * len(keys):
        log.add(f"variant {name}: {events} events for {len(keys)} features is too few "
                f"(need {MIN_EVENTS_PER_FEATURE} per feature); not fitted")
        return None
    if spec.method == "logistic":
        linear = fit_logistic(matrix[rows], label[rows])
        variant = RiskVariant(linear=linear)
    else:
        linear, baseline = fit_cox(matrix[rows], months[rows], event[rows], spec.horizon_months)
        variant = RiskVariant(linear=linear, baseline=baseline)
    log.add(f"variant {name}: {int(rows.sum())} knees, {events} events, {len(keys)} features")
    return variant, int(rows.sum()), events


def train_risk_model(frame: pd.DataFrame, spec: RiskTrainingSpec, model_id: str, version: str,
                     training: TrainingCohort, log: TrainingLog) -> RiskModelFile:
    """Fit the demographics, imaging and (where priors exist) imaging_change variants."""
    window = spec.change_window_months
    imaging = available(frame, spec.imaging_features, window, log)
    change = available(frame, spec.change_features, window, log)
    demographics = list(DEMOGRAPHIC_FEATURES)
    plan: list[tuple[VariantName, list[str]]] = [
        ("demographics", demographics), ("imaging", demographics + imaging)]
    if change:
        plan.append(("imaging_change", demographics + imaging + change))
    if not imaging:
        raise CohortError("none of the imaging features is in the cohort: nothing beyond demographics to fit")
    variants: dict[VariantName, RiskVariant] = {}
    counts: dict[str, tuple[int, int]] = {}
    for name, keys in plan:
        fitted = _fit_variant(frame, spec, keys, name, log)
        if fitted is None:
            if name != "imaging_change":
                raise CohortError(f"variant {name} could not be fitted: {log.lines[-1]}")
            continue
        variants[name], *count = fitted
        counts[name] = (count[0], count[1])
    largest = counts["imaging_change" if "imaging_change" in counts else "imaging"]
    return RiskModelFile(
        model_id=model_id,
        version=version,
        created=date.today(),
        outcome=spec.outcome,
        outcome_definition=OUTCOME_DEFINITIONS[spec.outcome],
        horizon_months=spec.horizon_months,
        method=spec.method,
        change_window_months=window,
        variants=variants,
        training=training.model_copy(update={"n_train": largest[0], "n_events_train": largest[1]}),
        notice=training_notice(training),
    )


def training_notice(training: TrainingCohort) -> str:
    """The model file's plain statement of what its coefficients are good for."""
    if training.source == "simulated":
        return DEMONSTRATION_NOTICE
    return (f"Fitted on {training.description}; validate on your own population before clinical use "
            "(`mskcds evaluate-risk`).")
