"""PNG figures for evaluation reports: ROC, calibration, decision curve, triage stages and trade-off."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.clinical.metrics import net_benefit
from app.clinical.risk_evaluation import RiskEvaluation
from app.clinical.triage_evaluation import TriageEvaluation

VARIANT_LABELS = {
    "demographics": "age, sex, BMI",
    "imaging": "+ baseline imaging",
    "imaging_change": "+ imaging and change",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def roc_curve_points(label: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold (highest first)."""
    order = np.argsort(-score, kind="stable")
    y = label[order]
    tp = np.concatenate([[0], np.cumsum(y)])
    fp = np.concatenate([[0], np.cumsum(1 - y)])
    return fp / max(fp[-1], 1), tp / max(tp[-1], 1)


def risk_figures(evaluation: RiskEvaluation, out_dir: Path) -> list[Path]:
    """roc.png, calibration.png, decision_curve.png for every variant of the evaluated model."""
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    model, y = evaluation.model, evaluation.label
    title = f"{model.model_id} {model.version}: {model.outcome} within {model.horizon_months} months"
    paths = []

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, p in evaluation.probability.items():
        fpr, tpr = roc_curve_points(y, p)
        ax.plot(fpr, tpr, label=f"{VARIANT_LABELS[name]} (AUC {evaluation.metrics[name]['auc'].estimate:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title)
    ax.legend(loc="lower right", fontsize=8)
    paths.append(_save(fig, out_dir / "roc.png", plt))

    fig, ax = plt.subplots(figsize=(5.5, 5))
    top = 0.0
    for name, p in evaluation.probability.items():
        edges = np.unique(np.quantile(p, np.linspace(0, 1, 11)))
        bins = np.clip(np.digitize(p, edges[1:-1]), 0, len(edges) - 2)
        predicted = np.array([p[bins == b].mean() for b in range(len(edges) - 1)])
        observed = np.array([y[bins == b].mean() for b in range(len(edges) - 1)])
        top = max(top, predicted.max(), observed.max())
        slope = evaluation.metrics[name]["calibration_slope"].estimate
        ax.plot(predicted, observed, marker="o", label=f"{VARIANT_LABELS[name]} (slope {slope:.2f})")
    ax.plot([0, top], [0, top], color="grey", linestyle=":")
    ax.set(xlabel="predicted probability (decile mean)", ylabel="observed fraction", title="calibration")
    ax.legend(loc="upper left", fontsize=8)
    paths.append(_save(fig, out_dir / "calibration.png", plt))

    fig, ax = plt.subplots(figsize=(5.5, 5))
    thresholds = np.linspace(0.01, 0.5, 50)
    prevalence = y.mean()
    for name, p in evaluation.probability.items():
        ax.plot(thresholds, net_benefit(y, p, thresholds), label=VARIANT_LABELS[name])
    ax.plot(thresholds, prevalence - (1 - prevalence) * thresholds / (1 - thresholds), color="grey",
            linestyle="--", label="treat all")
    ax.axhline(0, color="black", linewidth=0.8, label="treat none")
    ax.set(xlabel="threshold probability", ylabel="net benefit", title="decision curve",
           ylim=(-0.01, max(prevalence, 0.01) * 1.1))
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / "decision_curve.png", plt))
    return paths


def triage_figures(evaluation: TriageEvaluation, out_dir: Path) -> list[Path]:
    """triage_stages.png: where urgent and non-urgent studies were decided."""
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = evaluation.stage_table()
    labels = [f"{stage}\n-> {priority}" for stage, priority, _, _ in rows]
    urgent = np.array([r[2] for r in rows])
    other = np.array([r[3] for r in rows])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    positions = np.arange(len(rows))
    ax.barh(positions, urgent, color="#c0392b", label="urgent (reference)")
    ax.barh(positions, other, left=urgent, color="#95a5a6", label="not urgent (reference)")
    ax.set_yticks(positions, labels, fontsize=8)
    ax.invert_yaxis()
    sensitivity = evaluation.metrics["sensitivity"]
    removed = evaluation.metrics["removed_nonurgent"]
    ax.set(xlabel="studies", title=f"sensitivity {sensitivity.estimate:.3f}, non-urgent removed from urgent "
                                   f"review {removed.estimate:.1%}")
    ax.legend(fontsize=8)
    return [_save(fig, out_dir / "triage_stages.png", plt)]


def _save(fig, path: Path, plt) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
