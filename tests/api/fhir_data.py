"""Hand-built FHIR R4 prefetch for the API tests: a patient with a right-knee MRI, weight and height,
and the hook bodies an EHR would send (PHI-like values on purpose, for the no-PHI-in-logs test)."""

from __future__ import annotations

import uuid
from typing import Any

PATIENT_ID = "pat-4711"
FAMILY, GIVEN, MRN, BIRTH_DATE = "Beeblebrox", "Zaphod", "MRN-99887766", "1961-07-14"
STUDY_UID = "1.2.826.0.1.3680043.8.498.12345"
DICOMWEB = "http://127.0.0.1:9/dicom-web"
FHIR_SERVER = "https://fhir.hospital.test/r4"
ACCESS_TOKEN = "fhir-access-token-s3cr3t"


def patient() -> dict[str, Any]:
    return {"resourceType": "Patient", "id": PATIENT_ID, "gender": "female", "birthDate": BIRTH_DATE,
            "identifier": [{"system": "urn:oid:1.2.3.4", "value": MRN}],
            "name": [{"family": FAMILY, "given": [GIVEN]}]}


def _observation(code: str, value: float, unit: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": f"obs-{code}", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{PATIENT_ID}"}, "effectiveDateTime": "2024-01-10",
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"fullUrl": f"{FHIR_SERVER}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources]}


def imaging_studies(description: str = "MR KNEE RIGHT W/O CONTRAST", uid: str = STUDY_UID) -> dict[str, Any]:
    study = {"resourceType": "ImagingStudy", "id": "is-1", "status": "available",
             "subject": {"reference": f"Patient/{PATIENT_ID}"}, "started": "2024-02-01T09:30:00Z",
             "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"}],
             "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "MR"}],
             "description": description, "endpoint": [{"reference": "Endpoint/pacs"}]}
    endpoint = {"resourceType": "Endpoint", "id": "pacs", "status": "active", "address": DICOMWEB,
                "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                                   "code": "dicom-wado-rs"},
                "payloadType": [{"text": "DICOM"}]}
    return searchset(study, endpoint)


def prefetch(**overrides: Any) -> dict[str, Any]:
    values = {"patient": patient(),
              "bodyMeasurements": searchset(_observation("29463-7", 82.0, "kg"), _observation("8302-2", 170.0, "cm")),
              "imagingStudies": imaging_studies()}
    values.update(overrides)
    return values


KNEE_MRI_ORDER = {"resourceType": "ServiceRequest", "id": "mri-1", "status": "draft", "intent": "order",
                  "subject": {"reference": f"Patient/{PATIENT_ID}"},
                  "code": {"coding": [{"system": "http://loinc.org", "code": "24802-1", "display": "MR Knee"}]}}
MEDICATION_ORDER = {"resourceType": "MedicationRequest", "id": "med-1", "status": "draft", "intent": "order",
                    "subject": {"reference": f"Patient/{PATIENT_ID}"},
                    "medicationCodeableConcept": {"text": "Ibuprofen 400 mg"}}


def hook_body(hook: str = "patient-view", *, orders: list[dict[str, Any]] | None = None,
              selections: list[str] | None = None, with_token: bool = True, **fields: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/dr-1", "patientId": PATIENT_ID}
    if hook != "patient-view":
        context["draftOrders"] = {"resourceType": "Bundle", "entry": [{"resource": o} for o in orders or []]}
    if hook == "order-select":
        context["selections"] = selections or [f"{o['resourceType']}/{o['id']}" for o in orders or []]
    body: dict[str, Any] = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context, "prefetch": prefetch()}
    if with_token:
        body["fhirServer"] = FHIR_SERVER
        body["fhirAuthorization"] = {"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 300,
                                     "scope": "patient/*.read", "subject": "mskcds"}
    body.update(fields)
    return body
