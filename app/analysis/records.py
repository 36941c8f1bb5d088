"""What the analysis layer passes around: the study to analyse, the state of its job, and the keys of both.

A job is identified by its study and the model versions that analyse it, so its id is derived from
those two (a UUID 5): submitting the same study twice can only ever name the same job, in any process.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

JobStatus = Literal["queued", "running", "done", "failed"]

#: DICOM PS3.5 §9.1: a UID is dot-separated numeric components, at most 64 characters.
_DICOM_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$")
#: FHIR R4 relative reference to a Patient (id: [A-Za-z0-9\-\.]{1,64}).
_PATIENT_REFERENCE = re.compile(r"^Patient/[A-Za-z0-9\-.]{1,64}$")
_JOB_NAMESPACE = uuid.UUID("5c0f7f0e-3a51-4c1e-9d3b-6d2a8f1f4b7a")


class StudyRef(BaseModel):
    """What a job analyses: where the study is, and where its outputs go. Never a name or a birth date."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    study_instance_uid: str = Field(max_length=64, description="DICOM StudyInstanceUID (0020,000D)")
    dicomweb_url: str = Field(description="base URL of the DICOMweb service holding the study (allowlisted)")
    patient_reference: str | None = Field(default=None, description="e.g. 'Patient/123' on the FHIR server below")
    fhir_url: str | None = Field(default=None, description="FHIR server that receives the outputs (allowlisted)")

    @field_validator("study_instance_uid")
    @classmethod
    def _dicom_uid(cls, value: str) -> str:
        if not _DICOM_UID.match(value):
            raise ValueError(f"{value!r} is not a DICOM UID (digits and dots, no leading zeros, e.g. 1.2.840.1)")
        return value

    @field_validator("dicomweb_url", "fhir_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) base URL")
        return value.rstrip("/")

    @field_validator("patient_reference")
    @classmethod
    def _patient_reference(cls, value: str | None) -> str | None:
        if value is not None and not _PATIENT_REFERENCE.match(value):
            raise ValueError(f"{value!r} is not a FHIR Patient reference such as 'Patient/123'")
        return value


class JobState(BaseModel):
    """Where the analysis of one study with one set of model versions stands."""

    job_id: str
    study_instance_uid: str
    status: JobStatus
    attempts: int = Field(ge=0, description="runs started so far (a run lost with its worker counts)")
    error: str | None = Field(default=None, description="why the last run failed: exception type and message")


def model_key_for(model_versions: Mapping[str, str]) -> str:
    """The result store's model key: every model artifact with its version, sorted (``a=1.0;b=2.1``)."""
    if not model_versions:
        raise ValueError("an analyzer must name the versions of the models it runs (model_versions is empty)")
    return ";".join(f"{name}={version}" for name, version in sorted(model_versions.items()))


def job_id_for(study_instance_uid: str, model_key: str) -> str:
    """The one job id of a study analysed with these model versions."""
    return str(uuid.uuid5(_JOB_NAMESPACE, f"{study_instance_uid}|{model_key}"))
