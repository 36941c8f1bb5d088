"""Authenticating CDS Clients: the signed JWT every call carries (CDS Hooks 2.0, "Trusting CDS Clients").

``Authorization: Bearer <JWT>``, signed with the client's private key. Checked, in this order:
the token is a strict compact JWS (``cds_hooks.jws``, parsed once); the header names an allowed
asymmetric ``alg`` (never ``none``, never HMAC: the spec forbids both) and a ``kid``; the ``iss`` is a
trusted client; a ``jku``, if present, is that client's allowlisted URL; the signature verifies with
the key the ``kid`` selects (parsed, curve- and length-checked once per key, RSA below 2048 bits
refused); the required claims are present and ``exp`` / ``iat`` / ``nbf`` are NumericDates that hold
within a small clock skew; ``aud`` is the URL of the endpoint called; the lifetime is bounded; the
``jti`` is new. PyJWT's algorithm objects do the signature arithmetic.

Every failure raises :class:`AuthenticationError` with a short ``reason`` (for metrics and logs); the
HTTP layer answers a bare 401 whatever the reason, so a caller learns nothing about which check failed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt

from cds_hooks.algorithms import ASYMMETRIC_ALGORITHMS, RECOMMENDED_ALGORITHMS
from cds_hooks.jwks import JwksCache, JwksError, keys_by_kid
from cds_hooks.jws import MalformedJws, parse_compact
from cds_hooks.replay import ReplayCache, ReplayCacheFull

_REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]


class AuthenticationError(Exception):
    """The JWT was missing or failed a check. ``reason`` is a metric label; ``str()`` is for logs only."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class TrustedClient:
    """A CDS Client allowed to call: its JWT issuer and where its public keys come from."""

    iss: str
    jku: str | None = None
    jwks: Mapping[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if (self.jku is None) == (self.jwks is None):
            raise ValueError(f"client {self.iss!r}: give exactly one of jku (URL) or jwks (key set)")


@dataclass(frozen=True)
class VerifiedToken:
    """What the service learns from a valid JWT."""

    iss: str
    jti: str
    kid: str
    alg: str
    expires_at: int
    tenant: str | None


class JwtVerifier:
    """Verifies CDS Hooks client JWTs against a list of trusted clients."""

    def __init__(self, clients: Sequence[TrustedClient], *, replay_cache: ReplayCache, jwks_cache: JwksCache,
                 algorithms: Sequence[str] = RECOMMENDED_ALGORITHMS, leeway_s: float = 30.0,
                 max_lifetime_s: float = 3600.0) -> None:
        refused = sorted(set(algorithms) - ASYMMETRIC_ALGORITHMS)
        if refused:
            raise ValueError(f"algorithms {refused} are not allowed: CDS Hooks forbids 'none' and symmetric (HMAC) "
                             f"signatures; choose from {sorted(ASYMMETRIC_ALGORITHMS)}")
        self._clients = {client.iss: client for client in clients}
        self._static = {c.iss: keys_by_kid(c.jwks) for c in clients if c.jwks is not None}
        self._replay = replay_cache
        self._jwks = jwks_cache
        self._algorithms = frozenset(algorithms)
        self._leeway_s = leeway_s
        self._max_lifetime_s = max_lifetime_s
        self._keys: dict[tuple[str, str, str], tuple[dict[str, Any], _VerificationKey]] = {}

    async def aclose(self) -> None:
        """Release the JWKS HTTP client and the replay cache's connection, if it has one."""
        await self._jwks.aclose()
        close = getattr(self._replay, "aclose", None)
        if close is not None:
            await close()

    @staticmethod
    def bearer_token(authorization: str | None) -> str:
        """The token of an ``Authorization: Bearer <token>`` header."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("missing", "no 'Authorization: Bearer <JWT>' header")
        return token.strip()

    async def verify(self, authorization: str | None, audience: str | Sequence[str]) -> VerifiedToken:
        """Check the header's JWT for a call to ``audience`` (the endpoint's URL, or several accepted URLs)."""
        token = self.bearer_token(authorization)
        try:
            jws = parse_compact(token)
        except MalformedJws as error:
            raise AuthenticationError("malformed", f"not a JWS compact JWT: {error}") from None
        header, claims = jws.header, jws.claims
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise AuthenticationError("algorithm", f"alg {alg!r} is not allowed (allowed: {sorted(self._algorithms)})")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationError("kid", "the JWT header has no kid")
        if "typ" in header and str(header["typ"]).upper() != "JWT":
            raise AuthenticationError("malformed", f"typ {header['typ']!r} is not 'JWT'")
        iss = claims.get("iss")
        client = self._clients.get(iss) if isinstance(iss, str) else None
        if client is None:
            raise AuthenticationError("issuer", f"issuer {iss!r} is not a trusted CDS client")
        jku = header.get("jku")
        if jku is not None and jku != client.jku:
            raise AuthenticationError("jku", f"jku {jku!r} is not allowlisted for issuer {iss!r}")
        key = await self._key(client, kid, alg)
        if not key.algorithm.verify(jws.signing_input, key.key, jws.signature):
            raise AuthenticationError("signature", "the signature does not verify")
        self._check_claims(claims, [audience] if isinstance(audience, str) else audience)
        return await self._check_lifetime_and_replay(claims, kid, alg)

    def _check_claims(self, claims: dict[str, Any], audience: Sequence[str]) -> None:
        """RFC 7519 section 4.1: required claims present, NumericDates valid now (within the leeway), aud ours."""
        missing = [name for name in _REQUIRED_CLAIMS if name not in claims]
        if missing:
            raise AuthenticationError("claims", f"invalid claims: required claims missing: {missing}")
        for name in ("exp", "iat", "nbf"):
            if name in claims and not _is_numeric_date(claims[name]):
                raise AuthenticationError("claims", f"invalid claims: {name} is not a NumericDate")
        now = time.time()
        if claims["exp"] <= now - self._leeway_s:
            raise AuthenticationError("expired", "the JWT has expired")
        if claims["iat"] > now + self._leeway_s or claims.get("nbf", now) > now + self._leeway_s:
            raise AuthenticationError("not-yet-valid", "the JWT was issued in the future (iat / nbf)")
        aud = claims["aud"]
        token_audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(token_audiences, list) or not all(isinstance(a, str) for a in token_audiences):
            raise AuthenticationError("audience", "aud is neither a string nor an array of strings")
        if not any(a in audience for a in token_audiences):
            raise AuthenticationError("audience", f"aud is not {list(audience)!r}")

    async def _check_lifetime_and_replay(self, claims: dict[str, Any], kid: str, alg: str) -> VerifiedToken:
        jti, exp, iat = claims["jti"], int(claims["exp"]), int(claims["iat"])
        if not isinstance(jti, str) or not jti:
            raise AuthenticationError("claims", "jti must be a non-empty string")
        if exp - iat > self._max_lifetime_s:
            raise AuthenticationError(
                "lifetime", f"the JWT lives {exp - iat} s, more than {self._max_lifetime_s:.0f} s")
        try:
            first = await self._replay.first_use(f"{claims['iss']}\x00{jti}", exp + self._leeway_s)
        except ReplayCacheFull as error:
            raise AuthenticationError("replay-cache-full", str(error)) from None
        if not first:
            raise AuthenticationError("replay", "this jti was already used")
        tenant = claims.get("tenant")
        return VerifiedToken(iss=claims["iss"], jti=jti, kid=kid, alg=alg, expires_at=exp,
                             tenant=tenant if isinstance(tenant, str) else None)

    async def _key(self, client: TrustedClient, kid: str, alg: str) -> _VerificationKey:
        try:
            if client.jku is not None:
                jwk = await self._jwks.key(client.jku, kid)
            else:
                jwk = self._static[client.iss][kid]
        except (JwksError, KeyError) as error:
            raise AuthenticationError("key", f"no usable key {kid!r} for issuer {client.iss!r}: {error}") from None
        cache_key = (client.iss, kid, alg)
        cached = self._keys.get(cache_key)
        if cached is not None and cached[0] is jwk:  # same JWK object: the set was not re-fetched since
            return cached[1]
        if jwk.get("alg", alg) != alg:
            raise AuthenticationError("algorithm", f"key {kid!r} is for {jwk['alg']}, the JWT says {alg}")
        if jwk.get("use", "sig") != "sig":
            raise AuthenticationError("key", f"key {kid!r} is not a signing key (use={jwk['use']!r})")
        try:
            parsed = jwt.PyJWK(jwk, algorithm=alg)
            key = _VerificationKey(parsed.Algorithm, parsed.Algorithm.prepare_key(parsed.key))
        except (jwt.PyJWKError, jwt.InvalidKeyError) as error:
            raise AuthenticationError("key", f"key {kid!r} does not suit {alg}: {error}") from None
        weak = key.algorithm.check_key_length(key.key)
        if weak:
            raise AuthenticationError("key", f"key {kid!r} is too weak: {weak}")
        self._keys[cache_key] = (jwk, key)
        return key


def _is_numeric_date(value: Any) -> bool:
    """RFC 7519 NumericDate: a JSON number (not a boolean, not a string), finite."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


@dataclass(frozen=True)
class _VerificationKey:
    """A trusted public key, parsed and checked once (curve, length), with the algorithm it verifies."""

    algorithm: Any  # a jwt.algorithms.Algorithm
    key: Any
