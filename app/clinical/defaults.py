"""The shipped default models, rebuilt reproducibly from the simulated cohort (fixed seeds and sizes).

``mskcds build-clinical-models`` runs :func:`build_default_models`; the model cards record that command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.clinical.metrics import Progress
from app.clinical.model_files import TrainingCohort
from app.clinical.risk_training import RiskTrainingSpec, TrainingLog
from app.clinical.simulation import Population, effects, simulate_cohort
from app.clinical.triage_training import TriageTrainingSpec
from app.clinical.workflows import build_risk_model, build_triage_model, save_risk_model, save_triage_model

DEFAULT_VERSION = "1.0.0"
BUILD_COMMAND = "mskcds build-clinical-models --out models"
TRIAGE_MODEL = "triage-knee"
RISK_MODELS = {"risk-incident-oa": ("incident_oa", "logistic"), "risk-tkr": ("tkr", "cox")}


@dataclass(frozen=True)
class SimulatedSplit:
    """One simulated cohort: population, size, seed."""

    population: Population
    n: int
    seed: int

    def describe(self) -> str:
        return f"{self.n} simulated {self.population} knees (seed {self.seed})"


TRIAGE_SPLITS = (SimulatedSplit("referral", 6000, 101), SimulatedSplit("referral", 6000, 102),
                 SimulatedSplit("referral", 6000, 103))
RISK_SPLITS = (SimulatedSplit("oai", 12000, 201), SimulatedSplit("oai", 12000, 202))
EVALUATION_SEED = 7

ProgressFactory = Callable[[str, int], Progress]


def _description(parts: tuple[SimulatedSplit, ...], roles: tuple[str, ...]) -> str:
    cohorts = "; ".join(f"{role}: {part.describe()}" for role, part in zip(roles, parts, strict=True))
    return f"simulated cohort of app/clinical/simulation.py + data/simulation_effects.json ({cohorts})"


def build_default_models(out_root: Path, n_boot: int, progress: ProgressFactory | None = None,
                         log: TrainingLog | None = None) -> list[Path]:
    """Simulate, fit, evaluate on held-out simulated knees and write the three default model folders."""
    log = log or TrainingLog()
    folders = []
    train, validation, test = (simulate_cohort(s.n, s.seed, s.population) for s in TRIAGE_SPLITS)
    training = TrainingCohort(source="simulated", seed=TRIAGE_SPLITS[0].seed, n_train=len(train),
                              description=_description(TRIAGE_SPLITS, ("training", "validation", "test")),
                              command=BUILD_COMMAND)
    triage, _ = build_triage_model(
        train, validation, test, TriageTrainingSpec(urgent_definition=effects()["outcomes"]["urgent"]["definition"]),
        TRIAGE_MODEL, DEFAULT_VERSION, training, n_boot,
        EVALUATION_SEED, log,
        progress=progress(f"{TRIAGE_MODEL}: bootstrap", n_boot) if progress else None,
        decide_progress=progress(f"{TRIAGE_MODEL}: triage of test studies", len(test)) if progress else None)
    save_triage_model(triage, out_root / TRIAGE_MODEL)
    folders.append(out_root / TRIAGE_MODEL)

    risk_train, risk_test = (simulate_cohort(s.n, s.seed, s.population) for s in RISK_SPLITS)
    for model_id, (outcome, method) in RISK_MODELS.items():
        training = TrainingCohort(source="simulated", seed=RISK_SPLITS[0].seed, n_train=len(risk_train),
                                  description=_description(RISK_SPLITS, ("training", "test")), command=BUILD_COMMAND)
        model, _ = build_risk_model(
            risk_train, risk_test, RiskTrainingSpec(outcome=outcome, method=method), model_id, DEFAULT_VERSION,
            training, n_boot, EVALUATION_SEED, log,
            progress=progress(f"{model_id}: bootstrap", n_boot) if progress else None)
        save_risk_model(model, out_root / model_id)
        folders.append(out_root / model_id)
    return folders
