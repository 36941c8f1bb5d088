"""Files: label maps read from NIfTI and NRRD (translated into the msk-cds convention), maps written.

This is the only module of the measurement package that touches files; the measurement functions
themselves take :class:`~schemas.volume.Volume` objects. Geometry always comes from the file's own
header: the NIfTI qform/sform (RAS) or the NRRD space directions and origin (converted from LPS when
the file says so).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.measurement.geometry import bounding_box, crop_affine
from app.measurement.knee import KneeMeasurement
from app.measurement.maps import render_relaxation_map, render_thickness_map, thickness_maps
from schemas.labels import EXTERNAL_LABEL_MAPS, Label, parse_label_mapping
from schemas.volume import LPS_TO_RAS, EchoSeries, Volume

NIFTI_SUFFIXES = (".nii", ".nii.gz")
NRRD_SUFFIXES = (".nrrd", ".nhdr")

#: NRRD ``space`` values and the matrix taking that space to RAS.
_NRRD_SPACES: dict[str, NDArray[np.float64]] = {
    "right-anterior-superior": np.eye(4),
    "ras": np.eye(4),
    "left-posterior-superior": LPS_TO_RAS,
    "lps": LPS_TO_RAS,
    "left-anterior-superior": np.diag([-1.0, 1.0, 1.0, 1.0]),
    "las": np.diag([-1.0, 1.0, 1.0, 1.0]),
}


class LabelMapError(ValueError):
    """A label map file that cannot be read or translated; the message names the file and the fix."""


def read_label_map(path: Path | str) -> Volume:
    """The label map at ``path`` (NIfTI or NRRD) as an integer :class:`Volume` with a RAS affine."""
    path = Path(path)
    if not path.is_file():
        raise LabelMapError(f"label map {path} does not exist")
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        array, affine = _read_nifti(path)
    elif name.endswith(NRRD_SUFFIXES):
        array, affine = _read_nrrd(path)
    else:
        raise LabelMapError(f"label map {path}: unsupported file type; use NIfTI (.nii, .nii.gz) or NRRD (.nrrd)")
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise LabelMapError(f"label map {path} has shape {array.shape}; a label map is a 3D array")
    if not np.issubdtype(array.dtype, np.integer):
        rounded = np.rint(array)
        if not np.array_equal(rounded, array):
            raise LabelMapError(f"label map {path} holds non-integer values; is it an image rather than labels?")
        array = rounded
    return Volume(np.ascontiguousarray(array.astype(np.int16)), affine)


def _read_nifti(path: Path) -> tuple[NDArray, NDArray[np.float64]]:
    import nibabel

    try:
        image: Any = nibabel.load(path)  # a NIfTI-1 or NIfTI-2 image: both have dataobj and affine
        return np.asanyarray(image.dataobj), np.asarray(image.affine, dtype=np.float64)
    except Exception as error:  # nibabel raises several unrelated types for broken files
        raise LabelMapError(f"label map {path} is not a readable NIfTI file: {error}") from error


def _read_nrrd(path: Path) -> tuple[NDArray, NDArray[np.float64]]:
    import nrrd

    try:
        array, header = nrrd.read(str(path))  # index order "F": array[i, j, k] follows space directions
    except Exception as error:  # pynrrd raises NRRDError and ValueError
        raise LabelMapError(f"label map {path} is not a readable NRRD file: {error}") from error
    space = str(header.get("space", "")).lower()
    if space not in _NRRD_SPACES:
        raise LabelMapError(
            f"label map {path}: NRRD space {header.get('space')!r} is not supported; "
            f"expected one of {sorted(_NRRD_SPACES)}"
        )
    directions = np.asarray(header.get("space directions"), dtype=np.float64)
    if directions.shape != (3, 3) or not np.all(np.isfinite(directions)):
        raise LabelMapError(f"label map {path}: NRRD 'space directions' must give three 3D vectors")
    affine = np.eye(4)
    affine[:3, :3] = directions.T  # each row of 'space directions' is one array axis
    affine[:3, 3] = np.asarray(header.get("space origin", np.zeros(3)), dtype=np.float64)
    return array, _NRRD_SPACES[space] @ affine


def write_volume(volume: Volume, path: Path) -> None:
    """Write ``volume`` as NIfTI (its affine is RAS already, as NIfTI expects)."""
    import nibabel

    nibabel.save(nibabel.Nifti1Image(volume.array, volume.affine), path)


def _cropped_to_values(volume: Volume) -> Volume:
    """The part of ``volume`` that holds values (not NaN), with the affine of that sub-grid.

    A relaxation map is NaN outside the cartilage; cropping keeps the file small (a 512 x 512 x 80
    series would be 80 MB) while the affine keeps it aligned with the images in any viewer.
    """
    box = bounding_box(np.isfinite(volume.array), (1, 1, 1))
    if box is None:
        return volume
    return Volume(np.ascontiguousarray(volume.array[box.slices]), crop_affine(volume.affine, box))


def save_maps(measurement: KneeMeasurement, series: dict[str, EchoSeries], directory: Path) -> list[Path]:
    """Write thickness maps (PNG + ``.npy``) and relaxation maps (NIfTI + PNG) into ``directory``.

    ``series`` holds the echo series the relaxation maps were fitted from (``"t2"``, ``"t1rho"``), for the
    anatomical background of their pictures. Returns the files written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    laterality = measurement.biomarkers.laterality
    written: list[Path] = []
    for thickness_map in thickness_maps(measurement):
        stem = directory / f"thickness_{thickness_map.name}"
        np.save(stem.with_suffix(".npy"), thickness_map.values_mm)
        render_thickness_map(thickness_map, laterality, stem.with_suffix(".png"))
        written += [stem.with_suffix(".npy"), stem.with_suffix(".png")]
    quantities = {"t2": "T2", "t1rho": "T1rho"}
    for key, relaxation in measurement.relaxation.items():
        nifti = directory / f"{key}_map.nii.gz"
        write_volume(_cropped_to_values(relaxation.map_ms), nifti)
        picture = directory / f"{key}_map.png"
        render_relaxation_map(relaxation, series[key], quantities[key], picture)
        written += [nifti, picture]
    return written


