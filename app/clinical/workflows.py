"""Train -> evaluate on held-out knees -> write the model folder: shared by the CLI and the default build."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from app.clinical.metrics import Progress
from app.clinical.model_files import RiskModelFile, TrainingCohort, TriageModelFile
from app.clinical.model_io import write_model_folder
from app.clinical.reports import risk_model_readme, triage_model_readme
from app.clinical.risk_evaluation import RiskEvaluation, evaluate_risk
from app.clinical.risk_training import RiskTrainingSpec, TrainingLog, train_risk_model
from app.clinical.triage_evaluation import DEFAULT_MINUTES_PER_READ, TriageEvaluation, evaluate_triage
from app.clinical.triage_training import TriageTrainingSpec, train_triage_model


def build_risk_model(train: pd.DataFrame, test: pd.DataFrame, spec: RiskTrainingSpec, model_id: str, version: str,
                     training: TrainingCohort, n_boot: int, seed: int, log: TrainingLog,
                     progress: Progress | None = None) -> tuple[RiskModelFile, RiskEvaluation]:
    """Fit on ``train``, evaluate every variant on ``test``, and return the model with its held-out metrics."""
    model = train_risk_model(train, spec, model_id, version, training, log)
    evaluation = evaluate_risk(model, test, n_boot, seed, progress)
    updated = model.model_dump()
    updated["metrics"] = {g: {k: v.model_dump() for k, v in m.items()} for g, m in evaluation.metrics.items()}
    updated["training"] |= {"n_test": evaluation.n, "n_events_test": evaluation.n_events}
    return RiskModelFile.model_validate(updated), evaluation


def build_triage_model(train: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame,
                       spec: TriageTrainingSpec, model_id: str, version: str, training: TrainingCohort, n_boot: int,
                       seed: int, log: TrainingLog, minutes_per_read: float = DEFAULT_MINUTES_PER_READ,
                       progress: Progress | None = None, decide_progress: Progress | None = None,
                       ) -> tuple[TriageModelFile, TriageEvaluation]:
    """Fit on ``train``, set thresholds on ``validation``, evaluate on ``test``."""
    model = train_triage_model(train, validation, spec, model_id, version, training, log)
    evaluation = evaluate_triage(model, test, n_boot, seed, minutes_per_read, progress, decide_progress)
    updated = model.model_dump()
    updated["metrics"] = {"test": {k: v.model_dump() for k, v in evaluation.metrics.items()}}
    updated["training"] |= {"n_test": len(evaluation.urgent), "n_events_test": int(evaluation.urgent.sum())}
    return TriageModelFile.model_validate(updated), evaluation


def save_risk_model(model: RiskModelFile, folder: Path) -> None:
    """The model folder: model.json, README.md (model card) and model_card.json with sha256."""
    summary = f"{model.outcome} within {model.horizon_months} months ({model.method}); {model.notice}"
    write_model_folder(folder, model, summary, lambda sha: risk_model_readme(model, sha))


def save_triage_model(model: TriageModelFile, folder: Path) -> None:
    """The model folder of a triage cascade."""
    summary = f"knee MRI worklist triage cascade ({len(model.stages)} stages); {model.notice}"
    write_model_folder(folder, model, summary, lambda sha: triage_model_readme(model, sha))
