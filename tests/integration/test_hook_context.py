"""hook_context: prefetch first, the request's FHIR server as fallback, MissingContext when neither."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from app.clients.hook_context import Allowlists, InvalidPrefetch, MissingContext, hook_context
from tests.integration.fhir_seed import seed_chart
from tests.integration.servers import FhirServer

pytestmark = pytest.mark.integration

STUDY_DATE = date(2024, 3, 15)
MEASUREMENTS = (("29463-7", 80.0, "kg", "2024-03-01"), ("8302-2", 180.0, "cm", "2024-03-01"))
UNREACHABLE = "http://127.0.0.1:9/fhir/R4"  # discard port: nothing listens, so any request would fail


def fetch(server: FhirServer, token: str, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
    """What an EHR would have prefetched (read straight from the server)."""
    response = httpx.get(f"{server.url}/{path}", params=params, headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def full_prefetch(server: FhirServer, token: str, patient_id: str) -> dict[str, Any]:
    return {
        "patient": fetch(server, token, f"Patient/{patient_id}"),
        "bodyMeasurements": fetch(server, token, "Observation", {"subject": f"Patient/{patient_id}"}),
        "imagingStudies": fetch(server, token, "ImagingStudy", {"subject": f"Patient/{patient_id}"}),
    }


async def test_complete_prefetch_needs_no_server(fhir_server: FhirServer, fhir_token: str) -> None:
    chart = seed_chart(fhir_server.url, fhir_token, measurements=MEASUREMENTS, study_instance_uid="1.2.3.4")
    prefetch = full_prefetch(fhir_server, fhir_token, chart.patient_id)
    context = await hook_context(
        prefetch, UNREACHABLE, "token", chart.patient_id, Allowlists(fhir=[UNREACHABLE]), at=STUDY_DATE
    )
    assert context.sources == {"patient": "prefetch", "bodyMeasurements": "prefetch", "imagingStudies": "prefetch"}
    assert context.demographics.model_dump() == {"age_years": 60.0, "sex": "female", "bmi": 24.69}
    assert [s.study_instance_uid for s in context.imaging_studies] == ["1.2.3.4"]


async def test_missing_prefetch_is_fetched_from_the_fhir_server(fhir_server: FhirServer, fhir_token: str) -> None:
    chart = seed_chart(fhir_server.url, fhir_token, measurements=MEASUREMENTS)
    prefetch = {"patient": fetch(fhir_server, fhir_token, f"Patient/{chart.patient_id}"), "bodyMeasurements": None}
    context = await hook_context(
        prefetch, fhir_server.url, fhir_token, chart.patient_id, Allowlists(fhir=[fhir_server.url]), at=STUDY_DATE
    )
    assert context.sources == {"patient": "prefetch", "bodyMeasurements": "fhir", "imagingStudies": "fhir"}
    assert context.demographics.bmi == 24.69
    assert context.imaging_studies == ()


async def test_an_empty_prefetched_search_means_none_exist(fhir_server: FhirServer, fhir_token: str) -> None:
    chart = seed_chart(fhir_server.url, fhir_token)
    prefetch = full_prefetch(fhir_server, fhir_token, chart.patient_id)
    context = await hook_context(prefetch, None, None, chart.patient_id, Allowlists(), at=STUDY_DATE)
    assert context.body_measurements == ()
    assert context.demographics.bmi is None


async def test_neither_source_is_missing_context() -> None:
    with pytest.raises(MissingContext) as caught:
        await hook_context({"patient": None}, None, None, "p1", Allowlists())
    assert str(caught.value) == (
        "missing patient, bodyMeasurements, imagingStudies: not in the prefetch, and the request names no fhirServer"
    )
    assert caught.value.missing == ["patient", "bodyMeasurements", "imagingStudies"]


async def test_a_server_outside_the_allowlist_is_never_asked(fhir_server: FhirServer) -> None:
    with pytest.raises(MissingContext) as caught:
        await hook_context({}, fhir_server.url, "token", "p1", Allowlists(fhir=["https://ehr.example/fhir"]))
    assert str(caught.value) == (
        "missing patient, bodyMeasurements, imagingStudies: not in the prefetch, and its fhirServer "
        f"{fhir_server.url} is not allowlisted (MSKCDS_FHIR_ALLOWLIST)"
    )


async def test_prefetch_of_another_patient_is_invalid(fhir_server: FhirServer, fhir_token: str) -> None:
    chart = seed_chart(fhir_server.url, fhir_token)
    prefetch = {"patient": fetch(fhir_server, fhir_token, f"Patient/{chart.patient_id}")}
    with pytest.raises(InvalidPrefetch) as caught:
        await hook_context(prefetch, None, None, "someone-else", Allowlists())
    assert str(caught.value) == (
        f"prefetch 'patient' is Patient/{chart.patient_id}, the hook's context names someone-else"
    )
