"""``mskcds train-seg`` and ``mskcds export-onnx``: training a segmentation model folder, exporting it."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from app.cli._root import cli

#: Part of a ``--minutes`` budget kept for the card and the ONNX export after training.
EXPORT_MINUTES = 0.5


class Architecture(StrEnum):
    tiny = "tiny"
    vit_b = "vit_b"


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


@cli.command("train-seg")
def train_seg(
    out: Annotated[Path, typer.Option("--out", help="Model folder to write (weights, ONNX, model.json).")],
    name: Annotated[str, typer.Option(help="Model name (the folder name a registry looks up).")] = "knee-sam-tiny",
    version: Annotated[str, typer.Option(help="Model version (keys stored results).")] = "0.1.0",
    architecture: Annotated[
        Architecture, typer.Option(help="tiny: train from scratch; vit_b: a SAM layout")
    ] = Architecture.tiny,
    from_checkpoint: Annotated[
        Path | None, typer.Option(help="SAM / MedSAM weights to fine-tune (.pth weights-only, or .safetensors).")
    ] = None,
    detector_from: Annotated[
        Path | None, typer.Option(help="AutoLabel detector weights (.safetensors) to start from instead of scratch.")
    ] = None,
    freeze_detector: Annotated[
        bool, typer.Option(help="Train the SAM only; the detector stays as loaded (with --detector-from).")
    ] = False,
    phantoms: Annotated[int, typer.Option(help="Training phantoms (seeds S..S+N-1, randomised protocols).")] = 28,
    first_seed: Annotated[int, typer.Option(help="S, the first phantom seed (a fine-tune can use new knees).")] = 0,
    grade: Annotated[
        list[int],
        typer.Option("--grade", help="Grade the phantoms draw from (repeatable; repeats weight). Default 0-4."),
    ] = [],  # noqa: B006
    validation_phantoms: Annotated[int, typer.Option(help="Validation phantoms for early stopping.")] = 3,
    synthesise_from: Annotated[
        list[Path], typer.Option("--synthesise-from", help="Real label map to give MR-like contrast (repeatable).")
    ] = [],  # noqa: B006 - typer needs a literal default
    synthesised_per_map: Annotated[int, typer.Option(help="Synthetic images per label map.")] = 6,
    label_map: Annotated[str | None, typer.Option(help="Mapping of those label maps' values (e.g. pymskt).")] = None,
    data: Annotated[
        list[Path], typer.Option("--data", help="Folder of labelled exams: one sub-folder per exam (repeatable).")
    ] = [],  # noqa: B006
    joint_pass_pixel_mm: Annotated[
        float | None,
        typer.Option(help="Also train on joint-region windows at this model pixel (mm): the chain's second pass."),
    ] = None,
    steps: Annotated[int, typer.Option(help="Optimisation steps (early stopping may end sooner).")] = 3400,
    batch_size: Annotated[int, typer.Option(help="Slices per step.")] = 6,
    learning_rate: Annotated[float, typer.Option(help="AdamW learning rate of the SAM.")] = 1e-3,
    validate_every: Annotated[int, typer.Option(help="Steps between validations (and checkpoints).")] = 400,
    patience: Annotated[int, typer.Option(help="Validations without improvement before stopping.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed: the same seed and data give the same model.")] = 0,
    minutes: Annotated[
        float | None,
        typer.Option(help="Wall-clock budget of the whole command (e.g. a lent GPU): training is shortened to fit."),
    ] = None,
    device: Annotated[str, typer.Option(help="Torch device to train on: cpu, cuda, cuda:1 ...")] = "cpu",
    workers: Annotated[int, typer.Option(help="Processes generating phantoms.")] = 2,
    cache: Annotated[Path | None, typer.Option(help="Folder caching the prepared slices between runs.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/training/checkpoint.pt.")] = False,
) -> None:
    """Train a SAM-family segmenter and its AutoLabel detector (the source paper's recipe, see docs/segmentation.md)."""
    started = time.monotonic()
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from app.segmentation.architecture import SamConfig
    from app.segmentation.recipe import TrainingData, cached
    from app.segmentation.training import TrainConfig, TrainState
    from app.segmentation.training_run import train_model

    for option, path in (("--from-checkpoint", from_checkpoint), ("--detector-from", detector_from)):
        if path is not None and not path.is_file():
            raise _fail(f"{option} {path} does not exist")
    if freeze_detector and detector_from is None:
        raise _fail("--freeze-detector keeps the detector as loaded: give its weights with --detector-from")
    sam_config = SamConfig.tiny() if architecture is Architecture.tiny else SamConfig.vit_b()
    try:
        description = TrainingData(
            phantoms=phantoms,
            first_seed=first_seed,
            grades=grade,
            validation_phantoms=validation_phantoms,
            synthesised_from=[str(p) for p in synthesise_from],
            synthesised_per_map=synthesised_per_map,
            label_map=label_map,
            case_folders=[str(p) for p in data],
            image_size=sam_config.image_size,
            joint_pass_pixel_mm=joint_pass_pixel_mm,
        )
    except ValueError as exc:  # pydantic says which seed range or grade is wrong
        raise _fail(str(exc)) from exc
    typer.echo("preparing training slices ...")
    try:
        slices = cached(description, cache, workers)
    except (ValueError, OSError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{len(slices[0])} training and {len(slices[1])} validation slices")
    training_minutes = None
    if minutes is not None:
        training_minutes = minutes - (time.monotonic() - started) / 60 - EXPORT_MINUTES
        if training_minutes <= 0:
            raise _fail(f"preparing the slices used the {minutes} minute budget: nothing is left to train")
    config = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        validate_every=validate_every,
        patience=patience,
        seed=seed,
        freeze_prompt_encoder=True,
        train_detector=not freeze_detector,
        minutes=training_minutes,
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[loss]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as progress:
        task = progress.add_task("training", total=steps, loss="")

        def on_step(state: TrainState, losses: dict[str, float]) -> None:
            progress.update(
                task,
                completed=state.step,
                total=state.total_steps,  # a time budget shortens the run once its pace is known
                loss=" ".join(f"{name.removesuffix('_loss')} {value:.3f}" for name, value in losses.items()),
            )

        card = train_model(
            out,
            name,
            version,
            sam_config,
            config,
            slices,
            description,
            from_checkpoint,
            resume,
            on_step,
            device,
            detector_from,
        )
    typer.echo(f"model {card.name} {card.version} written to {out}: {card.metrics}")


@cli.command("export-onnx")
def export_onnx_command(
    model: Annotated[str, typer.Argument(help="Model name (looked up in MSKCDS_MODEL_DIR, then models/) or folder.")],
) -> None:
    """Export a model folder's encoder, decoder and detector to ONNX and record them in its card."""
    from app.segmentation.card import ModelCardError, find_model
    from app.segmentation.export import export_onnx
    from app.settings import get_settings

    try:
        folder = Path(model) if Path(model).is_dir() else find_model(model, get_settings())
        card = export_onnx(folder)
    except ModelCardError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"exported {', '.join(sorted(r for r in card.files if r.endswith('onnx')))} to {folder}")
