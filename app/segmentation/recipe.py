"""What a training run learns from: the sources of :mod:`app.segmentation.data`, gathered in parallel.

``TrainingData`` is recorded in the model card, so anyone can see (and rebuild) what a model saw.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from app.segmentation.data import HELD_OUT_SEED, SliceSet, from_case_folder, phantom_slices, synthesised_slices

#: Validation phantoms (early stopping) start here: apart from training seeds and the held-out ones.
VALIDATION_SEED = 500


class TrainingData(BaseModel):
    """The sources of one training run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    phantoms: int = Field(default=28, ge=0, le=HELD_OUT_SEED, description="seeds 0..N-1, random protocols")
    validation_phantoms: int = Field(default=3, ge=1, le=100)
    synthesised_from: list[str] = Field(default_factory=list, description="real label maps given MR-like contrast")
    synthesised_per_map: int = Field(default=6, ge=0)
    label_map: str | None = Field(default=None, description="mapping of the synthesis label maps (e.g. pymskt)")
    case_folders: list[str] = Field(default_factory=list, description="labelled exams (DICOM or NIfTI + labels)")
    image_size: int = 256


def _phantom(args: tuple[int, int]) -> SliceSet:
    seed, size = args
    return phantom_slices(seed, size)


def cached(data: TrainingData, cache: Path | None, workers: int = 2) -> tuple[SliceSet, SliceSet]:
    """:func:`build`, reusing ``cache`` (a folder) when it was built from exactly the same description."""
    if cache is None:
        return build(data, workers)
    description = cache / "data.json"
    if description.is_file() and TrainingData.model_validate_json(description.read_text()) == data:
        return SliceSet.load(cache / "train.npz"), SliceSet.load(cache / "val.npz")
    training, validation = build(data, workers)
    cache.mkdir(parents=True, exist_ok=True)
    training.save(cache / "train.npz")
    validation.save(cache / "val.npz")
    description.write_text(data.model_dump_json(indent=2) + "\n")
    return training, validation


def build(data: TrainingData, workers: int = 2) -> tuple[SliceSet, SliceSet]:
    """(training, validation) slices for ``data``; phantoms are generated in ``workers`` processes."""
    from app.measurement.io import label_mapping, read_label_map, translate

    size = data.image_size
    seeds = [(seed, size) for seed in range(data.phantoms)]
    validation_seeds = [(VALIDATION_SEED + i, size) for i in range(data.validation_phantoms)]
    with ProcessPoolExecutor(max(1, workers)) as pool:
        training = list(pool.map(_phantom, seeds))
        validation = list(pool.map(_phantom, validation_seeds))
    mapping = label_mapping(data.label_map)
    for index, path in enumerate(data.synthesised_from):
        labels = translate(read_label_map(Path(path)), mapping)
        training += synthesised_slices(labels, data.synthesised_per_map, seed=index, size=size)
    training += [from_case_folder(Path(folder), size) for folder in data.case_folders]
    return SliceSet.concatenate(training), SliceSet.concatenate(validation)
