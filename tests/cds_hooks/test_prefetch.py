import pytest

from cds_hooks import CdsService
from cds_hooks.hooks import check_service_prefetch
from cds_hooks.prefetch import PrefetchTemplateError, render_template, validate_template

CONTEXT = {"userId": "PractitionerRole/pr-7", "patientId": "1288992", "encounterId": "89284"}


def test_context_and_user_tokens() -> None:
    assert render_template("Patient/{{context.patientId}}", CONTEXT) == "Patient/1288992"
    assert render_template("{{context.userId}}", CONTEXT) == "PractitionerRole/pr-7"
    assert render_template("PractitionerRole?_id={{userPractitionerRoleId}}", CONTEXT) == "PractitionerRole?_id=pr-7"
    assert render_template(
        "Observation?patient={{ context.patientId }}&code=http://loinc.org|29463-7&_sort=-date&_count=1", CONTEXT
    ) == "Observation?patient=1288992&code=http://loinc.org|29463-7&_sort=-date&_count=1"


def test_unsatisfiable_templates_render_to_none() -> None:
    assert render_template("Practitioner/{{userPractitionerId}}", CONTEXT) is None  # the user is a PractitionerRole
    assert render_template("Encounter/{{context.encounterId}}", {"patientId": "1"}) is None
    assert render_template("X?y={{context.draftOrders}}", {"draftOrders": {"resourceType": "Bundle"}}) is None


def test_values_cannot_inject_query_parameters() -> None:
    assert render_template("Condition?patient={{context.patientId}}", {"patientId": "1&_include=*"}) == \
        "Condition?patient=1%26_include%3D%2A"


def test_tokens_2_0_does_not_define_are_refused() -> None:
    with pytest.raises(PrefetchTemplateError, match=r"unsupported prefetch token \{\{today\(\) - 90 days\}\}"):
        validate_template("Observation?date=ge{{today() - 90 days}}")
    with pytest.raises(PrefetchTemplateError, match="unsupported prefetch token"):
        validate_template("Observation?x={{context.medication.id}}")
    with pytest.raises(PrefetchTemplateError, match="unbalanced"):
        validate_template("Patient/{{context.patientId")
    with pytest.raises(PrefetchTemplateError, match="must be a relative FHIR read or search URL"):
        validate_template("https://fhir.test/Patient/{{context.patientId}}")


def test_token_fields_of_the_hook() -> None:
    service = CdsService(hook="order-sign", description="d", id="s", prefetch={"x": "Bundle/{{context.draftOrders}}"})
    with pytest.raises(PrefetchTemplateError, match="context field 'draftOrders' is not a prefetch token of this hook"):
        check_service_prefetch(service)
