"""The analysis transaction Bundle: exact resource content, references that resolve, stable identities."""

from __future__ import annotations

import json
from datetime import date

import pytest
from fhir.resources.R4B.bundle import Bundle

from app.outputs.fhir_bundle import analysis_bundle, bundle_json, measurement_model_versions
from app.outputs.fhir_codes import DCM, LATERALITY_EXTENSION, MSKCDS_SYSTEM, SNOMED, UCUM
from app.outputs.fhir_common import full_url
from app.outputs.fhir_risk import add_months
from tests.outputs.analysis_examples import BIOMARKERS, example_result

STUDY_UID = "1.2.826.0.1.3680043.8.498.1"
AIAST = [
    {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "code": "AIAST",
        "display": "Artificial Intelligence asserted",
    }
]


def bundle_dict(**kwargs: object) -> dict:
    bundle = analysis_bundle(example_result(STUDY_UID), patient_reference="Patient/p1", **kwargs)  # type: ignore[arg-type]
    return json.loads(bundle_json(bundle))


def by_type(document: dict, resource_type: str) -> list[dict]:
    return [e for e in document["entry"] if e["resource"]["resourceType"] == resource_type]


def test_one_transaction_with_every_resource() -> None:
    document = bundle_dict()
    assert document["resourceType"] == "Bundle"
    assert document["type"] == "transaction"
    counts = {t: len(by_type(document, t)) for t in ("Device", "ImagingStudy", "Observation", "RiskAssessment")}
    assert counts == {"Device": 1, "ImagingStudy": 1, "Observation": len(BIOMARKERS), "RiskAssessment": 2}
    assert len(by_type(document, "DiagnosticReport")) == 1
    assert len(document["entry"]) == 1 + 1 + len(BIOMARKERS) + 2 + 1


def test_every_entry_is_a_conditional_create_on_its_identifier() -> None:
    for entry in bundle_dict()["entry"]:
        resource, request = entry["resource"], entry["request"]
        assert request["method"] == "POST"
        assert request["url"] == resource["resourceType"]
        assert entry["fullUrl"].startswith("urn:uuid:")
        if resource["resourceType"] == "ImagingStudy":
            assert request["ifNoneExist"] == f"identifier=urn:dicom:uid|urn:oid:{STUDY_UID}"
        else:
            [ident] = resource["identifier"]
            assert ident["system"] == "urn:ietf:rfc:3986"
            assert ident["value"].startswith("urn:uuid:")
            assert entry["fullUrl"] == full_url(ident["value"]) != ident["value"]
            assert request["ifNoneExist"] == f"identifier=urn:ietf:rfc:3986|{ident['value']}"
            assert resource["meta"]["security"] == AIAST


def test_every_internal_reference_resolves_to_an_entry() -> None:
    document = bundle_dict()
    full_urls = {entry["fullUrl"] for entry in document["entry"]}
    text = json.dumps(document)
    references = {part.split('"')[0] for part in text.split('"reference": "')[1:]}
    internal = {ref for ref in references if ref.startswith("urn:uuid:")}
    assert internal <= full_urls
    assert references - internal == {"Patient/p1"}


def test_t2_observation_content() -> None:
    document = bundle_dict()
    device = by_type(document, "Device")[0]["fullUrl"]
    study = by_type(document, "ImagingStudy")[0]["fullUrl"]
    t2 = next(
        e["resource"]
        for e in by_type(document, "Observation")
        if e["resource"]["code"]["coding"][0]["code"] == "t2_mean"
    )
    assert t2["status"] == "final"
    assert t2["category"] == [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "imaging",
                    "display": "Imaging",
                }
            ]
        }
    ]
    assert t2["code"]["coding"] == [
        {"system": MSKCDS_SYSTEM, "code": "t2_mean", "display": "Mean T2 relaxation time"},
        {"system": DCM, "code": "113065", "display": "T2"},
    ]
    assert t2["valueQuantity"] == {"value": 38.5, "unit": "ms", "system": UCUM, "code": "ms"}
    assert t2["bodySite"]["coding"] == [
        {"system": SNOMED, "code": "49076000", "display": "Knee joint"},
        {"system": MSKCDS_SYSTEM, "code": "cMF", "display": "Cartilage of the central (weight-bearing) medial femur"},
    ]
    assert t2["bodySite"]["extension"] == [
        {
            "url": LATERALITY_EXTENSION,
            "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "24028007", "display": "Right"}]},
        }
    ]
    assert t2["subject"] == {"reference": "Patient/p1"}
    assert t2["effectiveDateTime"] == "2024-03-15"
    assert t2["issued"] == "2024-03-15T12:30:00Z"
    assert t2["device"] == {"reference": device}
    assert t2["partOf"] == t2["derivedFrom"] == [{"reference": study}]
    assert t2["method"]["coding"][0]["code"] == "ai-segmentation-measurement"


