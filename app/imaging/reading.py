"""From a folder, a list of files or in-memory datasets to the MR images worth stacking.

What is set aside, and how loudly:

- files that are not DICOM Part 10 inside a folder (reports, thumbnails, DICOMDIR-less junk): skipped,
  one warning with their count; named explicitly in a file list: refused;
- DICOM objects without pixels or of a non-image SOP class (SR, presentation states, SEG, KOS,
  DICOMDIR), secondary captures, and localizer images (ImageType LOCALIZER): skipped with a warning;
- a DICOM file that cannot be parsed, or an image without (all of) its pixel data, e.g. truncated:
  refused, naming the file;
- images of another modality than MR, and multi-frame (enhanced) images: refused.

Warnings carry counts and SOP class names only, never patient data.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from app.imaging.errors import LoaderError, name_files
from app.log import get_logger

log = get_logger(__name__)

Source = Path | str | Sequence[Path] | Sequence[str] | Sequence[Dataset]


@dataclass(frozen=True)
class Image:
    """One image dataset and where it came from (a path, or ``dataset #i`` for in-memory input)."""

    ds: Dataset
    origin: str


def _read_file(path: Path, explicit: bool) -> Dataset | None:
    try:
        return pydicom.dcmread(path)
    except InvalidDicomError:
        if explicit:
            raise LoaderError(f"{path} is not a DICOM file (no DICM preamble / Part 10 header)") from None
        return None
    except Exception as error:  # pydicom raises many types on damaged files
        raise LoaderError(
            f"cannot read DICOM file {path}: {type(error).__name__}: {error} (truncated or damaged?)"
        ) from None


def _files_under(folder: Path) -> list[Path]:
    """Every file below ``folder``, following symbolic links to folders (each real folder once)."""
    files: list[Path] = []
    seen: set[str] = set()
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        files += [Path(root) / name for name in names]
    return sorted(files)


def _datasets(source: Source) -> tuple[list[tuple[Dataset, str]], int]:
    """All datasets of ``source`` with their origins, and how many non-DICOM files were skipped."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            files = _files_under(path)
            read = [(ds, str(p)) for p in files if (ds := _read_file(p, explicit=False)) is not None]
            return read, len(files) - len(read)
        if not path.exists():
            raise LoaderError(f"{path} does not exist")
        return [(_read_file(path, explicit=True), str(path))], 0  # type: ignore[list-item]
    items = list(source)
    if all(isinstance(item, Dataset) for item in items):
        return [(ds, f"dataset #{i}") for i, ds in enumerate(items)], 0  # type: ignore[misc]
    if all(isinstance(item, (str, Path)) for item in items):
        return [(_read_file(Path(p), explicit=True), str(p)) for p in items], 0  # type: ignore[misc, arg-type]
    raise LoaderError("give a folder, a list of files or a list of pydicom Datasets, not a mixture")


def _is_image(ds: Dataset, origin: str) -> bool:
    """An acquired image: an image storage SOP class (secondary captures are screenshots) with pixel data.

    An image instance without pixel data is refused: it is a truncated file or a bare header.
    """
    name = UID(str(ds.get("SOPClassUID", ""))).name or ""
    if "Image Storage" not in name or "Secondary Capture" in name:
        return False
    if "PixelData" not in ds:
        raise LoaderError(f"{origin}: {name} instance without pixel data (truncated file or header only?)")
    return True


def read_images(source: Source) -> list[Image]:
    """The MR images of ``source``, after setting aside and refusing what the module docstring lists."""
    datasets, skipped_files = _datasets(source)
    if skipped_files:
        log.warning("skipped files that are not DICOM", count=skipped_files)
    non_images: Counter[str] = Counter()
    localizers = 0
    images: list[Image] = []
    for ds, origin in datasets:
        if not _is_image(ds, origin):
            non_images[UID(str(ds.get("SOPClassUID", "unknown"))).name or "unknown SOP class"] += 1
        elif "LOCALIZER" in [str(v).upper() for v in ds.get("ImageType", [])]:
            localizers += 1
        else:
            images.append(Image(ds, origin))
    if non_images:
        kinds = ", ".join(f"{n} {name}" for name, n in sorted(non_images.items()))
        log.warning("skipped DICOM objects that are not images", count=sum(non_images.values()), kinds=kinds)
    if localizers:
        log.warning("skipped localizer images", count=localizers)
    if not images:
        found = f"{len(datasets)} DICOM object(s), none of them an image to analyse" if datasets else "no DICOM files"
        raise LoaderError(f"no MR images in the input: {found}")
    by_modality: dict[str, list[str]] = {}
    for image in images:
        by_modality.setdefault(str(image.ds.get("Modality", "")) or "unknown", []).append(image.origin)
    foreign = {m: o for m, o in by_modality.items() if m != "MR"}
    if foreign:
        modality, origins = next(iter(foreign.items()))
        where = name_files(origins)
        raise LoaderError(f"{len(origins)} image(s) of modality {modality} are not MR; only MR is analysed ({where})")
    multiframe = [image.origin for image in images if int(image.ds.get("NumberOfFrames", 1) or 1) > 1]
    if multiframe:
        raise LoaderError(f"multi-frame (enhanced) MR images are not supported yet ({name_files(multiframe)})")
    return images
