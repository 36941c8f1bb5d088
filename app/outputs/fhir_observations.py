"""One FHIR R4 Observation per biomarker.

Each carries: status final, category imaging, the biomarker's code (project + standard where one
exists), the body site with its laterality, the value in its UCUM unit, the patient, the study date
(``effectiveDateTime``) and the analysis time (``issued``), the ImagingStudy it was measured on
(``partOf`` and ``derivedFrom``), the Device (software + model versions), the method, the AI-asserted
security label, and an identifier stable for (study, model versions, biomarker).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.observation import Observation

from app.outputs.fhir_codes import (
    OBSERVATION_CATEGORY,
    UCUM,
    biomarker_code,
    body_site,
    concept,
    project_coding,
)
from app.outputs.fhir_common import ai_asserted_meta, identifier, identity, model_key
from schemas.biomarkers import Biomarker, Laterality

METHOD = "ai-segmentation-measurement"


def observation_identity(study_instance_uid: str, model_versions: Mapping[str, str], biomarker: Biomarker) -> str:
    return identity("Observation", study_instance_uid, model_key(model_versions), biomarker.key)


@dataclass(frozen=True)
class ObservationContext:
    """What every Observation of one analysis shares (references are ids or ``urn:uuid`` fullUrls)."""

    study_instance_uid: str
    study_date: date | None
    issued: datetime
    laterality: Laterality
    model_versions: Mapping[str, str]
    patient_reference: str
    imaging_study_reference: str
    device_reference: str


def biomarker_observation(biomarker: Biomarker, context: ObservationContext) -> Observation:
    """The Observation of one biomarker."""
    imaging_study = {"reference": context.imaging_study_reference}
    return Observation(
        meta=ai_asserted_meta(),
        identifier=[identifier(observation_identity(context.study_instance_uid, context.model_versions, biomarker))],
        status="final",
        category=[concept(_category_imaging())],
        code=biomarker_code(biomarker.name),
        subject={"reference": context.patient_reference},
        effectiveDateTime=context.study_date.isoformat() if context.study_date else None,
        issued=context.issued,
        valueQuantity={
            "value": biomarker.value,
            "unit": biomarker.unit.value,
            "system": UCUM,
            "code": biomarker.unit.value,
        },
        bodySite=body_site(biomarker.region, context.laterality),
        method=concept(project_coding(METHOD)),
        device={"reference": context.device_reference},
        partOf=[imaging_study],
        derivedFrom=[imaging_study],
    )


def _category_imaging() -> Coding:
    return Coding(system=OBSERVATION_CATEGORY, code="imaging", display="Imaging")
