"""JWT ``jti`` replay protection: each token may be used once until it expires.

The spec requires ``jti`` "to protect against replay attacks"; the cache only has to remember a jti
until its token's ``exp`` (plus clock skew), after which the token is rejected as expired anyway.
:class:`InMemoryReplayCache` serves one process (the embedded default). Several API replicas need a
shared store; msk-cds provides a Redis one in ``app.api.replay``.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from typing import Protocol


class ReplayCache(Protocol):
    """Remembers token ids until they expire."""

    async def first_use(self, token_id: str, expires_at: float) -> bool:
        """Record ``token_id``; True the first time, False if it was seen and has not expired."""
        ...


class ReplayCacheFull(RuntimeError):
    """The in-memory cache holds ``max_entries`` unexpired ids; refusing is safer than forgetting."""


class InMemoryReplayCache:
    """A dict of token id -> expiry, purged in expiry order (a heap), bounded in size."""

    def __init__(self, max_entries: int = 1_000_000) -> None:
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._max_entries = max_entries
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def _purge(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            expires_at, token_id = heapq.heappop(self._heap)
            if self._expiry.get(token_id) == expires_at:
                del self._expiry[token_id]

    async def first_use(self, token_id: str, expires_at: float) -> bool:
        now = time.time()
        async with self._lock:
            self._purge(now)
            if token_id in self._expiry:
                return False
            if len(self._expiry) >= self._max_entries:
                raise ReplayCacheFull(f"replay cache holds {self._max_entries} unexpired token ids")
            self._expiry[token_id] = expires_at
            heapq.heappush(self._heap, (expires_at, token_id))
            return True
