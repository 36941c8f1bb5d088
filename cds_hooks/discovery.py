"""The discovery endpoint's response (``GET {baseUrl}/cds-services``), CDS Hooks 2.0 "Discovery"."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from cds_hooks._base import NonEmptyStr, OutgoingModel
from cds_hooks.prefetch import validate_template


class CdsService(OutgoingModel):
    """One CDS Service as the discovery endpoint describes it.

    ``id`` becomes a path segment (``{baseUrl}/cds-services/{id}``), so it is limited to URL-safe
    characters. Prefetch templates are checked for well-formed tokens here; whether a token suits the
    service's hook is checked by :func:`cds_hooks.hooks.check_service_prefetch`.
    """

    hook: NonEmptyStr
    title: NonEmptyStr | None = Field(default=None, description="RECOMMENDED")
    description: NonEmptyStr
    id: str = Field(pattern=r"^[A-Za-z0-9._~-]+$")
    prefetch: dict[str, str] | None = None
    usage_requirements: NonEmptyStr | None = None
    extension: dict[str, Any] | None = None

    @field_validator("prefetch")
    @classmethod
    def _templates_well_formed(cls, prefetch: dict[str, str] | None) -> dict[str, str] | None:
        if prefetch is not None:
            if not prefetch:
                raise ValueError("prefetch must be omitted rather than empty")
            for key, template in prefetch.items():
                validate_template(template, where=f"prefetch[{key!r}]")
        return prefetch


class DiscoveryResponse(OutgoingModel):
    """``{"services": [...]}``; an empty list is valid (a server hosting no services)."""

    services: list[CdsService]

    @field_validator("services")
    @classmethod
    def _unique_ids(cls, services: list[CdsService]) -> list[CdsService]:
        ids = [service.id for service in services]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"service ids must be unique; repeated: {duplicates}")
        return services
