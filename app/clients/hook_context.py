"""What a CDS Hooks call needs about the patient: prefetch first, the EHR's FHIR server as fallback.

CDS Hooks 2.0 lets the EHR send prefetched FHIR data with the request; a service fetches from the
request's ``fhirServer`` (with ``fhirAuthorization.access_token``) only what the prefetch lacks. A
prefetch key that is present with ``null`` means the EHR could not fetch it; a key that is absent
means it did not try. Either way the FHIR server is asked, when one is named and allowlisted. When
neither source has what is needed, :class:`MissingContext` says what is missing (the API answers 412).

:data:`PREFETCH_TEMPLATES` are the templates the CDS services should advertise in their discovery
document: the keys read here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.endpoint import Endpoint
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from app.clients.allowlist import is_allowed
from app.clients.demographics import BODY_MEASUREMENT_CODES, LOINC, demographics
from app.clients.errors import UpstreamProtocolError
from app.clients.fhir import FhirClient, ImagingStudyRef, imaging_study_refs, parse_resource
from app.settings import Settings, get_settings
from schemas.analysis import Demographics

_CODES = ",".join(f"{LOINC}|{code}" for code in BODY_MEASUREMENT_CODES)

#: Prefetch templates for the CDS services' discovery document; the keys are what hook_context reads.
PREFETCH_TEMPLATES: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    "bodyMeasurements": f"Observation?subject=Patient/{{{{context.patientId}}}}&code={_CODES}",
    "imagingStudies": "ImagingStudy?subject=Patient/{{context.patientId}}&_include=ImagingStudy:endpoint",
}

Source = Literal["prefetch", "fhir"]


class MissingContext(Exception):
    """Neither the prefetch nor a usable FHIR server provides what the service needs (HTTP 412)."""

    def __init__(self, missing: Sequence[str], reason: str) -> None:
        super().__init__(f"missing {', '.join(missing)}: not in the prefetch, and {reason}")
        self.missing = list(missing)


class InvalidPrefetch(ValueError):
    """The prefetch holds something other than what its template asks for (HTTP 400)."""


@dataclass(frozen=True)
class Allowlists:
    """Base URLs msk-cds may send requests to."""

    fhir: Sequence[str] = ()
    dicomweb: Sequence[str] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Allowlists:
        return cls(fhir=tuple(settings.fhir_allowlist), dicomweb=tuple(settings.dicomweb_allowlist))


@dataclass(frozen=True)
class HookContext:
    """The patient facts a hook's answer is computed from, and where each came from."""

    patient: Patient
    body_measurements: tuple[Observation, ...]
    imaging_studies: tuple[ImagingStudyRef, ...]
    at: date
    sources: dict[str, Source] = field(default_factory=dict)

    @property
    def demographics(self) -> Demographics:
        """Demographics on the context's date (the study date when known, else the day of the call)."""
        return self.demographics_at(self.at)

    def demographics_at(self, at: date) -> Demographics:
        return demographics(self.patient, self.body_measurements, at)


def _resources(value: Any, key: str) -> list[Any]:
    """The resources of one prefetch value: a single resource, or a Bundle's entries."""
    try:
        resource = parse_resource(value, f"prefetch {key!r}")
    except UpstreamProtocolError as exc:
        raise InvalidPrefetch(str(exc)) from exc
    if isinstance(resource, Bundle):
        return [entry.resource for entry in resource.entry or [] if entry.resource is not None]
    return [resource]


def _patient_from_prefetch(value: Any, patient_id: str) -> Patient:
    resources = _resources(value, "patient")
    if len(resources) != 1 or not isinstance(resources[0], Patient):
        raise InvalidPrefetch("prefetch 'patient' must hold one Patient resource")
    if resources[0].id != patient_id:
        raise InvalidPrefetch(f"prefetch 'patient' is Patient/{resources[0].id}, the hook's context names {patient_id}")
    return resources[0]


async def hook_context(
    prefetch: Mapping[str, Any] | None,
    fhir_server: str | None,
    access_token: str | None,
    patient_id: str,
    allowlists: Allowlists,
    *,
    at: date | None = None,
    client_factory: Callable[[str, str], FhirClient] | None = None,
) -> HookContext:
    """Gather the Patient, body measurements and imaging studies for ``patient_id``.

    Raises :class:`MissingContext` when something needed is in neither source, :class:`InvalidPrefetch`
    for malformed prefetch data, and the :mod:`app.clients.errors` family when the FHIR server fails.
    """
    prefetch = prefetch or {}
    wanted = [key for key in PREFETCH_TEMPLATES if prefetch.get(key) is None]
    sources: dict[str, Source] = {key: "prefetch" for key in PREFETCH_TEMPLATES if key not in wanted}
    patient = _patient_from_prefetch(prefetch["patient"], patient_id) if "patient" not in wanted else None
    observations = (
        [r for r in _resources(prefetch["bodyMeasurements"], "bodyMeasurements") if isinstance(r, Observation)]
        if "bodyMeasurements" not in wanted
        else []
    )
    study_resources = _resources(prefetch["imagingStudies"], "imagingStudies") if "imagingStudies" not in wanted else []
    studies = [r for r in study_resources if isinstance(r, ImagingStudy)]
    endpoints = [r for r in study_resources if isinstance(r, Endpoint)]

    if wanted:
        if not fhir_server:
            raise MissingContext(wanted, "the request names no fhirServer")
        if not is_allowed(fhir_server, allowlists.fhir):
            raise MissingContext(wanted, f"its fhirServer {fhir_server} is not allowlisted (MSKCDS_FHIR_ALLOWLIST)")
        make_client = client_factory or (lambda url, token: FhirClient.from_settings(get_settings(), url, token))
        async with make_client(fhir_server, access_token or "") as client:
            if "patient" in wanted:
                patient = await client.patient(patient_id)
            if "bodyMeasurements" in wanted:
                observations = await client.body_measurements(patient_id)
            if "imagingStudies" in wanted:
                studies, endpoints = await client.imaging_study_resources(patient_id)
        sources.update({key: "fhir" for key in wanted})
    assert patient is not None
    return HookContext(
        patient=patient,
        body_measurements=tuple(observations),
        imaging_studies=tuple(imaging_study_refs(studies, endpoints, allowlists.dicomweb)),
        at=at or date.today(),
        sources=sources,
    )
