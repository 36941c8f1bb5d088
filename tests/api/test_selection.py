"""Which orders and which studies the service reacts to."""

from __future__ import annotations

from datetime import date

from app.api.orders import is_relevant, refers_to_orthopaedics
from app.api.patient import choose_knee_mri
from app.clients.fhir import ImagingStudyRef
from app.settings import DEFAULT_ORDER_CODES
from cds_hooks import parse_context
from tests.api.fhir_data import KNEE_MRI_ORDER, MEDICATION_ORDER

CODES = frozenset(DEFAULT_ORDER_CODES)


def order(**fields) -> dict:
    return {**KNEE_MRI_ORDER, **fields}


def test_relevant_orders_by_code_or_body_site() -> None:
    assert is_relevant(KNEE_MRI_ORDER, CODES)
    ct_liver = order(code={"coding": [{"system": "http://loinc.org", "code": "24814-6", "display": "CT Liver"}]})
    assert not is_relevant(ct_liver, CODES)
    knee = {"coding": [{"system": "http://snomed.info/sct", "code": "72696002"}]}
    knee_site = order(code={"text": "MRI"}, bodySite=[knee])
    assert is_relevant(knee_site, CODES)
    assert not is_relevant(order(code={"text": "MRI knee"}), CODES)  # free text alone is not enough
    assert not is_relevant(order(status="revoked"), CODES)
    assert not is_relevant(MEDICATION_ORDER, CODES)


def test_existing_referral_suppresses_the_suggestion() -> None:
    referral = order(id="ref-1", code={"coding": [{"system": "http://snomed.info/sct", "code": "308481009"}]})
    draft = {"resourceType": "Bundle", "entry": [{"resource": referral}]}
    context = parse_context("order-sign", {"userId": "Practitioner/1", "patientId": "p", "draftOrders": draft})
    assert refers_to_orthopaedics(context)


def study(uid: str, started: date | None, description: str | None, modalities=("MR",), url="http://pacs/dicom-web"):
    return ImagingStudyRef(fhir_id=uid, study_instance_uid=uid, started=started, modalities=modalities,
                           description=description, endpoint_address=url, dicomweb_url=url)


def test_newest_fetchable_knee_mri_wins() -> None:
    studies = [study("1.1", date(2023, 1, 1), "MR KNEE LEFT"), study("1.2", date(2024, 5, 1), "MR Knee right"),
               study("1.3", date(2025, 1, 1), "MR SHOULDER"), study("1.4", date(2025, 2, 1), "CT KNEE", ("CT",)),
               study("1.5", date(2025, 3, 1), "MR KNEE", url=None)]
    assert choose_knee_mri(studies, None).study_instance_uid == "1.2"
    assert choose_knee_mri(studies, "http://configured-pacs/dicom-web").study_instance_uid == "1.5"
    assert choose_knee_mri(studies[2:4], None) is None


async def test_facts_from_a_repeated_prefetch_are_reused(settings) -> None:
    from app.api.patient import study_gatherer
    from cds_hooks import CdsRequest
    from tests.api.fhir_data import BIRTH_DATE, hook_body, patient, prefetch

    gather = study_gatherer(settings)
    body = hook_body()
    request = CdsRequest.model_validate(body)
    context = parse_context(request.hook, request.context)
    first = await gather(request, context)
    assert first.study.study_instance_uid == "1.2.826.0.1.3680043.8.498.12345"
    assert first.study_date == date(2024, 2, 1)
    assert await gather(CdsRequest.model_validate({**body, "hookInstance": hook_body()["hookInstance"]}),
                        context) is first
    older = {**patient(), "birthDate": BIRTH_DATE.replace("1961", "1951")}
    changed = CdsRequest.model_validate({**body, "prefetch": prefetch(patient=older)})
    assert (await gather(changed, context)).demographics.age_years > first.demographics.age_years + 9
