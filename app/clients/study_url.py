"""Open a DICOMweb study URL (``http(s)://HOST/.../studies/STUDY_UID``) as pydicom datasets.

What the CLI needs wherever it accepts a folder of DICOM files: ``mskcds analyze URL`` /
``mskcds inspect URL``. Credentials come from the settings (``MSKCDS_DICOMWEB_USER`` /
``MSKCDS_DICOMWEB_PASSWORD``, or ``MSKCDS_DICOMWEB_TOKEN``). Series can be chosen on metadata first
(:func:`open_study_metadata`: no pixel data), then only the chosen series downloaded.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pydicom

from app.clients.dicomweb import DicomwebClient
from app.settings import Settings, get_settings

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


@dataclass(frozen=True)
class StudyUrl:
    base_url: str  # the DICOMweb service root (what precedes /studies)
    study_instance_uid: str


def is_study_url(text: str) -> bool:
    """Whether ``text`` looks like a DICOMweb study URL (rather than a local path)."""
    return text.startswith(("http://", "https://"))


def parse_study_url(url: str) -> StudyUrl:
    """Split a study URL into the DICOMweb base and the Study Instance UID; ValueError if it is not one."""
    base, sep, uid = url.rstrip("/").rpartition("/studies/")
    if not is_study_url(url) or not sep or not base.split("://", 1)[1] or not _UID.match(uid) or len(uid) > 64:
        raise ValueError(f"{url!r} is not a DICOMweb study URL: expected http(s)://HOST/.../studies/STUDY_INSTANCE_UID")
    return StudyUrl(base_url=base, study_instance_uid=uid)


async def fetch_study(
    url: str, settings: Settings | None = None, *, series_instance_uids: Sequence[str] | None = None
) -> list[pydicom.Dataset]:
    """Every instance of the study (or of the series named), pixel data included."""
    study = parse_study_url(url)
    async with DicomwebClient.from_settings(settings or get_settings(), study.base_url) as client:
        if series_instance_uids is None:
            return await client.retrieve_study(study.study_instance_uid)
        per_series = await asyncio.gather(
            *(client.retrieve_series(study.study_instance_uid, uid) for uid in series_instance_uids)
        )
    return [dataset for datasets in per_series for dataset in datasets]


async def fetch_study_metadata(url: str, settings: Settings | None = None) -> list[pydicom.Dataset]:
    """Every instance's attributes without pixel data (WADO-RS study metadata): enough to select series."""
    study = parse_study_url(url)
    async with DicomwebClient.from_settings(settings or get_settings(), study.base_url) as client:
        return await client.study_metadata(study.study_instance_uid)


def open_study_url(
    url: str, settings: Settings | None = None, *, series_instance_uids: Sequence[str] | None = None
) -> list[pydicom.Dataset]:
    """Synchronous :func:`fetch_study`, for the CLI and the (synchronous) pipeline workers."""
    return asyncio.run(fetch_study(url, settings, series_instance_uids=series_instance_uids))


def open_study_metadata(url: str, settings: Settings | None = None) -> list[pydicom.Dataset]:
    """Synchronous :func:`fetch_study_metadata`."""
    return asyncio.run(fetch_study_metadata(url, settings))
