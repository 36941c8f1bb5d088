"""DICOM -> acquisitions: group, check and stack images into co-registered multi-time volumes.

Grouping, in three steps:

1. images by SeriesInstanceUID; a series must have one orientation and one image size;
2. within a series, time points by (EchoTime, EchoNumbers): multi-echo series (MESE, DESS) hold
   several, and all of them must cover the same slices;
3. series of one exam (same FrameOfReferenceUID, else StudyInstanceUID) that share a SeriesNumber and
   cover exactly the same slices are one acquisition: GE writes each DESS echo and each CubeQuant
   spin-lock volume as its own series that way (the real exam's series even carry different
   StudyInstanceUIDs after anonymisation; the frame of reference still ties them together).

Each time point is stacked geometrically (``geometry.py``) and all time points must share one grid.
Pixel values are decoded by pydicom (compressed transfer syntaxes included) and RescaleSlope /
RescaleIntercept applied.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from app.imaging.acquisition import Acquisition
from app.imaging.errors import LoaderError, name_files
from app.imaging.geometry import DIRECTION_TOLERANCE, classify_orientation, directions, same_orientation, stack
from app.imaging.laterality import laterality
from app.imaging.reading import Image, Source, read_images
from app.imaging.selection import classify
from schemas.volume import LPS_TO_RAS, EchoSeries

_PIXEL_DATA = 0x7FE00010


@dataclass
class _TimePoint:
    """One volume: the images of one series at one echo / spin-lock time."""

    series_uid: str
    time_ms: float
    echo_number: int | None
    images: list[Image]


def _float(ds: Dataset, keyword: str) -> float | None:
    value = ds.get(keyword)
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _describe(ds: Dataset) -> str:
    return f"series {ds.get('SeriesNumber', '?')} '{ds.get('SeriesDescription', '')}'"


def _check_series(images: list[Image]) -> None:
    """One orientation and one image size per series."""
    first = images[0].ds
    what = _describe(first)
    other_orientation = [i.origin for i in images if not same_orientation(first, i.ds)]
    if other_orientation:
        raise LoaderError(
            f"{what} mixes image orientations: {name_files(other_orientation)} differ from {images[0].origin}"
        )
    size = (first.Rows, first.Columns, tuple(float(v) for v in first.PixelSpacing))
    other_size = [
        i.origin for i in images if (i.ds.Rows, i.ds.Columns, tuple(float(v) for v in i.ds.PixelSpacing)) != size
    ]
    if other_size:
        raise LoaderError(
            f"{what} mixes image sizes: {name_files(other_size)} differ from {images[0].origin} "
            f"({first.Rows}x{first.Columns}, {size[2][0]:g} x {size[2][1]:g} mm)"
        )


def _time_points(series_uid: str, images: list[Image]) -> list[_TimePoint]:
    groups: dict[tuple[float | None, int | None], list[Image]] = defaultdict(list)
    for image in images:
        echo = image.ds.get("EchoNumbers")
        if echo is not None and not isinstance(echo, (str, int, float)):
            echo = echo[0] if len(echo) else None  # multi-valued EchoNumbers: the first
        number = int(echo) if echo not in (None, "") else None
        groups[(_float(image.ds, "EchoTime"), number)].append(image)
    points = []
    for (time, number), members in groups.items():
        points.append(_TimePoint(series_uid, time if time is not None else float(number or 0), number, members))
    return points


def _geometry_key(images: list[Image]) -> tuple:
    """What two volumes must share to be one acquisition: orientation, size and slice positions."""
    first = images[0].ds
    _, _, normal = directions(first)
    positions = sorted(round(float(np.dot([float(v) for v in i.ds.ImagePositionPatient], normal)), 2) for i in images)
    orientation = tuple(round(float(v) / DIRECTION_TOLERANCE) for v in first.ImageOrientationPatient)
    return (orientation, first.Rows, first.Columns, tuple(float(v) for v in first.PixelSpacing), tuple(positions))


def _pixels(image: Image) -> NDArray[np.float32]:
    try:
        array = image.ds.pixel_array.astype(np.float32)
    except Exception as error:  # decoders raise many types
        raise LoaderError(f"{image.origin}: cannot decode pixel data: {error}") from None
    slope = _float(image.ds, "RescaleSlope")
    intercept = _float(image.ds, "RescaleIntercept")
    if slope is not None and slope != 1.0:
        array *= np.float32(slope)
    if intercept:
        array += np.float32(intercept)
    return array


def _header(ds: Dataset) -> Dataset:
    """A copy of the header without pixel data (elements are shared, the caller's dataset is untouched)."""
    header = Dataset({tag: element for tag, element in ds.items() if tag != _PIXEL_DATA})
    if hasattr(ds, "file_meta"):
        header.file_meta = ds.file_meta
    return header


def _study_date(ds: Dataset) -> datetime.date | None:
    """StudyDate, or None when absent, malformed or a placeholder such as 00010101."""
    text = str(ds.get("StudyDate", "") or "").strip()
    try:
        value = datetime.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None
    return value if value.year >= 1900 else None


def _series_number(ds: Dataset) -> int | None:
    try:
        return int(ds.get("SeriesNumber"))
    except (TypeError, ValueError):
        return None


def _build(points: list[_TimePoint], pixels: bool) -> Acquisition:
    points = sorted(points, key=lambda p: (p.time_ms, p.echo_number or 0))
    first = points[0].images[0].ds
    what = _describe(first)
    times = [p.time_ms for p in points]
    if len(set(times)) != len(times):
        duplicate = next(t for t in times if times.count(t) > 1)
        origins = [p.images[0].origin for p in points if p.time_ms == duplicate]
        raise LoaderError(f"{what}: two volumes at echo time {duplicate:g} ms ({name_files(origins)})")
    stacks = [
        stack([i.ds for i in p.images], [i.origin for i in p.images], f"{what} at {p.time_ms:g} ms") for p in points
    ]
    for point, other in zip(points[1:], stacks[1:], strict=True):
        if len(other.order) != len(stacks[0].order) or not np.allclose(other.affine, stacks[0].affine, atol=1e-3):
            raise LoaderError(
                f"{what}: the volume at {point.time_ms:g} ms does not cover the same slices as the one at "
                f"{points[0].time_ms:g} ms ({point.images[0].origin})"
            )
    shape = (len(points), len(stacks[0].order), int(first.Rows), int(first.Columns))
    if pixels:
        volumes = [np.stack([_pixels(p.images[i]) for i in s.order]) for p, s in zip(points, stacks, strict=True)]
        array = np.stack(volumes)
    else:  # headers only: a read-only zero array of the right shape that occupies no memory
        array = np.broadcast_to(np.float32(0), shape)
    headers = tuple(tuple(_header(p.images[i].ds) for i in s.order) for p, s in zip(points, stacks, strict=True))
    # SliceThickness is the slab each slice integrates (it may exceed the spacing, e.g. CubeQuant's 3 mm
    # slices every 1.5 mm): relaxometry needs it for partial volume.
    thickness = _float(first, "SliceThickness") or None
    echoes = EchoSeries(array, stacks[0].affine, tuple(times), slice_thickness_mm=thickness)
    _, _, normal = directions(first)
    center_ras = stacks[0].affine @ np.append((np.array(array.shape[1:]) - 1) / 2.0, 1.0)
    side, source = laterality([h for hs in headers for h in hs[:1]], (LPS_TO_RAS @ center_ras)[:3])
    series_uids = tuple(dict.fromkeys(p.series_uid for p in points))
    return Acquisition(
        role=classify(first, times),
        echoes=echoes,
        study_instance_uid=str(first.get("StudyInstanceUID", "")),
        series_instance_uids=series_uids,
        series_number=_series_number(first),
        description=str(first.get("SeriesDescription", "") or ""),
        laterality=side,
        laterality_source=source,
        orientation=classify_orientation(normal),
        study_date=_study_date(first),
        headers=headers,
        frame_of_reference_uid=str(first.get("FrameOfReferenceUID", "")) or None,
    )


def load_acquisitions(source: Source, *, pixels: bool = True) -> list[Acquisition]:
    """Acquisitions from a folder (searched recursively), a list of files, or in-memory datasets.

    ``pixels=False`` builds them from headers alone (e.g. DICOMweb series metadata) so that
    :func:`~app.imaging.select_series` can choose what to download; their arrays are zeros.

    Raises:
        LoaderError: naming the problem and the files, for input that would give a wrong volume:
            mixed orientations or sizes in a series, missing or duplicated slices, non-MR images,
            undecodable pixel data, damaged files, or no images at all.
    """
    images = read_images(source, require_pixels=pixels)
    by_series: dict[str, list[Image]] = defaultdict(list)
    for image in images:
        by_series[str(image.ds.get("SeriesInstanceUID", image.origin))].append(image)
    groups: dict[tuple, list[_TimePoint]] = defaultdict(list)
    for series_uid, members in by_series.items():
        _check_series(members)
        first = members[0].ds
        exam = str(first.get("FrameOfReferenceUID", "") or first.get("StudyInstanceUID", ""))
        number = _series_number(first)
        points = _time_points(series_uid, members)
        key = (exam, number if number is not None else series_uid, _geometry_key(points[0].images))
        groups[key].extend(points)
    acquisitions = [_build(points, pixels) for points in groups.values()]
    return sorted(acquisitions, key=lambda a: (a.series_number or 0, a.series_instance_uids))
