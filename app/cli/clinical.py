"""``mskcds`` clinical commands: simulate a cohort, train and evaluate triage and risk models, rebuild defaults."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from app.cli._root import cli

CohortOption = Annotated[Path | None, typer.Option(help="cohort CSV (canonical columns, or any with --mapping)")]
MappingOption = Annotated[Path | None, typer.Option(help="column-mapping JSON for --cohort")]
OaiOption = Annotated[Path | None, typer.Option(help="directory of OAI ASCII files (pipe-delimited)")]
CurrentVisit = Annotated[str, typer.Option(help="OAI visit of the current exam, e.g. 03 (24 months)")]
PriorVisit = Annotated[str, typer.Option(help="OAI visit of the prior exam for change features, or 'none'")]
MriProject = Annotated[list[str] | None, typer.Option(help="Chondrometrics READPRJ to use, in order of preference")]
XrProject = Annotated[str, typer.Option(help="kXR_SQ_BU READPRJ for KL grades (15: the central reading)")]
Bootstrap = Annotated[int, typer.Option(min=0, help="bootstrap resamples for 95 % CIs")]
Seed = Annotated[int, typer.Option(help="seed of the split and the bootstrap")]


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


@contextmanager
def _errors() -> Iterator[None]:
    """Bad input -> a clear message and exit code 1, never a traceback."""
    from app.clinical.errors import ClinicalModelError, CohortError

    try:
        yield
    except (CohortError, ClinicalModelError, ValueError) as error:
        raise _fail(str(error)) from None


@contextmanager
def _progress() -> Iterator[Callable[[str, int], Callable[[], None]]]:
    """A factory of rich progress bars: ``bar = factory("bootstrap", 1000); bar()`` advances one step."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=False) as progress:
        def factory(description: str, total: int) -> Callable[[], None]:
            task = progress.add_task(description, total=total)
            return lambda: progress.advance(task)

        yield factory


def _command(ctx: typer.Context) -> str:
    """The invocation, rebuilt from the parsed options (recorded in model cards and reports)."""
    parts = ["mskcds", ctx.info_name or ""]
    for name, value in ctx.params.items():
        if value is None or value is False or (isinstance(value, list | tuple) and not value):
            continue
        flag = "--" + name.replace("_", "-")
        for item in value if isinstance(value, list | tuple) else [value]:
            parts += [flag] if item is True else [flag, str(item)]
    return " ".join(parts)


def _load_cohort(cohort: Path | None, mapping: Path | None, oai_dir: Path | None, current_visit: str,
                 prior_visit: str, mri_project: list[str] | None, xr_project: str, horizon_months: int,
                 ) -> tuple[object, str, str]:
    """(cohort DataFrame, source kind, description) from a CSV or an OAI directory."""
    from app.clinical.cohort import read_cohort, read_mapping
    from app.clinical.oai import OaiRequest, load_oai_cohort

    if (cohort is None) == (oai_dir is None):
        raise _fail("give exactly one of --cohort (CSV) or --oai-dir (OAI ASCII files)")
    if cohort is not None:
        frame = read_cohort(cohort, read_mapping(mapping) if mapping else None)
        return frame, "csv", f"{cohort.name} ({len(frame)} knees)"
    assert oai_dir is not None
    prior = None if prior_visit.lower() == "none" else prior_visit
    request = OaiRequest(current_visit=current_visit, prior_visit=prior, horizon_months=horizon_months,
                         mri_projects=list(mri_project or []), xr_project=xr_project)
    frame, log = load_oai_cohort(oai_dir, request)
    for line in log:
        typer.echo(f"OAI: {line}")
    with_prior = f", prior exam V{prior}" if prior else ""
    return frame, "oai", f"OAI export {oai_dir.name}: exams at V{current_visit}{with_prior} ({len(frame)} knees)"


