"""Protocol models: the spec's own examples parse, each invariant refuses what it should, exact messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cds_hooks import (
    Action,
    Card,
    CdsRequest,
    CdsResponse,
    CdsService,
    Coding,
    DiscoveryResponse,
    FeedbackRequest,
    Link,
    OrderSelectContext,
    OrderSignContext,
    Source,
    Suggestion,
    parse_context,
)

SOURCE = Source(label="msk-cds")

SPEC_REQUEST = {  # CDS Hooks 2.0, "Calling a CDS Service", example
    "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    "fhirServer": "http://hooks.smarthealthit.org:9080",
    "hook": "patient-view",
    "fhirAuthorization": {"access_token": "some-opaque-fhir-access-token", "token_type": "Bearer",
                          "expires_in": 300, "scope": "patient/Patient.read patient/Observation.read",
                          "subject": "cds-service4"},
    "context": {"userId": "Practitioner/example", "patientId": "1288992", "encounterId": "89284"},
    "prefetch": {"patientToGreet": {"resourceType": "Patient", "gender": "male", "birthDate": "1925-12-23",
                                    "id": "1288992", "active": True}},
}

SANDBOX_DRAFT_ORDERS = {  # as the public sandbox sends it: a Bundle without "type"
    "resourceType": "Bundle",
    "entry": [{"resource": {"resourceType": "ServiceRequest", "id": "mri-knee", "status": "draft",
                            "intent": "order", "subject": {"reference": "Patient/1288992"},
                            "code": {"coding": [{"system": "http://loinc.org", "code": "24802-1",
                                                 "display": "MR Knee"}]}}}],
}


def messages(error: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [e["msg"] for e in error.value.errors()]


def test_spec_request_example() -> None:
    request = CdsRequest.model_validate(SPEC_REQUEST)
    assert request.hook_instance == "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"
    assert request.access_token == "some-opaque-fhir-access-token"
    assert "some-opaque-fhir-access-token" not in repr(request)
    context = parse_context(request.hook, request.context)
    assert (context.user_id, context.patient_id, context.encounter_id) == ("Practitioner/example", "1288992", "89284")


def test_fhir_authorization_requires_fhir_server() -> None:
    body = {k: v for k, v in SPEC_REQUEST.items() if k != "fhirServer"}
    with pytest.raises(ValidationError) as error:
        CdsRequest.model_validate(body)
    assert messages(error) == [
        "Value error, fhirAuthorization requires fhirServer (CDS Hooks 2.0, 'Calling a CDS Service')"]


def test_hook_instance_must_be_a_uuid() -> None:
    with pytest.raises(ValidationError) as error:
        CdsRequest.model_validate({**SPEC_REQUEST, "hookInstance": "1234"})
    assert messages(error) == ["Value error, hookInstance must be a UUID"]


def test_token_type_is_bearer_in_any_case_and_nothing_else() -> None:
    auth = SPEC_REQUEST["fhirAuthorization"]
    assert CdsRequest.model_validate({**SPEC_REQUEST, "fhirAuthorization": {**auth, "token_type": "bearer"}})
    with pytest.raises(ValidationError, match="Input should be 'Bearer'"):
        CdsRequest.model_validate({**SPEC_REQUEST, "fhirAuthorization": {**auth, "token_type": "MAC"}})


def test_fhir_server_must_be_absolute() -> None:
    with pytest.raises(ValidationError, match="must be an absolute http\\(s\\) URL"):
        CdsRequest.model_validate({**SPEC_REQUEST, "fhirServer": "fhir.example.org/r4"})


def test_draft_orders_without_bundle_type_accepted() -> None:
    context = parse_context("order-sign", {"userId": "PractitionerRole/1", "patientId": "1288992",
                                           "draftOrders": SANDBOX_DRAFT_ORDERS})
    assert isinstance(context, OrderSignContext)
    assert context.draft_orders.type is None
    assert [r["id"] for r in context.draft_orders.resources("ServiceRequest")] == ["mri-knee"]


def test_order_select_selections_must_be_in_draft_orders() -> None:
    base = {"userId": "Practitioner/1", "patientId": "1", "draftOrders": SANDBOX_DRAFT_ORDERS}
    context = parse_context("order-select", {**base, "selections": ["ServiceRequest/mri-knee"]})
    assert isinstance(context, OrderSelectContext)
    assert [o["id"] for o in context.selected_orders()] == ["mri-knee"]
    with pytest.raises(ValidationError) as error:
        parse_context("order-select", {**base, "selections": ["ServiceRequest/other"]})
    assert messages(error) == ["Value error, selection 'ServiceRequest/other' is not in draftOrders"]


def test_user_type_per_hook() -> None:
    assert parse_context("patient-view", {"userId": "Patient/1", "patientId": "1"}).user_id == "Patient/1"
    with pytest.raises(ValidationError) as error:
        parse_context("order-sign", {"userId": "Patient/1", "patientId": "1", "draftOrders": SANDBOX_DRAFT_ORDERS})
    assert messages(error) == [
        "Value error, for order-sign the user must be one of ['Practitioner', 'PractitionerRole']"]
    with pytest.raises(ValidationError, match="must be a relative reference"):
        parse_context("patient-view", {"userId": "abc", "patientId": "1"})


def test_draft_order_entries_need_a_resource_type() -> None:
    with pytest.raises(ValidationError, match="every draftOrders entry's resource needs a resourceType"):
        parse_context("order-sign", {"userId": "Practitioner/1", "patientId": "1",
                                     "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": {"id": "x"}}]}})


def test_card_summary_under_140_characters() -> None:
    assert Card(summary="x" * 139, indicator="info", source=SOURCE).summary == "x" * 139
    with pytest.raises(ValidationError, match="String should have at most 139 characters"):
        Card(summary="x" * 140, indicator="info", source=SOURCE)


def test_selection_behavior_required_with_suggestions() -> None:
    suggestion = Suggestion(label="Refer", uuid="s1")
    with pytest.raises(ValidationError) as error:
        Card(summary="s", indicator="info", source=SOURCE, suggestions=[suggestion])
    assert messages(error) == ["Value error, selectionBehavior is required when suggestions are present"]
    with pytest.raises(ValidationError, match="omit it when there are none"):
        Card(summary="s", indicator="info", source=SOURCE, selection_behavior="any")


def test_at_most_one_recommended_suggestion() -> None:
    two = [Suggestion(label="a", is_recommended=True), Suggestion(label="b", is_recommended=True)]
    assert Card(summary="s", indicator="info", source=SOURCE, suggestions=two, selection_behavior="any")
    with pytest.raises(ValidationError, match="at most one suggestion may be recommended"):
        Card(summary="s", indicator="info", source=SOURCE, suggestions=two, selection_behavior="at-most-one")


def test_override_reasons_need_display() -> None:
    reason = Coding(code="x", system="http://example.org/reasons")
    with pytest.raises(ValidationError, match="override reason 'x' needs a display"):
        Card(summary="s", indicator="info", source=SOURCE, override_reasons=[reason])


def test_actions_carry_what_their_type_needs() -> None:
    with pytest.raises(ValidationError, match="a 'create' action must carry the resource"):
        Action(type="create", description="d")
    with pytest.raises(ValidationError, match="a 'delete' action must name the resource in resourceId"):
        Action(type="delete", description="d")
    with pytest.raises(ValidationError, match="resource must be a FHIR resource with a resourceType"):
        Action(type="update", description="d", resource={"id": "1"})
    assert Action(type="delete", description="d", resource_id="ServiceRequest/1").to_json() == {
        "type": "delete", "description": "d", "resourceId": "ServiceRequest/1"}


def test_link_app_context_only_for_smart() -> None:
    with pytest.raises(ValidationError, match="appContext is only valid for links of type 'smart'"):
        Link(label="l", url="https://x.test/", type="absolute", app_context="{}")
    with pytest.raises(ValidationError, match="must be an absolute http\\(s\\) URL"):
        Link(label="l", url="/relative", type="absolute")


def test_empty_optional_arrays_are_refused_and_unset_values_omitted() -> None:
    with pytest.raises(ValidationError, match="List should have at least 1 item"):
        Card(summary="s", indicator="info", source=SOURCE, links=[])
    card = Card(uuid="c1", summary="s", indicator="warning", source=SOURCE,
                suggestions=[Suggestion(label="Refer", uuid="s1", is_recommended=True)],
                selection_behavior="at-most-one")
    assert CdsResponse(cards=[card]).to_json() == {"cards": [{
        "uuid": "c1", "summary": "s", "indicator": "warning", "source": {"label": "msk-cds"},
        "suggestions": [{"label": "Refer", "uuid": "s1", "isRecommended": True}], "selectionBehavior": "at-most-one"}]}
    assert CdsResponse().to_json() == {"cards": []}


def test_outgoing_models_refuse_unknown_attributes() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Card(summary="s", indicator="info", source=SOURCE, sumary="typo")


def test_discovery_ids_unique_and_prefetch_tokens_checked() -> None:
    service = CdsService(hook="patient-view", description="d", id="a", prefetch={"p": "Patient/{{context.patientId}}"})
    assert DiscoveryResponse(services=[service]).to_json()["services"][0]["prefetch"] == {
        "p": "Patient/{{context.patientId}}"}
    with pytest.raises(ValidationError, match=r"service ids must be unique; repeated: \['a'\]"):
        DiscoveryResponse(services=[service, service])
    with pytest.raises(ValidationError, match=r"unsupported prefetch token \{\{today\(\)\}\}"):
        CdsService(hook="patient-view", description="d", id="b", prefetch={"p": "Observation?date=ge{{today()}}"})


SPEC_FEEDBACK = {"feedback": [
    {"card": "4e0a3a1e-3283-4575-ab82-028d55fe2719", "outcome": "accepted",
     "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
     "outcomeTimestamp": "2020-12-11T00:00:00Z"},
    {"card": "9368d37b-283f-44a0-93ea-547cebab93ed", "outcome": "overridden",
     "overrideReason": {"reason": {"code": "d7ecf885", "system": "https://example.com/cds-hooks/override-reason-system"},
                        "userComment": "A comment entered by the clinician."},
     "outcomeTimestamp": "2020-12-11T00:00:00"},
]}


def test_spec_feedback_examples() -> None:
    feedback = FeedbackRequest.model_validate(SPEC_FEEDBACK).feedback
    assert feedback[0].accepted_suggestions[0].id == "e56e1945-20b3-4393-8503-a1a20fd73152"
    assert feedback[1].override_reason.reason.display is None  # display is optional in feedback
    assert feedback[1].outcome_timestamp.isoformat() == "2020-12-11T00:00:00+00:00"


def test_accepted_feedback_names_suggestions() -> None:
    with pytest.raises(ValidationError) as error:
        FeedbackRequest.model_validate({"feedback": [{"card": "c", "outcome": "accepted",
                                                      "outcomeTimestamp": "2020-12-11T00:00:00Z"}]})
    assert messages(error) == ["Value error, acceptedSuggestions is required for an 'accepted' outcome"]
