"""Training the triage cascade: rule-in thresholds and the classifier's two thresholds, from data.

Rule-in stages fire on one finding a radiologist reads as important by itself. Each threshold is the stricter
of (a) the value that at most ``max_false_positive_rate`` of non-urgent validation knees cross and (b) a
clinical floor from the literature, so a shipped threshold never sits below what a radiologist would call
abnormal. The classifier (logistic regression on the biomarkers) is fitted on the training part; its urgent
threshold is the highest one whose cascade sensitivity on the validation part has a one-sided lower
confidence bound (Wilson, ``threshold_confidence``) of at least ``sensitivity_target``; its deprioritise
threshold is chosen the same way for ``deprioritise_sensitivity``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd

from app.clinical.cohort import feature_matrix
from app.clinical.errors import CohortError
from app.clinical.fitting import fit_logistic
from app.clinical.linear import linear_predictors, probabilities
from app.clinical.metrics import wilson_lower_bound
from app.clinical.model_files import (
    DEMONSTRATION_NOTICE,
    ClassifierStage,
    ThresholdStage,
    TrainingCohort,
    TriageModelFile,
)
from app.clinical.reference import HEALTHY_THICKNESS_MM, PATHOLOGICAL_EXTRUSION_MM
from app.clinical.risk_training import TrainingLog
from schemas.biomarkers import CARTILAGE_PLATES, MENISCUS_REGIONS, BiomarkerName

FEMOROTIBIAL = ("MT", "cMF", "LT", "cLF")
#: L2 penalty of the classifier stage (inverse strength, standardised inputs). Stronger than the risk models':
#: denuded area nearly separates the classes by definition, and unpenalised coefficients would run away.
CLASSIFIER_C = 1.0


@dataclass(frozen=True)
class RuleInSpec:
    """A candidate rule-in stage: the finding, where to look, and its clinical floor."""

    name: str
    finding: str
    biomarker: BiomarkerName
    regions: tuple[str, ...]
    direction: Literal["above", "below"]
    floor: float
    floor_source: str
    reason: str
    reference: dict[str, float] | None = None


DEFAULT_RULE_INS = (
    RuleInSpec(
        name="full-thickness-cartilage-loss",
        finding="full-thickness cartilage loss",
        biomarker=BiomarkerName.DENUDED_AREA_PCT,
        regions=CARTILAGE_PLATES,
        direction="above",
        floor=1.0,
        floor_source="1 % of a plate, the urgent definition's size of a full-thickness defect",
        reason="full-thickness cartilage loss (denuded bone) over {value} of the {region} plate "
               "(urgent above {threshold})",
    ),
    RuleInSpec(
        name="severe-cartilage-thinning",
        finding="severe cartilage thinning",
        biomarker=BiomarkerName.CARTILAGE_THICKNESS_MEAN,
        regions=(*FEMOROTIBIAL, "TrF", "P"),
        direction="below",
        floor=0.7,
        floor_source="30 % thinner than the healthy reference (Eckstein 2010 normals vary by about 10-15 % SD)",
        reference=HEALTHY_THICKNESS_MM,
        reason="cartilage of the {region} thinned to a mean of {value}, {fraction} of the healthy reference "
               "{reference} (urgent below {threshold})",
    ),
    RuleInSpec(
        name="pathological-meniscal-extrusion",
        finding="pathological meniscal extrusion",
        biomarker=BiomarkerName.MENISCUS_EXTRUSION,
        regions=MENISCUS_REGIONS,
        direction="above",
        floor=PATHOLOGICAL_EXTRUSION_MM,
        floor_source="3 mm, pathological extrusion (Costa et al., AJR 2004)",
        reason="the {region} is extruded {value} beyond the tibial margin (urgent above {threshold}; 3 mm or "
               "more is pathological)",
    ),
)

DEFAULT_CLASSIFIER_FEATURES = [
    *(f"cartilage_thickness_mean:{p}" for p in CARTILAGE_PLATES),
    *(f"cartilage_thickness_p5:{p}" for p in FEMOROTIBIAL),
    *(f"denuded_area_pct:{p}" for p in FEMOROTIBIAL),
    *(f"meniscus_extrusion:{m}" for m in MENISCUS_REGIONS),
    *(f"meniscus_thickness_mean:{m}" for m in MENISCUS_REGIONS),
]


@dataclass
class TriageTrainingSpec:
    """Targets and candidate inputs of a cascade."""

    urgent_definition: str = "the training cohort's 'urgent' label"
    sensitivity_target: float = 0.98
    deprioritise_sensitivity: float = 0.99
    threshold_confidence: float = 0.95
    max_false_positive_rate: float = 0.01
    #: Denuded areas below this read the same in the classifier: small holes in a segmentation are noise.
    denuded_noise_floor_pct: float = 0.5
    rule_ins: tuple[RuleInSpec, ...] = DEFAULT_RULE_INS
    classifier_features: list[str] = field(default_factory=lambda: list(DEFAULT_CLASSIFIER_FEATURES))


def stage_statistic(stage: RuleInSpec | ThresholdStage, frame: pd.DataFrame) -> np.ndarray:
    """Per knee, the most extreme (reference-scaled) value over the stage's regions; NaN if none measured."""
    columns = []
    for region in stage.regions:
        key = f"{BiomarkerName(stage.biomarker).value}:{region}"
        values = frame[key].to_numpy(dtype=float) if key in frame else np.full(len(frame), np.nan)
        columns.append(values / stage.reference[region] if stage.reference else values)
    stacked = np.column_stack(columns)
    if np.isnan(stacked).all(axis=1).all():
        return np.full(len(frame), np.nan)
    with np.errstate(all="ignore"):
        return np.nanmax(stacked, axis=1) if stage.direction == "above" else np.nanmin(stacked, axis=1)