@cli.command("simulate-cohort")
def simulate_cohort_command(
    out: Annotated[Path, typer.Option(help="CSV to write")],
    n: Annotated[int, typer.Option(min=1, help="number of knees")] = 12000,
    seed: Seed = 201,
    population: Annotated[str, typer.Option(help="oai (research cohort) or referral (hospital worklist)")] = "oai",
) -> None:
    """Write a simulated cohort (the generating model: app/clinical/data/simulation_effects.json)."""
    from app.clinical.cohort import write_cohort
    from app.clinical.simulation import POPULATIONS, simulate_cohort

    if population not in POPULATIONS:
        raise _fail(f"unknown population {population!r}; choose one of {', '.join(POPULATIONS)}")
    frame = simulate_cohort(n, seed, population)  # type: ignore[arg-type]
    write_cohort(frame, out)
    typer.echo(f"wrote {len(frame)} simulated {population} knees to {out}")


@cli.command("train-risk")
def train_risk(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="model folder to write (model.json, README.md, model_card.json)")],
    outcome: Annotated[str, typer.Option(help="incident_oa or tkr")],
    method: Annotated[str, typer.Option(help="cox or logistic")] = "logistic",
    horizon_months: Annotated[int, typer.Option(min=1)] = 48,
    cohort: CohortOption = None,
    mapping: MappingOption = None,
    oai_dir: OaiOption = None,
    current_visit: CurrentVisit = "03",
    prior_visit: PriorVisit = "00",
    mri_project: MriProject = None,
    xr_project: XrProject = "15",
    imaging_feature: Annotated[list[str] | None, typer.Option(help="baseline biomarker key (repeatable)")] = None,
    change_feature: Annotated[list[str] | None, typer.Option(help="change:name:region key (repeatable)")] = None,
    test_fraction: Annotated[float, typer.Option(min=0.05, max=0.9)] = 0.3,
    model_id: Annotated[str | None, typer.Option(help="default: risk-incident-oa / risk-tkr")] = None,
    version: str = "0.1.0",
    bootstrap: Bootstrap = 500,
    seed: Seed = 0,
    report: Annotated[Path | None, typer.Option(help="also write the held-out evaluation report here")] = None,
) -> None:
    """Fit an OA / TKR risk model (demographics, + imaging, + change) and write its JSON model folder."""
    from app.clinical.cohort import split_by_subject
    from app.clinical.model_files import TrainingCohort
    from app.clinical.reports import risk_metrics_table, write_risk_report
    from app.clinical.risk_training import (
        DEFAULT_CHANGE_FEATURES,
        DEFAULT_IMAGING_FEATURES,
        RiskTrainingSpec,
        TrainingLog,
    )
    from app.clinical.workflows import build_risk_model, save_risk_model

    if outcome not in ("incident_oa", "tkr") or method not in ("cox", "logistic"):
        raise _fail("--outcome must be incident_oa or tkr, --method cox or logistic")
    with _errors():
        frame, source, description = _load_cohort(cohort, mapping, oai_dir, current_visit, prior_visit,
                                                  mri_project, xr_project, horizon_months)
        train, test = split_by_subject(frame, (1 - test_fraction, test_fraction), seed)  # type: ignore[arg-type]
        spec = RiskTrainingSpec(outcome=outcome, method=method, horizon_months=horizon_months,  # type: ignore[arg-type]
                                imaging_features=imaging_feature or list(DEFAULT_IMAGING_FEATURES),
                                change_features=change_feature or list(DEFAULT_CHANGE_FEATURES))
        command = _command(ctx)
        training = TrainingCohort(source=source, description=f"{description}; {1 - test_fraction:.0%} of subjects "
                                  f"for training, {test_fraction:.0%} held out (seed {seed})", n_train=len(train),
                                  seed=seed, command=command)  # type: ignore[arg-type]
        log = TrainingLog()
        name = model_id or f"risk-{outcome.replace('_', '-')}"
        with _progress() as progress:
            model, evaluation = build_risk_model(train, test, spec, name, version, training, bootstrap, seed, log,
                                                 progress(f"{name}: bootstrap", bootstrap))
        save_risk_model(model, out)
        if report is not None:
            write_risk_report(evaluation, report, command, f"held-out part of {description}")
    for line in log.lines:
        typer.echo(line)
    typer.echo(risk_metrics_table(model.metrics))
    typer.echo(f"wrote {out}")