def label_mapping(spec: str | Path | None) -> dict[int, Label] | None:
    """Resolve ``--label-map``: a built-in name (e.g. ``pymskt``), a JSON file ``{"source": target}``, or None."""
    if spec is None:
        return None
    if str(spec) in EXTERNAL_LABEL_MAPS:
        return EXTERNAL_LABEL_MAPS[str(spec)]
    path = Path(spec)
    if not path.is_file():
        raise LabelMapError(
            f"label mapping {spec!r} is neither a built-in mapping ({', '.join(sorted(EXTERNAL_LABEL_MAPS))}) "
            "nor an existing JSON file"
        )
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise LabelMapError(f"label mapping {path} is not valid JSON: {error}") from error
    if not isinstance(raw, dict):
        raise LabelMapError(f'label mapping {path} must be a JSON object {{"source value": target}}')
    try:
        return parse_label_mapping(raw)
    except ValueError as error:
        raise LabelMapError(f"label mapping {path}: {error}") from error


def translate(labels: Volume, mapping: dict[int, Label] | None) -> Volume:
    """``labels`` with every value replaced through ``mapping`` (unlisted values become background)."""
    if mapping is None:
        return labels
    lookup_size = int(max(labels.array.max(initial=0), max(mapping, default=0))) + 1
    if labels.array.min(initial=0) < 0:
        raise LabelMapError("the label map holds negative values, which no label mapping can translate")
    lookup = np.zeros(lookup_size, dtype=np.int16)
    for source, target in mapping.items():
        if source >= 0:
            lookup[source] = int(target)
    return labels.with_array(lookup[labels.array])
