"""The CDS Hooks 2.0 protocol (HL7 STU2) and nothing else: knows no MRI, no FHIR server, no model.

Models for discovery, requests, hook contexts, responses (cards, suggestions, actions, links) and
feedback; prefetch template rendering; verification of the JWTs CDS Clients sign. Nothing here
imports from ``app``.
"""

from cds_hooks._base import Coding
from cds_hooks.auth import AuthenticationError, JwtVerifier, TrustedClient, VerifiedToken
from cds_hooks.card import Action, Card, CdsResponse, Link, Source, Suggestion
from cds_hooks.discovery import CdsService, DiscoveryResponse
from cds_hooks.feedback import Feedback, FeedbackRequest
from cds_hooks.hooks import (
    DraftOrders,
    HookContext,
    OrderSelectContext,
    OrderSignContext,
    PatientViewContext,
    parse_context,
)
from cds_hooks.jwks import JwksCache
from cds_hooks.prefetch import PrefetchTemplateError, render_template
from cds_hooks.replay import InMemoryReplayCache, ReplayCache
from cds_hooks.request import CdsRequest, FhirAuthorization

__all__ = [
    "Action", "AuthenticationError", "Card", "CdsRequest", "CdsResponse", "CdsService", "Coding",
    "DiscoveryResponse", "DraftOrders", "Feedback", "FeedbackRequest", "FhirAuthorization", "HookContext",
    "InMemoryReplayCache", "JwksCache", "JwtVerifier", "Link", "OrderSelectContext", "OrderSignContext",
    "PatientViewContext", "PrefetchTemplateError", "ReplayCache", "Source", "Suggestion", "TrustedClient",
    "VerifiedToken", "parse_context", "render_template",
]
