"""``mskcds phantom`` and ``mskcds inspect``: generate a knee MRI phantom study; list a study's acquisitions."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Literal

import typer

from app.cli._root import cli


@cli.command()
def phantom(
    out_dir: Annotated[Path, typer.Argument(help="folder to write the study into (created if missing)")],
    seed: Annotated[int, typer.Option(help="random seed: same seed, same knee (at every grade)")] = 0,
    side: Annotated[str, typer.Option(help="left or right knee")] = "right",
    grade: Annotated[int, typer.Option(min=0, max=4, help="osteoarthritis grade 0 (healthy) to 4")] = 0,
    protocol: Annotated[
        list[str] | None,
        typer.Option(
            help="protocol NAME, NAME:key=value,... or a JSON file; repeat for several "
            "(default: dess, t2-mese, t1rho-cubequant). Keys: matrix, pixel, slices, thickness, spacing, "
            "te (a/b/c), tr, flip, tsl (a/b/c), noise, bias, blur, fs, series, description, name",
        ),
    ] = None,
    preview: Annotated[bool, typer.Option(help="also write PNG previews with labels overlaid")] = False,
) -> None:
    """Generate a knee MRI phantom: DICOM series, labels.nii.gz, thickness_truth.nii.gz and truth.json."""
    from rich.console import Console

    from app.imaging.phantom import ProtocolError, generate_phantom, write_phantom

    console = Console(stderr=True)
    if side not in ("left", "right"):
        raise typer.BadParameter(f"side must be 'left' or 'right', got {side!r}", param_hint="--side")
    knee: Literal["left", "right"] = "left" if side == "left" else "right"
    started = time.perf_counter()
    try:
        with console.status(f"generating phantom (seed {seed}, {knee} knee, grade {grade})"):
            study = generate_phantom(seed=seed, side=knee, grade=grade, protocols=protocol or None)
            write_phantom(study, out_dir, preview=preview)
    except ProtocolError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    for spec in study.truth.protocols:
        shape = "x".join(str(n) for n in study.images[spec.name].array.shape)
        console.print(f"  {spec.name}: {shape} (times x slices x rows x columns)")
    console.print(f"wrote {out_dir} in {time.perf_counter() - started:.1f} s")


@cli.command()
def inspect(
    path: Annotated[
        str, typer.Argument(help="a DICOM folder (searched recursively) or file, or a DICOMweb study URL")
    ],
    json_output: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """List the acquisitions of a DICOM study: role, geometry, echo / spin-lock times, laterality.

    A DICOMweb study URL (``http(s)://HOST/.../studies/UID``; credentials from MSKCDS_DICOMWEB_USER /
    MSKCDS_DICOMWEB_PASSWORD or MSKCDS_DICOMWEB_TOKEN) is read as WADO-RS metadata only: no pixels move.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from app.clients.errors import UpstreamError
    from app.clients.study_url import is_study_url, open_study_metadata
    from app.imaging import LoaderError, load_acquisitions

    try:
        if is_study_url(path):
            acquisitions = load_acquisitions(open_study_metadata(path), pixels=False)
        else:
            acquisitions = load_acquisitions(Path(path))
    except (LoaderError, UpstreamError, ValueError) as error:
        # soft_wrap: a path in the message stays on one line (rich otherwise breaks it at 80 columns when
        # stderr is not a terminal); escape: brackets in a path are not markup
        Console(stderr=True).print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if json_output:
        typer.echo(json.dumps({"acquisitions": [a.summary() for a in acquisitions]}, indent=2))
        return
    table = Table(title=f"{len(acquisitions)} acquisition(s) in {path}")
    for column in (
        "series",
        "description",
        "role",
        "slices x rows x cols",
        "spacing (mm)",
        "times (ms)",
        "side",
        "plane",
    ):
        table.add_column(column)
    for a in acquisitions:
        times = ", ".join(f"{t:g}" for t in a.echoes.times_ms)
        table.add_row(
            str(a.series_number),
            a.description,
            a.role,
            " x ".join(str(n) for n in a.shape),
            " x ".join(f"{v:.4g}" for v in a.spacing_mm),
            ("TSL " if a.role == "t1rho" else "TE ") + times,
            f"{a.laterality or '?'} ({a.laterality_source or 'unknown'})",
            a.orientation,
        )
    console = Console()
    if not console.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
        console = Console(width=160)
    console.print(table)
