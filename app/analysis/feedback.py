"""CDS Hooks feedback, stored and counted per (service, card, outcome) in the analysis database.

What is kept is what analytics of card usefulness needs: the card's uuid, the outcome, when it happened,
which suggestions were accepted and the coded override reason. The clinician's free-text
``overrideReason.userComment`` is not stored: free text can carry patient details. An EHR that posts
the same feedback again (a retried request) is counted once.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Engine, func, select

from app.analysis.db import feedback_table, insert_ignoring_conflict, utcnow

Outcome = Literal["accepted", "overridden"]


class OverrideReasonCode(BaseModel):
    """``overrideReason.reason`` of CDS Hooks feedback: a FHIR Coding (system and code kept)."""

    model_config = ConfigDict(extra="ignore")

    system: str | None = Field(default=None, max_length=256)
    code: str = Field(max_length=128)


class FeedbackRecord(BaseModel):
    """One end-user interaction with a card, as the feedback endpoint received it."""

    card: str = Field(max_length=64, description="the card's uuid from the CDS Hooks response")
    outcome: Outcome
    outcome_timestamp: AwareDatetime
    accepted_suggestions: list[str] = Field(default_factory=list, description="uuids of accepted suggestions")
    override_reason: OverrideReasonCode | None = None

    @model_validator(mode="after")
    def _fields_fit_outcome(self) -> FeedbackRecord:
        if self.outcome == "overridden" and self.accepted_suggestions:
            raise ValueError("an overridden card has no accepted suggestions")
        if self.outcome == "accepted" and self.override_reason is not None:
            raise ValueError("an accepted card has no override reason")
        return self


class FeedbackCount(BaseModel):
    """How often the users of a service gave an outcome for a card."""

    service_id: str
    card: str
    outcome: Outcome
    count: int


class FeedbackStore:
    """Feedback rows: written once per (service, card, outcome, time), counted by SQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, service_id: str, feedback: FeedbackRecord) -> bool:
        """Store the feedback; False when the same feedback was stored before."""
        reason = feedback.override_reason
        with self.engine.begin() as connection:
            statement = insert_ignoring_conflict(
                connection,
                feedback_table,
                {
                    "service_id": service_id,
                    "card": feedback.card,
                    "outcome": feedback.outcome,
                    "outcome_timestamp": feedback.outcome_timestamp,
                    "accepted_suggestions": json.dumps(feedback.accepted_suggestions),
                    "override_reason_system": reason.system if reason else None,
                    "override_reason_code": reason.code if reason else None,
                    "received_at": utcnow(),
                },
            ).returning(feedback_table.c.id)
            return connection.execute(statement).first() is not None

    def counts(self) -> list[FeedbackCount]:
        """Counts per (service, card, outcome), sorted by those three."""
        columns = feedback_table.c
        keys = (columns.service_id, columns.card, columns.outcome)
        with self.engine.connect() as connection:
            rows = connection.execute(select(*keys, func.count()).group_by(*keys).order_by(*keys)).all()
        return [FeedbackCount(service_id=s, card=c, outcome=o, count=n) for s, c, o, n in rows]
