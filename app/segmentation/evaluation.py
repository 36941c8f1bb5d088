"""Held-out evaluation of the segmentation chain: overlap, and what it does to the biomarkers.

Dice says how well voxels overlap; a clinician cares whether the cartilage thickness read from the
model's labels is the thickness of the knee. Every case therefore runs the whole chain (image ->
:class:`~app.segmentation.chain.Segmenter` -> :func:`~app.measurement.measure_knee`), measures its reference
label map with the same measurement layer, and compares three ways:

- labels: Dice and HD95 per knee label (1-9) against the reference (:mod:`app.segmentation.metrics`);
- biomarkers against the reference labels' biomarkers (the model's own error, measurement error cancels);
- biomarkers against the phantom's exact truth (``truth.json``), where there is one: the error a user of
  the whole pipeline sees.

Cases are the held-out phantoms (seeds from :data:`~app.segmentation.data.HELD_OUT_SEED`, the published
``dess`` protocol, never drawn in training; grade ``i % 5``, right and left knees alternating) or folders as
``mskcds phantom`` writes them (DICOM series + ``labels.nii.gz``, optional ``truth.json``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import ValidationError

from app.imaging.phantom import PhantomTruth
from app.segmentation.metrics import LabelScore, label_scores, where_predicted
from schemas.biomarkers import BiomarkerName, BiomarkerSet, Laterality, LateralitySource
from schemas.labels import CARTILAGE, MENISCI
from schemas.volume import Volume

if TYPE_CHECKING:
    from app.segmentation.chain import Segmenter

#: Plates whose mean thickness is compared (Eckstein names; F = all femoral cartilage).
THICKNESS_REGIONS: tuple[str, ...] = ("MT", "LT", "cMF", "cLF", "TrF", "P", "F")
#: Volumes compared: biomarker, region, and the label name ``truth.json`` keys its volume with.
VOLUMES: tuple[tuple[BiomarkerName, str, str], ...] = (
    (BiomarkerName.CARTILAGE_VOLUME, "F", "femoral_cartilage"),
    (BiomarkerName.CARTILAGE_VOLUME, "MT", "medial_tibial_cartilage"),
    (BiomarkerName.CARTILAGE_VOLUME, "LT", "lateral_tibial_cartilage"),
    (BiomarkerName.CARTILAGE_VOLUME, "P", "patellar_cartilage"),
    (BiomarkerName.BONE_VOLUME, "femur", "femur"),
    (BiomarkerName.BONE_VOLUME, "tibia", "tibia"),
    (BiomarkerName.BONE_VOLUME, "patella", "patella"),
    (BiomarkerName.MENISCUS_VOLUME, "MM", "medial_meniscus"),
    (BiomarkerName.MENISCUS_VOLUME, "LM", "lateral_meniscus"),
)
THICKNESS = BiomarkerName.CARTILAGE_THICKNESS_MEAN


class EvaluationError(ValueError):
    """Cases that cannot be evaluated (no labels, no laterality, unreadable series); says which and why."""


@dataclass(frozen=True)
class Case:
    """One knee to evaluate: the morphology image (first echo), its reference labels on the same grid."""

    name: str
    image: Volume
    reference: Volume
    laterality: Laterality
    laterality_source: LateralitySource
    truth: PhantomTruth | None


@dataclass(frozen=True)
class CaseResult:
    """What one case gave; biomarker dicts are keyed ``name:region`` and hold only the compared ones."""

    name: str
    laterality: Laterality
    grade: int | None
    scores: list[LabelScore]
    predicted: dict[str, float]
    reference: dict[str, float]
    truth: dict[str, float]
    timings_s: dict[str, float]
    confidence: dict[str, float]
    failure: str | None = None  # why the chain gave no labels (scored as an empty prediction)
    notes: list[str] = field(default_factory=list)  # what the measurement could not measure on the prediction
    #: per predicted cartilage plate / meniscus: its voxels counted by the reference label under them
    where: dict[str, dict[str, int]] = field(default_factory=dict)


#: A case is loaded (or generated) only when its turn comes, so the progress bar shows real work.
CaseLoader = tuple[str, Callable[[], Case]]


def held_out_cases(count: int, protocol: str, seed_start: int) -> list[CaseLoader]:
    """Held-out phantoms: seed ``seed_start + i``, grade ``i % 5``, right / left alternating."""
    from app.imaging.phantom import generate_phantom

    def load(seed: int, side: Laterality, grade: int) -> Case:
        phantom = generate_phantom(seed, side, grade, [protocol])
        image = phantom.images[phantom.truth.protocols[0].name].volume(0)
        # The study's DICOM states this side (Laterality), as a loaded case would report it.
        return Case(f"seed{seed}-{side}-grade{grade}", image, phantom.labels, side, "dicom", phantom.truth)

    loaders: list[CaseLoader] = []
    for i in range(count):
        side: Laterality = "right" if i % 2 == 0 else "left"
        seed, grade = seed_start + i, i % 5
        loaders.append((f"seed{seed}-{side}-grade{grade}", lambda s=seed, d=side, g=grade: load(s, d, g)))
    return loaders


def folder_cases(root: Path) -> list[CaseLoader]:
    """``root`` itself when it holds ``labels.nii.gz``, else each sub-folder that does (sorted)."""
    if not root.is_dir():
        raise EvaluationError(f"--cases {root}: not a folder")
    folders = [root] if (root / "labels.nii.gz").is_file() else sorted(p.parent for p in root.glob("*/labels.nii.gz"))
    if not folders:
        raise EvaluationError(f"--cases {root}: no labels.nii.gz in it or in its sub-folders")
    return [(folder.name, lambda folder=folder: load_case(folder)) for folder in folders]


def load_case(folder: Path) -> Case:
    """A case folder: morphology series chosen as the analysis chooses it, labels resampled onto it."""
    from app.imaging import load_acquisitions, select_series
    from app.imaging.errors import LoaderError
    from app.measurement.geometry import resample_nearest
    from app.measurement.io import LabelMapError, read_label_map

    try:
        morphology = select_series(load_acquisitions(folder)).morphology
        reference = read_label_map(folder / "labels.nii.gz")
    except (LoaderError, LabelMapError) as error:
        raise EvaluationError(f"case {folder}: {error}") from None
    image = morphology.volume(0)
    if reference.shape != image.shape or not np.allclose(reference.affine, image.affine, atol=1e-3):
        reference = resample_nearest(reference, image.affine, image.shape)
    truth_path = folder / "truth.json"
    try:
        truth = PhantomTruth.model_validate_json(truth_path.read_text()) if truth_path.is_file() else None
    except ValidationError as error:
        raise EvaluationError(f"case {folder}: truth.json is not a phantom truth: {error}") from None
    if morphology.laterality is None or morphology.laterality_source not in ("dicom", "series_description"):
        raise EvaluationError(f"case {folder}: the morphology series does not state the knee's side")
    return Case(folder.name, image, reference, morphology.laterality, morphology.laterality_source, truth)


def compared(biomarkers: BiomarkerSet) -> dict[str, float]:
    """The compared biomarkers present in a measurement, ``name:region`` -> value."""
    keys = [(THICKNESS, region) for region in THICKNESS_REGIONS] + [(name, region) for name, region, _ in VOLUMES]
    values = {f"{name.value}:{region}": biomarkers.get(name, region) for name, region in keys}
    return {key: value for key, value in values.items() if value is not None}


def truth_values(truth: PhantomTruth) -> dict[str, float]:
    """``truth.json`` in the same keys: plate thickness (``thickness_mm``) and label volumes (``volume_mm3``)."""
    out = {f"{THICKNESS.value}:{r}": truth.thickness_mm[r] for r in THICKNESS_REGIONS if r in truth.thickness_mm}
    for name, region, label in VOLUMES:
        if label in truth.volume_mm3:
            out[f"{name.value}:{region}"] = truth.volume_mm3[label]
    return out


def _measure(labels: Volume, case: Case, notes: list[str]) -> dict[str, float]:
    from app.measurement import measure_knee

    try:
        result = measure_knee(labels, case.laterality, case.laterality_source)
    except ValueError as error:
        notes.append(f"not measurable: {error}")
        return {}
    notes.extend(result.notes)
    return compared(result.biomarkers)


def evaluate_case(case: Case, segmenter: Segmenter) -> tuple[CaseResult, Volume]:
    """Segment, measure and score one case; returns the result and the predicted labels (for overlays)."""
    from app.segmentation.chain import SegmentationError

    started = time.perf_counter()
    failure: str | None = None
    try:
        segmentation = segmenter.segment(case.image, case.laterality)
        predicted_labels, timings, confidence = (
            segmentation.labels,
            dict(segmentation.timings_s),
            segmentation.confidence,
        )
    except SegmentationError as error:
        failure = str(error)
        predicted_labels = case.image.with_array(np.zeros(case.image.shape, dtype=np.uint8))
        timings, confidence = {}, {}
    timings["chain"] = time.perf_counter() - started
    notes: list[str] = []
    began = time.perf_counter()
    predicted = _measure(predicted_labels, case, notes) if failure is None else {}
    reference = _measure(case.reference, case, [])
    timings["measurement"] = time.perf_counter() - began
    result = CaseResult(
        name=case.name,
        laterality=case.laterality,
        grade=case.truth.grade if case.truth else None,
        scores=label_scores(predicted_labels, case.reference),
        predicted=predicted,
        reference=reference,
        truth=truth_values(case.truth) if case.truth else {},
        timings_s=timings,
        confidence=confidence,
        failure=failure,
        notes=notes,
        where=where_predicted(predicted_labels, case.reference, sorted(CARTILAGE | MENISCI)),
    )
    return result, predicted_labels


def pairs(results: list[CaseResult], key: str, versus: str) -> Iterator[tuple[str, float, float]]:
    """(case, predicted, comparison) for one biomarker key; ``versus`` is ``reference`` or ``truth``."""
    for result in results:
        other = getattr(result, versus)
        if key in result.predicted and key in other:
            yield result.name, result.predicted[key], other[key]
