"""Async DICOMweb client (PS3.18): QIDO-RS search, WADO-RS metadata and instance retrieval, STOW-RS.

Retrievals (a series, a study's series in parallel, or chosen instances in parallel, at most
``max_concurrency`` requests at once) are ``multipart/related; type="application/dicom"`` bodies read
as a stream (:mod:`app.clients.multipart`); each part becomes a :class:`pydicom.Dataset` as soon as it
is complete, so the client never holds a series' raw bytes beside the datasets it built. JSON answers
(QIDO-RS, metadata) are asked for gzip-compressed; DICOM bodies uncompressed unless ``compress_bulk``.
Requests go through httpx (authentication, timeouts, retries: :mod:`app.clients.http`); the bytes move
through aiohttp (:mod:`app.clients.transport`), which reads a series at a fraction of httpx's own CPU cost.

Orthanc (the PACS of the tests) differs from the standard in two ways the client works around:
- a percent-encoded wildcard (``*`` sent as ``%2A``) in a QIDO value matches nothing there, so
  ``SeriesDescription`` patterns are matched here, on the answers, never sent;
- files stored without the 128-byte preamble and ``DICM`` prefix may not come back intact, so STOW-RS
  always sends complete Part 10 files (file meta information included).
"""

from __future__ import annotations

import asyncio
import fnmatch
import io
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import httpx
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from app.clients.errors import UpstreamProtocolError, UpstreamRejected
from app.clients.http import PooledClient, RetryPolicy, Timeouts, make_auth, request, tls_context
from app.clients.multipart import iter_parts, parse_content_type
from app.clients.transport import AiohttpTransport
from app.settings import Settings

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
MULTIPART_DICOM = f'multipart/related; type="{DICOM}"'

DateQuery = date | tuple[date | None, date | None]


def dicom_date_query(value: DateQuery) -> str:
    """A QIDO-RS date matching value: a single date ``YYYYMMDD`` or a range ``[start]-[end]``."""
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    start, end = value
    if start is None and end is None:
        raise ValueError("a date range needs a start, an end, or both")
    return f"{start.strftime('%Y%m%d') if start else ''}-{end.strftime('%Y%m%d') if end else ''}"


def dataset_from_json(obj: dict[str, Any]) -> pydicom.Dataset:
    """A dataset from a DICOM JSON object (PS3.18 F.2), leaving out bulk data referenced by URI.

    Bulk data (pixel data above all) is what metadata requests exist to avoid downloading.
    """
    inline = {tag: element for tag, element in obj.items() if "BulkDataURI" not in element}
    return pydicom.Dataset.from_json(inline)


def dataset_from_part10(content: bytes, where: str) -> pydicom.Dataset:
    """Parse one ``application/dicom`` part; clear error when it is not a DICOM file."""
    try:
        dataset = pydicom.dcmread(io.BytesIO(content))
    except Exception as exc:  # pydicom raises several types for malformed input
        raise UpstreamProtocolError(f"{where}: a part is not a valid DICOM Part 10 file ({exc})") from exc
    # Every element is read (nothing deferred): forgetting the source keeps a series' pixel data in
    # memory once, not twice (the part's bytes beside the dataset's copy of them).
    dataset.buffer = None
    return dataset


def part10_bytes(dataset: pydicom.Dataset) -> bytes:
    """The dataset as a complete Part 10 file: preamble, ``DICM``, file meta (filled in when missing)."""
    meta = getattr(dataset, "file_meta", None) or FileMetaDataset()
    if "TransferSyntaxUID" not in meta:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.file_meta = meta
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _by_instance_number(datasets: list[pydicom.Dataset]) -> list[pydicom.Dataset]:
    return sorted(datasets, key=lambda ds: (int(ds.get("InstanceNumber") or 0), str(ds.SOPInstanceUID)))


def _query(**criteria: str | None) -> list[tuple[str, str]]:
    """QIDO-RS query parameters for the criteria given (None = not a criterion)."""
    return [(key, value) for key, value in criteria.items() if value is not None]


def _encode_related(parts: Iterable[bytes], boundary: str) -> bytes:
    chunks: list[bytes] = []
    for part in parts:
        chunks += [f"--{boundary}\r\nContent-Type: {DICOM}\r\n\r\n".encode(), part, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)


