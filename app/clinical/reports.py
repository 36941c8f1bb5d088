"""Markdown reports (evaluation) and model-card READMEs, generated from the same numbers the JSON holds."""

from __future__ import annotations

from pathlib import Path

from app.clinical.features import parse_feature_key
from app.clinical.model_files import (
    ClassifierStage,
    Interval,
    RiskModelFile,
    ThresholdStage,
    TriageModelFile,
)
from app.clinical.plots import VARIANT_LABELS, risk_figures, triage_figures
from app.clinical.risk_evaluation import RiskEvaluation
from app.clinical.triage_evaluation import TriageEvaluation

RISK_METRICS = ("auc", "c_index", "brier", "calibration_slope", "observed_expected")


def interval_text(value: Interval, percent: bool = False) -> str:
    """``0.781 (0.752-0.808)``."""
    if percent:
        return f"{value.estimate:.1%} ({value.ci_low:.1%}-{value.ci_high:.1%})"
    return f"{value.estimate:.3f} ({value.ci_low:.3f}-{value.ci_high:.3f})"


def risk_metrics_table(metrics: dict[str, dict[str, Interval]]) -> str:
    """Markdown table: one row per variant and per AUC gap."""
    lines = ["| model | " + " | ".join(RISK_METRICS) + " |", "|---" * (len(RISK_METRICS) + 1) + "|"]
    for group, values in metrics.items():
        if group.startswith("gap:"):
            continue
        cells = [interval_text(values[m]) if m in values else "" for m in RISK_METRICS]
        lines.append(f"| {group} ({VARIANT_LABELS.get(group, group)}) | " + " | ".join(cells) + " |")
    gaps = [(g, v["auc"]) for g, v in metrics.items() if g.startswith("gap:")]
    if gaps:
        lines += ["", "| AUC gap | difference (95 % CI) |", "|---|---|"]
        lines += [f"| {g.removeprefix('gap:').replace('-', ' minus ')} | {interval_text(v)} |" for g, v in gaps]
    return "\n".join(lines)


def triage_metrics_table(metrics: dict[str, Interval]) -> str:
    """Markdown table of the cascade's metrics."""
    lines = ["| metric | estimate (95 % CI) |", "|---|---|"]
    for name, value in metrics.items():
        text = (f"{value.estimate:.1f} ({value.ci_low:.1f}-{value.ci_high:.1f})"
                if name == "reader_hours_saved_per_1000" else interval_text(value, percent=name != "sensitivity"))
        lines.append(f"| {name.replace('_', ' ')} | {text} |")
    return "\n".join(lines)


def write_risk_report(evaluation: RiskEvaluation, out_dir: Path, command: str, cohort: str) -> Path:
    """report.md + PNGs for a risk model evaluation."""
    model = evaluation.model
    return _write_report(out_dir, risk_figures(evaluation, out_dir), command, [
        f"# {model.model_id} {model.version}: evaluation",
        "",
        f"Outcome: {model.outcome_definition} (horizon {model.horizon_months} months); method: {model.method}.",
        f"Cohort: {cohort}; {evaluation.n} knees with a known status at the horizon and every input, "
        f"{evaluation.n_events} events. Every variant is scored on the same knees.",
        f"95 % confidence intervals: {evaluation.n_boot} bootstrap resamples of subjects (percentile).",
        "",
        risk_metrics_table(evaluation.metrics),
    ])


def write_triage_report(evaluation: TriageEvaluation, out_dir: Path, command: str, cohort: str) -> Path:
    """report.md + PNG for a triage evaluation."""
    model = evaluation.model
    stage_rows = ["| stage | decision | urgent | not urgent |", "|---|---|---|---|"]
    stage_rows += [f"| {s} | {p} | {u} | {o} |" for s, p, u, o in evaluation.stage_table()]
    return _write_report(out_dir, triage_figures(evaluation, out_dir), command, [
        f"# {model.model_id} {model.version}: evaluation",
        "",
        f"Reference standard (`urgent`): {model.urgent_definition}.",
        f"Cohort: {cohort}; {len(evaluation.urgent)} studies, {int(evaluation.urgent.sum())} urgent.",
        f"Reader time per study: {evaluation.minutes_per_read:g} minutes. 95 % confidence intervals: "
        f"{evaluation.n_boot} bootstrap resamples of subjects.",
        "",
        triage_metrics_table(evaluation.metrics),
        "",
        *stage_rows,
    ])


