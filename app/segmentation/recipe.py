"""What a training run learns from: the sources of :mod:`app.segmentation.data`, gathered in parallel.

``TrainingData`` is recorded in the model card, so anyone can see (and rebuild) what a model saw.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.segmentation.data import HELD_OUT_SEED, SliceSet, from_case_folder, phantom_slices, synthesised_slices

#: Validation phantoms (early stopping) start here: apart from training seeds and the held-out ones.
VALIDATION_SEED = 500


class TrainingData(BaseModel):
    """The sources of one training run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    phantoms: int = Field(default=28, ge=0, le=HELD_OUT_SEED, description="seeds S..S+N-1, random protocols")
    first_seed: int = Field(default=0, ge=0, description="S: a fine-tune can draw knees its base model never saw")
    grades: list[int] = Field(
        default_factory=list, description="grades the phantoms are drawn from (repeats weight); empty: 0-4 alike"
    )
    validation_phantoms: int = Field(default=3, ge=1, le=100)
    synthesised_from: list[str] = Field(default_factory=list, description="real label maps given MR-like contrast")
    synthesised_per_map: int = Field(default=6, ge=0)
    label_map: str | None = Field(default=None, description="mapping of the synthesis label maps (e.g. pymskt)")
    case_folders: list[str] = Field(default_factory=list, description="labelled exams (DICOM or NIfTI + labels)")
    image_size: int = 256
    joint_pass_pixel_mm: float | None = Field(
        default=None,
        gt=0,
        description="also learn the chain's joint-region windows at this model pixel (app.segmentation.joint); "
        "the card then asks the chain for that second pass",
    )

    @property
    def seeds(self) -> range:
        """The training phantoms' seeds."""
        return range(self.first_seed, self.first_seed + self.phantoms)

    @model_validator(mode="after")
    def _seeds_apart(self) -> TrainingData:
        """Training seeds stay clear of the validation phantoms and of the held-out evaluation."""
        seeds = self.seeds
        validation = range(VALIDATION_SEED, VALIDATION_SEED + self.validation_phantoms)
        overlaps = seeds.start < validation.stop and validation.start < seeds.stop
        if self.phantoms and (seeds.stop > HELD_OUT_SEED or overlaps):
            raise ValueError(
                f"training seeds {seeds.start}-{seeds.stop - 1} overlap the validation seeds "
                f"{validation.start}-{validation.stop - 1} or the held-out seeds from {HELD_OUT_SEED}"
            )
        if any(not 0 <= grade <= 4 for grade in self.grades):
            raise ValueError(f"grades must be 0-4, got {self.grades}")
        return self


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


@contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A process pool that, when left by an error or Ctrl-C, cancels the jobs not yet started: a plain
    ``with ProcessPoolExecutor()`` would first run every queued phantom, minutes of work nobody wants.
    Processes are spawned, not forked: a fork of a process whose torch / OpenMP threads run can deadlock."""
    pool = ProcessPoolExecutor(max(1, workers), mp_context=multiprocessing.get_context("spawn"))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def build(data: TrainingData, workers: int = 2) -> tuple[SliceSet, SliceSet]:
    """(training, validation) slices for ``data``; phantoms and synthesised images are made in ``workers``
    processes (each from its own seed, so the result does not depend on how many)."""
    from app.measurement.io import label_mapping, read_label_map, translate

    size = data.image_size
    mapping = label_mapping(data.label_map)
    maps = [translate(read_label_map(Path(path)), mapping) for path in data.synthesised_from]
    joint = data.joint_pass_pixel_mm
    with worker_pool(workers) as pool:
        training = [pool.submit(phantom_slices, seed, size, None, data.grades, joint) for seed in data.seeds]
        training += [
            pool.submit(synthesised_slices, labels, map_index, index, size, joint)
            for map_index, labels in enumerate(maps)
            for index in range(data.synthesised_per_map)
        ]
        validation = [
            pool.submit(phantom_slices, VALIDATION_SEED + i, size, None, None, joint)
            for i in range(data.validation_phantoms)
        ]
        training_parts = [job.result() for job in training]
        validation_parts = [job.result() for job in validation]
    training_parts += [from_case_folder(Path(folder), size, joint) for folder in data.case_folders]
    return SliceSet.concatenate(training_parts), SliceSet.concatenate(validation_parts)
