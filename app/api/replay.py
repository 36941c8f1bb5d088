"""The JWT ``jti`` replay cache shared by API replicas, in Redis.

``SET key 1 NX EXAT <exp>``: atomic across replicas, and Redis forgets the key when the token would
be rejected as expired anyway. Keys are a SHA-256 of issuer and jti, so nothing a client chose is
stored verbatim.

Under load, the checks of the calls the event loop is handling at the same moment go to Redis as one
pipeline (not a transaction: each ``SET NX`` stays atomic on its own, and two calls with the same jti
in one pipeline still see one ``True`` and one ``False``). A lone command costs redis-py ~0.12 ms of
CPU, a command in a pipeline of ten ~0.04 ms: at hundreds of hooks per second that is a tenth of the
hook's budget. A call never waits for a batch to fill: the pipeline is sent as soon as the loop has
run the callbacks that were ready together.
"""

from __future__ import annotations

import asyncio
import hashlib
import math

import redis.asyncio as redis


class RedisReplayCache:
    """A :class:`cds_hooks.replay.ReplayCache` on Redis, with concurrent checks pipelined."""

    def __init__(self, url: str, *, prefix: str = "mskcds:jti:") -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._prefix = prefix
        self._pending: list[tuple[str, int, asyncio.Future[bool]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def first_use(self, token_id: str, expires_at: float) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._send_pending)
        key = self._prefix + hashlib.sha256(token_id.encode()).hexdigest()
        self._pending.append((key, max(1, math.ceil(expires_at)), future))
        return await future

    def _send_pending(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.create_task(self._send(batch))
        self._sending.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[str, int, asyncio.Future[bool]]]) -> None:
        try:
            pipeline = self._redis.pipeline(transaction=False)
            for key, exat, _ in batch:
                pipeline.set(key, b"1", nx=True, exat=exat)
            answers = await pipeline.execute()
        except Exception as error:  # every waiting call fails as a lone command would have
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, _, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(bool(answer))

    async def aclose(self) -> None:
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        await self._redis.aclose()
