"""A read-only DICOMweb service (PS3.18) over a folder of DICOM files, for the demo.

It answers the requests msk-cds's own DICOMweb client makes to analyse a study: WADO-RS study and
series metadata (``application/dicom+json``, pixel data left out) and WADO-RS study and series
retrieval (``multipart/related; type="application/dicom"``, the files as stored). It is not a PACS:
no QIDO-RS, no STOW-RS, no authentication (the demo binds it to loopback).
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pydicom
from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import StreamingResponse
from pydicom.errors import InvalidDicomError

_DICOM_JSON = "application/dicom+json"
_PIXEL_DATA = 0x7FE00010


class DicomFolder:
    """The DICOM Part 10 files below a folder, indexed by study and series at start-up."""

    def __init__(self, folder: Path) -> None:
        self.series: dict[str, dict[str, list[Path]]] = defaultdict(lambda: defaultdict(list))
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            try:
                header = pydicom.dcmread(path, stop_before_pixels=True)
            except InvalidDicomError:
                continue
            self.series[str(header.StudyInstanceUID)][str(header.SeriesInstanceUID)].append(path)

    def files(self, study: str, series: str | None = None) -> list[Path]:
        """The files of a study (or of one of its series); 404 when there are none."""
        by_series = self.series.get(study, {})
        found = by_series.get(series, []) if series else [p for paths in by_series.values() for p in paths]
        if not found:
            raise HTTPException(status_code=404, detail="no such study or series")
        return found


def _metadata(paths: list[Path]) -> Response:
    objects = []
    for path in paths:
        header = pydicom.dcmread(path, stop_before_pixels=True)
        objects.append({tag: element for tag, element in header.to_json_dict().items() if int(tag, 16) != _PIXEL_DATA})
    return Response(content=json.dumps(objects), media_type=_DICOM_JSON)


def _multipart(paths: list[Path]) -> StreamingResponse:
    boundary = uuid.uuid4().hex

    def parts() -> Iterator[bytes]:
        for path in paths:
            yield f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            yield path.read_bytes()
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    media_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return StreamingResponse(parts(), media_type=media_type)


def dicomweb_router(folder: DicomFolder) -> APIRouter:
    """WADO-RS routes (``/studies/...``) serving ``folder``; mount them under the demo's DICOMweb base."""
    router = APIRouter(tags=["demo DICOMweb"])

    @router.get("/studies/{study}/metadata")
    def study_metadata(study: str) -> Response:
        return _metadata(folder.files(study))

    @router.get("/studies/{study}/series/{series}/metadata")
    def series_metadata(study: str, series: str) -> Response:
        return _metadata(folder.files(study, series))

    @router.get("/studies/{study}")
    def retrieve_study(study: str) -> StreamingResponse:
        return _multipart(folder.files(study))

    @router.get("/studies/{study}/series/{series}")
    def retrieve_series(study: str, series: str) -> StreamingResponse:
        return _multipart(folder.files(study, series))

    return router
