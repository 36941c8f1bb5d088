"""Evaluating a triage cascade on a labelled cohort, through the same code path the service runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.clinical.cohort import knee_biomarkers
from app.clinical.errors import CohortError
from app.clinical.metrics import Progress, with_intervals
from app.clinical.model_files import Interval, TriageModelFile
from app.clinical.triage import TriageModel
from schemas.clinical import TriageResult

DEFAULT_MINUTES_PER_READ = 15.0


@dataclass
class TriageEvaluation:
    """Every knee's decision and the cascade's metrics with bootstrap CIs."""

    model: TriageModelFile
    decisions: list[TriageResult]
    urgent: np.ndarray
    metrics: dict[str, Interval]
    minutes_per_read: float
    n_boot: int

    def stage_table(self) -> list[tuple[str, str, int, int]]:
        """(stage, priority, urgent knees, non-urgent knees) for every stage/priority that occurred."""
        counts: dict[tuple[str, str], list[int]] = {}
        for decision, truth in zip(self.decisions, self.urgent, strict=True):
            cell = counts.setdefault((decision.stage, decision.priority), [0, 0])
            cell[0 if truth == 1 else 1] += 1
        order = {s.name: i for i, s in enumerate(self.model.stages)}
        return sorted(((s, p, c[0], c[1]) for (s, p), c in counts.items()), key=lambda r: (order[r[0]], r[1]))


def decide_all(model: TriageModelFile, frame: pd.DataFrame, progress: Progress | None = None) -> list[TriageResult]:
    """Run the cascade on every knee (rows become BiomarkerSets, as the measurement layer writes them)."""
    cascade = TriageModel(model)
    decisions = []
    for _, row in frame.iterrows():
        decisions.append(cascade.decide(knee_biomarkers(row)))
        if progress is not None:
            progress()
    return decisions


def evaluate_triage(model: TriageModelFile, frame: pd.DataFrame, n_boot: int, seed: int,
                    minutes_per_read: float = DEFAULT_MINUTES_PER_READ, progress: Progress | None = None,
                    decide_progress: Progress | None = None) -> TriageEvaluation:
    """Sensitivity, fraction removed from urgent review, deprioritised share, reader-hours saved; 95 % CIs.

    "Removed from urgent review" counts studies the cascade does not mark urgent: among non-urgent studies
    (``removed_nonurgent``, the specificity) and among all studies (``removed_all``). Reader-hours saved per
    1000 studies = 1000 x removed_all x minutes_per_read / 60: the reading time taken off the urgent worklist.
    """
    if "urgent" not in frame or frame["urgent"].isna().any():
        raise CohortError("evaluating triage needs an 'urgent' column (1/0) for every knee")
    decisions = decide_all(model, frame, decide_progress)
    urgent = frame["urgent"].to_numpy(dtype=int)
    flagged = np.array([d.priority == "urgent" for d in decisions])
    deprioritised = np.array([d.priority == "deprioritised" for d in decisions])
    if urgent.sum() == 0 or (urgent == 0).sum() == 0:
        raise CohortError("the cohort needs both urgent and non-urgent knees")

    def statistic(rows: np.ndarray) -> dict[str, float]:
        u, f, d = urgent[rows], flagged[rows], deprioritised[rows]
        removed_all = float(np.mean(~f))
        return {
            "sensitivity": float(np.mean(f[u == 1])),
            "removed_nonurgent": float(np.mean(~f[u == 0])),
            "removed_all": removed_all,
            "deprioritised_all": float(np.mean(d)),
            "urgent_among_deprioritised": float(np.mean(u[d] == 1)) if d.any() else 0.0,
            "reader_hours_saved_per_1000": 1000 * removed_all * minutes_per_read / 60,
        }

    metrics = with_intervals(statistic, len(urgent), frame["subject_id"].to_numpy(), n_boot, seed, progress)
    return TriageEvaluation(model, decisions, urgent, metrics, minutes_per_read, n_boot)
