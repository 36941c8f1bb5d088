"""Every check of the CDS Hooks security section, through the HTTP API: 401 (bare) or 403, and a valid call works."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import BASE, SERVICE, bearer
from tests.api.fhir_data import hook_body
from tests.cds_hooks.client import CdsTestClient, tampered

PATH = f"/cds-services/{SERVICE['patient-view']}"


def call(client: TestClient, token: str, body: dict | None = None):
    return client.post(PATH, json=body or hook_body(), headers={"Authorization": f"Bearer {token}"})


def assert_bare_401(response) -> None:
    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["www-authenticate"] == 'Bearer realm="cds-services"'


def test_valid_call_works(app_client: TestClient, cds_client: CdsTestClient) -> None:
    response = call(app_client, cds_client.token(BASE + PATH))
    assert response.status_code == 200, response.text
    assert [c["summary"] for c in response.json()["cards"]] == [
        "Knee MRI analysis in progress; triage and risk will show on the next call"]


def test_no_authorization_header(app_client: TestClient) -> None:
    assert_bare_401(app_client.post(PATH, json=hook_body()))
    assert_bare_401(app_client.get("/cds-services"))


NOW = int(time.time())


@pytest.mark.parametrize(("case", "make"), [
    ("expired", lambda c: c.token(BASE + PATH, iat=NOW - 900, exp=NOW - 600)),
    ("wrong aud", lambda c: c.token(BASE + "/cds-services/mskcds-knee-order-sign")),
    ("unknown iss", lambda c: c.token(BASE + PATH, iss="https://evil.test/")),
    ("jku not allowlisted", lambda c: c.token(BASE + PATH, headers={"jku": "http://127.0.0.1:9/jwks.json"})),
    ("alg none", lambda c: c.unsigned_token(BASE + PATH)),
    ("HS256 signed with the public key", lambda c: c.hs256_with_public_key(BASE + PATH)),
    ("tampered payload", lambda c: tampered(c.token(BASE + PATH), iss=c.iss, aud=BASE + "/cds-services")),
    ("missing kid", lambda c: c.token(BASE + PATH, headers={"kid": None})),
])
def test_rejected_tokens(app_client: TestClient, cds_client: CdsTestClient, case: str, make) -> None:
    assert_bare_401(call(app_client, make(cds_client)))


def test_replayed_jti(app_client: TestClient, cds_client: CdsTestClient) -> None:
    token = cds_client.token(BASE + PATH)
    assert call(app_client, token).status_code == 200
    assert_bare_401(call(app_client, token))


def test_fhir_server_not_allowlisted(app_client: TestClient, cds_client: CdsTestClient) -> None:
    body = hook_body(fhirServer="http://169.254.169.254/latest")
    response = call(app_client, cds_client.token(BASE + PATH), body)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/fhir+json"
    assert response.json() == {"resourceType": "OperationOutcome", "issue": [{
        "severity": "error", "code": "forbidden",
        "diagnostics": "fhirServer is not on this service's allowlist (MSKCDS_FHIR_ALLOWLIST)"}]}


def test_discovery_needs_its_own_audience(app_client: TestClient, cds_client: CdsTestClient) -> None:
    assert_bare_401(app_client.get("/cds-services", headers=bearer(cds_client, PATH)))
    assert app_client.get("/cds-services", headers=bearer(cds_client, "/cds-services")).status_code == 200


def test_cors_preflight_for_an_allowed_origin(app_client: TestClient) -> None:
    response = app_client.options(PATH, headers={"Origin": "https://sandbox.cds-hooks.org",
                                                 "Access-Control-Request-Method": "POST",
                                                 "Access-Control-Request-Headers": "authorization,content-type"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://sandbox.cds-hooks.org"
    assert "Authorization" in response.headers["access-control-allow-headers"]
    refused = app_client.options(PATH, headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in refused.headers
