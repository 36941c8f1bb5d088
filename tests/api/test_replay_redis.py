"""Scale mode: API replicas share the jti replay cache in Redis (the server this machine runs on 6379)."""

from __future__ import annotations

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
