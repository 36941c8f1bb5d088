"""What a CDS Client reports after the user acted on a card (CDS Hooks 2.0, "Feedback")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from cds_hooks._base import CdsModel, Coding, NonEmptyStr


class AcceptedSuggestion(CdsModel):
    """``{"id": <suggestion uuid>}``."""

    id: NonEmptyStr


class OverrideReason(CdsModel):
    """Why the user dismissed a card: a coded reason (from the card's overrideReasons) and/or a comment."""

    reason: Coding | None = None
    user_comment: str | None = None


class Feedback(CdsModel):
    """The outcome of one card: ``accepted`` (with the accepted suggestions) or ``overridden``."""

    card: NonEmptyStr
    outcome: Literal["accepted", "overridden"]
    accepted_suggestions: list[AcceptedSuggestion] | None = None
    override_reason: OverrideReason | None = None
    outcome_timestamp: datetime

    @field_validator("outcome_timestamp")
    @classmethod
    def _utc(cls, timestamp: datetime) -> datetime:
        # The spec says "ISO timestamp in UTC"; a timestamp without offset is read as UTC.
        return timestamp.replace(tzinfo=UTC) if timestamp.tzinfo is None else timestamp.astimezone(UTC)

    @model_validator(mode="after")
    def _accepted_names_suggestions(self) -> Feedback:
        if self.outcome == "accepted" and not self.accepted_suggestions:
            raise ValueError("acceptedSuggestions is required for an 'accepted' outcome")
        return self


class FeedbackRequest(CdsModel):
    """``POST {baseUrl}/cds-services/{id}/feedback`` body: ``{"feedback": [...]}``."""

    feedback: list[Feedback] = Field(min_length=1)
