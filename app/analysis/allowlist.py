"""Which servers a job may read a study from or write outputs to.

A study reference arrives from outside (a hook, a PACS notification), and a worker fetches whatever
URL it names: without an allowlist that is a server-side request forgery. The configured servers
(``MSKCDS_DICOMWEB_URL``, ``MSKCDS_FHIR_URL``) are allowed, plus those listed in
``MSKCDS_DICOMWEB_ALLOWLIST`` / ``MSKCDS_FHIR_ALLOWLIST``; a base URL must match exactly (trailing
slash aside).
"""

from __future__ import annotations

from app.analysis.records import StudyRef
from app.settings import Settings


class NotAllowlisted(ValueError):
    """A study reference names a server this service may not contact (the API answers 403)."""


def check_allowlisted(ref: StudyRef, settings: Settings) -> None:
    """Raise :class:`NotAllowlisted` unless every server the reference names is allowed."""
    _check(ref.dicomweb_url, [settings.dicomweb_url, *settings.dicomweb_allowlist], "DICOMweb", "DICOMWEB")
    if ref.fhir_url is not None:
        _check(ref.fhir_url, [settings.fhir_url, *settings.fhir_allowlist], "FHIR", "FHIR")


def _check(url: str, allowed: list[str], kind: str, setting: str) -> None:
    if url.rstrip("/") not in {entry.rstrip("/") for entry in allowed if entry}:
        raise NotAllowlisted(f"{kind} server {url} is not allowlisted: add it to MSKCDS_{setting}_ALLOWLIST")
