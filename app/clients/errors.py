"""The small exception family for upstream failures (DICOMweb, FHIR).

Clients raise these and nothing else for problems on the other side of the wire; ``app/api`` alone
translates them into HTTP answers or cards. Every message names the server (its base URL, never a
credential), what was asked and what came back, so an integration engineer can act on it.
"""

from __future__ import annotations


class UpstreamError(Exception):
    """An upstream system failed or refused a request."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class UpstreamTimeout(UpstreamError):
    """No (complete) answer within the configured timeout, after the retries allowed."""


class UpstreamUnavailable(UpstreamError):
    """Connection refused / reset, or 5xx answers on every attempt."""


class UpstreamAuthError(UpstreamError):
    """401 or 403: credentials missing, wrong or expired (retrying with the same ones cannot help)."""


class UpstreamNotFound(UpstreamError):
    """404 / 410: the resource, study or series does not exist there."""


class UpstreamRejected(UpstreamError):
    """Another 4xx: the server refused the request as made (FHIR: its OperationOutcome is in the message)."""

    def __init__(
        self, message: str, *, url: str | None = None, status: int | None = None, issues: list[str] | None = None
    ) -> None:
        super().__init__(message, url=url, status=status)
        self.issues = issues or []


class UpstreamProtocolError(UpstreamError):
    """The answer broke the protocol: truncated multipart body, wrong content type, unparseable payload."""


class NotAllowlisted(UpstreamError):
    """A URL outside the configured allowlist: msk-cds never sends credentials or requests there."""
