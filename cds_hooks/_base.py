"""Shared building blocks of the CDS Hooks models: JSON naming, the Coding data type, URL checks.

CDS Hooks JSON uses camelCase names (``hookInstance``, ``selectionBehavior``) except where it embeds
OAuth 2.0 names (``access_token``); Python attributes are snake_case and the JSON name is the alias.
The spec forbids ``null`` and empty values for OPTIONAL attributes ("implementers SHALL omit it"), so
every model serialises with :meth:`CdsModel.to_json` which drops unset values.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class CdsModel(BaseModel):
    """Base of every CDS Hooks object: camelCase JSON names, unknown attributes ignored when reading.

    Ignoring unknown attributes keeps the service working with clients that send newer or vendor
    fields; the spec reserves ``extension`` for those, which models that allow it declare explicitly.
    """

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
                              extra="ignore")

    def to_json(self) -> dict[str, Any]:
        """The spec's JSON form: camelCase names, OPTIONAL attributes without a value omitted."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class OutgoingModel(CdsModel):
    """Objects this service writes (cards, discovery): strict, so a misspelt attribute fails at construction."""

    model_config = ConfigDict(extra="forbid")


def _absolute_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value


#: An absolute http(s) URL, kept exactly as given (pydantic's URL types would normalise it).
AbsoluteUrl = Annotated[str, AfterValidator(_absolute_url)]
#: A string the spec forbids to be empty.
NonEmptyStr = Annotated[str, Field(min_length=1)]


class Coding(CdsModel):
    """The CDS Hooks Coding data type (a trimmed FHIR Coding): ``code`` and ``system`` are REQUIRED.

    ``display`` is CONDITIONAL: REQUIRED for override reasons a service provides (checked on
    :class:`~cds_hooks.card.Card`), OPTIONAL elsewhere, e.g. in a client's feedback.
    """

    code: NonEmptyStr
    system: NonEmptyStr
    display: NonEmptyStr | None = None
