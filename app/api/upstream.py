"""Upstream failures, translated into HTTP answers here and nowhere else.

The clients raise the :mod:`app.clients.errors` family; the hook context raises ``MissingContext``
(412, as CDS Hooks 2.0 prescribes when needed data is in neither the prefetch nor reachable on the
FHIR server) and ``InvalidPrefetch`` (400). The answer names the kind of failure, never the upstream
response, URL or credentials; the log keeps the detail for operators.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from app.api.errors import ApiError
from app.clients.errors import (
    NotAllowlisted,
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamTimeout,
)
from app.log import get_logger
from app.metrics import record_upstream_error

log = get_logger(__name__)


def _system(error: UpstreamError) -> str:
    url = (error.url or "").lower()
    return "dicomweb" if "dicom" in url or "wado" in url or "qido" in url else "fhir"


@contextmanager
def translate_upstream() -> Iterator[None]:
    """Turn upstream exceptions raised inside the block into :class:`ApiError` answers."""
    from app.clients.hook_context import InvalidPrefetch, MissingContext

    try:
        yield
    except MissingContext as error:
        log.info("hook.missing_context", missing=error.missing)
        raise ApiError(412, "required", f"{error}; send the prefetch the discovery document asks for, or "
                                        "fhirServer + fhirAuthorization with read access") from None
    except InvalidPrefetch as error:
        raise ApiError(400, "invalid", str(error)) from None
    except NotAllowlisted:
        raise ApiError(403, "forbidden", "the request names a server this service may not contact") from None
    except UpstreamError as error:
        system = _system(error)
        record_upstream_error(system, error)
        log.warning("hook.upstream_failed", system=system, error=type(error).__name__, status=error.status)
        if isinstance(error, UpstreamTimeout):
            raise ApiError(504, "timeout", f"the {system.upper()} server did not answer in time") from None
        if isinstance(error, UpstreamAuthError):
            raise ApiError(502, "security", f"the {system.upper()} server refused the access token given") from None
        if isinstance(error, UpstreamNotFound):
            raise ApiError(412, "not-found", f"the {system.upper()} server does not have a resource this "
                                             "service needs") from None
        raise ApiError(502, "transient", f"the {system.upper()} server failed; try again later") from None
