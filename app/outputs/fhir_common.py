"""Pieces every msk-cds FHIR resource shares: stable identities, the AI-asserted label, the ImagingStudy.

Identity: each resource gets an ``identifier`` that is a name-based UUID (RFC 4122 version 5) of what
makes it *that* result, e.g. (study, model versions, biomarker). The same analysis posted again yields
the same identifiers, so a conditional create (``ifNoneExist``) finds the first copy and creates
nothing. The entry's ``urn:uuid`` fullUrl is derived from the identifier too (see :func:`full_url`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date

from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.meta import Meta

from app.outputs.fhir_codes import V3_OBSERVATION_VALUE

#: Namespace of every msk-cds resource identity (a fixed, random UUID: never change it).
IDENTITY_NAMESPACE = uuid.UUID("6f1f8e4e-3c1d-4c8e-9a55-2f0c2b7d9a61")
#: Identifier system for URIs (RFC 3986), here ``urn:uuid:...``.
URI_SYSTEM = "urn:ietf:rfc:3986"
DICOM_UID_SYSTEM = "urn:dicom:uid"


def model_key(model_versions: Mapping[str, str]) -> str:
    """A canonical text for a set of model versions (``name@version`` sorted, ``+``-joined)."""
    return "+".join(f"{name}@{version}" for name, version in sorted(model_versions.items()))


def identity(*parts: str) -> str:
    """``urn:uuid:`` of the name-based UUID of ``parts``: same parts, same URN, on every machine."""
    return f"urn:uuid:{uuid.uuid5(IDENTITY_NAMESPACE, chr(31).join(parts))}"


def full_url(identifier_urn: str) -> str:
    """The Bundle entry's fullUrl for the resource with that identifier: another name-based UUID.

    Never the identifier's own value: servers rewrite every occurrence of a fullUrl in a transaction
    into the new resource's reference (Medplum does so even inside identifiers), which would break the
    identifier the conditional create searches for.
    """
    return identity("fullUrl", identifier_urn)


def identifier(urn: str) -> Identifier:
    return Identifier(system=URI_SYSTEM, value=urn)


def if_none_exist(urn: str) -> str:
    """The ``ifNoneExist`` query of a conditional create on that identifier."""
    return f"identifier={URI_SYSTEM}|{urn}"


def ai_asserted_meta() -> Meta:
    """``meta.security`` AIAST (HL7 v3 ObservationValue): the content was asserted by an AI."""
    return Meta(
        security=[Coding(system=V3_OBSERVATION_VALUE, code="AIAST", display="Artificial Intelligence asserted")]
    )


def study_identity(study_instance_uid: str) -> str:
    """The ImagingStudy identifier value for a DICOM Study Instance UID (FHIR R4 ImagingStudy)."""
    return f"urn:oid:{study_instance_uid}"


def imaging_study(
    study_instance_uid: str, patient_reference: str, started: date | None, series: Mapping[str, str]
) -> ImagingStudy:
    """An ImagingStudy for a study the FHIR server may not know yet (created only if none has its UID).

    ``series`` maps SeriesInstanceUID -> modality code (DICOM CID 29), for the series the analysis read.
    """
    return ImagingStudy(
        status="available",
        identifier=[Identifier(system=DICOM_UID_SYSTEM, value=study_identity(study_instance_uid))],
        subject={"reference": patient_reference},
        started=started.isoformat() if started else None,
        series=[
            {"uid": uid, "modality": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": modality}}
            for uid, modality in series.items()
        ]
        or None,
    )
