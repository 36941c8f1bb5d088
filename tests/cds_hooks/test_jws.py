"""Compact JWS parsing: the strict form the verifier accepts, and the exact reason for each refusal."""

from __future__ import annotations

import base64
import json

import pytest

from cds_hooks.jws import MalformedJws, parse_compact
from tests.cds_hooks.client import CdsTestClient, b64url


def segment(value: dict) -> str:
    return b64url(json.dumps(value).encode())


HEADER = segment({"alg": "ES384", "kid": "k", "typ": "JWT"})
CLAIMS = segment({"iss": "https://ehr.test/", "jti": "1"})
SIGNATURE = b64url(b"\x01" * 96)


def test_a_signed_token_round_trips() -> None:
    client = CdsTestClient()
    token = client.token("https://cds.test/cds-services/x", tenant="t1")
    jws = parse_compact(token)
    assert jws.header == {"alg": "ES384", "kid": client.kid, "typ": "JWT"}
    assert jws.claims["tenant"] == "t1" and jws.claims["aud"] == "https://cds.test/cds-services/x"
    assert jws.signing_input == token.rsplit(".", 1)[0].encode()
    assert len(jws.signature) == 96  # ES384: r || s, 48 bytes each (RFC 7518 section 3.4)


@pytest.mark.parametrize(("token", "message"), [
    (f"{HEADER}.{CLAIMS}", "a compact JWS has 3 segments, this one has 2"),
    (f"{HEADER}.{CLAIMS}.{SIGNATURE}.x", "a compact JWS has 3 segments, this one has 4"),
    (f"{HEADER}=.{CLAIMS}.{SIGNATURE}", "the header is not base64url without padding"),
    (f"{HEADER}.{CLAIMS}.{SIGNATURE[:-1]}+", "the signature is not base64url without padding"),
    (f"{HEADER}.{CLAIMS}.{SIGNATURE}A", "the signature is not base64url without padding"),  # 4n+1 characters
    (f"{HEADER}.{CLAIMS}.AB", "the signature is not in canonical base64url form"),  # stray low bits
    (f"{b64url(b'not json')}.{CLAIMS}.{SIGNATURE}",
     "the header is not JSON: Expecting value: line 1 column 1 (char 0)"),
    (f"{segment({'alg': 'ES384'})}.{b64url(b'[1]')}.{SIGNATURE}", "the payload is not a JSON object"),
    (f"{segment({'alg': 'ES384', 'crit': ['exp']})}.{CLAIMS}.{SIGNATURE}",
     "JWS extensions (crit, b64) are not supported"),
    (f"{segment({'alg': 'ES384', 'b64': False})}..{SIGNATURE}", "JWS extensions (crit, b64) are not supported"),
    ("é.é.é", "the header is not base64url without padding"),
])
def test_malformed_tokens_are_refused_with_the_reason(token: str, message: str) -> None:
    with pytest.raises(MalformedJws) as refused:
        parse_compact(token)
    assert str(refused.value) == message


def test_padding_free_decoding_matches_the_standard_library() -> None:
    for length in range(0, 7):
        data = bytes(range(length))
        assert parse_compact(f"{HEADER}.{CLAIMS}.{b64url(data)}").signature == data
        assert b64url(data) == base64.urlsafe_b64encode(data).decode().rstrip("=")
