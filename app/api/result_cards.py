"""The cards a stored analysis gives one patient: computed once, reused for that patient's next calls.

Building them runs the clinical models (the triage cascade when the stored result has none; two risk
models, each with its demographics-only twin and top factors: ~0.9 ms of CPU) and validates three
cards (~0.15 ms): most of a cached-result hook apart from the JWT signature check. And they are a
pure function of the stored result, the patient's demographics (age, sex, BMI), the patient id (the
referral suggestion names the patient) and whether the draft orders already hold a referral, while an
EHR fires hooks for the same patient again and again.

So :class:`ResultCards` memoises the drafts under exactly those inputs: the study's UID, the patient
id, the referral flag and every :class:`Demographics` field; and an entry counts only for the very
result object it was computed from (the analysis service's result cache hands out one immutable object
per study; a result read afresh from the store is a miss). An entry is thus only ever served for the
inputs it was computed from, to the patient it was computed for. What identifies a call (the card and
suggestion uuids, from the hookInstance) is added per call by :func:`app.api.cards.issue`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.api.cards import CardBuilder, CardDraft
from app.api.memo import RecentItems
from app.clinical.errors import MissingFeatureError
from schemas.analysis import AnalysisResult, Demographics

if TYPE_CHECKING:
    from app.clinical import ClinicalModels


@dataclass(frozen=True)
class Unavailable:
    """A model that could not run for lack of inputs (logged with every call it concerns)."""

    event: str
    model_id: str
    missing: tuple[str, ...]


@dataclass(frozen=True)
class ResultAnswer:
    """The card drafts a stored result gives one patient, and the models that could not run."""

    drafts: tuple[CardDraft, ...]
    unavailable: tuple[Unavailable, ...] = ()


class ResultCards:
    """Triage and risk cards of stored results, memoised per result, patient and inputs (see the module)."""

    def __init__(self, clinical: ClinicalModels, builder: CardBuilder,
                 memo: RecentItems[tuple[object, ...], tuple[AnalysisResult, ResultAnswer]] | None = None) -> None:
        self._clinical = clinical
        self._builder = builder
        self._memo = memo if memo is not None else RecentItems()

    def answer(self, result: AnalysisResult, demographics: Demographics, patient_id: str, *,
               suggest_referral: bool) -> ResultAnswer:
        key = (result.study_instance_uid, patient_id, suggest_referral, *demographics.__dict__.items())
        entry = self._memo.get(key)
        if entry is not None and entry[0] is result:
            return entry[1]
        answer = self._compute(result, demographics, patient_id, suggest_referral)
        self._memo.put(key, (result, answer))
        return answer

    def _compute(self, result: AnalysisResult, demographics: Demographics, patient_id: str,
                 suggest_referral: bool) -> ResultAnswer:
        """Triage (stored, else now: thresholds on stored biomarkers) and risk, as card drafts.

        Inputs a model needs but the study or the record lacks (e.g. no BMI) give a card saying which.
        """
        triage, unavailable = result.triage, []
        if triage is None:
            try:
                triage = self._clinical.triage(result.measurements)
            except MissingFeatureError as error:
                unavailable.append(Unavailable("hook.triage_unavailable", error.model_id, tuple(error.missing)))
        drafts = [self._builder.triage(result, triage)] if triage is not None else []
        try:
            risks = self._clinical.risk(result.measurements, demographics)
        except MissingFeatureError as error:
            unavailable.append(Unavailable("hook.risk_unavailable", error.model_id, tuple(error.missing)))
            drafts.append(self._builder.risk_unavailable(list(error.missing)))
        else:
            drafts += [self._builder.risk(result, risk, demographics, patient_id, suggest_referral=suggest_referral)
                       for risk in risks]
        return ResultAnswer(tuple(drafts), tuple(unavailable))
