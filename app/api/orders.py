"""Which draft orders msk-cds reacts to in ``order-select`` / ``order-sign``.

An order is relevant when it is an R4 ``ServiceRequest`` that is still a proposal (status ``draft``
or ``active``, not revoked or entered in error) and one of the codings of its ``code`` or ``bodySite``
is on ``MSKCDS_CDS_ORDER_CODES`` (``system|code``). The default list: LOINC knee MRI and knee
radiograph orders, the SNOMED CT knee body site, total knee replacement and referral to an
orthopaedic surgeon (docs/cdshooks.md lists them). Matching is exact on system and code: no text
matching, because "knee" in free text is as likely to be a note as an order. For ``order-select``
only the newly selected orders count, as the hook definition asks.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from cds_hooks import HookContext, OrderSelectContext, OrderSignContext

_INACTIVE = frozenset({"revoked", "entered-in-error", "completed"})
REFERRAL_CODE = "http://snomed.info/sct|308481009"


def _codings(resource: dict[str, Any]) -> Iterable[str]:
    concepts = [resource.get("code"), *(resource.get("bodySite") or [])]
    for concept in concepts:
        for coding in (concept or {}).get("coding") or []:
            if isinstance(coding, dict) and coding.get("system") and coding.get("code"):
                yield f"{coding['system']}|{coding['code']}"


def is_relevant(order: dict[str, Any], codes: Collection[str]) -> bool:
    """True for an active knee imaging / orthopaedic ServiceRequest (see the module docstring)."""
    if order.get("resourceType") != "ServiceRequest" or order.get("status") in _INACTIVE:
        return False
    return any(coding in codes for coding in _codings(order))


def orders_under_review(context: HookContext) -> list[dict[str, Any]]:
    """The orders the hook is about: the selections for order-select, every draft order for order-sign."""
    if isinstance(context, OrderSelectContext):
        return context.selected_orders()
    if isinstance(context, OrderSignContext):
        return context.draft_orders.resources()
    return []


def relevant_orders(context: HookContext, codes: Collection[str]) -> list[dict[str, Any]]:
    """The knee imaging / orthopaedic orders among those under review."""
    return [order for order in orders_under_review(context) if is_relevant(order, codes)]


def refers_to_orthopaedics(context: HookContext) -> bool:
    """Whether the orders already include a referral to an orthopaedic surgeon (no need to suggest one)."""
    drafts = context.draft_orders.resources() if isinstance(context, OrderSelectContext | OrderSignContext) else []
    return any(REFERRAL_CODE in set(_codings(order)) for order in drafts)
