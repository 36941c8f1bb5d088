"""The service's answer: cards, suggestions, actions, links (CDS Hooks 2.0, "CDS Service Response").

Strict when writing: every invariant of the spec's tables is a validator, so a card that would make a
CDS Client reject the response cannot be built.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from cds_hooks._base import AbsoluteUrl, Coding, NonEmptyStr, OutgoingModel
from cds_hooks.hooks import split_reference

Indicator = Literal["info", "warning", "critical"]
#: Indicators in the spec's order of increasing urgency.
INDICATOR_ORDER: tuple[Indicator, ...] = ("info", "warning", "critical")
SUMMARY_MAX_CHARS = 139  # "<140-character summary"


def new_uuid() -> str:
    """A fresh identifier for a card or suggestion (the feedback endpoint refers back to it)."""
    return str(uuid.uuid4())


class Source(OutgoingModel):
    """Who provides the guidance on a card."""

    label: NonEmptyStr
    url: AbsoluteUrl | None = None
    icon: AbsoluteUrl | None = None
    topic: Coding | None = None


class Action(OutgoingModel):
    """A change the CDS Client may apply: ``create`` / ``update`` carry the whole resource,
    ``delete`` names it with ``resourceId`` (using ``resource`` for that is deprecated in 2.0)."""

    type: Literal["create", "update", "delete"]
    description: NonEmptyStr
    resource: dict[str, Any] | None = None
    resource_id: str | None = None

    @field_validator("resource")
    @classmethod
    def _is_fhir_resource(cls, resource: dict[str, Any] | None) -> dict[str, Any] | None:
        if resource is not None and not isinstance(resource.get("resourceType"), str):
            raise ValueError("resource must be a FHIR resource with a resourceType")
        return resource

    @field_validator("resource_id")
    @classmethod
    def _relative_reference(cls, resource_id: str | None) -> str | None:
        if resource_id is not None:
            split_reference(resource_id)
        return resource_id

    @model_validator(mode="after")
    def _payload_matches_type(self) -> Action:
        if self.type in ("create", "update") and self.resource is None:
            raise ValueError(f"a {self.type!r} action must carry the resource")
        if self.type == "delete" and self.resource_id is None:
            raise ValueError("a 'delete' action must name the resource in resourceId")
        return self


class Suggestion(OutgoingModel):
    """A set of actions the user accepts together (button on the card)."""

    label: NonEmptyStr
    uuid: str | None = None
    is_recommended: bool | None = None
    actions: list[Action] | None = Field(default=None, min_length=1)


class Link(OutgoingModel):
    """A link to a page (``absolute``) or a SMART app (``smart``, optionally with ``appContext``)."""

    label: NonEmptyStr
    url: AbsoluteUrl
    type: Literal["absolute", "smart"]
    app_context: NonEmptyStr | None = None

    @model_validator(mode="after")
    def _app_context_only_for_smart(self) -> Link:
        if self.app_context is not None and self.type != "smart":
            raise ValueError("appContext is only valid for links of type 'smart'")
        return self


class Card(OutgoingModel):
    """One card. ``uuid`` is always worth setting: feedback can only refer to cards that have one."""

    uuid: str | None = None
    summary: str = Field(min_length=1, max_length=SUMMARY_MAX_CHARS)
    detail: NonEmptyStr | None = Field(default=None, description="GitHub Flavored Markdown")
    indicator: Indicator
    source: Source
    suggestions: list[Suggestion] | None = Field(default=None, min_length=1)
    selection_behavior: Literal["at-most-one", "any"] | None = None
    override_reasons: list[Coding] | None = Field(default=None, min_length=1)
    links: list[Link] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _spec_invariants(self) -> Card:
        if self.suggestions and self.selection_behavior is None:
            raise ValueError("selectionBehavior is required when suggestions are present")
        if self.selection_behavior is not None and not self.suggestions:
            raise ValueError("selectionBehavior describes suggestions; omit it when there are none")
        recommended = sum(bool(s.is_recommended) for s in self.suggestions or [])
        if self.selection_behavior == "at-most-one" and recommended > 1:
            raise ValueError("with selectionBehavior 'at-most-one' at most one suggestion may be recommended")
        for reason in self.override_reasons or []:
            if reason.display is None:
                raise ValueError(f"override reason {reason.code!r} needs a display (the service MUST populate it)")
        return self


class CdsResponse(OutgoingModel):
    """``{"cards": [...], "systemActions": [...]}``; ``{"cards": []}`` means no guidance."""

    cards: list[Card] = Field(default_factory=list)
    system_actions: list[Action] | None = Field(default=None, min_length=1)
