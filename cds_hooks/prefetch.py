"""Prefetch templates and their tokens (CDS Hooks 2.0, "Prefetch Template" and "Prefetch tokens").

A token is ``{{context.<field>}}`` (a root-level, primitive field of the hook context that the hook
marks as a prefetch token) or one of the four user identifiers ``{{userPractitionerId}}``,
``{{userPractitionerRoleId}}``, ``{{userPatientId}}``, ``{{userRelatedPersonId}}``, derived from
``context.userId`` (``Practitioner/abc`` gives ``userPractitionerId`` = ``abc``).

CDS Hooks 2.0 defines nothing else: FHIRPath date expressions such as ``{{today() - 90 days}}`` belong
to later ballots, so they are rejected here rather than half-supported. "Recent" observations are
asked for the way 2.0 allows: ``_sort`` plus ``_count``.

The client renders templates; the service renders them too, when it falls back to querying the FHIR
server itself, because the spec requires prefetched data to equal what that query would return.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import quote

#: User-identifier tokens and the resource type ``context.userId`` must have for each.
USER_TOKENS: dict[str, str] = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}
_TOKEN = re.compile(r"\{\{(.*?)\}\}")
_CONTEXT_TOKEN = re.compile(r"^context\.([A-Za-z][A-Za-z0-9_]*)$")


class PrefetchTemplateError(ValueError):
    """A prefetch template uses a token CDS Hooks 2.0 does not define."""


def template_tokens(template: str) -> list[str]:
    """The tokens of a template, in order, without braces or surrounding blanks."""
    return [match.strip() for match in _TOKEN.findall(template)]


def validate_template(template: str, *, token_fields: Collection[str] | None = None, where: str = "template") -> None:
    """Raise :class:`PrefetchTemplateError` unless every token is one CDS Hooks 2.0 defines.

    ``token_fields`` are the context fields the hook marks "Prefetch Token: Yes"; when given, a
    ``context.<field>`` token must name one of them.
    """
    if not template or template.startswith("/") or "://" in template.partition("?")[0]:
        raise PrefetchTemplateError(
            f"{where}: must be a relative FHIR read or search URL, e.g. 'Patient/{{{{context.patientId}}}}'")
    if template.count("{{") != template.count("}}") or len(template_tokens(template)) != template.count("{{"):
        raise PrefetchTemplateError(f"{where}: unbalanced '{{{{' / '}}}}' in {template!r}")
    for token in template_tokens(template):
        if token in USER_TOKENS:
            continue
        match = _CONTEXT_TOKEN.match(token)
        if match is None:
            raise PrefetchTemplateError(
                f"{where}: unsupported prefetch token {{{{{token}}}}}; CDS Hooks 2.0 allows "
                f"{{{{context.<field>}}}} and {sorted(USER_TOKENS)}"
            )
        if token_fields is not None and match.group(1) not in token_fields:
            raise PrefetchTemplateError(
                f"{where}: context field {match.group(1)!r} is not a prefetch token of this hook "
                f"(allowed: {sorted(token_fields)})"
            )


def _user_identifier(token: str, context: Mapping[str, Any]) -> str | None:
    user = context.get("userId")
    if not isinstance(user, str) or "/" not in user:
        return None
    resource_type, _, user_id = user.partition("/")
    return user_id if resource_type == USER_TOKENS[token] and user_id else None


def render_template(template: str, context: Mapping[str, Any]) -> str | None:
    """The relative FHIR URL a template names for this hook context, or None if it cannot be satisfied.

    None means a token has no value here (e.g. ``{{userPatientId}}`` while a Practitioner is the user,
    or an optional ``encounterId`` that is absent); the spec then wants the prefetch key left out.
    Values are percent-encoded (``/`` kept, so ``{{context.userId}}`` still reads ``Practitioner/1``),
    so a context value cannot add query parameters of its own.
    """
    validate_template(template)

    def value_of(token: str) -> str | None:
        if token in USER_TOKENS:
            return _user_identifier(token, context)
        field = token.removeprefix("context.")
        value = context.get(field)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float) and value != "":
            return str(value)
        return None  # absent, or not a primitive: the spec allows only root-level primitive fields

    rendered: list[str] = []
    position = 0
    for match in _TOKEN.finditer(template):
        value = value_of(match.group(1).strip())
        if value is None:
            return None
        rendered.append(template[position:match.start()])
        rendered.append(quote(value, safe="/"))
        position = match.end()
    rendered.append(template[position:])
    return "".join(rendered)
