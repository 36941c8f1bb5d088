"""JWT verification against a real JWKS endpoint: every check has a negative test, and a valid token passes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from cds_hooks.auth import AuthenticationError, JwtVerifier, TrustedClient
from cds_hooks.jwks import JwksCache
from cds_hooks.replay import InMemoryReplayCache
from tests.cds_hooks.client import CdsTestClient, JwksServer, tampered

AUD = "https://cds.test/cds-services/knee-mri-risk"


@pytest.fixture(scope="module")
def client() -> CdsTestClient:
    return CdsTestClient()


@pytest.fixture
def jwks_server(client: CdsTestClient) -> Iterator[JwksServer]:
    server = JwksServer(client.jwks())
    with server.running():
        client.jku = server.url
        yield server
    client.jku = None


@pytest.fixture
def verifier(client: CdsTestClient, jwks_server: JwksServer) -> JwtVerifier:
    return JwtVerifier([TrustedClient(iss=client.iss, jku=jwks_server.url)], replay_cache=InMemoryReplayCache(),
                       jwks_cache=JwksCache(timeout_s=2.0), leeway_s=5)


async def reason(verifier: JwtVerifier, token: str | None, aud: str = AUD) -> str:
    with pytest.raises(AuthenticationError) as caught:
        await verifier.verify(None if token is None else f"Bearer {token}", aud)
    return caught.value.reason


async def test_valid_es384_token(verifier: JwtVerifier, client: CdsTestClient) -> None:
    verified = await verifier.verify(f"Bearer {client.token(AUD, tenant='hospital-1')}", AUD)
    assert (verified.iss, verified.alg, verified.kid) == (client.iss, "ES384", client.kid)
    assert verified.tenant == "hospital-1"


async def test_rs384_with_a_jwk_that_names_no_alg(verifier: JwtVerifier, client: CdsTestClient) -> None:
    verified = await verifier.verify(f"Bearer {client.token(AUD, alg='RS384')}", AUD)
    assert verified.alg == "RS384"


async def test_aud_may_be_an_array(verifier: JwtVerifier, client: CdsTestClient) -> None:
    assert (await verifier.verify(f"Bearer {client.token([AUD])}", AUD)).alg == "ES384"


async def test_missing_header_and_wrong_scheme(verifier: JwtVerifier, client: CdsTestClient) -> None:
    assert await reason(verifier, None) == "missing"
    with pytest.raises(AuthenticationError, match="no 'Authorization: Bearer <JWT>' header"):
        await verifier.verify(f"Basic {client.token(AUD)}", AUD)


async def test_expired(verifier: JwtVerifier, client: CdsTestClient) -> None:
    now = int(time.time())
    assert await reason(verifier, client.token(AUD, iat=now - 600, exp=now - 60)) == "expired"


async def test_issued_in_the_future(verifier: JwtVerifier, client: CdsTestClient) -> None:
    now = int(time.time())
    assert await reason(verifier, client.token(AUD, iat=now + 120, exp=now + 400)) == "not-yet-valid"


async def test_lifetime_is_bounded(verifier: JwtVerifier, client: CdsTestClient) -> None:
    now = int(time.time())
    assert await reason(verifier, client.token(AUD, iat=now, exp=now + 7200)) == "lifetime"


async def test_wrong_audience(verifier: JwtVerifier, client: CdsTestClient) -> None:
    assert await reason(verifier, client.token("https://cds.test/cds-services/other")) == "audience"


async def test_unknown_issuer(verifier: JwtVerifier, client: CdsTestClient) -> None:
    assert await reason(verifier, client.token(AUD, iss="https://evil.test/")) == "issuer"


async def test_jku_not_allowlisted(verifier: JwtVerifier, client: CdsTestClient, jwks_server: JwksServer) -> None:
    token = client.token(AUD, headers={"jku": "http://127.0.0.1:1/attacker-jwks.json"})
    assert await reason(verifier, token) == "jku"
    assert jwks_server.fetches == 0


async def test_alg_none(verifier: JwtVerifier, client: CdsTestClient) -> None:
    assert await reason(verifier, client.unsigned_token(AUD)) == "algorithm"


async def test_hs256_signed_with_the_public_key(verifier: JwtVerifier, client: CdsTestClient) -> None:
    assert await reason(verifier, client.hs256_with_public_key(AUD)) == "algorithm"


async def test_replayed_jti(verifier: JwtVerifier, client: CdsTestClient) -> None:
    token = client.token(AUD)
    await verifier.verify(f"Bearer {token}", AUD)
    assert await reason(verifier, token) == "replay"


async def test_tampered_payload(verifier: JwtVerifier, client: CdsTestClient) -> None:
    assert await reason(verifier, tampered(client.token(AUD), tenant="someone-else")) == "signature"


async def test_missing_kid(verifier: JwtVerifier, client: CdsTestClient) -> None:
    assert await reason(verifier, client.token(AUD, headers={"kid": None})) == "kid"


async def test_unknown_kid_and_typ(verifier: JwtVerifier, client: CdsTestClient) -> None:
    assert await reason(verifier, client.token(AUD, headers={"kid": "not-there"})) == "key"
    assert await reason(verifier, client.token(AUD, headers={"typ": "at+jwt"})) == "malformed"
    assert await reason(verifier, "not.a.jwt") == "malformed"


async def test_missing_jti(verifier: JwtVerifier, client: CdsTestClient) -> None:
    assert await reason(verifier, client.token(AUD, jti=None)) == "claims"


async def test_key_alg_must_match(client: CdsTestClient) -> None:
    server = JwksServer(client.jwks(rsa_alg=True))
    with server.running():
        verifier = JwtVerifier([TrustedClient(iss=client.iss, jku=server.url)], replay_cache=InMemoryReplayCache(),
                               jwks_cache=JwksCache(), algorithms=["ES384", "RS384", "RS256"])
        assert await reason(verifier, client.token(AUD, alg="RS256")) == "algorithm"


async def test_jwks_is_cached_and_refetched_for_a_new_kid(client: CdsTestClient) -> None:
    server = JwksServer(client.jwks())
    with server.running():
        verifier = JwtVerifier([TrustedClient(iss=client.iss, jku=server.url)], replay_cache=InMemoryReplayCache(),
                               jwks_cache=JwksCache(min_refresh_s=0.0))
        for _ in range(5):
            await verifier.verify(f"Bearer {client.token(AUD)}", AUD)
        assert server.fetches == 1
        rotated = CdsTestClient(iss=client.iss, kid="rotated")
        server.jwks = rotated.jwks()
        await verifier.verify(f"Bearer {rotated.token(AUD)}", AUD)
        assert server.fetches == 2
        assert await reason(verifier, client.token(AUD)) == "key"  # the old key left the set


async def test_unreachable_jwks_fails_closed(client: CdsTestClient) -> None:
    server = JwksServer(client.jwks())
    server.status = 503
    with server.running():
        verifier = JwtVerifier([TrustedClient(iss=client.iss, jku=server.url)], replay_cache=InMemoryReplayCache(),
                               jwks_cache=JwksCache())
        with pytest.raises(AuthenticationError, match="answered HTTP 503"):
            await verifier.verify(f"Bearer {client.token(AUD)}", AUD)


async def test_out_of_band_jwks_and_jku_header_refused(client: CdsTestClient) -> None:
    verifier = JwtVerifier([TrustedClient(iss=client.iss, jwks=client.jwks())], replay_cache=InMemoryReplayCache(),
                           jwks_cache=JwksCache())
    assert (await verifier.verify(f"Bearer {client.token(AUD)}", AUD)).kid == client.kid
    assert await reason(verifier, client.token(AUD, headers={"jku": "http://127.0.0.1:1/jwks.json"})) == "jku"


def test_symmetric_algorithms_cannot_be_configured() -> None:
    with pytest.raises(ValueError, match=r"algorithms \['HS256', 'none'\] are not allowed"):
        JwtVerifier([], replay_cache=InMemoryReplayCache(), jwks_cache=JwksCache(),
                    algorithms=["ES384", "HS256", "none"])


def test_trusted_client_needs_one_key_source() -> None:
    with pytest.raises(ValueError, match="give exactly one of jku"):
        TrustedClient(iss="x")
