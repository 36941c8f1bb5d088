"""One hook call, start to end: context -> relevant? -> patient data -> stored analysis -> cards.

The steps, each a small function so the route stays thin:

1. parse the hook context (400 with the spec's invariant when it is malformed);
2. order hooks: only knee imaging / orthopaedic ServiceRequests get cards (``app.api.orders``);
3. gather demographics and the patient's knee MRI from prefetch, else from the FHIR server with the
   request's own access token (412 when neither has them, per the spec);
4. the stored analysis of that study (memory cache, then store); if there is none, queue it and
   optionally wait ``MSKCDS_HOOK_WAIT_S``; answer "in progress" (or "failed") when it is not ready, and
   "not suitable" (without queueing it again) when its analysis found no knee MRI it can analyse;
5. risk is computed from the stored biomarkers and this request's demographics (triage too when the
   stored result has none) and the cards are built from schema objects, memoised per stored result,
   patient and inputs (``app.api.result_cards``); the call's card uuids are added per call. Inputs a
   model needs but the study or request lacks (e.g. no BMI on record) give a card that says which.

The analysis' FHIR resources (Observations, RiskAssessments, DiagnosticReport) are not offered as
``systemActions``: they reference each other through a transaction's ``urn:uuid`` entries, which
independent CDS Hooks ``create`` actions cannot carry, so the worker posts them as one conditional
transaction instead (``app.outputs.fhir_bundle``), and nothing is created twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from app.analysis.analyzer import unsuitable_reason
from app.api.cards import CardBuilder, CardDraft, issue
from app.api.orders import refers_to_orthopaedics, relevant_orders
from app.api.result_cards import ResultCards
from app.log import get_logger
from app.metrics import count_card
from app.settings import Settings
from cds_hooks import CdsRequest, CdsResponse, HookContext, OrderSelectContext, OrderSignContext
from schemas.analysis import Demographics

if TYPE_CHECKING:
    from app.analysis import AnalysisService, StudyRef
    from app.clinical import ClinicalModels

log = get_logger(__name__)


@dataclass(frozen=True)
class PatientData:
    """What the hook needs about the patient: demographics for risk, the knee MRI to analyse (if any)."""

    demographics: Demographics
    study: StudyRef | None
    study_date: date | None = None


#: Gathers :class:`PatientData` for a request (prefetch first, the FHIR server as fallback).
Gatherer = Callable[[CdsRequest, HookContext], Awaitable[PatientData]]


@dataclass(frozen=True)
class HookFlow:
    """The collaborators of a hook call, built once by the app's lifespan."""

    settings: Settings
    analysis: AnalysisService
    clinical: ClinicalModels
    gather: Gatherer
    cards: CardBuilder = field(init=False)
    result_cards: ResultCards = field(init=False)

    def __post_init__(self) -> None:
        cards = CardBuilder(base_url=str(self.settings.public_base_url).rstrip("/"),
                            high_risk=self.settings.cds_high_risk)
        object.__setattr__(self, "cards", cards)
        object.__setattr__(self, "result_cards", ResultCards(self.clinical, cards))

    async def answer(self, service_id: str, request: CdsRequest, context: HookContext) -> CdsResponse:
        """The cards for one validated call of ``service_id``."""
        if isinstance(context, OrderSelectContext | OrderSignContext) and not relevant_orders(
                context, self.settings.cds_order_codes):
            return CdsResponse()
        patient = await self.gather(request, context)
        drafts = await self._drafts(patient, context)
        cards = issue(drafts, request.hook_instance)
        for draft, card in zip(drafts, cards, strict=True):
            count_card(service_id, draft.kind, card.indicator)
        return CdsResponse(cards=cards)

    async def _drafts(self, patient: PatientData, context: HookContext) -> Sequence[CardDraft]:
        if patient.study is None:
            return [self.cards.no_knee_mri()]
        uid = patient.study.study_instance_uid
        result = await self.analysis.get_result(uid)
        if result is None:
            previous = await self.analysis.job_state(uid)
            unsuitable = unsuitable_reason(previous.error) if previous and previous.status == "failed" else None
            if unsuitable is not None:  # analysing it again would fail again: not queued
                return [self.cards.unsuitable_knee_mri(patient.study_date, unsuitable)]
            job = await self.analysis.submit(patient.study)  # a failed job is queued again
            if previous is not None and previous.status == "failed":
                return [self.cards.failed(patient.study_date, job.job_id)]
            if self.settings.hook_wait_s > 0:
                result = await self.analysis.wait_for(uid, self.settings.hook_wait_s)
            if result is None:
                log.info("hook.analysis_pending", job_id=job.job_id, status=job.status)
                return [self.cards.in_progress(job.status, patient.study_date)]
        answer = self.result_cards.answer(result, patient.demographics, context.patient_id,
                                          suggest_referral=not refers_to_orthopaedics(context))
        for missing in answer.unavailable:
            log.info(missing.event, model=missing.model_id, missing=list(missing.missing))
        return answer.drafts
