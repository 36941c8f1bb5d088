"""A phantom folder behind the demo's read-only DICOMweb service, recording the paths asked for."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI, Request

from app.analysis import StudyRef
from app.demo.dicomweb import DicomFolder, dicomweb_router
from app.demo.server import free_port, serving
from app.imaging import load_acquisitions


class ServedStudy:
    """A phantom folder behind a DICOMweb service that records the paths it was asked for."""

    def __init__(self, folder: Path, base_url: str, requests: list[str]) -> None:
        self.folder = folder
        self.base_url = base_url
        self.requests = requests
        self.study_instance_uid = load_acquisitions(folder, pixels=False)[0].study_instance_uid

    def ref(self, **changes: str) -> StudyRef:
        return StudyRef(study_instance_uid=self.study_instance_uid, dicomweb_url=self.base_url, **changes)


@contextmanager
def serve(folder: Path) -> Iterator[ServedStudy]:
    requests: list[str] = []
    app = FastAPI()

    @app.middleware("http")
    async def record(request: Request, call_next):  # type: ignore[no-untyped-def]
        requests.append(request.url.path)
        return await call_next(request)

    app.include_router(dicomweb_router(DicomFolder(folder)), prefix="/dicomweb")
    with serving(app, "127.0.0.1", free_port()) as base:
        yield ServedStudy(folder, f"{base}/dicomweb", requests)