def stage_fires(stage: ThresholdStage, frame: pd.DataFrame) -> np.ndarray:
    """Which knees the stage marks urgent (vectorised twin of ``triage.threshold_hits``)."""
    statistic = stage_statistic(stage, frame)
    with np.errstate(invalid="ignore"):
        fired = statistic > stage.threshold if stage.direction == "above" else statistic < stage.threshold
    return np.where(np.isnan(statistic), False, fired)


def _rule_in(spec: RuleInSpec, validation: pd.DataFrame, urgent: np.ndarray, max_fpr: float,
             log: TrainingLog) -> ThresholdStage | None:
    statistic = stage_statistic(spec, validation)
    negatives = statistic[(urgent == 0) & ~np.isnan(statistic)]
    if len(negatives) == 0:
        log.add(f"stage {spec.name}: {spec.biomarker.value} not in the validation data; stage left out")
        return None
    if spec.direction == "above":
        data_threshold = float(np.quantile(negatives, 1 - max_fpr))
        threshold = max(data_threshold, spec.floor)
    else:
        data_threshold = float(np.quantile(negatives, max_fpr))
        threshold = min(data_threshold, spec.floor)
    rationale = (f"stricter of the value crossed by {max_fpr:.0%} of non-urgent validation knees "
                 f"({data_threshold:.3g}) and the clinical floor {spec.floor:g} ({spec.floor_source})")
    stage = ThresholdStage(name=spec.name, finding=spec.finding, biomarker=spec.biomarker,
                           regions=list(spec.regions), direction=spec.direction, threshold=round(threshold, 4),
                           reference=spec.reference, reason=spec.reason, rationale=rationale)
    fired = stage_fires(stage, validation)
    log.add(f"stage {spec.name}: threshold {stage.threshold:g} ({rationale}); on validation it flags "
            f"{int((fired & (urgent == 1)).sum())} urgent and {int((fired & (urgent == 0)).sum())} non-urgent knees")
    return stage