def _write_report(out_dir: Path, figures: list[Path], command: str, body: list[str]) -> Path:
    """``out_dir/report.md``: the body, the figures beside it, and the command that produced it."""
    lines = [*body, "", *[f"![{p.stem}]({p.name})" for p in figures], "", f"Produced by: `{command}`", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path


def _feature_rows(keys_coefficients: list[tuple[str, str, float, float, float]], ratio: str) -> list[str]:
    rows = [f"| feature | unit | cohort mean | SD | coefficient per SD | {ratio} per SD |", "|---|---|---|---|---|---|"]
    for key, unit, mean, sd, beta in keys_coefficients:
        rows.append(f"| `{key}` ({parse_feature_key(key).words}) | {unit} | {mean:.4g} | {sd:.3g} | {beta:+.3f} | "
                    f"{2.718281828459045 ** beta:.2f} |")
    return rows


def risk_model_readme(model: RiskModelFile, model_sha256: str) -> str:
    """The human-readable model card of a risk model."""
    ratio = "hazard ratio" if model.method == "cox" else "odds ratio"
    lines = [
        f"# {model.model_id} {model.version}",
        "",
        f"> {model.notice}",
        "",
        f"Predicts **{model.outcome_definition}** within **{model.horizon_months} months** of the current exam "
        f"({'Cox proportional hazards, lifelines' if model.method == 'cox' else 'logistic regression, scikit-learn'}).",
        "",
        "## Variants (nested; the service picks the richest the inputs allow)",
        "",
        "- `demographics`: age, sex, BMI; also reported next to every imaging estimate.",
        "- `imaging`: + baseline biomarkers; used when there is no usable prior exam (the documented fallback).",
        f"- `imaging_change`: + yearly biomarker change, when a prior exam {model.change_window_months[0]:g}-"
        f"{model.change_window_months[1]:g} months earlier is given.",
        "",
    ]
    for name, variant in model.variants.items():
        lines += [f"### {name}", ""]
        lines += _feature_rows([(f.key, f.unit, f.mean, f.sd, b) for f, b in
                                zip(variant.linear.features, variant.linear.coefficients, strict=True)], ratio)
        if variant.baseline is not None:
            lines.append(f"\nBaseline survival at {model.horizon_months} months (inputs at the cohort mean): "
                         f"{variant.baseline.horizon_survival:.4f}")
        elif variant.linear.intercept is not None:
            lines.append(f"\nIntercept: {variant.linear.intercept:+.4f}")
        lines.append("")
    training = model.training
    lines += [
        "## Training data",
        "",
        f"{training.description}. {training.n_train} training knees ({training.n_events_train} events); held-out "
        f"test: {training.n_test} knees ({training.n_events_test} events).",
        "",
        "## Held-out metrics (95 % CI, subject bootstrap)",
        "",
        risk_metrics_table(model.metrics) if model.metrics else "Not evaluated.",
        "",
        "## Provenance",
        "",
        f"- produced by: `{training.command}`",
        f"- `model.json` sha256: `{model_sha256}`",
        f"- created: {model.created.isoformat()}",
        "",
        "## Not validated for",
        "",
        "Patients: the coefficients have never seen one unless the training data above says so. Knees outside "
        "the training cohort's age and BMI range; post-surgical knees; measurements from a segmentation model "
        "other than the one the cohort was measured with.",
        "",
    ]
    return "\n".join(lines)


def triage_model_readme(model: TriageModelFile, model_sha256: str) -> str:
    """The human-readable model card of the triage cascade."""
    lines = [
        f"# {model.model_id} {model.version}",
        "",
        f"> {model.notice}",
        "",
        f"Places knee MRI studies on the radiologist's worklist: `urgent` (likely {model.urgent_definition}), "
        "`routine`, or `deprioritised`. Stages run in order; the first that fires decides.",
        "",
        "## Stages",
        "",
    ]
    for index, stage in enumerate(model.stages):
        if isinstance(stage, ThresholdStage):
            scale = " (fraction of the healthy reference)" if stage.reference else ""
            lines += [f"{index}. **{stage.name}**: urgent when `{stage.biomarker.value}`{scale} is {stage.direction} "
                      f"{stage.threshold:g} in any of {', '.join(stage.regions)}. Threshold: {stage.rationale}."]
        elif isinstance(stage, ClassifierStage):
            lines += [f"{index}. **{stage.name}**: logistic regression on {len(stage.linear.features)} biomarkers; "
                      f"urgent from probability {stage.urgent_threshold:.4f}, deprioritised below "
                      f"{stage.deprioritise_threshold:.4f}. Thresholds: {stage.rationale}.", ""]
            lines += _feature_rows([(f.key, f.unit, f.mean, f.sd, b) for f, b in
                                    zip(stage.linear.features, stage.linear.coefficients, strict=True)], "odds ratio")
    training = model.training
    lines += [
        "",
        "## Training data",
        "",
        f"{training.description}. Held-out test: {training.n_test} studies ({training.n_events_test} urgent).",
        "",
        "## Held-out metrics (95 % CI, subject bootstrap)",
        "",
        triage_metrics_table(model.metrics["test"]) if "test" in model.metrics else "Not evaluated.",
        "",
        "## Provenance",
        "",
        f"- produced by: `{training.command}`",
        f"- `model.json` sha256: `{model_sha256}`",
        f"- created: {model.created.isoformat()}",
        "",
        "## Not validated for",
        "",
        "Patients, unless the training data above says so; acute trauma (fractures, ligament tears are not "
        "measured); knees after surgery; other joints.",
        "",
    ]
    return "\n".join(lines)
