"""Hook contexts of the hooks msk-cds serves: ``patient-view``, ``order-select``, ``order-sign``.

Each context model lists the fields its hook definition marks as prefetch tokens. ``draftOrders`` is a
FHIR Bundle; the public CDS Hooks sandbox (and the spec's own examples) send it without the Bundle's
``type``, so that is accepted. Entries stay plain JSON: deciding what an order means is the service's
business, not the protocol's.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from cds_hooks._base import CdsModel, NonEmptyStr
from cds_hooks.discovery import CdsService
from cds_hooks.prefetch import validate_template

_REFERENCE = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})$")


def split_reference(reference: str) -> tuple[str, str]:
    """``"Practitioner/abc"`` -> ``("Practitioner", "abc")``; ValueError for anything else."""
    match = _REFERENCE.match(reference)
    if match is None:
        raise ValueError("must be a relative reference '[ResourceType]/[id]', e.g. 'Practitioner/123'")
    return match.group(1), match.group(2)


class BundleEntry(CdsModel):
    """One entry of a context Bundle: the resource as JSON."""

    full_url: str | None = None
    resource: dict[str, Any]

    @field_validator("resource")
    @classmethod
    def _has_type(cls, resource: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(resource.get("resourceType"), str):
            raise ValueError("every draftOrders entry's resource needs a resourceType")
        return resource


class DraftOrders(CdsModel):
    """The ``draftOrders`` Bundle. ``type`` is optional here (the sandbox omits it)."""

    resource_type: Literal["Bundle"]
    type: str | None = None
    entry: list[BundleEntry] = Field(default_factory=list)

    def resources(self, resource_type: str | None = None) -> list[dict[str, Any]]:
        """The entries' resources, optionally only those of one type."""
        return [e.resource for e in self.entry if resource_type in (None, e.resource["resourceType"])]

    def find(self, reference: str) -> dict[str, Any] | None:
        """The resource a ``Type/id`` reference names, if the Bundle holds it."""
        return next((r for r in self.resources() if f"{r['resourceType']}/{r.get('id')}" == reference), None)


class HookContext(CdsModel):
    """Fields shared by the three hooks. Subclasses name their hook and the allowed user types."""

    hook: ClassVar[str]
    prefetch_token_fields: ClassVar[frozenset[str]] = frozenset({"userId", "patientId", "encounterId"})
    user_types: ClassVar[frozenset[str]] = frozenset({"Practitioner", "PractitionerRole"})

    user_id: NonEmptyStr
    patient_id: NonEmptyStr
    encounter_id: NonEmptyStr | None = None

    @field_validator("user_id")
    @classmethod
    def _user_reference(cls, user_id: str) -> str:
        resource_type, _ = split_reference(user_id)
        if resource_type not in cls.user_types:
            raise ValueError(f"for {cls.hook} the user must be one of {sorted(cls.user_types)}")
        return user_id


class PatientViewContext(HookContext):
    """``patient-view``: the user opened a patient's record (a patient or proxy may be the user)."""

    hook: ClassVar[str] = "patient-view"
    user_types: ClassVar[frozenset[str]] = frozenset({"Practitioner", "PractitionerRole", "Patient", "RelatedPerson"})


class OrderSignContext(HookContext):
    """``order-sign``: the clinician is about to sign the orders in ``draftOrders``."""

    hook: ClassVar[str] = "order-sign"
    draft_orders: DraftOrders


class OrderSelectContext(HookContext):
    """``order-select``: the clinician selected the orders in ``selections`` (all in ``draftOrders``)."""

    hook: ClassVar[str] = "order-select"
    selections: list[str] = Field(min_length=1)
    draft_orders: DraftOrders

    @model_validator(mode="after")
    def _selections_in_draft_orders(self) -> OrderSelectContext:
        for selection in self.selections:
            split_reference(selection)
            if self.draft_orders.find(selection) is None:
                raise ValueError(f"selection {selection!r} is not in draftOrders")
        return self

    def selected_orders(self) -> list[dict[str, Any]]:
        """The newly selected orders (decision support should focus on these)."""
        return [order for s in self.selections if (order := self.draft_orders.find(s)) is not None]


HOOK_CONTEXTS: dict[str, type[HookContext]] = {
    model.hook: model for model in (PatientViewContext, OrderSelectContext, OrderSignContext)
}


def parse_context(hook: str, context: dict[str, Any]) -> HookContext:
    """Validate a request's ``context`` against its hook's definition (KeyError for unknown hooks)."""
    return HOOK_CONTEXTS[hook].model_validate(context)


def check_service_prefetch(service: CdsService) -> None:
    """Raise PrefetchTemplateError if a template uses a context field its hook does not offer as a token."""
    fields = HOOK_CONTEXTS[service.hook].prefetch_token_fields if service.hook in HOOK_CONTEXTS else None
    for key, template in (service.prefetch or {}).items():
        validate_template(template, token_fields=fields, where=f"{service.id}.prefetch[{key!r}]")
