"""Upstream faults end in a clear error, a retry where it helps, and no partial or duplicate write.

Real servers produce what they can: a stopped FHIR server (down), a paused one (slow: the kernel accepts
the connection, nothing answers), an expired token. The fault proxy supplies what Orthanc cannot do on
demand: 503 answers, and multipart bodies cut off mid-way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from app.clients.dicomweb import DicomwebClient
from app.clients.errors import UpstreamAuthError, UpstreamProtocolError, UpstreamTimeout, UpstreamUnavailable
from app.clients.fhir import FhirClient, TransactionSummary
from app.clients.http import RetryPolicy, Timeouts
from app.outputs.fhir_bundle import analysis_bundle
from tests.integration.faults import fault_proxy
from tests.integration.fhir_seed import seed_chart
from tests.integration.servers import FhirServer, OrthancServer
from tests.integration.synthetic import StudySpec
from tests.outputs.analysis_examples import example_result

pytestmark = pytest.mark.integration

FAST_RETRY = RetryPolicy(attempts=3, backoff_s=0.01)
Study = tuple[StudySpec, list[pydicom.Dataset]]


@pytest.fixture
def own_fhir_server(tmp_path: Path) -> Iterator[FhirServer]:
    """A FHIR server of this test's own, free to be paused or stopped."""
    server = FhirServer(tmp_path / "fhir").start()
    try:
        yield server
    finally:
        server.stop()


def instance_path(study: Study) -> tuple[str, str, str]:
    spec, datasets = study
    return spec.study_instance_uid, str(datasets[0].SeriesInstanceUID), str(datasets[0].SOPInstanceUID)


async def test_dicomweb_503_then_recovery_is_retried(orthanc: OrthancServer, knee_study: Study) -> None:
    with fault_proxy(orthanc.url, ["503", "503"]) as proxy:
        async with DicomwebClient(
            f"{proxy.url}/dicom-web", user=orthanc.user, password=orthanc.password, retry=FAST_RETRY
        ) as client:
            dataset = await client.retrieve_instance(*instance_path(knee_study))
    assert str(dataset.SOPInstanceUID) == instance_path(knee_study)[2]
    assert [fault for _, _, fault in proxy.requests] == ["503", "503", "pass"]


async def test_dicomweb_503_on_every_attempt_is_unavailable(orthanc: OrthancServer, knee_study: Study) -> None:
    study, series, instance = instance_path(knee_study)
    with fault_proxy(orthanc.url, ["503"] * 3) as proxy:
        async with DicomwebClient(
            f"{proxy.url}/dicom-web", user=orthanc.user, password=orthanc.password, retry=FAST_RETRY
        ) as client:
            with pytest.raises(UpstreamUnavailable) as caught:
                await client.retrieve_instance(study, series, instance)
    url = f"{proxy.url}/dicom-web/studies/{study}/series/{series}/instances/{instance}"
    assert str(caught.value) == f"WADO-RS instance retrieval: {url} answered HTTP 503 on attempt 3 of 3"
    assert len(proxy.requests) == 3


async def test_truncated_multipart_is_fetched_again(orthanc: OrthancServer, knee_study: Study) -> None:
    spec, datasets = knee_study
    with fault_proxy(orthanc.url, ["truncate"]) as proxy:
        async with DicomwebClient(
            f"{proxy.url}/dicom-web", user=orthanc.user, password=orthanc.password, retry=FAST_RETRY
        ) as client:
            series = await client.retrieve_series(spec.study_instance_uid, str(datasets[0].SeriesInstanceUID))
    assert [int(ds.InstanceNumber) for ds in series] == list(range(1, 9))
    assert [fault for _, _, fault in proxy.requests] == ["truncate", "pass"]


async def test_truncated_multipart_every_time_is_a_protocol_error(orthanc: OrthancServer, knee_study: Study) -> None:
    with fault_proxy(orthanc.url, ["truncate"] * 3) as proxy:
        async with DicomwebClient(
            f"{proxy.url}/dicom-web", user=orthanc.user, password=orthanc.password, retry=FAST_RETRY
        ) as client:
            with pytest.raises(UpstreamProtocolError) as caught:
                await client.retrieve_instance(*instance_path(knee_study))
    assert re.fullmatch(
        r"multipart body truncated in a part's content \(no close delimiter --[\w.=+-]+--\)", str(caught.value)
    )
    assert len(proxy.requests) == 3


