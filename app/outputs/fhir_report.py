"""The FHIR R4 DiagnosticReport that gathers one analysis: its Observations, the triage priority, a conclusion.

Category RAD (HL7 v2 table 0074, the R4 binding of DiagnosticReport.category); the triage priority is
the ``conclusionCode`` (project CodeSystem), and the conclusion states it with the reasons and the risk
estimates in words a radiologist reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime

from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from app.outputs.fhir_codes import (
    DIAGNOSTIC_SERVICE_SECTION,
    OUTCOME_DISPLAY,
    REPORT_CODE,
    TRIAGE_PRIORITY_DISPLAY,
    concept,
    project_coding,
)
from app.outputs.fhir_common import ai_asserted_meta, identifier, identity, model_key
from schemas.clinical import RiskResult, TriageResult


def report_identity(study_instance_uid: str, model_versions: Mapping[str, str]) -> str:
    return identity("DiagnosticReport", study_instance_uid, model_key(model_versions))


def conclusion(triage: TriageResult | None, risks: Sequence[RiskResult], n_biomarkers: int) -> str:
    """The report's conclusion in sentences."""
    lines = [f"{n_biomarkers} knee MRI biomarkers measured automatically (AI-derived; verify before use)."]
    if triage is not None:
        lines.append(f"Triage: {TRIAGE_PRIORITY_DISPLAY[triage.priority]} (stage {triage.stage}).")
        lines += [f"- {reason}" for reason in triage.reasons]
    for risk in risks:
        lines.append(
            f"{OUTCOME_DISPLAY[risk.outcome]} within {risk.horizon_months} months: {risk.probability:.1%} "
            f"(95% CI {risk.ci_low:.1%}-{risk.ci_high:.1%})."
        )
    return "\n".join(lines)


def diagnostic_report(
    *,
    study_instance_uid: str,
    study_date: date | None,
    issued: datetime,
    model_versions: Mapping[str, str],
    patient_reference: str,
    imaging_study_reference: str,
    observation_references: Sequence[str],
    triage: TriageResult | None,
    risks: Sequence[RiskResult],
) -> DiagnosticReport:
    return DiagnosticReport(
        meta=ai_asserted_meta(),
        identifier=[identifier(report_identity(study_instance_uid, model_versions))],
        status="final",
        category=[concept(Coding(system=DIAGNOSTIC_SERVICE_SECTION, code="RAD", display="Radiology"))],
        code=concept(project_coding(REPORT_CODE)),
        subject={"reference": patient_reference},
        effectiveDateTime=study_date.isoformat() if study_date else None,
        issued=issued,
        imagingStudy=[{"reference": imaging_study_reference}],
        result=[{"reference": ref} for ref in observation_references] or None,
        conclusion=conclusion(triage, risks, len(observation_references)),
        conclusionCode=[concept(project_coding(triage.priority))] if triage is not None else None,
    )