def test_units_and_standard_codes_per_biomarker() -> None:
    observations = [e["resource"] for e in bundle_dict()["entry"] if e["resource"]["resourceType"] == "Observation"]
    units = {o["code"]["coding"][0]["code"]: o["valueQuantity"]["code"] for o in observations}
    assert units == {
        "cartilage_thickness_mean": "mm",
        "cartilage_volume": "mm3",
        "denuded_area_pct": "%",
        "bone_volume": "mm3",
        "meniscus_volume": "mm3",
        "t2_mean": "ms",
        "t2_sd": "ms",
    }
    femur = next(o for o in observations if o["code"]["coding"][0]["code"] == "bone_volume")
    assert femur["code"]["coding"][1] == {"system": SNOMED, "code": "118565006", "display": "Volume"}
    assert femur["bodySite"]["coding"][0] == {"system": SNOMED, "code": "71341001", "display": "Femur"}
    t2_sd = next(o for o in observations if o["code"]["coding"][0]["code"] == "t2_sd")
    assert len(t2_sd["code"]["coding"]) == 1  # no standard code means "SD of T2"


def test_risk_assessments() -> None:
    document = bundle_dict()
    observations = {
        (e["resource"]["code"]["coding"][0]["code"], e["resource"]["bodySite"]["coding"][1]["code"]): e["fullUrl"]
        for e in by_type(document, "Observation")
    }
    oa, tkr = (e["resource"] for e in by_type(document, "RiskAssessment"))
    assert oa["prediction"] == [
        {
            "outcome": {
                "coding": [{"system": MSKCDS_SYSTEM, "code": "incident_oa", "display": "Incident knee osteoarthritis"}]
            },
            "probabilityDecimal": 0.18,
            "whenPeriod": {"start": "2024-03-15", "end": "2028-03-15"},
            "rationale": "Incident knee osteoarthritis within 48 months: 18.0% (95% CI 12.0%-25.0%); "
            "from demographics alone 14.0%.",
        }
    ]
    assert oa["basis"] == [{"reference": observations[("cartilage_thickness_mean", "cMF")]}]
    assert oa["method"]["coding"][0]["code"] == "logistic"
    assert oa["performer"] == {"reference": by_type(document, "Device")[0]["fullUrl"]}
    assert tkr["prediction"][0]["whenPeriod"] == {"start": "2024-03-15", "end": "2029-03-15"}
    assert {b["reference"] for b in tkr["basis"]} == set(observations.values())  # no biomarker among its factors


def test_diagnostic_report() -> None:
    document = bundle_dict()
    report = by_type(document, "DiagnosticReport")[0]["resource"]
    assert report["category"][0]["coding"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD", "display": "Radiology"}
    ]
    assert report["conclusionCode"][0]["coding"][0]["code"] == "routine"
    assert [r["reference"] for r in report["result"]] == [e["fullUrl"] for e in by_type(document, "Observation")]
    assert report["imagingStudy"] == [{"reference": by_type(document, "ImagingStudy")[0]["fullUrl"]}]
    assert report["conclusion"].splitlines() == [
        "11 knee MRI biomarkers measured automatically (AI-derived; verify before use).",
        "Triage: Routine radiologist review (stage cartilage-thickness).",
        "- no cartilage plate thinner than the urgent threshold",
        "Incident knee osteoarthritis within 48 months: 18.0% (95% CI 12.0%-25.0%).",
        "Total knee replacement within 60 months: 4.0% (95% CI 2.0%-7.0%).",
    ]


def test_a_known_imaging_study_is_referenced_not_created() -> None:
    document = bundle_dict(imaging_study_reference="ImagingStudy/42")
    assert by_type(document, "ImagingStudy") == []
    assert by_type(document, "DiagnosticReport")[0]["resource"]["imagingStudy"] == [{"reference": "ImagingStudy/42"}]


def test_identities_are_stable_and_follow_the_models() -> None:
    first, again = bundle_dict(), bundle_dict()
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in again["entry"]]
    result = example_result(STUDY_UID)
    assert measurement_model_versions(result) == {"knee-sam": "0.3.0"}
    new_risk_model = result.model_copy(update={"model_versions": {**result.model_versions, "risk-tkr": "2.0.0"}})
    changed = json.loads(bundle_json(analysis_bundle(new_risk_model, patient_reference="Patient/p1")))
    same_observations = [e["fullUrl"] for e in by_type(changed, "Observation")] == [
        e["fullUrl"] for e in by_type(first, "Observation")
    ]
    assert same_observations  # biomarkers do not depend on a risk model
    new_segmenter = result.model_copy(update={"model_versions": {**result.model_versions, "knee-sam": "0.4.0"}})
    resegmented = json.loads(bundle_json(analysis_bundle(new_segmenter, patient_reference="Patient/p1")))
    assert not {e["fullUrl"] for e in by_type(resegmented, "Observation")} & {
        e["fullUrl"] for e in by_type(first, "Observation")
    }


def test_bundle_json_round_trips() -> None:
    bundle = analysis_bundle(example_result(STUDY_UID), patient_reference="Patient/p1")
    assert Bundle.model_validate_json(bundle_json(bundle)) == bundle


def test_patient_reference_must_name_a_patient() -> None:
    with pytest.raises(ValueError) as caught:
        analysis_bundle(example_result(STUDY_UID), patient_reference="p1")
    assert str(caught.value) == "patient_reference must look like 'Patient/<id>', got 'p1'"


def test_add_months_clips_to_month_end() -> None:
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2024, 3, 15), 48) == date(2028, 3, 15)
    assert add_months(date(2023, 11, 30), 3) == date(2024, 2, 29)
