"""The body a CDS Client POSTs to a service (CDS Hooks 2.0, "Calling a CDS Service")."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from cds_hooks._base import AbsoluteUrl, CdsModel, NonEmptyStr


class FhirAuthorization(CdsModel):
    """An OAuth 2.0 bearer token for the client's FHIR server, valid for this one hook call.

    The attribute names are OAuth 2.0's (snake_case). ``access_token`` is a :class:`SecretStr` so no
    repr, log line or error message can show it; callers read it with ``get_secret_value()`` only to
    build the ``Authorization`` header of this request's FHIR calls.
    """

    model_config = ConfigDict(alias_generator=None)

    access_token: SecretStr
    token_type: Literal["Bearer"]
    expires_in: int = Field(ge=0)
    scope: NonEmptyStr
    subject: NonEmptyStr
    patient: NonEmptyStr | None = Field(default=None, description="patient a patient-scoped token is for")

    @field_validator("token_type", mode="before")
    @classmethod
    def _bearer_any_case(cls, value: Any) -> Any:
        # RFC 6749 section 5.1: token_type is case-insensitive; the spec's fixed value is "Bearer".
        return "Bearer" if isinstance(value, str) and value.lower() == "bearer" else value


class CdsRequest(CdsModel):
    """A hook call. ``context`` stays a plain mapping here; :func:`cds_hooks.hooks.parse_context` types it.

    Invariants checked: ``hookInstance`` is a UUID; ``fhirAuthorization`` requires ``fhirServer``;
    ``fhirServer`` is an absolute http(s) URL (https is the spec's rule for production data, which the
    service enforces through its allowlist, not here).
    """

    hook: NonEmptyStr
    hook_instance: str
    fhir_server: AbsoluteUrl | None = None
    fhir_authorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None
    extension: dict[str, Any] | None = None

    @field_validator("hook_instance")
    @classmethod
    def _uuid(cls, value: str) -> str:
        try:
            uuid.UUID(value.removeprefix("urn:uuid:"))
        except ValueError:
            raise ValueError("hookInstance must be a UUID") from None
        return value

    @model_validator(mode="after")
    def _authorization_needs_server(self) -> CdsRequest:
        if self.fhir_authorization is not None and self.fhir_server is None:
            raise ValueError("fhirAuthorization requires fhirServer (CDS Hooks 2.0, 'Calling a CDS Service')")
        return self

    @property
    def access_token(self) -> str | None:
        """The bearer token for this request's FHIR calls, if the client granted one."""
        return self.fhir_authorization.access_token.get_secret_value() if self.fhir_authorization else None
