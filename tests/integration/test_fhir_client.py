"""FhirClient against the real FHIR test server (Medplum router, bearer tokens on)."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.patient import Patient

from app.clients.errors import UpstreamAuthError, UpstreamError, UpstreamNotFound, UpstreamRejected
from app.clients.fhir import FhirClient
from tests.integration.fhir_seed import seed_chart
from tests.integration.servers import FhirServer

pytestmark = pytest.mark.integration

STUDY_DATE = date(2024, 3, 15)
MEASUREMENTS = (
    ("29463-7", 90.0, "kg", "2019-05-01"),
    ("29463-7", 176.0, "[lb_av]", "2024-03-01"),
    ("8302-2", 70.0, "[in_i]", "2023-06-01"),
    ("29463-7", 60.0, "kg", "2024-06-01"),  # after the study date: not used
)


async def test_demographics_from_patient_and_measurements(fhir_server: FhirServer, fhir_token: str) -> None:
    chart = seed_chart(fhir_server.url, fhir_token, measurements=MEASUREMENTS)
    async with FhirClient(fhir_server.url, token=fhir_token) as client:
        patient = await client.patient(chart.patient_id)
        found = await client.demographics(chart.patient_id, STUDY_DATE)
    assert isinstance(patient, Patient)
    assert found.model_dump() == {"age_years": 60.0, "sex": "female", "bmi": 25.25}


async def test_search_follows_every_page(fhir_server: FhirServer, fhir_token: str) -> None:
    chart = seed_chart(fhir_server.url, fhir_token, measurements=MEASUREMENTS)
    async with FhirClient(fhir_server.url, token=fhir_token, max_pages=4) as client:
        pages = await client.search_bundles("Observation", {"subject": f"Patient/{chart.patient_id}", "_count": "1"})
        everything = await client.search("Observation", {"subject": f"Patient/{chart.patient_id}", "_count": "3"})
    assert len(pages) == 4
    assert len({obs.id for page in pages for obs in (e.resource for e in page.entry or [])}) == 4
    assert len(everything) == 4


async def test_too_many_pages_is_an_error(fhir_server: FhirServer, fhir_token: str) -> None:
    chart = seed_chart(fhir_server.url, fhir_token, measurements=MEASUREMENTS)
    async with FhirClient(fhir_server.url, token=fhir_token, max_pages=2) as client:
        with pytest.raises(UpstreamError) as caught:
            await client.search("Observation", {"subject": f"Patient/{chart.patient_id}", "_count": "1"})
    assert str(caught.value) == (
        f"FHIR search Observation: more than 2 pages of results at {fhir_server.url}; narrow the search "
        "or raise MSKCDS_FHIR_MAX_PAGES"
    )


async def test_imaging_studies_with_allowlisted_endpoint(fhir_server: FhirServer, fhir_token: str) -> None:
    chart = seed_chart(
        fhir_server.url,
        fhir_token,
        study_instance_uid="1.2.826.0.1.3680043.8.498.7",
        study_date=STUDY_DATE,
        dicomweb_url="http://pacs.test:8042/dicom-web",
    )
    async with FhirClient(fhir_server.url, token=fhir_token) as client:
        allowed = await client.imaging_studies(chart.patient_id, ["http://pacs.test:8042/dicom-web"])
        refused = await client.imaging_studies(chart.patient_id, ["http://other.test/dicom-web"])
    assert len(allowed) == 1
    study = allowed[0]
    assert (study.fhir_id, study.study_instance_uid, study.started) == (
        chart.imaging_study_id,
        "1.2.826.0.1.3680043.8.498.7",
        STUDY_DATE,
    )
    assert study.modalities == ("MR",)
    assert study.dicomweb_url == study.endpoint_address == "http://pacs.test:8042/dicom-web"
    assert refused[0].endpoint_address == "http://pacs.test:8042/dicom-web"
    assert refused[0].dicomweb_url is None


async def test_missing_patient_is_not_found(fhir_server: FhirServer, fhir_token: str) -> None:
    async with FhirClient(fhir_server.url, token=fhir_token) as client:
        with pytest.raises(UpstreamNotFound) as caught:
            await client.patient("does-not-exist")
    assert str(caught.value) == (
        f"FHIR read Patient: not found at {fhir_server.url}/Patient/does-not-exist (HTTP 404): "
        "error not-found: Not found"
    )


async def test_expired_token_is_an_auth_error_with_the_servers_outcome(fhir_server: FhirServer) -> None:
    async with FhirClient(fhir_server.url, token=fhir_server.token(lifetime_s=-60)) as client:
        with pytest.raises(UpstreamAuthError) as caught:
            await client.patient("anything")
    assert str(caught.value) == (
        f"FHIR read Patient: {fhir_server.url}/Patient/anything refused the credentials (HTTP 401): "
        "error expired: token expired"
    )


async def test_operation_outcome_of_a_rejected_transaction_is_surfaced(
    fhir_server: FhirServer, fhir_token: str
) -> None:
    tag = {"system": "urn:mskcds:test", "value": "duplicate-marker"}
    twin = {"resourceType": "Basic", "identifier": [tag], "code": {"text": "twin"}}
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {fhir_token}"}) as raw:
        for _ in range(2):  # two resources with the same identifier: a conditional create cannot choose
            (await raw.post(f"{fhir_server.url}/Basic", json=twin)).raise_for_status()
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": "urn:uuid:3f1c1a52-8a1f-4c55-8bb2-7f6a3b0d9e01",
                    "resource": {"resourceType": "Basic", "code": {"text": "first entry, valid"}},
                    "request": {"method": "POST", "url": "Basic"},
                },
                {
                    "fullUrl": "urn:uuid:3f1c1a52-8a1f-4c55-8bb2-7f6a3b0d9e02",
                    "resource": {"resourceType": "Basic", "identifier": [tag], "code": {"text": "twin"}},
                    "request": {
                        "method": "POST",
                        "url": "Basic",
                        "ifNoneExist": "identifier=urn:mskcds:test|duplicate-marker",
                    },
                },
            ],
        }
    )
    async with FhirClient(fhir_server.url, token=fhir_token) as client:
        with pytest.raises(UpstreamRejected) as caught:
            await client.transaction(bundle)
        everything = await client.search("Basic", {})
    assert caught.value.status == 412
    assert str(caught.value) == (
        f"FHIR transaction: {fhir_server.url} rejected the request (HTTP 412): "
        "error multiple-matches: Multiple resources found matching condition (at Bundle.entry[1])"
    )
    # all or nothing: the valid first entry was not kept
    assert sorted(r.code.text for r in everything) == ["twin", "twin"]
