"""Scale mode: API replicas share the jti replay cache in Redis (the server this machine runs on 6379)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis

from app.api.replay import RedisReplayCache
from app.api.security import build_verifier
from app.settings import Settings
from cds_hooks import AuthenticationError
from tests.cds_hooks.client import CdsTestClient

REDIS_URL = "redis://127.0.0.1:6379/15"
AUD = "http://cds.test/cds-services/mskcds-knee-patient-view"


@pytest.fixture(scope="module")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.ConnectionError as error:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({error}); start redis-server "
                    "(apt-get install redis-server)")
    return REDIS_URL


@pytest.mark.integration
async def test_a_token_used_on_one_replica_is_refused_on_another(redis_url: str) -> None:
    client = CdsTestClient(iss="https://ehr.redis.test/")
    settings = Settings(public_base_url="http://cds.test", replay_cache_url=redis_url,
                        cds_clients=[{"iss": client.iss, "jwks": client.jwks()}])
    replica_a, replica_b = build_verifier(settings), build_verifier(settings)
    token = client.token(AUD)
    try:
        assert (await replica_a.verify(f"Bearer {token}", AUD)).iss == client.iss
        with pytest.raises(AuthenticationError) as refused:
            await replica_b.verify(f"Bearer {token}", AUD)
        assert refused.value.reason == "replay"
    finally:
        await replica_a.aclose()
        await replica_b.aclose()


@pytest.mark.integration
async def test_keys_expire_with_the_token(redis_url: str) -> None:
    cache = RedisReplayCache(redis_url, prefix=f"mskcds-test:{uuid.uuid4()}:")
    try:
        assert await cache.first_use("iss\x00jti-1", time.time() + 60) is True
        assert await cache.first_use("iss\x00jti-1", time.time() + 60) is False
        [key] = await cache._redis.keys(f"{cache._prefix}*")
        assert 58 <= await cache._redis.ttl(key) <= 61  # Redis forgets the jti when the token expires
        assert b"jti-1" not in key  # stored as a hash, not as sent
    finally:
        await cache.aclose()


@pytest.mark.integration
async def test_concurrent_checks_share_a_pipeline_and_keep_their_answers(redis_url: str) -> None:
    cache = RedisReplayCache(redis_url, prefix=f"mskcds-test:{uuid.uuid4()}:")
    ids = [f"iss\x00jti-{i}" for i in range(20)]
    try:
        answers = await asyncio.gather(*(cache.first_use(token_id, time.time() + 60) for token_id in [*ids, ids[7]]))
        assert answers == [True] * 20 + [False]  # the same jti twice in one pipeline: one first use
        # one connection did it all: lone concurrent commands would each have taken one from the pool
        assert len(cache._redis.connection_pool._available_connections) == 1
        assert await asyncio.gather(*(cache.first_use(token_id, time.time() + 60) for token_id in ids[:3])) == [
            False, False, False]
    finally:
        await cache.aclose()


@pytest.mark.integration
async def test_every_waiting_check_fails_when_redis_is_unreachable() -> None:
    cache = RedisReplayCache("redis://127.0.0.1:9/0")  # discard port: nothing listens
    try:
        outcomes = await asyncio.gather(*(cache.first_use(f"iss\x00{i}", time.time() + 60) for i in range(3)),
                                        return_exceptions=True)
        assert [type(outcome) for outcome in outcomes] == [redis.ConnectionError] * 3
    finally:
        await cache.aclose()
