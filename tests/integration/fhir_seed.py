"""Put a patient's chart on the FHIR test server: Patient, body measurements, ImagingStudy + Endpoint.

Written with plain httpx (not the client under test), as an EHR would have filled its server.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


@dataclass(frozen=True)
class Chart:
    patient_id: str
    imaging_study_id: str | None
    endpoint_id: str | None


def _create(client: httpx.Client, resource: dict[str, Any]) -> str:
    present = {key: value for key, value in resource.items() if value is not None}
    response = client.post(f"/{resource['resourceType']}", json=present)
    response.raise_for_status()
    return str(response.json()["id"])


def body_measurement(patient_id: str, loinc: str, value: float, unit: str, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def seed_chart(
    base_url: str,
    token: str,
    *,
    birth_date: str = "1964-03-15",
    gender: str = "female",
    measurements: tuple[tuple[str, float, str, str], ...] = (),
    study_instance_uid: str | None = None,
    study_date: date | None = None,
    dicomweb_url: str | None = None,
) -> Chart:
    """Create the chart; ``measurements`` are (LOINC, value, UCUM unit, date) tuples."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0) as client:
        patient_id = _create(
            client,
            {
                "resourceType": "Patient",
                "identifier": [{"system": "urn:mskcds:test-mrn", "value": uuid.uuid4().hex}],
                "gender": gender,
                "birthDate": birth_date,
            },
        )
        for loinc, value, unit, when in measurements:
            _create(client, body_measurement(patient_id, loinc, value, unit, when))
        endpoint_id = study_id = None
        if study_instance_uid is not None:
            if dicomweb_url is not None:
                endpoint_id = _create(
                    client,
                    {
                        "resourceType": "Endpoint",
                        "status": "active",
                        "connectionType": {
                            "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                            "code": "dicom-wado-rs",
                        },
                        "payloadType": [{"text": "DICOM"}],
                        "payloadMimeType": ["application/dicom"],
                        "address": dicomweb_url,
                    },
                )
            study_id = _create(
                client,
                {
                    "resourceType": "ImagingStudy",
                    "status": "available",
                    "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{study_instance_uid}"}],
                    "subject": {"reference": f"Patient/{patient_id}"},
                    "started": study_date.isoformat() if study_date else None,
                    "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "MR"}],
                    "description": "MRI knee",
                    "endpoint": [{"reference": f"Endpoint/{endpoint_id}"}] if endpoint_id else None,
                },
            )
    return Chart(patient_id=patient_id, imaging_study_id=study_id, endpoint_id=endpoint_id)
