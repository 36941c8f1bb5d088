"""Feedback, metrics, health and readiness, model cards, and no patient data in any log line."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.log import configure_logging
from tests.api.conftest import CLOSED_FHIR_SERVER, SERVICE, bearer
from tests.api.fhir_data import ACCESS_TOKEN, BIRTH_DATE, FAMILY, GIVEN, MRN, PATIENT_ID, hook_body
from tests.cds_hooks.client import CdsTestClient
from tests.cds_hooks.test_models import SPEC_FEEDBACK

PV = SERVICE["patient-view"]


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def test_metrics_after_a_hook(app_client: TestClient, cds_client: CdsTestClient) -> None:
    path = f"/cds-services/{PV}"
    card_key = ("mskcds_cards_total", (("card", "analysis-in-progress"), ("indicator", "info"), ("service", PV)))
    latency_key = ("mskcds_hook_duration_seconds_count", (("service", PV),))
    before = samples(app_client)
    assert app_client.post(path, json=hook_body(), headers=bearer(cds_client, path)).status_code == 200
    assert app_client.post(path, json=hook_body()).status_code == 401
    after = samples(app_client)
    assert after[card_key] - before.get(card_key, 0) == 1
    assert after[latency_key] - before.get(latency_key, 0) == 2
    assert after[("mskcds_hook_requests_total", (("service", PV), ("status", "401")))] >= 1
    assert after[("mskcds_auth_failures_total", (("reason", "missing"),))] >= 1
    assert after[("mskcds_model_info", (("model", "knee-seg-test"), ("version", "0.1")))] == 1
    assert ("mskcds_analysis_queue_depth", (("status", "queued"),)) in after
    assert "# HELP mskcds_analysis_stage_duration_seconds time per analysis stage" in app_client.get("/metrics").text


def test_upstream_errors_are_counted(app_client: TestClient, cds_client: CdsTestClient) -> None:
    key = ("mskcds_upstream_errors_total", (("error", "UpstreamUnavailable"), ("system", "fhir")))
    before = samples(app_client).get(key, 0)
    path = f"/cds-services/{PV}"
    response = app_client.post(path, json=hook_body(prefetch={}, fhirServer=CLOSED_FHIR_SERVER),
                               headers=bearer(cds_client, path))
    assert response.status_code == 502
    assert samples(app_client)[key] - before == 1


def test_feedback_stored_and_counted(app_client: TestClient, cds_client: CdsTestClient) -> None:
    path = f"/cds-services/{PV}/feedback"
    response = app_client.post(path, json=SPEC_FEEDBACK, headers=bearer(cds_client, path))
    assert response.status_code == 200 and response.content == b""
    again = app_client.post(path, json=SPEC_FEEDBACK, headers=bearer(cds_client, f"/cds-services/{PV}"))
    assert again.status_code == 200  # the service URL is accepted as aud too; the retry is stored once
    analysis = app_client.app_state.runtime.analysis
    counts = app_client.portal.call(analysis.feedback_counts)
    assert [(c.service_id, c.card, c.outcome, c.count) for c in counts] == [
        (PV, "4e0a3a1e-3283-4575-ab82-028d55fe2719", "accepted", 1),
        (PV, "9368d37b-283f-44a0-93ea-547cebab93ed", "overridden", 1)]


def test_invalid_feedback(app_client: TestClient, cds_client: CdsTestClient) -> None:
    path = f"/cds-services/{PV}/feedback"
    body = {"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": "2020-12-11T00:00:00Z"}]}
    response = app_client.post(path, json=body, headers=bearer(cds_client, path))
    assert response.status_code == 400
    assert response.json()["issue"][0]["diagnostics"] == (
        "feedback.0: acceptedSuggestions is required for an 'accepted' outcome")


def test_health_and_readiness(app_client: TestClient) -> None:
    assert app_client.get("/health").json() == {"status": "ok"}
    ready = app_client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"models": "ok", "store": "ok", "queue": "ok"}}


def test_model_cards(app_client: TestClient, settings, tmp_path) -> None:
    settings.model_dir = tmp_path
    assert app_client.get("/model-cards/knee-seg-test").status_code == 404
    (tmp_path / "knee-seg-test").mkdir()
    (tmp_path / "knee-seg-test" / "README.md").write_text("# knee-seg-test\n\nTrained on phantoms.\n")
    card = app_client.get("/model-cards/knee-seg-test")
    assert card.status_code == 200 and card.headers["content-type"] == "text/markdown; charset=utf-8"
    assert card.text == "# knee-seg-test\n\nTrained on phantoms.\n"
    assert app_client.get("/model-cards/..%2F..%2Fetc").status_code == 404
    assert '<a href="model-cards/knee-seg-test">knee-seg-test</a> 0.1' in app_client.get("/model-cards").text


def test_openapi_lists_the_endpoints(app_client: TestClient) -> None:
    paths = app_client.get("/openapi.json").json()["paths"]
    assert {"/cds-services", "/cds-services/{service_id}", "/cds-services/{service_id}/feedback", "/health",
            "/ready", "/metrics"} <= set(paths)


def test_no_patient_data_or_token_in_any_log_line(app_client: TestClient, cds_client: CdsTestClient, capsys) -> None:
    configure_logging("DEBUG", json=True)
    capsys.readouterr()
    path = f"/cds-services/{PV}"
    body = hook_body()
    calls = [
        app_client.post(path, json=body, headers=bearer(cds_client, path)),
        app_client.post(path, json=hook_body(prefetch={}, fhirServer=CLOSED_FHIR_SERVER),
                        headers=bearer(cds_client, path)),
        app_client.post(path, json=body, headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}),
        app_client.post(path, json=hook_body(hookInstance=f"x-{MRN}"), headers=bearer(cds_client, path)),
    ]
    assert [c.status_code for c in calls] == [200, 502, 401, 400]
    logged = capsys.readouterr()
    lines = (logged.out + logged.err).strip().splitlines()
    assert any(json.loads(line).get("hook_instance") == body["hookInstance"] for line in lines if line.startswith("{"))
    jwt = bearer(cds_client, path)["Authorization"].split()[1]
    for secret in (PATIENT_ID, FAMILY, GIVEN, MRN, BIRTH_DATE, ACCESS_TOKEN, jwt.split(".")[0]):
        leaking = [line for line in lines if secret in line]
        assert not leaking, f"{secret!r} logged: {leaking[:2]}"
