"""``mskcds measure``: biomarkers from a label map, with the study's images for relaxometry."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.cli._root import cli
from schemas.biomarkers import BiomarkerSet, Laterality, LateralitySource
from schemas.volume import EchoSeries

if TYPE_CHECKING:
    pass


class Side(StrEnum):
    left = "left"
    right = "right"


class Method(StrEnum):
    normal = "normal"
    nearest = "nearest"


class MeasureError(Exception):
    """Bad input for ``mskcds measure``; the message says what to change."""


def resolve_laterality(
    from_images: Laterality | None, images_source: LateralitySource | None, side: Laterality | None
) -> tuple[Laterality, LateralitySource]:
    """Which knee, and where that came from: DICOM, else the series description (both via the images),
    else ``--side``. A missing laterality is an error, not a guess; so is ``--side`` contradicting the images.
    """
    if from_images is not None:
        if side is not None and side != from_images:
            raise MeasureError(
                f"--side {side} contradicts the images, whose {images_source} says {from_images}; "
                "check the study (or leave --side out)"
            )
        return from_images, images_source or "dicom"
    if side is None:
        raise MeasureError(
            "laterality unknown: the images carry none (no DICOM Laterality / ImageLaterality, no left/right in the "
            "series description) or none were given; pass --side left or --side right"
        )
    return side, "user"


@cli.command()
def measure(
    path: Annotated[
        Path | None,
        typer.Argument(help="DICOM file or folder of the study: needed for T2 / T1rho, and gives laterality."),
    ] = None,
    labels: Annotated[Path, typer.Option("--labels", help="Label map, NIfTI (.nii/.nii.gz) or NRRD (.nrrd).")] = ...,  # type: ignore[assignment]
    label_map: Annotated[
        str | None,
        typer.Option("--label-map", help="Translate the label values: a built-in name (pymskt) or a JSON file."),
    ] = None,
    side: Annotated[Side | None, typer.Option("--side", help="Knee side when the images do not say.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the biomarker JSON document only.")] = False,
    maps: Annotated[
        Path | None, typer.Option("--maps", help="Write thickness and relaxation maps (PNG, .npy, NIfTI) here.")
    ] = None,
    method: Annotated[
        Method, typer.Option("--thickness-method", help="Along the bone normal, or to the nearest surface point.")
    ] = Method.normal,
    dess_t2: Annotated[
        bool,
        typer.Option("--dess-t2", help="Without a T2 series, estimate T2 from the two DESS echoes (two-point fit)."),
    ] = False,
) -> None:
    """Measure cartilage thickness, volumes, areas, menisci, bones (and T2 / T1rho with images)."""
    err = Console(stderr=True, soft_wrap=True)
    try:
        _run(path, labels, label_map, side, json_output, maps, method, dess_t2, err)
    except MeasureError as error:
        err.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None


def _run(
    path: Path | None,
    labels_path: Path,
    label_map: str | None,
    side: Side | None,
    json_output: bool,
    maps: Path | None,
    method: Method,
    dess_t2: bool,
    err: Console,
) -> None:
    from app.measurement import measure_knee
    from app.measurement.io import LabelMapError, label_mapping, read_label_map, save_maps, translate

    try:
        labels = translate(read_label_map(labels_path), label_mapping(label_map))
    except LabelMapError as error:
        raise MeasureError(str(error)) from None
    series: dict[str, EchoSeries] = {}
    from_images: Laterality | None = None
    images_source: LateralitySource | None = None
    if path is not None:
        series, from_images, images_source, described = _load_series(path, dess_t2)
        for line in described:
            err.print(escape(line))
    laterality, source = resolve_laterality(
        from_images, images_source, "left" if side == Side.left else "right" if side else None
    )
    with err.status("measuring"):
        try:
            result = measure_knee(
                labels,
                laterality,
                source,
                t2=series.get("t2"),
                t1rho=series.get("t1rho"),
                thickness_method=method.value,
            )
        except ValueError as error:
            raise MeasureError(str(error)) from None
    for note in result.notes:
        err.print(f"[yellow]note:[/yellow] {escape(note)}")
    for key, relaxation in result.relaxation.items():
        r = relaxation.report
        err.print(
            f"{key}: {r.n_voxels} cartilage voxels fitted, {r.n_valid} counted; excluded: {r.n_poor_fit} poor fit, "
            f"{r.n_below_range} below and {r.n_above_range} above the physiological range (clipped in the map); "
            f"noise sigma {r.noise_sigma:.3g} ({r.noise_source})"
        )
    if maps is not None:
        written = save_maps(result, series, maps)
        err.print(f"maps: {len(written)} files in {maps}")
    if json_output:
        sys.stdout.write(result.biomarkers.model_dump_json(indent=2) + "\n")
    else:
        _print_table(result.biomarkers)


def _load_series(
    path: Path, dess_t2: bool
) -> tuple[dict[str, EchoSeries], Laterality | None, LateralitySource | None, list[str]]:
    """The relaxometry series of the study at ``path``, its laterality and source, and what was used.

    Laterality counts when DICOM or a series description states it; the loader's inference from where
    the knee lies in the scanner is only a hint, given in the error when ``--side`` is missing.
    """
    from app.imaging import LoaderError, SeriesSelectionError, load_acquisitions, select_series

    try:
        acquisitions = load_acquisitions(path)
        try:
            selection = select_series(acquisitions)
            used = {"morphology": selection.morphology, "t2": selection.t2, "t1rho": selection.t1rho}
        except SeriesSelectionError:  # no morphology series: relaxometry alone is still measurable
            used = {role: next((a for a in acquisitions if a.role == role), None) for role in ("t2", "t1rho")}
            if not any(used.values()):
                raise
    except LoaderError as error:
        raise MeasureError(str(error)) from None
    series: dict[str, EchoSeries] = {}
    described = [f"{role}: series {a.series_number} {a.description!r}" for role, a in used.items() if a is not None]
    morphology = used.get("morphology")
    if used["t2"] is not None:
        series["t2"] = used["t2"].echoes
    elif dess_t2 and morphology is not None and len(morphology.echoes.times_ms) == 2:
        series["t2"] = morphology.echoes
        described.append("t2: two-point estimate from the DESS echoes (ignores T1 and diffusion weighting)")
    if used["t1rho"] is not None:
        series["t1rho"] = used["t1rho"].echoes
    stated = [a for a in used.values() if a is not None and a.laterality_source in ("dicom", "series_description")]
    if stated:
        return series, stated[0].laterality, stated[0].laterality_source, described
    hint = next((a.laterality for a in used.values() if a is not None and a.laterality), None)
    if hint:
        described.append(f"laterality: not stated; the field of view lies on the patient's {hint} (a {hint} knee?)")
    return series, None, None, described


def _print_table(biomarkers: BiomarkerSet) -> None:
    table = Table(title=f"{biomarkers.laterality} knee (laterality from {biomarkers.laterality_source})")
    for column in ("region", "biomarker", "value", "unit"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for biomarker in biomarkers.biomarkers:
        table.add_row(biomarker.region, biomarker.name.value, f"{biomarker.value:g}", biomarker.unit.value)
    Console().print(table)
