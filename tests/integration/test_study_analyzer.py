"""The StudyAnalyzer against real servers: a phantom study in Orthanc, the patient's chart on the FHIR server.

The analyzer reads the study over DICOMweb (metadata, then the chosen series), the person's age, sex and
BMI from the chart, and posts one transaction: an imaging Observation per biomarker, a RiskAssessment
per outcome and a DiagnosticReport, each once even when posted again.
"""

from __future__ import annotations

from datetime import date

import pydicom
import pytest

from app.analysis import StudyRef
from app.analysis.study import StudyAnalyzer, post_outputs
from app.clients.fhir import FhirClient
from app.clients.http import run_sync
from app.settings import Settings
from tests.integration.fhir_seed import seed_chart
from tests.integration.servers import FhirServer, OrthancServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def resources(fhir_server: FhirServer, token: str, patient_id: str) -> dict[str, list]:
    subject = {"subject": f"Patient/{patient_id}"}
    async with FhirClient(fhir_server.url, token=token) as client:
        return {
            "Observation": await client.search("Observation", {**subject, "category": "imaging", "_count": "200"}),
            "RiskAssessment": await client.search("RiskAssessment", subject),
            "DiagnosticReport": await client.search("DiagnosticReport", subject),
        }


def test_analysis_of_a_study_in_orthanc_lands_on_the_fhir_server(
    orthanc: OrthancServer, fhir_server: FhirServer, phantom_factory
) -> None:
    folder = phantom_factory(seed=21, side="right", grade=3)
    files = sorted(folder.rglob("*.dcm"))
    orthanc.upload([path.read_bytes() for path in files])
    header = pydicom.dcmread(files[0], stop_before_pixels=True)
    study_date = date(int(header.StudyDate[:4]), int(header.StudyDate[4:6]), int(header.StudyDate[6:]))
    token = fhir_server.token()
    chart = seed_chart(fhir_server.url, token, birth_date="1958-05-02", gender="female",
                       measurements=(("29463-7", 82.0, "kg", study_date.isoformat()),
                                     ("8302-2", 165.0, "cm", study_date.isoformat())))
    # The test FHIR server (Medplum's in-memory repository, one request at a time) answers this
    # transaction of ~150 conditional creates in 60-90 s on a busy 2-core machine: past the 60 s read
    # timeout meant for production servers, which is not what this test is about.
    settings = Settings(
        dicomweb_user=orthanc.user, dicomweb_password=orthanc.password, fhir_token=token, upstream_read_timeout_s=300
    )
    ref = StudyRef(study_instance_uid=str(header.StudyInstanceUID), dicomweb_url=orthanc.dicomweb_url,
                   patient_reference=f"Patient/{chart.patient_id}", fhir_url=fhir_server.url)

    result = StudyAnalyzer(settings)(ref)

    assert not [note for note in result.notes if note.startswith("risk not estimated")]
    assert [r.outcome for r in result.risk] == ["incident_oa", "tkr"]
    found = run_sync(resources(fhir_server, token, chart.patient_id))
    assert len(found["Observation"]) == len(result.measurements.biomarkers) > 20
    assert len(found["RiskAssessment"]) == 2 and len(found["DiagnosticReport"]) == 1
    posted = {(o.code.coding[0].code, o.bodySite.coding[1].code): float(o.valueQuantity.value)
              for o in found["Observation"]}
    for biomarker in result.measurements.biomarkers:
        assert posted[(biomarker.name.value, biomarker.region)] == pytest.approx(biomarker.value, rel=1e-6)
    [report] = found["DiagnosticReport"]
    assert result.triage is not None and report.conclusionCode[0].coding[0].code == result.triage.priority

    post_outputs(result, fhir_server.url, ref.patient_reference or "", settings)  # a retried job posts again
    again = run_sync(resources(fhir_server, token, chart.patient_id))
    assert {kind: len(found) for kind, found in again.items()} == {kind: len(f) for kind, f in found.items()}
