"""The DICOMweb client's aiohttp transport: the same errors, retries and bytes on the wire as httpx's own.

Real faults only: a port nobody listens on (refused), a socket that accepts and never answers (read
timeout), and the fault proxy for an answer cut short of its Content-Length, which Orthanc cannot do
on demand.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pydicom
import pytest

from app.clients.dicomweb import DicomwebClient
from app.clients.errors import UpstreamTimeout, UpstreamUnavailable
from app.clients.http import RetryPolicy, Timeouts
from tests.integration.faults import fault_proxy
from tests.integration.servers import OrthancServer, free_port
from tests.integration.synthetic import StudySpec

pytestmark = pytest.mark.integration

FAST_RETRY = RetryPolicy(attempts=2, backoff_s=0.01)
Study = tuple[StudySpec, list[pydicom.Dataset]]


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A listening socket that never reads nor answers: the kernel accepts connections, nothing more."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/dicom-web"


async def test_refused_connection_is_unavailable_after_every_attempt() -> None:
    port = free_port()
    async with DicomwebClient(f"http://127.0.0.1:{port}/dicom-web", retry=FAST_RETRY) as client:
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.search_studies(patient_id="P1")
    assert re.fullmatch(
        rf"QIDO-RS study search: cannot reach http://127\.0\.0\.1:{port}/dicom-web/studies "
        rf"\(ConnectError: Cannot connect to host 127\.0\.0\.1:{port} .*\) on attempt 2 of 2",
        str(caught.value),
    ), str(caught.value)


async def test_a_server_that_never_answers_is_a_timeout(silent_server: str) -> None:
    timeouts = Timeouts(connect_s=2.0, read_s=0.3)
    async with DicomwebClient(silent_server, timeouts=timeouts, retry=FAST_RETRY) as client:
        with pytest.raises(UpstreamTimeout) as caught:
            await client.retrieve_series("1.2.3", "1.2.3.4")
    assert str(caught.value) == (
        f"WADO-RS series retrieval: {silent_server}/studies/1.2.3/series/1.2.3.4 did not answer in time "
        "(ReadTimeout) on attempt 2 of 2"
    )


async def test_an_answer_cut_short_of_its_content_length_is_fetched_again(
    orthanc: OrthancServer, knee_study: Study
) -> None:
    spec, datasets = knee_study
    series = str(datasets[0].SeriesInstanceUID)
    with fault_proxy(orthanc.url, ["cut"]) as proxy:
        async with DicomwebClient(
            f"{proxy.url}/dicom-web", user=orthanc.user, password=orthanc.password, retry=FAST_RETRY
        ) as client:
            retrieved = await client.retrieve_series(spec.study_instance_uid, series)
    assert [int(ds.InstanceNumber) for ds in retrieved] == list(range(1, 9))
    assert [fault for _, _, fault in proxy.requests] == ["cut", "pass"]


async def test_an_answer_cut_short_every_time_is_unavailable(orthanc: OrthancServer, knee_study: Study) -> None:
    spec, datasets = knee_study
    series = str(datasets[0].SeriesInstanceUID)
    with fault_proxy(orthanc.url, ["cut", "cut"]) as proxy:
        async with DicomwebClient(
            f"{proxy.url}/dicom-web", user=orthanc.user, password=orthanc.password, retry=FAST_RETRY
        ) as client:
            with pytest.raises(UpstreamUnavailable) as caught:
                await client.retrieve_series(spec.study_instance_uid, series)
    url = f"{proxy.url}/dicom-web/studies/{spec.study_instance_uid}/series/{series}"
    assert str(caught.value).startswith(f"WADO-RS series retrieval: cannot reach {url} (RemoteProtocolError: ")
    assert str(caught.value).endswith(") on attempt 2 of 2")
    assert len(proxy.requests) == 2


async def test_the_request_target_is_sent_as_httpx_encoded_it(orthanc: OrthancServer) -> None:
    """aiohttp would re-quote the URL; the transport sends httpx's encoding byte for byte."""
    with fault_proxy(orthanc.url, []) as proxy:
        async with DicomwebClient(f"{proxy.url}/dicom-web", user=orthanc.user, password=orthanc.password) as client:
            assert await client.search_studies(patient_id="A B*/é", limit=3) == []
    assert [path for _, path, _ in proxy.requests] == ["/dicom-web/studies?PatientID=A+B%2A%2F%C3%A9&limit=3"]


async def test_connections_are_kept_alive_between_requests(orthanc: OrthancServer, knee_study: Study) -> None:
    spec, _ = knee_study
    with fault_proxy(orthanc.url, []) as proxy:
        async with DicomwebClient(
            f"{proxy.url}/dicom-web", user=orthanc.user, password=orthanc.password, max_concurrency=1
        ) as client:
            for _ in range(3):
                await client.search_studies(patient_id=spec.patient_id)
    assert len(proxy.requests) == 3
    assert len(proxy.connections) == 1
