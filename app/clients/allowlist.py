"""Allowlists of upstream base URLs: msk-cds sends requests (and credentials) only where configured.

A CDS Hooks request names its own FHIR server, and an ImagingStudy names its own DICOMweb endpoint:
both come from outside, so both are checked here before anything is sent (``fhir_allowlist`` and
``dicomweb_allowlist`` in the settings).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from app.clients.errors import NotAllowlisted


def _normalise(url: str) -> tuple[str, str, int | None, tuple[str, ...]]:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    default_port = 443 if parts.scheme == "https" else 80
    segments = tuple(segment for segment in parts.path.split("/") if segment)
    return parts.scheme, parts.hostname.lower(), parts.port or default_port, segments


def is_allowed(url: str, allowlist: Sequence[str]) -> bool:
    """Whether ``url`` equals an allowlisted base or lies below it (whole path segments, same origin)."""
    try:
        scheme, host, port, path = _normalise(url)
    except ValueError:
        return False
    for entry in allowlist:
        a_scheme, a_host, a_port, a_path = _normalise(entry)
        if (scheme, host, port) == (a_scheme, a_host, a_port) and path[: len(a_path)] == a_path:
            return True
    return False


def require_allowed(url: str, allowlist: Sequence[str], kind: str) -> str:
    """``url`` unchanged when allowlisted, else :class:`NotAllowlisted` naming the setting to change."""
    if not is_allowed(url, allowlist):
        setting = f"MSKCDS_{kind.upper()}_ALLOWLIST"
        raise NotAllowlisted(f"{kind} URL {url} is not allowlisted (add its base URL to {setting})", url=url)
    return url
