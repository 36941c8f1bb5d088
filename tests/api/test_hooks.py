"""The three hooks end to end: in-progress card, then triage and risk cards; order relevance; errors."""

from __future__ import annotations

import time
from typing import ClassVar

from fastapi.testclient import TestClient
from fhir.resources.R4B.servicerequest import ServiceRequest

from app.analysis import StudyRef, create_analysis_service
from app.analysis.analyzer import NoSuitableKneeMri
from app.main import create_app
from app.settings import Settings
from schemas.analysis import AnalysisResult
from tests.api.conftest import BASE, CLOSED_FHIR_SERVER, SERVICE, bearer
from tests.api.fhir_data import (
    KNEE_MRI_ORDER,
    MEDICATION_ORDER,
    PATIENT_ID,
    STUDY_UID,
    hook_body,
    imaging_studies,
    prefetch,
    searchset,
)
from tests.cds_hooks.client import CdsTestClient


def post(client: TestClient, cds: CdsTestClient, hook: str, body: dict, service: str | None = None):
    path = f"/cds-services/{service or SERVICE[hook]}"
    return client.post(path, json=body, headers=bearer(cds, path))


def wait_for_analysis(client: TestClient) -> None:
    analysis = client.app_state.runtime.analysis
    assert client.portal.call(analysis.wait_for, STUDY_UID, 20.0) is not None


def test_unanalysed_study_then_cards(app_client: TestClient, cds_client: CdsTestClient) -> None:
    first = post(app_client, cds_client, "patient-view", hook_body())
    assert first.status_code == 200
    [card] = first.json()["cards"]
    assert card["indicator"] == "info" and card["source"] == {"label": "msk-cds knee MRI analysis",
                                                             "url": "http://cds.test/model-cards"}
    assert "The knee MRI of 2024-02-01 is queued for analysis" in card["detail"]
    wait_for_analysis(app_client)

    cards = post(app_client, cds_client, "patient-view", hook_body()).json()["cards"]
    assert [(c["summary"], c["indicator"]) for c in cards] == [
        ("Knee MRI triage: urgent review (right knee, cartilage-thickness)", "critical"),
        ("OA risk within 4 years: 18% (demographics alone: 11%)", "info"),
        ("TKR risk within 5 years: 27% (demographics alone: 8%)", "warning"),
    ]
    triage, _oa, tkr = cards
    assert "| cartilage thickness mean | cMF | 1.21 mm |" in triage["detail"]
    assert triage["links"] == [{"label": "Model card: triage-test", "url": "http://cds.test/model-cards/triage-test",
                                "type": "absolute"}]
    assert "| Probability | **27%** | 8% |" in tkr["detail"]
    assert "Inputs: knee MRI biomarkers, age 62, female, BMI 28.4." in tkr["detail"]
    [suggestion] = tkr["suggestions"]
    assert tkr["selectionBehavior"] == "at-most-one" and suggestion["isRecommended"] is True
    referral = suggestion["actions"][0]["resource"]
    assert ServiceRequest.model_validate(referral).subject.reference == f"Patient/{PATIENT_ID}"
    assert [r["display"] for r in tkr["overrideReasons"]] == [
        "Already under orthopaedic care", "Patient declines referral", "Estimate does not apply to this patient"]


def test_card_uuids_stable_for_a_retried_call(app_client: TestClient, cds_client: CdsTestClient) -> None:
    post(app_client, cds_client, "patient-view", hook_body())
    wait_for_analysis(app_client)
    body = hook_body()
    first, again = (post(app_client, cds_client, "patient-view", body).json() for _ in range(2))
    assert [c["uuid"] for c in first["cards"]] == [c["uuid"] for c in again["cards"]]
    assert len({c["uuid"] for c in first["cards"]}) == 3


def test_no_knee_mri(app_client: TestClient, cds_client: CdsTestClient) -> None:
    body = hook_body(prefetch=prefetch(imagingStudies=imaging_studies("CT CHEST")))
    [card] = post(app_client, cds_client, "patient-view", body).json()["cards"]
    assert card["summary"] == "No knee MRI on record to analyse; no MRI-based triage or risk estimate"


def test_orders_other_than_knee_imaging_get_no_cards(app_client: TestClient, cds_client: CdsTestClient) -> None:
    sign = post(app_client, cds_client, "order-sign", hook_body("order-sign", orders=[MEDICATION_ORDER]))
    assert sign.status_code == 200 and sign.json() == {"cards": []}
    select = hook_body("order-select", orders=[MEDICATION_ORDER, KNEE_MRI_ORDER],
                       selections=["MedicationRequest/med-1"])
    assert post(app_client, cds_client, "order-select", select).json() == {"cards": []}


def test_knee_mri_order_gets_cards(app_client: TestClient, cds_client: CdsTestClient) -> None:
    sign = post(app_client, cds_client, "order-sign", hook_body("order-sign", orders=[KNEE_MRI_ORDER]))
    assert sign.json()["cards"][0]["summary"].startswith("Knee MRI analysis in progress")
    wait_for_analysis(app_client)
    select = post(app_client, cds_client, "order-select", hook_body("order-select", orders=[KNEE_MRI_ORDER]))
    assert [c["summary"].split(":")[0] for c in select.json()["cards"]] == [
        "Knee MRI triage", "OA risk within 4 years", "TKR risk within 5 years"]


def test_missing_prefetch_and_no_fhir_server_is_412(app_client: TestClient, cds_client: CdsTestClient) -> None:
    body = hook_body(with_token=False, prefetch={"patient": prefetch()["patient"]})
    response = post(app_client, cds_client, "patient-view", body)
    assert response.status_code == 412
    issue = response.json()["issue"][0]
    assert issue["code"] == "required"
    assert issue["diagnostics"].startswith("missing bodyMeasurements, imagingStudies: not in the prefetch, and the "
                                           "request names no fhirServer")


