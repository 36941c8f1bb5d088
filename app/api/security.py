"""Who may call: CDS client JWT verification and the allowlist of FHIR servers a hook may name.

The JWT's ``aud`` must be the URL of the endpoint called, built from ``MSKCDS_PUBLIC_BASE_URL`` (the
URL the EHR was given, which behind a proxy differs from what the process sees). Feedback calls may
name the feedback URL or the service URL: both identify the same CDS Service.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from app.api.errors import ApiError, Unauthenticated
from app.log import get_logger
from app.metrics import AUTH_FAILURES, record_upstream_error
from app.settings import Settings
from cds_hooks import AuthenticationError, JwksCache, JwtVerifier, TrustedClient, VerifiedToken
from cds_hooks.replay import InMemoryReplayCache, ReplayCache

log = get_logger(__name__)


def base_url(settings: Settings) -> str:
    """``MSKCDS_PUBLIC_BASE_URL`` without a trailing slash."""
    return str(settings.public_base_url).rstrip("/")


def audiences(settings: Settings, service_id: str | None = None, *, feedback: bool = False) -> list[str]:
    """The ``aud`` values accepted for discovery, a service call or its feedback."""
    root = f"{base_url(settings)}/cds-services"
    if service_id is None:
        return [root]
    service = f"{root}/{service_id}"
    return [f"{service}/feedback", service] if feedback else [service]


def replay_cache_for(settings: Settings) -> ReplayCache:
    """In-process for one API process; Redis when several replicas must share it."""
    if settings.replay_cache_url:
        from app.api.replay import RedisReplayCache

        return RedisReplayCache(settings.replay_cache_url)
    return InMemoryReplayCache()


def build_verifier(settings: Settings, replay_cache: ReplayCache | None = None) -> JwtVerifier:
    """The verifier for the configured trusted clients (``MSKCDS_CDS_CLIENTS``)."""
    clients = [TrustedClient(iss=c.iss, jku=str(c.jku) if c.jku else None, jwks=c.jwks) for c in settings.cds_clients]
    return JwtVerifier(
        clients,
        replay_cache=replay_cache or replay_cache_for(settings),
        jwks_cache=JwksCache(timeout_s=settings.jwks_timeout_s, ttl_s=settings.jwks_cache_ttl_s),
        algorithms=settings.jwt_algorithms,
        leeway_s=settings.jwt_leeway_s,
        max_lifetime_s=settings.jwt_max_lifetime_s,
    )


async def authenticate(verifier: JwtVerifier | None, authorization: str | None,
                       audience: list[str]) -> VerifiedToken | None:
    """Verify the caller's JWT (None when the demo switched authentication off); bare 401 on failure."""
    if verifier is None:
        return None
    try:
        return await verifier.verify(authorization, audience)
    except AuthenticationError as error:
        AUTH_FAILURES.labels(reason=error.reason).inc()
        if error.reason == "key" and "JWKS" in str(error):
            record_upstream_error("jwks", "JwksError")
        log.warning("auth.rejected", reason=error.reason, detail=str(error))
        raise Unauthenticated from None


def _normalised(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port, parts.path.rstrip("/")


def check_fhir_server(settings: Settings, fhir_server: str | None) -> None:
    """403 unless the hook's ``fhirServer`` is on ``MSKCDS_FHIR_ALLOWLIST`` (no request forgery via a hook)."""
    if fhir_server is None:
        return
    wanted = _normalised(fhir_server)
    if not any(_normalised(allowed) == wanted for allowed in settings.fhir_allowlist):
        log.warning("hook.fhir_server_refused")
        raise ApiError(403, "forbidden", "fhirServer is not on this service's allowlist (MSKCDS_FHIR_ALLOWLIST)")