@cli.command("evaluate-risk")
def evaluate_risk_command(
    ctx: typer.Context,
    model: Annotated[Path, typer.Option(help="risk model folder")],
    report: Annotated[Path, typer.Option(help="folder for report.md and the PNG figures")],
    cohort: CohortOption = None,
    mapping: MappingOption = None,
    oai_dir: OaiOption = None,
    current_visit: CurrentVisit = "03",
    prior_visit: PriorVisit = "00",
    mri_project: MriProject = None,
    xr_project: XrProject = "15",
    bootstrap: Bootstrap = 1000,
    seed: Seed = 0,
) -> None:
    """Evaluate a risk model: AUC / C-index, Brier, calibration, decision curve, gaps to demographics-only."""
    from app.clinical.model_files import RiskModelFile
    from app.clinical.model_io import load_model_folder
    from app.clinical.reports import risk_metrics_table, write_risk_report
    from app.clinical.risk_evaluation import evaluate_risk

    with _errors():
        loaded = load_model_folder(model)
        if not isinstance(loaded, RiskModelFile):
            raise _fail(f"{model} is a triage model; use evaluate-triage")
        frame, _, description = _load_cohort(cohort, mapping, oai_dir, current_visit, prior_visit, mri_project,
                                             xr_project, loaded.horizon_months)
        with _progress() as progress:
            evaluation = evaluate_risk(loaded, frame, bootstrap, seed, progress("bootstrap", bootstrap))
        path = write_risk_report(evaluation, report, _command(ctx), description)
    typer.echo(risk_metrics_table(evaluation.metrics))
    typer.echo(f"wrote {path}")


def _urgent_definition(urgent_kl: int | None, text: str | None) -> str:
    if urgent_kl is not None:
        return f"radiographic proxy: Kellgren-Lawrence grade >= {urgent_kl} at the current visit (OAI kXR_SQ_BU)"
    return text or "the training cohort's 'urgent' label"


def _with_urgent(frame: object, urgent_kl: int | None) -> object:
    """For OAI cohorts: the triage reference standard as KL >= urgent_kl at the current visit (a proxy)."""
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    if urgent_kl is None:
        return frame
    if "oai_kl" not in frame:
        raise _fail("--urgent-kl needs KL grades: use it with --oai-dir")
    frame = frame[frame["oai_kl"].notna()].copy()
    frame["urgent"] = (frame["oai_kl"] >= urgent_kl).astype(float)
    return frame


@cli.command("train-triage")
def train_triage(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="model folder to write")],
    cohort: CohortOption = None,
    mapping: MappingOption = None,
    oai_dir: OaiOption = None,
    current_visit: CurrentVisit = "00",
    mri_project: MriProject = None,
    xr_project: XrProject = "15",
    urgent_kl: Annotated[int | None, typer.Option(help="OAI only: urgent := KL >= this at the current visit")] = None,
    urgent_definition: Annotated[str | None, typer.Option(help="what the cohort's 'urgent' column means (for the "
                                                                "model card)")] = None,
    classifier_feature: Annotated[list[str] | None, typer.Option(
        help="biomarker key for the classifier stage (repeatable; default: 18 morphology keys)")] = None,
    sensitivity: Annotated[float, typer.Option(min=0.5, max=0.999)] = 0.98,
    confidence: Annotated[float, typer.Option(min=0.0, max=0.99, help="one-sided bound for thresholds; 0: point "
                                              "estimate")] = 0.95,
    model_id: str = "triage-knee",
    version: str = "0.1.0",
    bootstrap: Bootstrap = 500,
    seed: Seed = 0,
    minutes_per_read: Annotated[float, typer.Option(min=0.1)] = 15.0,
    report: Annotated[Path | None, typer.Option(help="also write the test-split evaluation report here")] = None,
) -> None:
    """Fit the triage cascade (50 % train, 25 % validation for thresholds, 25 % test) and write its model folder."""
    from app.clinical.cohort import split_by_subject
    from app.clinical.model_files import TrainingCohort
    from app.clinical.reports import triage_metrics_table, write_triage_report
    from app.clinical.risk_training import TrainingLog
    from app.clinical.triage_training import DEFAULT_CLASSIFIER_FEATURES, TriageTrainingSpec
    from app.clinical.workflows import build_triage_model, save_triage_model

    with _errors():
        frame, source, description = _load_cohort(cohort, mapping, oai_dir, current_visit, "none", mri_project,
                                                  xr_project, 48)
        frame = _with_urgent(frame, urgent_kl)
        train, validation, test = split_by_subject(frame, (0.5, 0.25, 0.25), seed)  # type: ignore[arg-type]
        command = _command(ctx)
        training = TrainingCohort(source=source, seed=seed, n_train=len(train), command=command,  # type: ignore[arg-type]
                                  description=f"{description}; subjects split 50/25/25 % into training, "
                                              f"validation (thresholds) and test (seed {seed})")
        log = TrainingLog()
        with _progress() as progress:
            model, evaluation = build_triage_model(
                train, validation, test, TriageTrainingSpec(
                    urgent_definition=_urgent_definition(urgent_kl, urgent_definition),
                    sensitivity_target=sensitivity, threshold_confidence=confidence,
                    classifier_features=classifier_feature or list(DEFAULT_CLASSIFIER_FEATURES)),
                model_id, version, training, bootstrap, seed, log, minutes_per_read,
                progress("bootstrap", bootstrap), progress("triage of test studies", len(test)))
        save_triage_model(model, out)
        if report is not None:
            write_triage_report(evaluation, report, command, f"test part of {description}")
    for line in log.lines:
        typer.echo(line)
    typer.echo(triage_metrics_table(model.metrics["test"]))
    typer.echo(f"wrote {out}")


