"""``mskcds analyze`` (a study -> triage, risk, biomarkers) and ``mskcds segment`` (a study -> label map).

Both take a folder of DICOM files or a DICOMweb study URL, and run the service's own analyzer
(:class:`app.analysis.study.StudyAnalyzer`) in this process. The clinical flags follow
docs/clinical.md, "``mskcds analyze`` flags": triage always; risk with ``--age``, ``--sex`` and
``--bmi`` (a missing one is said on stderr, exit 0); contradictions are errors (exit 1).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.cli._root import cli
from app.cli.measure import MeasureError, Side, resolve_laterality

if TYPE_CHECKING:
    from app.analysis.study import Prior, StudyAnalysis, StudyAnalyzer
    from app.imaging import StudySelection
    from schemas.analysis import AnalysisResult, Demographics
    from schemas.biomarkers import Laterality, LateralitySource

#: Biomarkers the summary shows per plate (all are in ``--json``).
_KEY_BIOMARKERS = ("cartilage_thickness_mean", "denuded_area_pct", "meniscus_extrusion", "t2_mean", "t1rho_mean")

Source = Annotated[str, typer.Argument(help="folder of DICOM files, or a DICOMweb study URL .../studies/UID")]
SideOption = Annotated[Side | None, typer.Option("--side", help="knee side when the images do not say")]


class AnalyzeError(Exception):
    """Bad input for ``mskcds analyze`` / ``segment``; the message says what to change."""


def _selection(source: str) -> StudySelection:
    """The study's selected acquisitions: over DICOMweb only the chosen series are downloaded."""
    from app.analysis.fetch import open_selection
    from app.clients.errors import UpstreamError
    from app.clients.study_url import is_study_url, parse_study_url
    from app.imaging import load_acquisitions, select_series
    from app.settings import get_settings

    try:
        if is_study_url(source):
            study = parse_study_url(source)
            return open_selection(get_settings(), study.base_url, study.study_instance_uid)
        if not Path(source).exists():
            raise AnalyzeError(f"{source}: no such file or folder")
        return select_series(load_acquisitions(Path(source)))
    except (ValueError, UpstreamError) as error:  # LoaderError is a ValueError
        raise AnalyzeError(str(error)) from None


def _laterality(selection: StudySelection, side: Side | None) -> tuple[Laterality, LateralitySource]:
    """As ``mskcds measure``: DICOM or the series description, else ``--side``; position is only a hint."""
    morphology = selection.morphology
    stated = morphology.laterality_source in ("dicom", "series_description")
    try:
        return resolve_laterality(
            morphology.laterality if stated else None,
            morphology.laterality_source if stated else None,
            side.value if side else None,  # type: ignore[arg-type]
        )
    except MeasureError as error:
        hint = (f" (the field of view lies on the patient's {morphology.laterality}: a {morphology.laterality} knee?)"
                if morphology.laterality and not stated else "")
        raise AnalyzeError(f"{error}{hint}") from None


def _demographics(age: float | None, sex: str | None, bmi: float | None) -> tuple[Demographics | None, list[str]]:
    """Demographics from the flags, and a note naming the flags risk still needs."""
    from schemas.analysis import Demographics

    missing = [flag for flag, value in (("--age", age), ("--sex", sex), ("--bmi", bmi)) if value is None]
    note = [f"risk not estimated: give --age, --sex and --bmi (missing {', '.join(missing)})"] if missing else []
    try:
        demographics = Demographics(age_years=age, sex=sex, bmi=bmi)  # type: ignore[arg-type]
    except ValueError as error:
        raise AnalyzeError(f"demographics: {error}") from None
    return (None, note) if missing else (demographics, [])  # incomplete: the flags' note says what is missing


def _prior(path: Path | None, months: float | None, selection: StudySelection) -> Prior | None:
    from app.analysis.study import Prior
    from app.clinical.prior import months_since_prior, read_prior_exam

    if path is None:
        if months is not None:
            raise AnalyzeError("--months-since-prior needs --prior")
        return None
    try:
        prior = read_prior_exam(path)
        return Prior(prior.biomarkers, months_since_prior(prior, selection.morphology.study_date, months))
    except ValueError as error:
        raise AnalyzeError(str(error)) from None


