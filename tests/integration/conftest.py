"""Session-scoped real servers: one Orthanc and one FHIR server per test session, each with its own storage.

A missing server binary fails the tests with the command that installs it (``make test-servers``): these
tests are never skipped silently.
"""

from __future__ import annotations

from collections.abc import Iterator

import pydicom
import pytest

from tests.integration.servers import FhirServer, OrthancServer
from tests.integration.synthetic import StudySpec, build_study, part10


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    server = OrthancServer(tmp_path_factory.mktemp("orthanc")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    server = FhirServer(tmp_path_factory.mktemp("fhir-server")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def knee_study(orthanc: OrthancServer) -> tuple[StudySpec, list[pydicom.Dataset]]:
    """A synthetic two-series knee MR study stored in Orthanc (through Orthanc's own REST API)."""
    spec = StudySpec()
    datasets = build_study(spec)
    orthanc.upload([part10(ds) for ds in datasets])
    return spec, datasets


@pytest.fixture
def fhir_token(fhir_server: FhirServer) -> str:
    return fhir_server.token()
