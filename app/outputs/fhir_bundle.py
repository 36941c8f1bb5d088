"""One analysis as ONE FHIR R4 transaction Bundle: Device, (ImagingStudy), Observations, RiskAssessments,
DiagnosticReport.

Every entry is a conditional create (``ifNoneExist`` on its stable identifier) with a ``urn:uuid``
fullUrl (derived from, never equal to, the identifier) that the other entries reference, so the server
resolves references inside the transaction and a repeated post of the same analysis creates nothing
new. The transaction is all or nothing on the server (FHIR R4 3.1.0.11.2): a failure leaves no partial
write. The Bundle is validated by ``fhir.resources`` as it is built, before anything is sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.resource import Resource

from app.outputs.fhir_common import (
    DICOM_UID_SYSTEM,
    URI_SYSTEM,
    full_url,
    identity,
    if_none_exist,
    imaging_study,
    study_identity,
)
from app.outputs.fhir_device import analysis_device
from app.outputs.fhir_observations import ObservationContext, biomarker_observation
from app.outputs.fhir_report import diagnostic_report
from app.outputs.fhir_risk import risk_assessment
from schemas.analysis import AnalysisResult
from schemas.clinical import RiskResult


def _urn_of(resource: Device) -> str:
    for ident in resource.identifier or []:
        if ident.system == URI_SYSTEM and ident.value and ident.value.startswith("urn:uuid:"):
            return ident.value
    raise ValueError(f"the Device needs an identifier with system {URI_SYSTEM} and a urn:uuid value")


def _entry(resource: Resource, full_url: str, condition: str) -> dict[str, object]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource.get_resource_type(), "ifNoneExist": condition},
    }


def measurement_model_versions(result: AnalysisResult) -> dict[str, str]:
    """The model versions the biomarkers depend on: all but the clinical (triage / risk) models."""
    clinical = {risk.model_id for risk in result.risk} | ({result.triage.model_id} if result.triage else set())
    return {name: version for name, version in result.model_versions.items() if name not in clinical}


def analysis_bundle(
    result: AnalysisResult,
    risks: Sequence[RiskResult] | None = None,
    *,
    patient_reference: str,
    imaging_study_reference: str | None = None,
    device: Device | None = None,
) -> Bundle:
    """The transaction Bundle for ``result`` (``risks``: default ``result.risk``).

    ``patient_reference`` is the subject on the target server (``Patient/123``).
    ``imaging_study_reference`` names the study's ImagingStudy there; when None, the Bundle carries one,
    created only if none has the study's DICOM UID.
    """
    if not patient_reference.startswith("Patient/"):
        raise ValueError(f"patient_reference must look like 'Patient/<id>', got {patient_reference!r}")
    risks = list(result.risk if risks is None else risks)
    uid = result.study_instance_uid
    device = device or analysis_device(result.model_versions)
    device_urn = _urn_of(device)
    device_url = full_url(device_urn)
    entries = [_entry(device, device_url, if_none_exist(device_urn))]

    if imaging_study_reference is None:
        imaging_study_reference = identity("ImagingStudy", uid)
        series = {s_uid: "MR" for used in result.series for s_uid in used.series_instance_uids}
        study = imaging_study(uid, patient_reference, result.study_date, series)
        entries.append(_entry(study, imaging_study_reference, f"identifier={DICOM_UID_SYSTEM}|{study_identity(uid)}"))

    context = ObservationContext(
        study_instance_uid=uid,
        study_date=result.study_date,
        issued=result.created_at,
        laterality=result.measurements.laterality,
        model_versions=measurement_model_versions(result),
        patient_reference=patient_reference,
        imaging_study_reference=imaging_study_reference,
        device_reference=device_url,
    )
    observation_refs: dict[str, str] = {}
    for biomarker in result.measurements.biomarkers:
        observation = biomarker_observation(biomarker, context)
        urn = observation.identifier[0].value
        observation_refs[biomarker.key] = full_url(urn)
        entries.append(_entry(observation, full_url(urn), if_none_exist(urn)))

    for risk in risks:
        assessment = risk_assessment(
            risk,
            study_instance_uid=uid,
            study_date=result.study_date,
            issued=result.created_at,
            patient_reference=patient_reference,
            device_reference=device_url,
            basis=observation_refs,
        )
        urn = assessment.identifier[0].value
        entries.append(_entry(assessment, full_url(urn), if_none_exist(urn)))

    report = diagnostic_report(
        study_instance_uid=uid,
        study_date=result.study_date,
        issued=result.created_at,
        model_versions=result.model_versions,
        patient_reference=patient_reference,
        imaging_study_reference=imaging_study_reference,
        observation_references=list(observation_refs.values()),
        triage=result.triage,
        risks=risks,
    )
    report_urn = report.identifier[0].value
    entries.append(_entry(report, full_url(report_urn), if_none_exist(report_urn)))
    return Bundle(type="transaction", entry=entries)


def bundle_json(bundle: Bundle) -> str:
    """The Bundle as FHIR JSON (what ``--fhir-bundle OUT.json`` writes and what is posted)."""
    return json.dumps(json.loads(bundle.model_dump_json(exclude_none=True)), indent=2, ensure_ascii=False)
