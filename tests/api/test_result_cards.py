"""The memo of cards per stored result and patient: reused for the same patient and inputs, never across
patients, recomputed for a new result; and the card ids always those of the call being answered."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.servicerequest import ServiceRequest

from app.api.cards import CardBuilder, card_uuid, issue
from app.api.memo import RecentItems
from app.api.result_cards import ResultCards
from schemas.analysis import AnalysisResult, Demographics
from schemas.biomarkers import Biomarker, BiomarkerName, BiomarkerSet
from schemas.clinical import RiskResult, TriageResult
from tests.api.conftest import SERVICE, bearer
from tests.api.fhir_data import PATIENT_ID, STUDY_UID, hook_body, patient, prefetch
from tests.cds_hooks.client import CdsTestClient

PV = SERVICE["patient-view"]


class AgeRiskModels:
    """Risks that follow the patient's age (OA: age / 400, TKR: age / 200), counting their evaluations."""

    versions: ClassVar[dict[str, str]] = {"risk-age": "1"}

    def __init__(self) -> None:
        self.evaluations = 0

    def risk(self, biomarkers, demographics, prior=None, months_since_prior=None) -> list[RiskResult]:
        self.evaluations += 1
        age = demographics.age_years
        common = {"method": "logistic", "used_prior": False, "model_id": "risk-age", "model_version": "1",
                  "ci_low": 0.0, "ci_high": 1.0, "demographics_only_probability": 0.1}
        return [RiskResult(outcome="incident_oa", horizon_months=48, probability=round(age / 400, 3), **common),
                RiskResult(outcome="tkr", horizon_months=60, probability=round(age / 200, 3), **common)]


@pytest.fixture
def clinical() -> AgeRiskModels:
    return AgeRiskModels()


def body_for(patient_id: str, birth_date: str) -> dict:
    body = hook_body(prefetch=prefetch(patient={**patient(), "id": patient_id, "birthDate": birth_date}))
    body["context"] = {**body["context"], "patientId": patient_id}
    return body


def call(client: TestClient, cds: CdsTestClient, body: dict) -> list[dict]:
    path = f"/cds-services/{PV}"
    response = client.post(path, json=body, headers=bearer(cds, path))
    assert response.status_code == 200, response.text
    return response.json()["cards"]


def without_ids(cards: list[dict]) -> list[dict]:
    return [{**card, "uuid": None, "suggestions": [{**s, "uuid": None} for s in card.get("suggestions", [])]}
            for card in cards]


def test_two_patients_never_get_each_others_cards(app_client: TestClient, cds_client: CdsTestClient,
                                                  clinical: AgeRiskModels) -> None:
    call(app_client, cds_client, body_for(PATIENT_ID, "1961-07-14"))  # queues the study both patients name
    assert app_client.portal.call(app_client.app_state.runtime.analysis.wait_for, STUDY_UID, 20.0) is not None
    evaluations = clinical.evaluations
    bodies = {"pat-4711": body_for("pat-4711", "1961-07-14"), "pat-0815": body_for("pat-0815", "1941-07-14")}
    answers: dict[str, list[list[dict]]] = {"pat-4711": [], "pat-0815": []}
    for _ in range(2):
        for patient_id, body in bodies.items():
            body = {**body, "hookInstance": str(uuid.uuid4())}
            cards = call(app_client, cds_client, body)
            assert [c["uuid"] for c in cards] == [card_uuid(body["hookInstance"], kind)
                                                  for kind in ("triage", "risk-incident_oa", "risk-tkr")]
            assert cards[2]["suggestions"][0]["uuid"] == card_uuid(body["hookInstance"], "suggestion-referral")
            answers[patient_id].append(cards)
    assert clinical.evaluations - evaluations == 2  # once per patient, not once per call
    younger, older = answers["pat-4711"][0], answers["pat-0815"][0]
    assert [c["summary"] for c in younger[1:]] == ["OA risk within 4 years: 16% (demographics alone: 10%)",
                                                   "TKR risk within 5 years: 31% (demographics alone: 10%)"]
    assert [c["summary"] for c in older[1:]] == ["OA risk within 4 years: 21% (demographics alone: 10%)",
                                                 "TKR risk within 5 years: 41% (demographics alone: 10%)"]
    assert "age 62, female" in younger[2]["detail"] and "age 82, female" in older[2]["detail"]
    for patient_id, (first, second) in answers.items():
        assert without_ids(first) == without_ids(second)  # the reused cards say exactly what the first ones said
        referral = ServiceRequest.model_validate(second[2]["suggestions"][0]["actions"][0]["resource"])
        assert referral.subject.reference == f"Patient/{patient_id}"