def test_unreachable_fhir_server_is_502(app_client: TestClient, cds_client: CdsTestClient) -> None:
    body = hook_body(prefetch={}, fhirServer=CLOSED_FHIR_SERVER)
    response = post(app_client, cds_client, "patient-view", body)
    assert response.status_code == 502
    assert response.json()["issue"][0] == {"severity": "error", "code": "transient",
                                           "diagnostics": "the FHIR server failed; try again later"}


def test_invalid_requests_are_400_without_echoing_values(app_client: TestClient, cds_client: CdsTestClient) -> None:
    response = post(app_client, cds_client, "patient-view", hook_body(hookInstance="not-a-uuid-MRN-1"))
    assert response.status_code == 400
    assert response.json()["issue"][0]["diagnostics"] == "hookInstance: hookInstance must be a UUID"
    assert "MRN-1" not in response.text
    wrong_hook = post(app_client, cds_client, "patient-view", hook_body("order-sign", orders=[KNEE_MRI_ORDER]))
    assert wrong_hook.json()["issue"][0]["diagnostics"] == (
        "service 'mskcds-knee-patient-view' answers the 'patient-view' hook, not 'order-sign'")
    bad_context = hook_body("order-select", orders=[KNEE_MRI_ORDER], selections=["ServiceRequest/nope"])
    response = post(app_client, cds_client, "order-select", bad_context)
    assert response.json()["issue"][0]["diagnostics"] == (
        "context: selection 'ServiceRequest/nope' is not in draftOrders")


def test_unknown_service_is_404(app_client: TestClient, cds_client: CdsTestClient) -> None:
    response = post(app_client, cds_client, "patient-view", hook_body(), service="nope")
    assert response.status_code == 404
    assert response.json()["issue"][0]["diagnostics"] == "no CDS Service 'nope'; GET /cds-services lists them"


def test_discovery(app_client: TestClient, cds_client: CdsTestClient) -> None:
    services = app_client.get("/cds-services", headers=bearer(cds_client, "/cds-services")).json()["services"]
    assert [(s["id"], s["hook"]) for s in services] == [
        ("mskcds-knee-patient-view", "patient-view"), ("mskcds-knee-order-select", "order-select"),
        ("mskcds-knee-order-sign", "order-sign")]
    assert set(services[0]["prefetch"]) == {"patient", "bodyMeasurements", "imagingStudies"}



def test_missing_risk_inputs_give_a_card_not_an_error(app_client: TestClient, cds_client: CdsTestClient) -> None:
    post(app_client, cds_client, "patient-view", hook_body())
    wait_for_analysis(app_client)
    body = hook_body(prefetch=prefetch(bodyMeasurements=searchset()))
    cards = post(app_client, cds_client, "patient-view", body).json()["cards"]
    assert [c["summary"] for c in cards] == [
        "Knee MRI triage: urgent review (right knee, cartilage-thickness)",
        "OA / TKR risk not available: inputs missing from the record or the MRI analysis"]
    assert cards[1]["detail"].startswith("The risk models need: BMI, change of cartilage thickness mean (cMF).")


def test_body_that_is_not_json_is_400_after_authentication(app_client: TestClient, cds_client: CdsTestClient) -> None:
    path = f"/cds-services/{SERVICE['patient-view']}"
    response = app_client.post(path, content=b'{"hook": "patient-view",', headers=bearer(cds_client, path))
    assert response.status_code == 400
    assert response.json()["issue"][0]["diagnostics"] == (
        "body: Invalid JSON: EOF while parsing a value at line 1 column 24")
    not_an_object = app_client.post(path, content=b"[]", headers=bearer(cds_client, path))
    assert not_an_object.json()["issue"][0]["diagnostics"] == "body: Input should be an object"
    anonymous = app_client.post(path, content=b'{"hook": "patient-view",')
    assert anonymous.status_code == 401 and anonymous.content == b""  # nothing about the body to a stranger


class UnsuitableAnalyzer:
    """The study holds no morphology series, as the real analyzer finds for e.g. a 2D-only exam."""

    model_versions: ClassVar[dict[str, str]] = {"knee-seg-test": "0.1"}

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, ref: StudyRef) -> AnalysisResult:
        self.calls += 1
        raise NoSuitableKneeMri("no morphology acquisition: found series 3 'Sag PD FS' (2D)")


def test_unsuitable_study_gives_its_card_and_is_not_queued_again(settings: Settings, clinical,
                                                                  cds_client: CdsTestClient) -> None:
    analyzer = UnsuitableAnalyzer()
    app = create_app(settings, analysis=create_analysis_service(settings, analyzer), clinical=clinical)
    with TestClient(app, base_url=BASE) as client:
        first = post(client, cds_client, "patient-view", hook_body()).json()["cards"]
        assert first[0]["summary"].startswith("Knee MRI analysis in progress")
        analysis = app.state.runtime.analysis
        deadline = time.monotonic() + 20
        while (state := client.portal.call(analysis.job_state, STUDY_UID)).status != "failed":
            assert time.monotonic() < deadline, state
            time.sleep(0.05)
        for _ in range(2):
            [card] = post(client, cds_client, "patient-view", hook_body()).json()["cards"]
            assert card["summary"] == "No suitable knee MRI to analyse; no MRI-based triage or risk estimate"
            assert card["detail"].startswith("The knee MRI of 2024-02-01 cannot be analysed: no morphology "
                                             "acquisition: found series 3 'Sag PD FS' (2D).")
    assert analyzer.calls == 1