def sensitivity_threshold(probability: np.ndarray, urgent: np.ndarray, already_caught: int, n_urgent: int,
                          target: float, confidence: float) -> float:
    """Highest probability threshold whose cascade sensitivity's lower confidence bound reaches ``target``."""
    candidates = np.sort(probability[urgent == 1])[::-1]
    for k, threshold in enumerate(candidates, start=1):
        if wilson_lower_bound(already_caught + k, n_urgent, confidence) >= target:
            return float(threshold)
    return 0.0


def train_triage_model(train: pd.DataFrame, validation: pd.DataFrame, spec: TriageTrainingSpec, model_id: str,
                       version: str, training: TrainingCohort, log: TrainingLog) -> TriageModelFile:
    """Rule-in stages and classifier from ``train`` (fit) and ``validation`` (thresholds)."""
    for name, part in (("training", train), ("validation", validation)):
        if "urgent" not in part or part["urgent"].isna().any():
            raise CohortError(f"the {name} cohort needs an 'urgent' column (1/0) for every knee")
    urgent = validation["urgent"].to_numpy(dtype=int)
    stages: list[ThresholdStage | ClassifierStage] = []
    caught = np.zeros(len(validation), dtype=bool)
    for rule in spec.rule_ins:
        stage = _rule_in(rule, validation, urgent, spec.max_false_positive_rate, log)
        if stage is not None:
            stages.append(stage)
            caught |= stage_fires(stage, validation)

    window = (6.0, 60.0)
    keys = [k for k in spec.classifier_features if feature_matrix(train, [k], window)[k].notna().any()]
    if not keys:
        raise CohortError("none of the classifier's biomarkers is in the training cohort")
    matrix = feature_matrix(train, keys, window)
    rows = matrix.notna().all(axis=1)
    floors = {k: spec.denuded_noise_floor_pct for k in keys if k.startswith("denuded_area_pct:")}
    linear = fit_logistic(matrix[rows], train.loc[rows, "urgent"].astype(int), c=CLASSIFIER_C, floors=floors)
    log.add(f"classifier: logistic regression on {len(keys)} biomarkers, {int(rows.sum())} training knees")
    valid = feature_matrix(validation, keys, window)
    probability = probabilities(None, linear_predictors(linear, {k: valid[k].to_numpy() for k in keys}))
    probability = np.where(np.isnan(probability), 1.0, probability)  # incomplete -> never deprioritised
    open_rows = ~caught
    n_urgent, already = int(urgent.sum()), int((caught & (urgent == 1)).sum())
    urgent_threshold = sensitivity_threshold(probability[open_rows], urgent[open_rows], already, n_urgent,
                                             spec.sensitivity_target, spec.threshold_confidence)
    low_threshold = sensitivity_threshold(probability[open_rows], urgent[open_rows], already, n_urgent,
                                          spec.deprioritise_sensitivity, spec.threshold_confidence)
    confidence = f"one-sided {spec.threshold_confidence:.0%} Wilson lower bound" if spec.threshold_confidence else \
        "point estimate"
    stages.append(ClassifierStage(
        name="biomarker-classifier",
        linear=linear,
        urgent_threshold=round(urgent_threshold, 6),
        deprioritise_threshold=round(min(low_threshold, urgent_threshold), 6),
        rationale=(f"urgent threshold: highest probability at which the cascade's validation sensitivity "
                   f"({confidence}) is at least {spec.sensitivity_target}; deprioritise threshold likewise for "
                   f"{spec.deprioritise_sensitivity} ({len(validation)} validation knees, {n_urgent} urgent)"),
    ))
    log.add(f"classifier thresholds: urgent from {urgent_threshold:.4f}, deprioritised below {low_threshold:.4f}")
    return TriageModelFile(
        model_id=model_id, version=version, created=date.today(), urgent_definition=spec.urgent_definition,
        sensitivity_target=spec.sensitivity_target, threshold_confidence=spec.threshold_confidence,
        stages=stages, training=training,
        notice=DEMONSTRATION_NOTICE if training.source == "simulated" else
        f"Fitted on {training.description}; validate on your own worklist before clinical use "
        "(`mskcds evaluate-triage`).",
    )
