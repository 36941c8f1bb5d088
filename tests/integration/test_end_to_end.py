"""Issue 7, "done when" 1: a study in Orthanc, a chart on the FHIR server -> the analysis lands, once.

The chain: the hook context (patient, weight, height, ImagingStudy with its DICOMweb Endpoint) comes
from the FHIR server; the study is chosen on DICOMweb metadata and its morphology series retrieved from
Orthanc; the AnalysisResult is built (until the pipeline lands, from hand-set biomarker values: see
tests/outputs/analysis_examples.py) for that study; its transaction Bundle is posted; reading back by
search finds every resource once; posting again changes nothing.
"""

from __future__ import annotations

from datetime import datetime

import pydicom
import pytest

from app.clients.dicomweb import DicomwebClient
from app.clients.fhir import FhirClient, TransactionSummary
from app.clients.hook_context import Allowlists, hook_context
from app.outputs.fhir_bundle import analysis_bundle
from schemas.analysis import SeriesUsed
from tests.integration.fhir_seed import seed_chart
from tests.integration.servers import FhirServer, OrthancServer
from tests.integration.synthetic import StudySpec
from tests.outputs.analysis_examples import BIOMARKERS, example_result

pytestmark = pytest.mark.integration

Study = tuple[StudySpec, list[pydicom.Dataset]]


async def counts(client: FhirClient, patient: str) -> dict[str, int]:
    subject = {"subject": f"Patient/{patient}"}
    return {
        "imaging Observation": len(await client.search("Observation", {**subject, "category": "imaging"})),
        "RiskAssessment": len(await client.search("RiskAssessment", subject)),
        "DiagnosticReport": len(await client.search("DiagnosticReport", subject)),
        "Device": len(await client.search("Device", {})),
    }


async def test_analysis_lands_once(orthanc: OrthancServer, fhir_server: FhirServer, knee_study: Study) -> None:
    spec, _ = knee_study
    token = fhir_server.token()
    chart = seed_chart(
        fhir_server.url,
        token,
        birth_date="1962-09-01",
        gender="male",
        measurements=(("29463-7", 85.0, "kg", "2024-02-20"), ("8302-2", 178.0, "cm", "2023-11-02")),
        study_instance_uid=spec.study_instance_uid,
        study_date=spec.study_date,
        dicomweb_url=orthanc.dicomweb_url,
    )
    allowlists = Allowlists(fhir=[fhir_server.url], dicomweb=[orthanc.dicomweb_url])

    # 1. Context from the FHIR server (an empty prefetch: everything is fetched).
    context = await hook_context({}, fhir_server.url, token, chart.patient_id, allowlists, at=spec.study_date)
    [study] = context.imaging_studies
    assert study.study_instance_uid == spec.study_instance_uid
    assert study.dicomweb_url == orthanc.dicomweb_url
    assert context.demographics.model_dump() == {"age_years": 61.54, "sex": "male", "bmi": 26.83}

    # 2. Imaging: choose the morphology series on metadata, then fetch only its pixels.
    async with DicomwebClient(study.dicomweb_url, user=orthanc.user, password=orthanc.password) as pacs:
        [dess] = await pacs.search_series(study.study_instance_uid, series_description="*DESS*")
        metadata = await pacs.series_metadata(study.study_instance_uid, str(dess.SeriesInstanceUID))
        images = await pacs.retrieve_series(study.study_instance_uid, str(dess.SeriesInstanceUID))
    assert len(metadata) == len(images) == 8
    study_date = datetime.strptime(images[0].StudyDate, "%Y%m%d").date()
    assert study_date == spec.study_date

    # 3. The analysis of that study, as the pipeline will return it.
    result = example_result(spec.study_instance_uid, study_date).model_copy(
        update={
            "series": [
                SeriesUsed(
                    role="morphology",
                    series_instance_uids=[str(dess.SeriesInstanceUID)],
                    description=str(dess.SeriesDescription),
                )
            ]
        }
    )
    bundle = analysis_bundle(
        result,
        patient_reference=f"Patient/{chart.patient_id}",
        imaging_study_reference=f"ImagingStudy/{study.fhir_id}",
    )

    # 4. Post it; read back by search; post again.
    async with FhirClient(fhir_server.url, token=token) as client:
        before = await counts(client, chart.patient_id)
        first = TransactionSummary.of(bundle, await client.transaction(bundle))
        after_first = await counts(client, chart.patient_id)
        second = TransactionSummary.of(bundle, await client.transaction(bundle))
        after_second = await counts(client, chart.patient_id)
        [report] = await client.search("DiagnosticReport", {"subject": f"Patient/{chart.patient_id}"})
        observations = await client.search(
            "Observation", {"subject": f"Patient/{chart.patient_id}", "category": "imaging"}
        )
        for entry in bundle.entry:
            if entry.resource.get_resource_type() == "Observation":
                ident = entry.resource.identifier[0]
                found = await client.search("Observation", {"identifier": f"{ident.system}|{ident.value}"})
                assert len(found) == 1

    n = len(BIOMARKERS)
    assert first.created == {"Device": 1, "Observation": n, "RiskAssessment": 2, "DiagnosticReport": 1}
    assert first.existing == {}
    assert second.created == {}
    assert second.existing == first.created
    assert after_first == {
        "imaging Observation": n,
        "RiskAssessment": 2,
        "DiagnosticReport": 1,
        "Device": before["Device"] + 1,
    }
    assert after_second == after_first
    # References inside the transaction were resolved to the server's own ids.
    observation_ids = {f"Observation/{o.id}" for o in observations}
    assert {r.reference for r in report.result} == observation_ids
    assert report.imagingStudy[0].reference == f"ImagingStudy/{study.fhir_id}"
    assert all(o.device.reference.startswith("Device/") for o in observations)
    assert {o.derivedFrom[0].reference for o in observations} == {f"ImagingStudy/{study.fhir_id}"}
    assert report.conclusionCode[0].coding[0].code == "routine"