@cli.command("evaluate-triage")
def evaluate_triage_command(
    ctx: typer.Context,
    model: Annotated[Path, typer.Option(help="triage model folder")],
    report: Annotated[Path, typer.Option(help="folder for report.md and the PNG figure")],
    cohort: CohortOption = None,
    mapping: MappingOption = None,
    oai_dir: OaiOption = None,
    current_visit: CurrentVisit = "00",
    mri_project: MriProject = None,
    xr_project: XrProject = "15",
    urgent_kl: Annotated[int | None, typer.Option(help="OAI only: urgent := KL >= this at the current visit")] = None,
    minutes_per_read: Annotated[float, typer.Option(min=0.1)] = 15.0,
    bootstrap: Bootstrap = 1000,
    seed: Seed = 0,
) -> None:
    """Evaluate a triage cascade: sensitivity, share removed from urgent review, reader-hours saved."""
    from app.clinical.model_files import TriageModelFile
    from app.clinical.model_io import load_model_folder
    from app.clinical.reports import triage_metrics_table, write_triage_report
    from app.clinical.triage_evaluation import evaluate_triage

    with _errors():
        loaded = load_model_folder(model)
        if not isinstance(loaded, TriageModelFile):
            raise _fail(f"{model} is a risk model; use evaluate-risk")
        frame, _, description = _load_cohort(cohort, mapping, oai_dir, current_visit, "none", mri_project,
                                             xr_project, 48)
        frame = _with_urgent(frame, urgent_kl)
        with _progress() as progress:
            evaluation = evaluate_triage(loaded, frame, bootstrap, seed, minutes_per_read,  # type: ignore[arg-type]
                                         progress("bootstrap", bootstrap), progress("triage", len(frame)))
        path = write_triage_report(evaluation, report, _command(ctx), description)
    typer.echo(triage_metrics_table(evaluation.metrics))
    typer.echo(f"wrote {path}")


@cli.command("build-clinical-models")
def build_clinical_models(
    out: Annotated[Path, typer.Option(help="models directory (writes triage-knee/, risk-incident-oa/, risk-tkr/)")],
    bootstrap: Bootstrap = 1000,
) -> None:
    """Rebuild the shipped demonstration models from the simulated cohort (fixed seeds: reproducible)."""
    from app.clinical.defaults import build_default_models
    from app.clinical.risk_training import TrainingLog

    log = TrainingLog()
    with _errors(), _progress() as progress:
        folders = build_default_models(out, bootstrap, progress, log)
    for line in log.lines:
        typer.echo(line)
    for folder in folders:
        typer.echo(f"wrote {folder}")
