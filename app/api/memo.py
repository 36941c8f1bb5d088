"""A small LRU map whose entries expire: for facts worth reusing while a clinician works on one patient.

An EHR fires hooks for the same patient again and again (each chart opening fires ``patient-view``,
each order selected ``order-select``), with the same prefetch. What a call derives from inputs that
did not change (the prefetch's facts, the cards a stored analysis gives that patient) is kept a few
minutes, bounded in number, and only ever looked up by a key that covers every input it was derived
from. Used from the event loop only: nothing here awaits, so no lock is needed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

RECENT_CAPACITY = 4096
RECENT_TTL_S = 300.0


class RecentItems(Generic[K, V]):
    """At most ``capacity`` entries, each forgotten ``ttl_s`` seconds after it was stored."""

    def __init__(self, capacity: int = RECENT_CAPACITY, ttl_s: float = RECENT_TTL_S) -> None:
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._capacity, self._ttl_s = capacity, ttl_s

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        if time.monotonic() - item[0] > self._ttl_s:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: K, value: V) -> None:
        self._items[key] = (time.monotonic(), value)
        self._items.move_to_end(key)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)
