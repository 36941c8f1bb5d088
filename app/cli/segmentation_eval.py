"""``mskcds evaluate-seg``: the segmentation chain on held-out knees, scored on labels and biomarkers."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.cli._root import cli

if TYPE_CHECKING:
    from app.segmentation.evaluation import CaseLoader


class Runtime(StrEnum):
    onnx = "onnx"
    torch = "torch"


@cli.command("evaluate-seg")
def evaluate_seg(
    phantoms: Annotated[int, typer.Option("--phantoms", min=1, help="Held-out phantoms to generate.")] = 5,
    protocol: Annotated[
        str, typer.Option("--protocol", help="Phantom protocol (the published dess; dess-small for a quick run).")
    ] = "dess",
    seed_start: Annotated[
        int | None, typer.Option("--seed-start", help="First phantom seed (default: the held-out 9000).")
    ] = None,
    cases: Annotated[
        Path | None,
        typer.Option("--cases", help="Folder of cases (DICOM + labels.nii.gz [+ truth.json]) instead of phantoms."),
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model folder name (default: the configured).")] = None,
    runtime: Annotated[
        Runtime | None, typer.Option("--runtime", help="Inference runtime (default: configured).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Where report.md / .json and the PNGs go.")] = Path(
        "out/segmentation-eval"
    ),
) -> None:
    """Dice / HD95 per label, and thickness and volume errors against reference labels and phantom truth.

    Poor scores are results, not errors: the exit status is 1 only when the evaluation cannot run.
    """
    err = Console(stderr=True, soft_wrap=True)
    from app.imaging.phantom import ProtocolError, parse_protocol
    from app.segmentation.card import ModelCardError
    from app.segmentation.evaluation import EvaluationError, folder_cases, held_out_cases

    try:
        if cases is not None:
            loaders = folder_cases(cases)
            source = f"folders under {cases}"
        else:
            from app.segmentation.data import HELD_OUT_SEED

            start = HELD_OUT_SEED if seed_start is None else seed_start
            parse_protocol(protocol)
            loaders = held_out_cases(phantoms, protocol, start)
            source = f"held-out phantoms, seeds {start}-{start + phantoms - 1}, protocol {protocol}"
        summary = _run(loaders, source, model, runtime, out, err)
    except (EvaluationError, ModelCardError, ProtocolError) as error:
        err.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None
    _print_headline(summary)
    err.print(f"wrote {out / 'report.md'}, report.json, bland_altman.png and {len(loaders)} overlays")


def _run(
    loaders: list[CaseLoader], source: str, model: str | None, runtime: Runtime | None, out: Path, err: Console
) -> dict[str, Any]:
    from rich.progress import Progress

    from app.segmentation.chain import Segmenter
    from app.segmentation.evaluation import evaluate_case
    from app.segmentation.report import summarise, write_overlay, write_report
    from app.settings import get_settings

    settings = get_settings()
    if model is not None:
        settings = settings.model_copy(update={"segmentation_model": model})
    segmenter = Segmenter.from_settings(settings, runtime=runtime.value if runtime else None)
    results = []
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("evaluating", total=len(loaders))
        for name, load in loaders:
            progress.update(task, description=f"{name}: loading")
            case = load()
            progress.update(task, description=f"{name}: segmenting and measuring")
            result, predicted = evaluate_case(case, segmenter)
            write_overlay(case, predicted, out / f"overlay_{case.name}.png")
            results.append(result)
            if result.failure:
                err.print(f"[yellow]{escape(name)}:[/yellow] {escape(result.failure)}")
            progress.advance(task)
    header = {
        "model_versions": segmenter.model_versions,
        "runtime": runtime.value if runtime else settings.segmentation_runtime,
        "source": source,
    }
    summary = summarise(results, header)
    write_report(summary, results, out)
    return summary


def _print_headline(summary: dict[str, Any]) -> None:
    from app.segmentation.report import LABEL_COLUMNS, THICKNESS_COLUMNS, label_rows, thickness_rows

    console = Console()
    tables = [(f"Labels ({summary['source']})", LABEL_COLUMNS, label_rows(summary))]
    versus = "truth" if any(case["truth"] for case in summary["cases"]) else "reference"
    tables.append(
        (f"Mean cartilage thickness, predicted - {versus}", THICKNESS_COLUMNS, thickness_rows(summary, versus))
    )
    for title, columns, rows in tables:
        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        console.print(table)
