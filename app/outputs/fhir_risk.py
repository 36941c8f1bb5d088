"""One FHIR R4 RiskAssessment per risk result (outcome and horizon).

``prediction`` holds the probability, the period it covers (study date to study date + horizon) and a
rationale with the confidence interval and the demographics-only estimate; ``basis`` points at the
biomarker Observations the model read; ``method`` names the model kind; ``performer`` is the Device.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import date, datetime

from fhir.resources.R4B.riskassessment import RiskAssessment

from app.outputs.fhir_codes import OUTCOME_DISPLAY, concept, project_coding
from app.outputs.fhir_common import ai_asserted_meta, identifier, identity
from schemas.clinical import RiskResult


def risk_identity(study_instance_uid: str, risk: RiskResult) -> str:
    return identity(
        "RiskAssessment", study_instance_uid, risk.model_id, risk.model_version, risk.outcome, str(risk.horizon_months)
    )


def add_months(start: date, months: int) -> date:
    """``start`` plus whole calendar months (the day clipped to the target month's length)."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def risk_assessment(
    risk: RiskResult,
    *,
    study_instance_uid: str,
    study_date: date | None,
    issued: datetime,
    patient_reference: str,
    device_reference: str,
    basis: Mapping[str, str],
) -> RiskAssessment:
    """The RiskAssessment of one result; ``basis`` maps biomarker keys (``name:region``) to Observation refs.

    The basis lists the Observations of the biomarkers among the model's top factors, or every
    Observation of the analysis when none of its factors is a biomarker.
    """
    factor_refs = [basis[f.feature] for f in risk.top_factors if f.feature in basis]
    start = study_date or issued.date()
    percent = f"{risk.probability:.1%}"
    rationale = (
        f"{OUTCOME_DISPLAY[risk.outcome]} within {risk.horizon_months} months: {percent} "
        f"(95% CI {risk.ci_low:.1%}-{risk.ci_high:.1%}); from demographics alone "
        f"{risk.demographics_only_probability:.1%}."
    )
    return RiskAssessment(
        meta=ai_asserted_meta(),
        identifier=[identifier(risk_identity(study_instance_uid, risk))],
        status="final",
        code=concept(project_coding(risk.outcome), text=f"Risk of {OUTCOME_DISPLAY[risk.outcome].lower()}"),
        method=concept(project_coding(risk.method), text=f"{risk.model_id} {risk.model_version}"),
        subject={"reference": patient_reference},
        occurrenceDateTime=issued,
        performer={"reference": device_reference},
        basis=[{"reference": ref} for ref in (factor_refs or list(basis.values()))] or None,
        prediction=[
            {
                "outcome": concept(project_coding(risk.outcome)),
                "probabilityDecimal": risk.probability,
                "whenPeriod": {"start": start.isoformat(), "end": add_months(start, risk.horizon_months).isoformat()},
                "rationale": rationale,
            }
        ],
        note=[{"text": factor.text} for factor in risk.top_factors] or None,
    )
