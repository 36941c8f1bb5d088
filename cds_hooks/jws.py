"""JWS Compact Serialization, parsed once and strictly (RFC 7515 section 7.1, RFC 7519 section 7.2).

The verifier needs the header and the claims *before* the signature check (``kid`` and ``iss`` select
the key) and again after it. Parsing the token once here, and verifying the signature with the
PyJWT algorithm bound to the trusted key, replaces two full PyJWT decodes per call; what is checked
stays the same or gets stricter:

- exactly three segments, each in the base64url alphabet without padding (RFC 7515 section 2) and in
  canonical form (no stray bits in the last character);
- header and payload are JSON objects (the payload is a JWT Claims Set);
- ``b64: false`` (unencoded payload, RFC 7797) and any ``crit`` header are refused: msk-cds
  understands no JWS extension, and RFC 7515 section 4.1.11 requires refusing what is not understood.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class MalformedJws(ValueError):
    """Not a JWS in compact serialization with a JSON claims set."""


@dataclass(frozen=True)
class CompactJws:
    """A parsed, not yet verified, compact JWS."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _segment(text: str, name: str) -> bytes:
    if len(text) % 4 == 1 or not _BASE64URL.fullmatch(text):
        raise MalformedJws(f"the {name} is not base64url without padding")
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as error:
        raise MalformedJws(f"the {name} is not base64url: {error}") from None
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != text.encode("ascii"):
        raise MalformedJws(f"the {name} is not in canonical base64url form")
    return decoded


def _json_object(data: bytes, name: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise MalformedJws(f"the {name} is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise MalformedJws(f"the {name} is not a JSON object")
    return value


def parse_compact(token: str) -> CompactJws:
    """Split and decode ``header.payload.signature``; :class:`MalformedJws` for anything else."""
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedJws(f"a compact JWS has 3 segments, this one has {len(parts)}")
    header = _json_object(_segment(parts[0], "header"), "header")
    if header.get("b64", True) is not True or "crit" in header:
        raise MalformedJws("JWS extensions (crit, b64) are not supported")
    claims = _json_object(_segment(parts[1], "payload"), "payload")
    signature = _segment(parts[2], "signature")
    return CompactJws(header=header, claims=claims, signing_input=f"{parts[0]}.{parts[1]}".encode("ascii"),
                      signature=signature)