def result(uid: str = "1.2.3") -> AnalysisResult:
    biomarkers = BiomarkerSet(laterality="left", laterality_source="dicom", biomarkers=[
        Biomarker.of(BiomarkerName.CARTILAGE_THICKNESS_MEAN, "cMF", 2.0)])
    triage = TriageResult(priority="routine", stage="cartilage-thickness", stage_index=0, reasons=["typical"],
                          model_id="triage-test", model_version="1")
    return AnalysisResult(study_instance_uid=uid, model_versions={"m": "1"}, measurements=biomarkers, triage=triage,
                          created_at=datetime.now(UTC))


def memo_cards(models: AgeRiskModels, memo: RecentItems | None = None) -> ResultCards:
    return ResultCards(models, CardBuilder(base_url="https://cds.test", high_risk={"tkr": 0.2}), memo)  # type: ignore[arg-type]


def test_same_demographics_other_patient_is_computed_for_that_patient() -> None:
    models, stored = AgeRiskModels(), result()
    cards = memo_cards(models)
    demographics = Demographics(age_years=70.0, sex="male", bmi=27.0)
    for patient_id in ("pat-a", "pat-b", "pat-a", "pat-b"):
        answer = cards.answer(stored, demographics, patient_id, suggest_referral=True)
        [suggestion] = answer.drafts[2].card.suggestions or []
        assert suggestion.actions[0].resource["subject"] == {"reference": f"Patient/{patient_id}"}  # type: ignore[index]
    assert models.evaluations == 2


def test_every_input_is_part_of_the_key() -> None:
    models, stored = AgeRiskModels(), result()
    cards = memo_cards(models)
    demographics = Demographics(age_years=70.0, sex="male", bmi=27.0)
    first = cards.answer(stored, demographics, "pat-a", suggest_referral=True)
    assert cards.answer(stored, demographics, "pat-a", suggest_referral=True) is first
    no_referral = cards.answer(stored, demographics, "pat-a", suggest_referral=False)
    assert no_referral.drafts[2].card.suggestions is None
    heavier = cards.answer(stored, demographics.model_copy(update={"bmi": 31.0}), "pat-a", suggest_referral=True)
    assert "Inputs: knee MRI biomarkers, age 70, male, BMI 31.0." in (heavier.drafts[2].card.detail or "")
    assert models.evaluations == 3
    assert cards.answer(result(), demographics, "pat-a", suggest_referral=True) is not first  # re-read result
    assert models.evaluations == 4


def test_issue_gives_each_call_its_own_ids_without_touching_the_draft() -> None:
    cards = memo_cards(AgeRiskModels())
    answer = cards.answer(result(), Demographics(age_years=70.0, sex="male", bmi=27.0), "pat-a",
                          suggest_referral=True)
    one, other = str(uuid.uuid4()), str(uuid.uuid4())
    first, second = issue(answer.drafts, one), issue(answer.drafts, other)
    assert [c.uuid for c in first] == [card_uuid(one, d.kind) for d in answer.drafts]
    assert [c.uuid for c in second] == [card_uuid(other, d.kind) for d in answer.drafts]
    assert first[2].suggestions[0].uuid == card_uuid(one, "suggestion-referral")  # type: ignore[index]
    assert answer.drafts[2].card.uuid is None and answer.drafts[2].card.suggestions[0].uuid is None  # type: ignore[index]
    assert [c.model_copy(update={"uuid": None}) for c in first[:2]] == [d.card for d in answer.drafts[:2]]


def test_recent_items_expire_and_are_bounded() -> None:
    items: RecentItems[str, int] = RecentItems(capacity=2, ttl_s=0.2)
    items.put("a", 1)
    items.put("b", 2)
    assert items.get("a") == 1  # "a" is now the most recently used
    items.put("c", 3)
    assert (items.get("a"), items.get("b"), items.get("c")) == (1, None, 3)
    time.sleep(0.25)
    assert items.get("a") is None and len(items) == 1
