"""Authenticating CDS Clients: the signed JWT every call carries (CDS Hooks 2.0, "Trusting CDS Clients").

``Authorization: Bearer <JWT>``, signed with the client's private key. Checked, in this order:
the header names an allowed asymmetric ``alg`` (never ``none``, never HMAC: the spec forbids both) and
a ``kid``; the ``iss`` is a trusted client; a ``jku``, if present, is that client's allowlisted URL;
the signature verifies with the key the ``kid`` selects; ``aud`` is the URL of the endpoint called;
``exp`` / ``iat`` hold within a small clock skew and the lifetime is bounded; the ``jti`` is new.

Every failure raises :class:`AuthenticationError` with a short ``reason`` (for metrics and logs); the
HTTP layer answers a bare 401 whatever the reason, so a caller learns nothing about which check failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt

from cds_hooks.algorithms import ASYMMETRIC_ALGORITHMS, RECOMMENDED_ALGORITHMS
from cds_hooks.jwks import JwksCache, JwksError, keys_by_kid
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
        self._keys: dict[tuple[str, str, str], tuple[dict[str, Any], jwt.PyJWK]] = {}

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
            unverified_token = jwt.api_jwt.decode_complete(token, options={"verify_signature": False})
            header, unverified = unverified_token["header"], unverified_token["payload"]
        except jwt.InvalidTokenError as error:
            raise AuthenticationError("malformed", f"not a JWS compact JWT: {error}") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self._algorithms:
            raise AuthenticationError("algorithm", f"alg {alg!r} is not allowed (allowed: {sorted(self._algorithms)})")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationError("kid", "the JWT header has no kid")
        if "typ" in header and str(header["typ"]).upper() != "JWT":
            raise AuthenticationError("malformed", f"typ {header['typ']!r} is not 'JWT'")
        iss = unverified.get("iss")
        client = self._clients.get(iss) if isinstance(iss, str) else None
        if client is None:
            raise AuthenticationError("issuer", f"issuer {iss!r} is not a trusted CDS client")
        jku = header.get("jku")
        if jku is not None and jku != client.jku:
            raise AuthenticationError("jku", f"jku {jku!r} is not allowlisted for issuer {iss!r}")
        key = await self._key(client, kid, alg)
        try:
            claims = jwt.decode(token, key=key, algorithms=[alg], audience=audience, issuer=iss,
                                leeway=self._leeway_s, options={"require": _REQUIRED_CLAIMS})
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("expired", "the JWT has expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationError("not-yet-valid", "the JWT was issued in the future (iat)") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError("audience", f"aud is not {audience!r}") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError("signature", "the signature does not verify") from None
        except jwt.InvalidTokenError as error:
            raise AuthenticationError("claims", f"invalid claims: {error}") from None
        return await self._check_lifetime_and_replay(claims, kid, alg)

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

    async def _key(self, client: TrustedClient, kid: str, alg: str) -> jwt.PyJWK:
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
            key = jwt.PyJWK(jwk, algorithm=alg)
        except (jwt.PyJWKError, jwt.InvalidKeyError) as error:
            raise AuthenticationError("key", f"key {kid!r} does not suit {alg}: {error}") from None
        self._keys[cache_key] = (jwk, key)
        return key
