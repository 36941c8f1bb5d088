"""The patient facts a hook needs: demographics, and which knee MRI to analyse.

Gathering (prefetch first, the FHIR server as fallback) is the integration layer's
``hook_context``; this module picks the study. A study qualifies when it is MR, its description
names the knee (DICOM StudyDescription as the ImagingStudy carries it, e.g. "MR KNEE RIGHT W/O"), and
msk-cds may fetch it: from the ImagingStudy's allowlisted Endpoint, else from the configured DICOMweb
service (``MSKCDS_DICOMWEB_URL``). The newest qualifying study wins. Demographics are taken at the
study's date, as the risk models were fitted (age at the MRI).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from app.analysis import StudyRef
from app.api.hook_flow import Gatherer, PatientData
from app.clients.fhir import ImagingStudyRef
from app.clients.hook_context import Allowlists, hook_context
from app.settings import Settings
from cds_hooks import CdsRequest, HookContext


def is_knee_mri(study: ImagingStudyRef) -> bool:
    """MR with "knee" in the study description."""
    return "MR" in study.modalities and "knee" in (study.description or "").lower()


def choose_knee_mri(studies: Sequence[ImagingStudyRef], fallback_dicomweb_url: str | None) -> ImagingStudyRef | None:
    """The newest knee MRI that can be fetched (see the module docstring)."""
    fetchable = [s for s in studies if is_knee_mri(s) and (s.dicomweb_url or fallback_dicomweb_url)]
    return max(fetchable, key=lambda s: s.started or date.min, default=None)


def study_gatherer(settings: Settings) -> Gatherer:
    """The default :data:`Gatherer`: ``hook_context`` + :func:`choose_knee_mri`."""
    allowlists = Allowlists.from_settings(settings)

    async def gather(request: CdsRequest, context: HookContext) -> PatientData:
        facts = await hook_context(request.prefetch, request.fhir_server, request.access_token,
                                   context.patient_id, allowlists)
        chosen = choose_knee_mri(facts.imaging_studies, settings.dicomweb_url or None)
        if chosen is None:
            return PatientData(demographics=facts.demographics, study=None)
        study = StudyRef(study_instance_uid=chosen.study_instance_uid,
                         dicomweb_url=chosen.dicomweb_url or settings.dicomweb_url,
                         patient_reference=f"Patient/{context.patient_id}", fhir_url=settings.fhir_url or None)
        at = chosen.started or facts.at
        return PatientData(demographics=facts.demographics_at(at), study=study, study_date=chosen.started)

    return gather