class DicomwebClient(PooledClient):
    """One DICOMweb service (its base URL ends before ``/studies``), used as an async context manager."""

    def __init__(
        self,
        base_url: str,
        *,
        user: str = "",
        password: str = "",
        token: str = "",
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        max_concurrency: int = 8,
        compress_bulk: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._limit = asyncio.Semaphore(max_concurrency)
        # Pixel data gains little from gzip and costs the server CPU per instance (docs/integration.md,
        # "Compression"): DICOM bodies are asked for uncompressed unless compress_bulk is set.
        self._bulk_encoding = "gzip, deflate" if compress_bulk else "identity"
        self._client = httpx.AsyncClient(
            auth=make_auth(user, password, token),
            timeout=(timeouts or Timeouts()).httpx(),
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
            headers={"Accept-Encoding": "gzip, deflate"},
            # aiohttp reads a series' body at a fraction of httpx's own stack's CPU (app/clients/transport.py)
            transport=transport or AiohttpTransport(max_connections=max_concurrency, tls=tls_context()),
            verify=tls_context(),
        )

    @classmethod
    def from_settings(cls, settings: Settings, base_url: str | None = None) -> DicomwebClient:
        """A client of ``base_url`` (default: MSKCDS_DICOMWEB_URL) with the configured credentials."""
        url = base_url or settings.dicomweb_url
        if not url:
            raise ValueError("no DICOMweb URL: give one or set MSKCDS_DICOMWEB_URL")
        return cls(
            url,
            user=settings.dicomweb_user,
            password=settings.dicomweb_password.get_secret_value(),
            token=settings.dicomweb_token.get_secret_value(),
            timeouts=Timeouts.from_settings(settings),
            retry=RetryPolicy.from_settings(settings),
            max_concurrency=settings.dicomweb_max_concurrency,
        )

    # --- QIDO-RS ------------------------------------------------------------------------------------

    async def _json(self, path: str, what: str, params: list[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
        async def consume(response: httpx.Response) -> list[dict[str, Any]]:
            if response.status_code == 204:  # QIDO-RS: no match
                return []
            body = await response.aread()
            try:
                payload = response.json() if body else []
            except ValueError as exc:
                raise UpstreamProtocolError(f"{what}: the answer from {response.url} is not JSON") from exc
            if not isinstance(payload, list):
                raise UpstreamProtocolError(f"{what}: expected a JSON array from {response.url}")
            return payload

        return await request(
            self._client,
            "GET",
            f"{self.base_url}{path}",
            what=what,
            consume=consume,
            retry=self.retry,
            params=params or [],
            headers={"Accept": DICOM_JSON},
        )

    async def search_studies(
        self,
        *,
        patient_id: str | None = None,
        accession_number: str | None = None,
        modalities_in_study: str | None = None,
        body_part_examined: str | None = None,
        study_date: DateQuery | None = None,
        study_instance_uid: str | None = None,
        limit: int | None = None,
        include_fields: Sequence[str] = (),
    ) -> list[pydicom.Dataset]:
        """QIDO-RS ``/studies`` matching every criterion given (exact values; dates or ranges).

        ``body_part_examined`` is a series-level attribute: servers need not match it at study level
        (Orthanc matches nothing), so it is applied by a series search in each candidate study.
        """
        params = _query(
            PatientID=patient_id,
            AccessionNumber=accession_number,
            ModalitiesInStudy=modalities_in_study,
            StudyDate=dicom_date_query(study_date) if study_date is not None else None,
            StudyInstanceUID=study_instance_uid,
            limit=str(limit) if limit is not None else None,
        )
        params += [("includefield", name) for name in include_fields]
        studies = [dataset_from_json(obj) for obj in await self._json("/studies", "QIDO-RS study search", params)]
        if body_part_examined is None:
            return studies
        matches = await asyncio.gather(
            *(self.search_series(str(s.StudyInstanceUID), body_part_examined=body_part_examined) for s in studies)
        )
        return [study for study, series in zip(studies, matches, strict=True) if series]

    async def search_series(
        self,
        study_instance_uid: str,
        *,
        modality: str | None = None,
        body_part_examined: str | None = None,
        series_description: str | None = None,
        include_fields: Sequence[str] = (),
    ) -> list[pydicom.Dataset]:
        """QIDO-RS ``/studies/{study}/series``.

        ``series_description`` is a DICOM pattern (``*`` and ``?`` wildcards, case-insensitive) matched
        here on the answers: wildcards sent in the query match nothing on Orthanc.
        """
        params = _query(Modality=modality, BodyPartExamined=body_part_examined)
        # One includefield per attribute: Orthanc does not split comma-separated lists.
        params += [("includefield", name) for name in ("SeriesDescription", "BodyPartExamined", *include_fields)]
        found = await self._json(f"/studies/{study_instance_uid}/series", "QIDO-RS series search", params)
        series = [dataset_from_json(obj) for obj in found]
        if series_description is not None:
            pattern = series_description.lower()
            series = [s for s in series if fnmatch.fnmatchcase(str(s.get("SeriesDescription", "")).lower(), pattern)]
        return series

    async def search_instances(self, study_instance_uid: str, series_instance_uid: str) -> list[pydicom.Dataset]:
        """QIDO-RS ``/studies/{study}/series/{series}/instances``."""
        path = f"/studies/{study_instance_uid}/series/{series_instance_uid}/instances"
        return [dataset_from_json(obj) for obj in await self._json(path, "QIDO-RS instance search")]

    # --- WADO-RS ------------------------------------------------------------------------------------

    async def series_metadata(self, study_instance_uid: str, series_instance_uid: str) -> list[pydicom.Dataset]:
        """WADO-RS series metadata: every instance's attributes without its pixel data.

        Enough to choose series (description, geometry, echo times) before downloading any pixels.
        """
        path = f"/studies/{study_instance_uid}/series/{series_instance_uid}/metadata"
        return [dataset_from_json(obj) for obj in await self._json(path, "WADO-RS series metadata")]

    async def study_metadata(self, study_instance_uid: str) -> list[pydicom.Dataset]:
        """WADO-RS study metadata: every instance of every series, without pixel data."""
        path = f"/studies/{study_instance_uid}/metadata"
        return [dataset_from_json(obj) for obj in await self._json(path, "WADO-RS study metadata")]

    async def _retrieve(self, path: str, what: str) -> list[pydicom.Dataset]:
        """GET a WADO-RS resource as multipart/related application/dicom, parsing parts as they arrive."""

        async def consume(response: httpx.Response) -> list[pydicom.Dataset]:
            content_type = parse_content_type(response.headers.get("content-type"))
            if content_type.type not in (None, DICOM):
                raise UpstreamProtocolError(f"{what}: parts of type {content_type.type!r}, expected {DICOM}")
            return [
                dataset_from_part10(part.content, what)
                async for part in iter_parts(response.aiter_bytes(), content_type.boundary)
            ]

        async with self._limit:
            return await request(
                self._client,
                "GET",
                f"{self.base_url}{path}",
                what=what,
                consume=consume,
                retry=self.retry,
                headers={"Accept": f"{MULTIPART_DICOM}; transfer-syntax=*", "Accept-Encoding": self._bulk_encoding},
            )

    async def retrieve_instance(
        self, study_instance_uid: str, series_instance_uid: str, sop_instance_uid: str
    ) -> pydicom.Dataset:
        """WADO-RS one instance (a multipart answer holding exactly one part)."""
        path = f"/studies/{study_instance_uid}/series/{series_instance_uid}/instances/{sop_instance_uid}"
        datasets = await self._retrieve(path, "WADO-RS instance retrieval")
        if len(datasets) != 1:
            raise UpstreamProtocolError(f"WADO-RS instance retrieval: expected 1 part, got {len(datasets)}")
        return datasets[0]

    async def retrieve_series(self, study_instance_uid: str, series_instance_uid: str) -> list[pydicom.Dataset]:
        """Every instance of a series in one streamed WADO-RS answer, sorted by InstanceNumber.

        One request per series is the fast path: per-instance requests cost the server (Orthanc) more
        than they save by running in parallel (docs/integration.md, "The WADO-RS benchmark").
        """
        path = f"/studies/{study_instance_uid}/series/{series_instance_uid}"
        return _by_instance_number(await self._retrieve(path, "WADO-RS series retrieval"))

    async def retrieve_instances(
        self, study_instance_uid: str, series_instance_uid: str, sop_instance_uids: Sequence[str]
    ) -> list[pydicom.Dataset]:
        """Some instances of a series, fetched concurrently (at most ``max_concurrency`` at once)."""
        datasets = await asyncio.gather(
            *(self.retrieve_instance(study_instance_uid, series_instance_uid, uid) for uid in sop_instance_uids)
        )
        return _by_instance_number(list(datasets))

    async def retrieve_study(self, study_instance_uid: str) -> list[pydicom.Dataset]:
        """Every instance of every series of a study, series streamed concurrently (bounded)."""
        series = await self.search_series(study_instance_uid)
        per_series = await asyncio.gather(
            *(self.retrieve_series(study_instance_uid, str(s.SeriesInstanceUID)) for s in series)
        )
        return [dataset for datasets in per_series for dataset in datasets]

    # --- STOW-RS ------------------------------------------------------------------------------------

    async def store_instances(
        self, datasets: Sequence[pydicom.Dataset], study_instance_uid: str | None = None
    ) -> pydicom.Dataset:
        """STOW-RS: store datasets as Part 10 files; returns the Store Instances Response.

        Raises :class:`UpstreamRejected` naming the instances the server refused (Failed SOP Sequence).
        """
        boundary = f"mskcds-{pydicom.uid.generate_uid().replace('.', '')}"
        body = _encode_related((part10_bytes(ds) for ds in datasets), boundary)
        path = f"/studies/{study_instance_uid}" if study_instance_uid else "/studies"
        what = "STOW-RS store"

        async def consume(response: httpx.Response) -> pydicom.Dataset:
            await response.aread()
            return dataset_from_json(response.json()) if response.content else pydicom.Dataset()

        result = await request(
            self._client,
            "POST",
            f"{self.base_url}{path}",
            what=what,
            consume=consume,
            retry=self.retry,
            content=body,
            headers={"Content-Type": f"{MULTIPART_DICOM}; boundary={boundary}", "Accept": DICOM_JSON},
        )
        failed = result.get("FailedSOPSequence") or []
        if failed:
            reasons = [
                f"{item.get('ReferencedSOPInstanceUID')} (reason {item.get('FailureReason')})" for item in failed
            ]
            raise UpstreamRejected(f"{what}: the server refused {len(failed)} instance(s): {', '.join(reasons)}")
        return result