async def test_fhir_server_down_is_unavailable(own_fhir_server: FhirServer) -> None:
    url, token = own_fhir_server.url, own_fhir_server.token()
    own_fhir_server.stop()
    async with FhirClient(url, token=token, retry=RetryPolicy(attempts=2, backoff_s=0.01)) as client:
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.patient("p1")
    assert re.fullmatch(
        rf"FHIR read Patient: cannot reach {re.escape(url)}/Patient/p1 \(ConnectError: .+\) on attempt 2 of 2",
        str(caught.value),
    )


async def test_slow_fhir_server_times_out_and_works_again_when_back(own_fhir_server: FhirServer) -> None:
    chart = seed_chart(own_fhir_server.url, own_fhir_server.token())
    client = FhirClient(
        own_fhir_server.url,
        token=own_fhir_server.token(),
        timeouts=Timeouts(connect_s=1.0, read_s=0.5),
        retry=RetryPolicy(attempts=2, backoff_s=0.01),
    )
    async with client:
        own_fhir_server.pause()
        try:
            with pytest.raises(UpstreamTimeout) as caught:
                await client.patient(chart.patient_id)
        finally:
            own_fhir_server.resume()
        patient = await client.patient(chart.patient_id)
    assert str(caught.value) == (
        f"FHIR read Patient: {own_fhir_server.url}/Patient/{chart.patient_id} did not answer in time "
        "(ReadTimeout) on attempt 2 of 2"
    )
    assert patient.id == chart.patient_id


async def test_a_transaction_retried_after_a_timeout_writes_each_resource_once(own_fhir_server: FhirServer) -> None:
    token = own_fhir_server.token()
    chart = seed_chart(own_fhir_server.url, token)
    bundle = analysis_bundle(
        example_result("1.2.826.0.1.3680043.8.498.99"), patient_reference=f"Patient/{chart.patient_id}"
    )
    impatient = FhirClient(
        own_fhir_server.url, token=token, timeouts=Timeouts(read_s=0.5), retry=RetryPolicy(attempts=1)
    )
    async with impatient:
        own_fhir_server.pause()
        try:
            with pytest.raises(UpstreamTimeout):
                await impatient.transaction(bundle)  # the request is sent; the answer never comes
        finally:
            own_fhir_server.resume()  # the server now runs the transaction nobody waits for
    async with FhirClient(own_fhir_server.url, token=token) as client:
        summary = TransactionSummary.of(bundle, await client.transaction(bundle))  # the caller's retry
        observations = await client.search("Observation", {"subject": f"Patient/{chart.patient_id}"})
        reports = await client.search("DiagnosticReport", {"subject": f"Patient/{chart.patient_id}"})
    assert sum(summary.created.values()) + sum(summary.existing.values()) == len(bundle.entry)
    assert len(observations) == 11
    assert len(reports) == 1


async def test_expired_token_is_not_retried_and_writes_nothing(fhir_server: FhirServer) -> None:
    chart = seed_chart(fhir_server.url, fhir_server.token())
    bundle = analysis_bundle(
        example_result("1.2.826.0.1.3680043.8.498.98"), patient_reference=f"Patient/{chart.patient_id}"
    )
    origin = fhir_server.url.removesuffix("/fhir/R4")
    with fault_proxy(origin, []) as proxy:
        async with FhirClient(
            f"{proxy.url}/fhir/R4", token=fhir_server.token(lifetime_s=-1), retry=FAST_RETRY
        ) as client:
            with pytest.raises(UpstreamAuthError) as caught:
                await client.transaction(bundle)
    assert str(caught.value) == (
        f"FHIR transaction: {proxy.url}/fhir/R4 refused the credentials (HTTP 401): error expired: token expired"
    )
    assert len(proxy.requests) == 1
    async with FhirClient(fhir_server.url, token=fhir_server.token()) as client:
        assert await client.search("Observation", {"subject": f"Patient/{chart.patient_id}"}) == []
