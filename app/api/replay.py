"""The JWT ``jti`` replay cache shared by API replicas, in Redis.

``SET key 1 NX EXAT <exp>``: atomic across replicas, and Redis forgets the key when the token would
be rejected as expired anyway. Keys are a SHA-256 of issuer and jti, so nothing a client chose is
stored verbatim.
"""

from __future__ import annotations

import hashlib
import math

import redis.asyncio as redis


class RedisReplayCache:
    """A :class:`cds_hooks.replay.ReplayCache` on Redis."""

    def __init__(self, url: str, *, prefix: str = "mskcds:jti:") -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._prefix = prefix

    async def first_use(self, token_id: str, expires_at: float) -> bool:
        key = self._prefix + hashlib.sha256(token_id.encode()).hexdigest()
        return bool(await self._redis.set(key, b"1", nx=True, exat=max(1, math.ceil(expires_at))))

    async def aclose(self) -> None:
        await self._redis.aclose()
