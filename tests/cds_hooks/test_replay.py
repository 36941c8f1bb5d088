import time

import pytest

from cds_hooks.replay import InMemoryReplayCache, ReplayCacheFull


async def test_first_use_then_replay_then_forgotten_after_expiry() -> None:
    cache = InMemoryReplayCache()
    now = time.time()
    assert await cache.first_use("a", now + 60) is True
    assert await cache.first_use("a", now + 60) is False
    assert await cache.first_use("old", now - 1) is True
    assert await cache.first_use("b", now + 60) is True  # purges "old"
    assert len(cache) == 2


async def test_full_cache_refuses_instead_of_forgetting() -> None:
    cache = InMemoryReplayCache(max_entries=2)
    await cache.first_use("a", time.time() + 60)
    await cache.first_use("b", time.time() + 60)
    with pytest.raises(ReplayCacheFull, match="replay cache holds 2 unexpired token ids"):
        await cache.first_use("c", time.time() + 60)
