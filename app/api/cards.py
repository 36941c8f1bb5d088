"""Cards from analysis results: triage priority, OA and TKR risk, and the cards that say why there are none.

Built from ``schemas`` types only, so what a card says is exactly what the layers computed. Wording is
for clinicians: the summary states the finding, the detail (GitHub Flavored Markdown) shows the numbers
in a small table, the deciding biomarkers or top factors, the model and its version, and a link to the
model card. The builder makes :class:`CardDraft` objects (content and kind, no identity: they do not
depend on the call); :func:`issue` gives each card and suggestion of a call the UUID 5 of the
hookInstance and its kind, so a retried call yields the same ids and feedback can be matched to them.

Indicators: an ``urgent`` triage is ``critical`` (it changes the worklist now); a risk at or above the
site's threshold (``MSKCDS_CDS_HIGH_RISK``) is a ``warning``; everything else is ``info``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

from cds_hooks import Action, Card, Coding, Link, Source, Suggestion
from cds_hooks.card import Indicator
from schemas.analysis import AnalysisResult, Demographics
from schemas.clinical import Priority, RiskResult, TriageResult

CODE_SYSTEM_BASE = "https://msk-cds.org/fhir/CodeSystem"
OVERRIDE_SYSTEM = f"{CODE_SYSTEM_BASE}/override-reasons"
_CARD_NAMESPACE = uuid.UUID("0d6f2f5e-8f8e-4c58-9a57-3f3b7d1f2e61")

PRIORITY_INDICATOR: dict[Priority, Indicator] = {"urgent": "critical", "routine": "info", "deprioritised": "info"}
OUTCOME_NAMES = {"incident_oa": "Knee osteoarthritis", "tkr": "Total knee replacement"}
OUTCOME_SHORT = {"incident_oa": "OA", "tkr": "TKR"}

OVERRIDE_TRIAGE = [
    Coding(system=OVERRIDE_SYSTEM, code="clinical-assessment-differs", display="Clinical assessment differs"),
    Coding(system=OVERRIDE_SYSTEM, code="image-quality", display="Image quality makes the result unreliable"),
    Coding(system=OVERRIDE_SYSTEM, code="already-reviewed", display="Study already reviewed"),
]
OVERRIDE_RISK = [
    Coding(system=OVERRIDE_SYSTEM, code="already-under-orthopaedic-care", display="Already under orthopaedic care"),
    Coding(system=OVERRIDE_SYSTEM, code="patient-declines", display="Patient declines referral"),
    Coding(system=OVERRIDE_SYSTEM, code="not-applicable", display="Estimate does not apply to this patient"),
]
REFERRAL = {"system": "http://snomed.info/sct", "code": "308481009", "display": "Referral to orthopedic surgeon"}
KNEE = {"system": "http://snomed.info/sct", "code": "72696002", "display": "Knee region structure"}


def _pct(p: float) -> str:
    return f"{100 * p:.0f}%"


def _horizon(months: int) -> str:
    return f"{months // 12} years" if months % 12 == 0 else f"{months} months"


def _number(value: float | None, unit: str | None = None) -> str:
    if value is None:
        return "–"
    text = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{text} {unit}" if unit else text


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def card_uuid(hook_instance: str, kind: str) -> str:
    """UUID 5 of the hookInstance and the card's (or suggestion's) kind: the same call gets the same ids."""
    return str(uuid.uuid5(_CARD_NAMESPACE, f"{hook_instance}|{kind}"))


@dataclass(frozen=True)
class CardDraft:
    """A validated card without identity, and the kinds naming it and its suggestions (:func:`issue` ids them).

    Drafts depend only on what the card says, never on the call, so the drafts a stored result gives one
    patient can be reused for that patient's next calls (``app.api.result_cards``).
    """

    kind: str
    card: Card
    suggestion_kinds: tuple[str, ...] = ()


def issue(drafts: Sequence[CardDraft], hook_instance: str) -> list[Card]:
    """The cards of one call, each (and each suggestion) with its :func:`card_uuid`.

    Copies without re-validating: every invariant was checked when the draft was built, and only the
    ``uuid`` strings differ.
    """
    cards = []
    for draft in drafts:
        update: dict[str, Any] = {"uuid": card_uuid(hook_instance, draft.kind)}
        if draft.suggestion_kinds:
            update["suggestions"] = [
                suggestion.model_copy(update={"uuid": card_uuid(hook_instance, kind)})
                for suggestion, kind in zip(draft.card.suggestions or [], draft.suggestion_kinds, strict=True)]
        cards.append(draft.card.model_copy(update=update))
    return cards


@dataclass(frozen=True)
class CardBuilder:
    """Builds card drafts for this service's public URL and the site's risk thresholds."""

    base_url: str
    high_risk: dict[str, float]

    @cached_property
    def _source(self) -> Source:
        return Source(label="msk-cds knee MRI analysis", url=f"{self.base_url}/model-cards")

    def _model_link(self, model_id: str) -> Link:
        return Link(label=f"Model card: {model_id}", url=f"{self.base_url}/model-cards/{model_id}", type="absolute")

    def triage(self, result: AnalysisResult, triage: TriageResult) -> CardDraft:
        """Worklist priority of the study, the reasons, and the biomarkers that decided it."""
        knee = f"{result.measurements.laterality} knee"
        when = f" of {result.study_date.isoformat()}" if result.study_date else ""
        rows = [[b.name.value.replace("_", " "), b.region, _number(b.value, b.unit.value)]
                for b in triage.deciding_biomarkers]
        detail = [f"**Triage of the {knee} MRI{when}: {triage.priority}** (decided by stage "
                  f"{triage.stage_index + 1}, *{triage.stage}*).", ""]
        detail += [f"- {reason}" for reason in triage.reasons]
        if rows:
            detail += ["", _table(["Deciding biomarker", "Region", "Value"], rows)]
        detail += ["", f"Model {triage.model_id} {triage.model_version}. Decision support only: "
                       "the radiologist's read decides."]
        return CardDraft("triage", Card(
            indicator=PRIORITY_INDICATOR[triage.priority],
            summary=f"Knee MRI triage: {triage.priority} review ({knee}, {triage.stage})"[:139],
            detail="\n".join(detail), source=self._source, override_reasons=OVERRIDE_TRIAGE,
            links=[self._model_link(triage.model_id)]))

    def risk(self, result: AnalysisResult, risk: RiskResult, demographics: Demographics, patient_id: str,
             *, suggest_referral: bool) -> CardDraft:
        """Probability of the outcome within the horizon, beside the same person's demographics-only risk."""
        high = risk.probability >= self.high_risk.get(risk.outcome, 1.0)
        horizon = _horizon(risk.horizon_months)
        suggestions = None
        if high and suggest_referral and risk.outcome == "tkr":
            suggestions = [self._referral(risk, patient_id, horizon)]
        card = Card(indicator="warning" if high else "info",
                    summary=f"{OUTCOME_SHORT[risk.outcome]} risk within {horizon}: {_pct(risk.probability)} "
                            f"(demographics alone: {_pct(risk.demographics_only_probability)})",
                    detail=_risk_detail(result, risk, demographics, horizon), source=self._source,
                    links=[self._model_link(risk.model_id)], suggestions=suggestions,
                    selection_behavior="at-most-one" if suggestions else None,
                    override_reasons=OVERRIDE_RISK if suggestions else None)
        return CardDraft(f"risk-{risk.outcome}", card, ("suggestion-referral",) if suggestions else ())

    def _referral(self, risk: RiskResult, patient_id: str, horizon: str) -> Suggestion:
        reason = f"{_pct(risk.probability)} risk of total knee replacement within {horizon} (msk-cds knee MRI)"
        resource: dict[str, Any] = {
            "resourceType": "ServiceRequest", "status": "draft", "intent": "proposal",
            "code": {"coding": [REFERRAL], "text": "Referral to orthopaedic surgeon"},
            "subject": {"reference": f"Patient/{patient_id}"},
            "bodySite": [{"coding": [KNEE]}],
            "reasonCode": [{"text": reason}],
        }
        action = Action(type="create", description="Draft a referral to an orthopaedic surgeon", resource=resource)
        return Suggestion(label="Draft orthopaedic referral", is_recommended=True, actions=[action])

    def risk_unavailable(self, missing: list[str]) -> CardDraft:
        """The risk models need inputs this patient's record or study does not provide: say which."""
        names = ", ".join(dict.fromkeys(_feature_name(key) for key in missing))
        return CardDraft("risk-unavailable", Card(
            indicator="info", summary="OA / TKR risk not available: inputs missing from the record or the MRI analysis",
            detail=f"The risk models need: {names}. Recording them (e.g. a body weight and height for BMI) "
                   "makes the estimate available on the next call.",
            source=self._source))

    def in_progress(self, status: str, study_date: date | None) -> CardDraft:
        """The study is queued or being analysed: say so, and when results will show."""
        when = f" of {study_date.isoformat()}" if study_date else ""
        return CardDraft("analysis-in-progress", Card(
            indicator="info", summary="Knee MRI analysis in progress; triage and risk will show on the next call",
            detail=f"The knee MRI{when} is {status} for analysis (segmentation and biomarkers take a "
                   "few minutes). This card is replaced by the results once they are ready.",
            source=self._source))

    def failed(self, study_date: date | None, job_id: str) -> CardDraft:
        """The analysis failed after its retries: no numbers, and nothing hidden."""
        when = f" of {study_date.isoformat()}" if study_date else ""
        return CardDraft("analysis-failed", Card(
            indicator="info", summary="Knee MRI could not be analysed; no triage or risk estimate available",
            detail=f"The last analysis of the knee MRI{when} failed (job `{job_id}`); it has been queued "
                   "again. The service's operators can see why in its log.",
            source=self._source))

    def unsuitable_knee_mri(self, study_date: date | None, reason: str) -> CardDraft:
        """The study was fetched, but holds no knee MRI the analysis can use: say why (series, not patient)."""
        when = f" of {study_date.isoformat()}" if study_date else ""
        return CardDraft("unsuitable-knee-mri", Card(
            indicator="info", summary="No suitable knee MRI to analyse; no MRI-based triage or risk estimate",
            detail=f"The knee MRI{when} cannot be analysed: {reason}. Risk estimates need a knee MRI with a "
                   "3D morphological series (e.g. DESS) of a known side.",
            source=self._source))

    def no_knee_mri(self) -> CardDraft:
        """No MR study of the knee was found for the patient."""
        return CardDraft("no-knee-mri", Card(
            indicator="info", summary="No knee MRI on record to analyse; no MRI-based triage or risk estimate",
            detail="msk-cds looked for the patient's MR imaging studies of the knee (in the prefetch or on "
                   "the FHIR server) and found none it can analyse. Risk estimates need a knee MRI with a "
                   "3D morphological series.",
            source=self._source))


