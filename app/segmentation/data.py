"""Training slices: phantoms under domain randomisation, images synthesised from real label maps, folders.

Every source ends as a :class:`SliceSet`: 2D slices in the model frame (:mod:`app.segmentation.slices`)
with a class map (0 background, ``PromptClass + 1`` elsewhere). Slices without any knee tissue are left
out: the detector sees empty space around the knee in every slice it learns from anyway.

* **Phantoms** (:func:`random_protocol`): the project's own knees with exact labels, each drawn with a
  randomised DESS-like protocol (matrix, field of view, slice spacing, noise, coil bias, blur, fat
  suppression, echo times), grade, side and seed. The held-out evaluation uses the published ``dess``
  protocol, whose settings are never drawn here (matrix 384 is excluded), and seeds from 9000 up.
* **Synthesised** (:func:`synthesise`): a real knee label map given MR-like contrast per label, as
  SynthSeg does (random mean and spread per tissue, blur, bias field, noise), so the model sees real
  anatomy it could not learn from phantoms alone.
* **Folders** (:func:`from_case_folder`): a site's own labelled exams, DICOM or NIfTI plus labels.nii.gz.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from app.imaging.phantom import PROTOCOLS, generate_phantom
from app.imaging.phantom.protocols import ProtocolSpec
from app.segmentation.classes import CLASS_LABELS
from app.segmentation.joint import joint_window
from app.segmentation.slices import normalise_volume, to_model
from schemas.volume import Volume

#: First seed of the held-out evaluation phantoms; training and validation draw seeds below it.
HELD_OUT_SEED = 9000
#: Matrices the randomised protocol may draw: never the held-out protocol's 384.
TRAINING_MATRICES = (224, 256, 288, 320, 448)
#: Joint-region training windows are shifted up to this far (mm) from where the chain would put them.
JOINT_SHIFT_MM = 8.0


@dataclass(frozen=True)
class SliceSet:
    """Slices in the model frame: ``images`` (N, S, S) float16 in [0, 1], ``classes`` (N, S, S) uint8."""

    images: NDArray[np.float16]
    classes: NDArray[np.uint8]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def save(self, path: Path) -> None:
        np.savez_compressed(path, images=self.images, classes=self.classes)

    @classmethod
    def load(cls, path: Path) -> SliceSet:
        with np.load(path, allow_pickle=False) as data:
            return cls(data["images"], data["classes"])

    @classmethod
    def concatenate(cls, parts: Iterable[SliceSet]) -> SliceSet:
        parts = list(parts)
        if not parts:
            raise ValueError("no training slices: every source was empty")
        return cls(np.concatenate([p.images for p in parts]), np.concatenate([p.classes for p in parts]))


def class_map(labels: NDArray) -> NDArray[np.uint8]:
    """Project labels -> prompt-class map (0 background, class + 1), same shape."""
    lookup = np.zeros(max(int(labels.max()) + 1, 32), dtype=np.uint8)
    for cls, members in CLASS_LABELS.items():
        for label in members:
            lookup[int(label)] = int(cls) + 1
    return lookup[np.clip(labels, 0, lookup.size - 1).astype(np.intp)]


def training_slices(
    image: NDArray,
    labels: NDArray,
    size: int,
    seed: list[int],
    spacing_mm: tuple[float, float],
    joint_pixel_mm: float | None = None,
) -> SliceSet:
    """Slices (axis 0) of one image volume and its project label map that hold knee tissue, plus, with
    ``joint_pixel_mm``, the joint pass's windows (:mod:`app.segmentation.joint`) at that model pixel give
    or take 15 %, shifted up to :data:`JOINT_SHIFT_MM` (``spacing_mm``: the slices' in-plane pixel): the
    model learns the scale and the off-centre windows the chain shows it. Windows are cut from the volume
    normalised whole, as the chain cuts them; ``seed`` draws their scale and shift."""
    if image.shape != labels.shape:
        raise ValueError(f"image {image.shape} and labels {labels.shape} are not on one grid")
    normalised, classes = normalise_volume(image), class_map(labels)
    whole = model_slices(normalised, classes, size)
    if joint_pixel_mm is None:
        return whole
    rng = np.random.default_rng([*seed, 13])
    scale = rng.uniform(0.85, 1.15)
    window = joint_window(classes, spacing_mm, size, joint_pixel_mm * scale, most_of_slice=1.0)
    if window is None:  # the window would be the whole slice: nothing new to learn
        return whole
    shift = np.round(rng.uniform(-JOINT_SHIFT_MM, JOINT_SHIFT_MM, 2) / np.asarray(spacing_mm)).astype(int)
    window = window.shifted((int(shift[0]), int(shift[1])), classes.shape[1:])
    cut = (slice(None), window.rows, window.cols)
    return SliceSet.concatenate([whole, model_slices(normalised[cut], classes[cut], size)])


def model_slices(normalised: NDArray[np.float32], classes: NDArray[np.uint8], size: int) -> SliceSet:
    """The slices that hold knee tissue, image and class map, in the model frame."""
    keep = np.flatnonzero(classes.reshape(len(classes), -1).any(axis=1))
    if keep.size == 0:
        return SliceSet(np.zeros((0, size, size), np.float16), np.zeros((0, size, size), np.uint8))
    images = to_model(normalised[keep], size).numpy().astype(np.float16)
    maps = to_model(classes[keep], size, labels=True).numpy().astype(np.uint8)
    return SliceSet(images, maps)


def random_protocol(rng: np.random.Generator) -> ProtocolSpec:
    """A DESS-like sagittal protocol with randomised geometry and image quality (never the held-out one)."""
    matrix = int(rng.choice(TRAINING_MATRICES))
    fov = rng.uniform(120.0, 170.0)
    spacing = rng.uniform(0.6, 1.6)
    return PROTOCOLS["dess"].model_copy(
        update={
            "name": "dess-random",
            "matrix": matrix,
            "pixel_mm": fov / matrix,
            "slices": int(110.0 / spacing),
            "slice_thickness_mm": spacing,
            "slice_spacing_mm": spacing,
            "echo_times_ms": (rng.uniform(3.0, 7.0), rng.uniform(18.0, 40.0)),
            "noise": rng.uniform(0.005, 0.07),
            "bias": rng.uniform(0.0, 0.5),
            "blur": rng.uniform(0.2, 1.3),
            "fat_suppression": rng.uniform(0.0, 0.95),
        }
    )


def phantom_slices(
    seed: int,
    size: int,
    protocol: ProtocolSpec | None = None,
    grades: Sequence[int] | None = None,
    joint_pixel_mm: float | None = None,
) -> SliceSet:
    """One phantom knee (random side, grade and, unless given, protocol) as training slices.

    ``grades`` narrows the grade to a choice among those given (repeat a grade to weight it): a fine-tune
    can dwell on the thin and denuded cartilage of advanced osteoarthritis. Without it, 0-4 alike.
    ``joint_pixel_mm`` adds the joint pass's windows (:func:`training_slices`).
    """
    if seed >= HELD_OUT_SEED and protocol is None:
        raise ValueError(f"seeds from {HELD_OUT_SEED} are the held-out evaluation phantoms")
    rng = np.random.default_rng([seed, 7])
    spec = protocol or random_protocol(rng)
    side = "left" if rng.random() < 0.5 else "right"
    grade = int(rng.choice(np.asarray(grades))) if grades else int(rng.integers(0, 5))
    phantom = generate_phantom(seed, side, grade, [spec])
    echoes = phantom.images[spec.name].array
    weight = rng.uniform(0.0, 1.0)  # either DESS echo or a mix: sites show the model different echoes
    image = echoes[0] if protocol is not None else (1 - weight) * echoes[0] + weight * echoes[1]
    return training_slices(image, phantom.labels.array, size, [seed], (spec.pixel_mm, spec.pixel_mm), joint_pixel_mm)


def _display_axes(volume: Volume) -> tuple[int, int, int]:
    """The array axes a sagittal display shows as slices, rows (superior-inferior) and columns."""
    direction = volume.direction
    first = int(np.argmax(np.abs(direction[0])))
    rest = [axis for axis in range(3) if axis != first]
    row = max(rest, key=lambda axis: abs(direction[2, axis]))
    column = next(axis for axis in rest if axis != row)
    return first, row, column


def sagittal_display(volume: Volume) -> NDArray:
    """The array as a sagittal DICOM series shows it: slices left-right, rows top to bottom (superior first)."""
    first, row, column = _display_axes(volume)
    array = np.transpose(volume.array, (first, row, column))
    return np.ascontiguousarray(array[:, ::-1] if volume.direction[2, row] > 0 else array)


def _display_spacing(volume: Volume) -> tuple[float, float]:
    """In-plane pixel spacing (rows, columns) of :func:`sagittal_display`'s slices, mm."""
    _, row, column = _display_axes(volume)
    return (volume.spacing_mm[row], volume.spacing_mm[column])


def synthesise(labels: NDArray, rng: np.random.Generator) -> NDArray[np.float32]:
    """An MR-like image for a label map: random contrast per label, texture, blur, bias field and noise."""
    values = np.unique(labels)
    means = {int(v): rng.uniform(0.0, 1.0) for v in values}
    spreads = {int(v): rng.uniform(0.01, 0.08) for v in values}
    image = np.zeros(labels.shape, np.float32)
    texture = ndimage.gaussian_filter(rng.standard_normal(labels.shape).astype(np.float32), 2.0)
    texture /= texture.std() + 1e-6
    for value in values:
        inside = labels == value
        image[inside] = means[int(value)] + spreads[int(value)] * texture[inside]
    image = ndimage.gaussian_filter(image, rng.uniform(0.3, 1.2, size=3))
    coarse = ndimage.zoom(rng.uniform(-1.0, 1.0, (3, 3, 3)), np.array(labels.shape) / 3.0, order=3)
    image *= np.exp(rng.uniform(0.0, 0.5) * coarse[tuple(slice(0, n) for n in labels.shape)])
    image += rng.uniform(0.005, 0.05) * rng.standard_normal(labels.shape).astype(np.float32)
    return np.abs(image)


def synthesised_slices(
    labels: Volume, seed: int, index: int, size: int, joint_pixel_mm: float | None = None
) -> SliceSet:
    """SynthSeg-style image ``index`` of one real label map (project labels), as training slices
    (``joint_pixel_mm``: with the joint pass's windows, :func:`training_slices`).

    Each image has its own seed, so a run can make them in any order or process.
    """
    array = sagittal_display(labels)
    rng = np.random.default_rng([seed, index, 11])
    return training_slices(synthesise(array, rng), array, size, [seed, index], _display_spacing(labels), joint_pixel_mm)


def from_case_folder(case: Path, size: int, joint_pixel_mm: float | None = None) -> SliceSet:
    """A labelled exam: ``labels.nii.gz`` (project convention) beside DICOM series or ``image.nii.gz``
    (``joint_pixel_mm``: with the joint pass's windows, :func:`training_slices`).

    The morphology series is chosen as the analysis chooses it; labels in another grid are resampled
    (nearest neighbour) onto it through patient coordinates.
    """
    from app.imaging import load_acquisitions, select_series
    from app.measurement.geometry import resample_nearest
    from app.measurement.io import read_label_map

    labels = read_label_map(case / "labels.nii.gz")
    nifti = case / "image.nii.gz"
    if nifti.is_file():
        import nibabel

        loaded = nibabel.load(nifti)
        image = Volume(np.asarray(loaded.dataobj, dtype=np.float32), loaded.affine)
    else:
        image = select_series(load_acquisitions(case)).morphology.volume(0)
    if labels.shape != image.shape or not np.allclose(labels.affine, image.affine, atol=1e-3):
        labels = resample_nearest(labels, image.affine, image.shape)
    spacing = (image.spacing_mm[1], image.spacing_mm[2])
    return training_slices(image.array, labels.array, size, [zlib.crc32(case.name.encode())], spacing, joint_pixel_mm)
