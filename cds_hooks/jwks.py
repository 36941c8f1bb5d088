"""JSON Web Key Sets of trusted CDS Clients: fetched from allowlisted ``jku`` URLs, or given out-of-band.

Fetched sets are cached for ``ttl_s``. A ``kid`` not in the cached set triggers one re-fetch (the
client may have rotated keys), but at most once per ``min_refresh_s`` per URL, so tokens with random
``kid`` values cannot turn the service into a request amplifier against the client's JWKS endpoint.
Redirects are not followed: a redirect would lead to a URL nobody allowlisted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import httpx


class JwksError(Exception):
    """The key set could not be obtained or does not hold the wanted key."""


def keys_by_kid(jwks: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"keys": [...]}`` -> ``{kid: jwk}``; keys without a kid cannot be selected and are skipped."""
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise JwksError("a JWK Set is an object with a 'keys' array (RFC 7517 section 5)")
    return {key["kid"]: key for key in keys if isinstance(key, dict) and isinstance(key.get("kid"), str)}


class JwksCache:
    """Fetches and caches JWK Sets by URL. Only call it with URLs already checked against an allowlist."""

    def __init__(self, *, timeout_s: float = 3.0, ttl_s: float = 300.0, min_refresh_s: float = 30.0,
                 max_bytes: int = 256 * 1024, client: httpx.AsyncClient | None = None) -> None:
        self._client = client or httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._ttl_s = ttl_s
        self._min_refresh_s = min_refresh_s
        self._max_bytes = max_bytes
        self._sets: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _fetch(self, url: str) -> dict[str, dict[str, Any]]:
        try:
            response = await self._client.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            raise JwksError(f"JWKS {url} unreachable: {type(error).__name__}") from error
        if response.status_code != 200:
            raise JwksError(f"JWKS {url} answered HTTP {response.status_code}")
        if len(response.content) > self._max_bytes:
            raise JwksError(f"JWKS {url} is larger than {self._max_bytes} bytes")
        try:
            return keys_by_kid(response.json())
        except ValueError as error:
            raise JwksError(f"JWKS {url} is not JSON") from error

    async def key(self, url: str, kid: str) -> dict[str, Any]:
        """The JWK with ``kid`` from the set at ``url`` (cached; re-fetched on expiry or unknown kid)."""
        now = time.monotonic()
        cached = self._sets.get(url)
        if cached is not None and now - cached[0] < self._ttl_s and kid in cached[1]:
            return cached[1][kid]
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            cached = self._sets.get(url)
            fresh_enough = cached is not None and time.monotonic() - cached[0] < self._min_refresh_s
            stale = cached is None or time.monotonic() - cached[0] >= self._ttl_s
            if stale or (kid not in cached[1] and not fresh_enough):  # type: ignore[index]
                self._sets[url] = (time.monotonic(), await self._fetch(url))
            keys = self._sets[url][1]
        if kid not in keys:
            raise JwksError(f"no key with kid {kid!r} in JWKS {url}")
        return keys[kid]
