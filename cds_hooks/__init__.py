"""The CDS Hooks 2.0 protocol (HL7 STU2) and nothing else: knows no MRI, no FHIR server, no model.

Models for discovery, requests, hook contexts, responses (cards, suggestions, actions, links) and
feedback; prefetch template rendering; verification of the JWTs CDS Clients sign. Nothing here
imports from ``app``.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> defining module. Imported on first use (PEP 562), so that ``app.settings``, which
#: needs only :mod:`cds_hooks.algorithms`, does not pay for httpx and the JWT stack at CLI start-up.
_EXPORTS: dict[str, str] = {
    "Coding": "_base",
    **dict.fromkeys(["AuthenticationError", "JwtVerifier", "TrustedClient", "VerifiedToken"], "auth"),
    **dict.fromkeys(["Action", "Card", "CdsResponse", "Link", "Source", "Suggestion"], "card"),
    **dict.fromkeys(["CdsService", "DiscoveryResponse"], "discovery"),
    **dict.fromkeys(["Feedback", "FeedbackRequest"], "feedback"),
    **dict.fromkeys(["DraftOrders", "HookContext", "OrderSelectContext", "OrderSignContext",
                     "PatientViewContext", "parse_context"], "hooks"),
    "JwksCache": "jwks",
    **dict.fromkeys(["PrefetchTemplateError", "render_template"], "prefetch"),
    **dict.fromkeys(["InMemoryReplayCache", "ReplayCache"], "replay"),
    **dict.fromkeys(["CdsRequest", "FhirAuthorization"], "request"),
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cds_hooks' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cds_hooks.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "Action", "AuthenticationError", "Card", "CdsRequest", "CdsResponse", "CdsService", "Coding",
    "DiscoveryResponse", "DraftOrders", "Feedback", "FeedbackRequest", "FhirAuthorization", "HookContext",
    "InMemoryReplayCache", "JwksCache", "JwtVerifier", "Link", "OrderSelectContext", "OrderSignContext",
    "PatientViewContext", "PrefetchTemplateError", "ReplayCache", "Source", "Suggestion", "TrustedClient",
    "VerifiedToken", "parse_context", "render_template",
]