def _run_stages(analyzer: StudyAnalyzer, selection: StudySelection, err: Console, **inputs: object) -> StudyAnalysis:
    """``analyzer.analyze`` with a progress bar over its stages (on stderr)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from app.analysis.study import STAGES

    with Progress(TextColumn("{task.description:<10}"), BarColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        task = progress.add_task("load models", total=len(STAGES) + 1)

        def step(stage: str) -> None:
            progress.update(task, description=stage, completed=STAGES.index(stage) + 1)

        try:
            analyzer.prepare()  # a missing or altered model file is a ValueError naming it
            analysis = analyzer.analyze(selection, progress=step, **inputs)  # type: ignore[arg-type]
        except ValueError as error:  # contradictory prior, model files
            raise AnalyzeError(str(error)) from None
        progress.update(task, completed=len(STAGES) + 1)
    return analysis


@cli.command()
def analyze(
    source: Source,
    json_output: Annotated[bool, typer.Option("--json", help="print the AnalysisResult JSON only")] = False,
    age: Annotated[float | None, typer.Option("--age", min=0, max=130, help="age in years (risk)")] = None,
    sex: Annotated[str | None, typer.Option("--sex", help="female or male (risk)")] = None,
    bmi: Annotated[float | None, typer.Option("--bmi", help="body-mass index, kg/m2 (risk)")] = None,
    prior: Annotated[
        Path | None, typer.Option("--prior", help="an earlier `analyze --json` or `measure --json` of this knee")
    ] = None,
    months_since_prior: Annotated[
        float | None, typer.Option("--months-since-prior", help="interval to --prior when a study date is missing")
    ] = None,
    side: SideOption = None,
    fhir_bundle: Annotated[
        Path | None, typer.Option("--fhir-bundle", help="write the FHIR transaction Bundle here (needs --patient)")
    ] = None,
    post: Annotated[
        str | None, typer.Option("--post", help="post the Bundle to this FHIR base URL (needs --patient)")
    ] = None,
    patient: Annotated[
        str | None, typer.Option("--patient", help="subject of the FHIR resources, e.g. Patient/123")
    ] = None,
    maps: Annotated[Path | None, typer.Option("--maps", help="write thickness and relaxation maps here")] = None,
) -> None:
    """Analyse a knee MRI study: series used, key biomarkers, triage priority, OA / TKR risk."""
    err = Console(stderr=True, soft_wrap=True)
    try:
        if sex not in (None, "female", "male"):
            raise AnalyzeError(f"--sex must be female or male, got {sex!r}")
        if (fhir_bundle or post) and not patient:
            raise AnalyzeError("--fhir-bundle and --post need --patient Patient/<id> (the resources' subject)")
        demographics, notes = _demographics(age, sex, bmi)
        selection = _selection(source)
        laterality, laterality_source = _laterality(selection, side)
        prior_exam = _prior(prior, months_since_prior, selection)
        from app.analysis.study import StudyAnalyzer

        analysis = _run_stages(StudyAnalyzer(), selection, err, laterality=laterality,
                               laterality_source=laterality_source, demographics=demographics, prior=prior_exam,
                               notes=notes)
        _outputs(analysis, selection, patient, fhir_bundle, post, maps, err)
    except AnalyzeError as error:
        err.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None
    for note in analysis.result.notes:
        err.print(f"[yellow]note:[/yellow] {escape(note)}")
    if json_output:
        sys.stdout.write(analysis.result.model_dump_json(indent=2) + "\n")
    else:
        print_summary(Console(), analysis.result)


def _outputs(analysis: StudyAnalysis, selection: StudySelection, patient: str | None, fhir_bundle: Path | None,
             post: str | None, maps: Path | None, err: Console) -> None:
    if maps is not None:
        from app.measurement.io import save_maps

        series = {key: a.echoes for key, a in (("t2", selection.t2), ("t1rho", selection.t1rho)) if a is not None}
        err.print(f"maps: {len(save_maps(analysis.measurement, series, maps))} files in {maps}")
    if not (fhir_bundle or post):
        return
    from app.clients.errors import UpstreamError
    from app.clients.fhir import post_transaction
    from app.outputs.fhir_bundle import analysis_bundle, bundle_json

    try:
        bundle = analysis_bundle(analysis.result, patient_reference=patient or "")
        if fhir_bundle is not None:
            fhir_bundle.write_text(bundle_json(bundle) + "\n")
            err.print(f"FHIR bundle: {len(bundle.entry or [])} entries in {fhir_bundle}")
        if post is not None:
            summary = post_transaction(bundle, post)
            err.print(f"posted to {post}: created {summary.created or 'nothing'}, existing {summary.existing or {}}")
    except (ValueError, UpstreamError) as error:
        raise AnalyzeError(str(error)) from None


def print_summary(console: Console, result: AnalysisResult) -> None:
    """Series used, key biomarkers per plate, triage with its deciding stage, risks with CI."""
    series = Table(title=f"Study {result.study_instance_uid} ({result.study_date or 'no date'})")
    for column in ("role", "series", "description"):
        series.add_column(column)
    for used in result.series:
        series.add_row(used.role, ", ".join(used.series_instance_uids), escape(used.description or ""))
    console.print(series)

    m = result.measurements
    biomarkers = Table(title=f"Key biomarkers, {m.laterality} knee (side from {m.laterality_source})")
    for column in ("region", "biomarker", "value"):
        biomarkers.add_column(column, justify="right" if column == "value" else "left")
    for b in m.biomarkers:
        if b.name.value in _KEY_BIOMARKERS:
            biomarkers.add_row(b.region, b.name.value.replace("_", " "), f"{b.value:.2f} {b.unit.value}")
    console.print(biomarkers)
    if result.segmentation_confidence:
        low = min(result.segmentation_confidence.items(), key=lambda item: item[1])
        console.print(f"Segmentation confidence: lowest {low[1]:.2f} ({low[0].replace('_', ' ')})")

    if result.triage is not None:
        t = result.triage
        colour = {"urgent": "red", "routine": "yellow", "deprioritised": "green"}[t.priority]
        console.print(f"\nTriage: [bold {colour}]{t.priority}[/] (stage {t.stage_index} {t.stage}, "
                      f"{t.model_id} {t.model_version})")
        for reason in t.reasons:
            console.print(f"  - {escape(reason)}")

    if result.risk:
        risks = Table(title="Risk within the horizon (95 % CI) vs demographics alone")
        for column in ("outcome", "horizon", "with knee MRI", "95 % CI", "demographics only", "change used"):
            risks.add_column(column)
        for r in result.risk:
            risks.add_row(r.outcome, f"{r.horizon_months} months", f"{r.probability:.1%}",
                          f"{r.ci_low:.1%} - {r.ci_high:.1%}", f"{r.demographics_only_probability:.1%}",
                          "yes" if r.used_prior else "no")
        console.print(risks)
    console.print(f"Models: {', '.join(f'{k} {v}' for k, v in sorted(result.model_versions.items()))}")


@cli.command()
def segment(
    source: Source,
    out: Annotated[Path, typer.Option("--out", help="label map to write, NIfTI (.nii.gz)")] = ...,  # type: ignore[assignment]
    side: SideOption = None,
) -> None:
    """Segment the study's morphology series and write the label map on its grid (its affine)."""
    err = Console(stderr=True, soft_wrap=True)
    try:
        selection = _selection(source)
        laterality, _source = _laterality(selection, side)
        from app.segmentation import Segmenter
        from app.settings import get_settings

        with err.status("segmenting"):
            segmentation = Segmenter.from_settings(get_settings()).segment(selection.morphology.volume(0), laterality)
    except (AnalyzeError, ValueError) as error:
        err.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None
    import numpy as np

    from app.measurement.io import write_volume
    from schemas.labels import Label
    from schemas.volume import Volume

    labels = segmentation.labels
    write_volume(Volume(labels.array.astype(np.uint8), labels.affine), out)
    voxel_mm3 = float(np.prod(labels.spacing_mm))
    counts = np.bincount(labels.array.ravel().astype(np.int64), minlength=len(Label))
    table = Table(title=f"{out} ({laterality} knee)")
    for column in ("label", "volume (mm3)", "confidence"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for label in Label:
        if label != Label.BACKGROUND and label < len(counts) and counts[label]:
            confidence = segmentation.confidence.get(label.name.lower())
            table.add_row(label.name.lower().replace("_", " "), f"{counts[label] * voxel_mm3:,.0f}",
                          f"{confidence:.2f}" if confidence is not None else "")
    Console().print(table)
