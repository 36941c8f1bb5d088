"""The demo's synthetic patient as FHIR R4 JSON, sent as hook prefetch the way an EHR would.

Demographics (age, sex, weight and height, so BMI) feed the risk models; the ImagingStudy and its
Endpoint tell the service where the knee MRI is (the demo's own DICOMweb service). All values are
invented: no real person is described.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

PATIENT_ID = "demo-patient-1"
_FHIR_BASE = "https://ehr.demo.mskcds.invalid/fhir"
_LOINC = "http://loinc.org"


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"{_FHIR_BASE}/{resource['resourceType']}/{resource['id']}", "resource": resource}


def _searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [_entry(r) for r in resources]}


def _body_measurement(code: str, display: str, value: float, unit: str, when: date) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "id": f"demo-{code}", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "vital-signs"}]}],
        "code": {"coding": [{"system": _LOINC, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"}, "effectiveDateTime": when.isoformat(),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }  # fmt: skip


def prefetch(study_instance_uid: str, study_date: date, dicomweb_url: str) -> dict[str, Any]:
    """``patient``, ``bodyMeasurements`` and ``imagingStudies``: the keys the services' templates name."""
    patient = {"resourceType": "Patient", "id": PATIENT_ID, "gender": "female", "birthDate": "1962-05-17",
               "name": [{"family": "Demo", "given": ["Knee"]}]}
    study = {
        "resourceType": "ImagingStudy", "id": "demo-knee-mri", "status": "available",
        "subject": {"reference": f"Patient/{PATIENT_ID}"}, "started": f"{study_date.isoformat()}T09:00:00Z",
        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{study_instance_uid}"}],
        "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "MR"}],
        "description": "MR KNEE RIGHT (msk-cds phantom)", "endpoint": [{"reference": "Endpoint/demo-pacs"}],
    }  # fmt: skip
    endpoint = {
        "resourceType": "Endpoint", "id": "demo-pacs", "status": "active", "address": dicomweb_url,
        "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                           "code": "dicom-wado-rs"},
        "payloadType": [{"text": "DICOM"}],
    }  # fmt: skip
    return {
        "patient": patient,
        "bodyMeasurements": _searchset(
            _body_measurement("29463-7", "Body weight", 86.0, "kg", study_date),
            _body_measurement("8302-2", "Body height", 168.0, "cm", study_date),
        ),
        "imagingStudies": _searchset(study, endpoint),
    }


def order_sign_request(prefetch_values: dict[str, Any]) -> dict[str, Any]:
    """An ``order-sign`` call for a knee MRI order (LOINC 24802-1) of the demo patient."""
    order = {"resourceType": "ServiceRequest", "id": "demo-order-1", "status": "draft", "intent": "order",
             "subject": {"reference": f"Patient/{PATIENT_ID}"},
             "code": {"coding": [{"system": _LOINC, "code": "24802-1", "display": "MR Knee"}]}}
    return {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/demo-surgeon", "patientId": PATIENT_ID,
                    "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}},
        "prefetch": prefetch_values,
    }
