"""One hook call, start to end: context -> relevant? -> patient data -> stored analysis -> cards.

The steps, each a small function so the route stays thin:

1. parse the hook context (400 with the spec's invariant when it is malformed);
2. order hooks: only knee imaging / orthopaedic ServiceRequests get cards (``app.api.orders``);
3. gather demographics and the patient's knee MRI from prefetch, else from the FHIR server with the
   request's own access token (412 when neither has them, per the spec);
4. the stored analysis of that study (memory cache, then store); if there is none, queue it and
   optionally wait ``MSKCDS_HOOK_WAIT_S``; answer "in progress" (or "failed") when it is not ready;
5. risk is computed now from the stored biomarkers and this request's demographics (cheap; triage too
   when the stored result has none), and the cards are built from schema objects. Inputs a model needs
   but the study or request lacks (e.g. no BMI on record) give a card that says which, not an error.

The analysis' FHIR resources (Observations, RiskAssessments, DiagnosticReport) are not offered as
``systemActions``: they reference each other through a transaction's ``urn:uuid`` entries, which
independent CDS Hooks ``create`` actions cannot carry, so the worker posts them as one conditional
transaction instead (``app.outputs.fhir_bundle``), and nothing is created twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from app.api.cards import CardBuilder
from app.api.orders import refers_to_orthopaedics, relevant_orders
from app.clinical.errors import MissingFeatureError
from app.log import get_logger
from app.metrics import CARDS
from app.settings import Settings
from cds_hooks import CdsRequest, CdsResponse, HookContext, OrderSelectContext, OrderSignContext
from schemas.analysis import AnalysisResult, Demographics
from schemas.clinical import TriageResult

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

    async def answer(self, service_id: str, request: CdsRequest, context: HookContext) -> CdsResponse:
        """The cards for one validated call of ``service_id``."""
        if isinstance(context, OrderSelectContext | OrderSignContext) and not relevant_orders(
                context, self.settings.cds_order_codes):
            return CdsResponse()
        patient = await self.gather(request, context)
        cards = CardBuilder(base_url=str(self.settings.public_base_url).rstrip("/"),
                            hook_instance=request.hook_instance, high_risk=self.settings.cds_high_risk)
        response = await self._cards(cards, patient, context)
        for card in response.cards:
            CARDS.labels(service=service_id, card=cards.kinds.get(card.uuid or "", "other"),
                         indicator=card.indicator).inc()
        return response

    async def _cards(self, cards: CardBuilder, patient: PatientData, context: HookContext) -> CdsResponse:
        if patient.study is None:
            return CdsResponse(cards=[cards.no_knee_mri()])
        uid = patient.study.study_instance_uid
        result = await self.analysis.get_result(uid)
        if result is None:
            previous = await self.analysis.job_state(uid)
            job = await self.analysis.submit(patient.study)  # a failed job is queued again
            if previous is not None and previous.status == "failed":
                return CdsResponse(cards=[cards.failed(patient.study_date, job.job_id)])
            if self.settings.hook_wait_s > 0:
                result = await self.analysis.wait_for(uid, self.settings.hook_wait_s)
            if result is None:
                log.info("hook.analysis_pending", job_id=job.job_id, status=job.status)
                return CdsResponse(cards=[cards.in_progress(job.status, patient.study_date)])
        built = []
        triage = result.triage or self._triage(result)
        if triage is not None:
            built.append(cards.triage(result, triage))
        try:
            risks = self.clinical.risk(result.measurements, patient.demographics)
        except MissingFeatureError as error:
            log.info("hook.risk_unavailable", model=error.model_id, missing=error.missing)
            return CdsResponse(cards=[*built, cards.risk_unavailable(error.missing)])
        suggest = not refers_to_orthopaedics(context)
        built += [cards.risk(result, risk, patient.demographics, context.patient_id, suggest_referral=suggest)
                  for risk in risks]
        return CdsResponse(cards=built)

    def _triage(self, result: AnalysisResult) -> TriageResult | None:
        """Triage at hook time when the stored result has none (cheap: thresholds on stored biomarkers)."""
        try:
            return self.clinical.triage(result.measurements)
        except MissingFeatureError as error:
            log.info("hook.triage_unavailable", model=error.model_id, missing=error.missing)
            return None