def _risk_detail(result: AnalysisResult, risk: RiskResult, demographics: Demographics, horizon: str) -> str:
    knee = f"{result.measurements.laterality} knee"
    lines = [f"**{OUTCOME_NAMES[risk.outcome]} risk, {knee}, within {horizon}.**", "",
             _table(["", "With knee MRI biomarkers", "Demographics only"], [
                 ["Probability", f"**{_pct(risk.probability)}**", _pct(risk.demographics_only_probability)],
                 ["Confidence interval", f"{_pct(risk.ci_low)} – {_pct(risk.ci_high)}", ""],
             ])]
    if risk.top_factors:
        lines += ["", "Top factors:", "", _table(["Factor", "Value", "Effect"], [
            [f.text, _number(f.value, f.unit), "raises risk" if f.contribution > 0 else "lowers risk"]
            for f in risk.top_factors])]
    inputs = ["knee MRI biomarkers" + (" and their change since the prior exam" if risk.used_prior else "")]
    if demographics.age_years is not None:
        inputs.append(f"age {int(demographics.age_years)}")  # completed years, as ages are spoken
    if demographics.sex is not None:
        inputs.append(demographics.sex)
    if demographics.bmi is not None:
        inputs.append(f"BMI {demographics.bmi:.1f}")
    lines += ["", f"Inputs: {', '.join(inputs)}. Model {risk.model_id} {risk.model_version} ({risk.method}). "
                  "Decision support only; the model card says what the model was validated on."]
    return "\n".join(lines)


_DEMOGRAPHIC_NAMES = {"age_years": "age", "bmi": "BMI", "sex_female": "sex"}


def _feature_name(key: str) -> str:
    """``bmi`` -> ``BMI``; ``change:cartilage_thickness_mean:cMF`` -> ``change of cartilage thickness mean (cMF)``."""
    if key in _DEMOGRAPHIC_NAMES:
        return _DEMOGRAPHIC_NAMES[key]
    is_change = key.startswith("change:")
    name, _, region = key.removeprefix("change:").partition(":")
    text = f"{name.replace('_', ' ')} ({region})" if region else name.replace("_", " ")
    return f"change of {text}" if is_change else text
