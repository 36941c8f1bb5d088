"""What the DICOMweb and FHIR clients share: authentication, timeouts, retries with backoff, status mapping.

Retries are for failures that a later attempt can cure: connection refused or reset, timeouts, 5xx and
429 answers, and bodies cut off in transit. A 4xx other than 429 is never retried: the same request
would be refused again, so it becomes a clear :mod:`app.clients.errors` exception at once.
Every request the clients send is safe to repeat: reads, and FHIR transactions made of conditional
creates (a repeated transaction creates nothing new).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from functools import cache
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from app.clients.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamProtocolError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.log import get_logger
from app.settings import Settings

T = TypeVar("T")
log = get_logger(__name__)


class PooledClient:
    """An upstream client owning one ``httpx.AsyncClient`` (``self._client``): ``async with`` closes its pool."""

    _client: httpx.AsyncClient

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` on every request (the token never reaches a log line)."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


def make_auth(user: str = "", password: str = "", token: str = "") -> httpx.Auth | None:
    """Bearer when a token is given, HTTP Basic when a user is, else none."""
    if token:
        return BearerAuth(token)
    if user:
        return httpx.BasicAuth(user, password)
    return None


@cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process, shared by every client.

    httpx builds a new one (loading the CA bundle, ~80 ms) for each client unless given one: a cost paid
    per hook or per retrieval for nothing.
    """
    return ssl.create_default_context()


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to try again: ``attempts`` in all, waits doubling from ``backoff_s``."""

    attempts: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(attempts=settings.upstream_attempts, backoff_s=settings.upstream_backoff_s)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based)."""
        return min(self.backoff_s * (2**attempt), self.max_backoff_s)


@dataclass(frozen=True)
class Timeouts:
    """Seconds to connect, and to wait for each read of the answer."""

    connect_s: float = 5.0
    read_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Timeouts:
        return cls(connect_s=settings.upstream_connect_timeout_s, read_s=settings.upstream_read_timeout_s)

    def httpx(self) -> httpx.Timeout:
        return httpx.Timeout(self.read_s, connect=self.connect_s)


def _retryable_status(status: int) -> bool:
    return status >= 500 or status == 429


def status_error(response: httpx.Response, what: str, detail: str | None = None) -> UpstreamError:
    """The exception for a 4xx answer (``detail``: what the body said, e.g. an OperationOutcome)."""
    status = response.status_code
    url = str(response.request.url.copy_with(query=None))
    suffix = f": {detail}" if detail else ""
    if status in (401, 403):
        word = "refused the credentials" if status == 401 else "forbids this request"
        return UpstreamAuthError(f"{what}: {url} {word} (HTTP {status}){suffix}", url=url, status=status)
    if status in (404, 410):
        return UpstreamNotFound(f"{what}: not found at {url} (HTTP {status}){suffix}", url=url, status=status)
    return UpstreamRejected(f"{what}: {url} rejected the request (HTTP {status}){suffix}", url=url, status=status)


async def request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    consume: Callable[[httpx.Response], Awaitable[T]],
    retry: RetryPolicy,
    describe_error: Callable[[httpx.Response], str | None] | None = None,
    **kwargs: object,
) -> T:
    """Send a request, stream its answer into ``consume``, retrying what a later attempt can cure.

    ``consume`` runs inside the retry loop, so a body cut off in transit (an ``httpx.TransportError`` or
    :class:`UpstreamProtocolError` raised while reading) is fetched again. 4xx answers raise at once.
    """
    last: UpstreamError | None = None
    for attempt in range(retry.attempts):
        if attempt:
            await asyncio.sleep(retry.delay(attempt - 1))
        try:
            async with client.stream(method, url, **kwargs) as response:  # type: ignore[arg-type]
                if response.status_code >= 400:
                    body = await response.aread()
                    del body
                    if not _retryable_status(response.status_code):
                        detail = describe_error(response) if describe_error else None
                        raise status_error(response, what, detail)
                    last = UpstreamUnavailable(
                        f"{what}: {url} answered HTTP {response.status_code} on attempt {attempt + 1} "
                        f"of {retry.attempts}",
                        url=url,
                        status=response.status_code,
                    )
                else:
                    return await consume(response)
        except httpx.TimeoutException as exc:
            last = UpstreamTimeout(
                f"{what}: {url} did not answer in time ({type(exc).__name__}) on attempt {attempt + 1} "
                f"of {retry.attempts}",
                url=url,
            )
        except httpx.TransportError as exc:
            last = UpstreamUnavailable(
                f"{what}: cannot reach {url} ({type(exc).__name__}: {exc}) on attempt {attempt + 1} "
                f"of {retry.attempts}",
                url=url,
            )
        except UpstreamProtocolError as exc:
            last = exc
        log.warning("upstream.attempt_failed", what=what, attempt=attempt + 1, error=type(last).__name__)
    assert last is not None
    raise last


def run_sync(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` for synchronous callers (CLI, workers), without formatting its result.

    On Python 3.11, asyncio.run formats the main task's repr, result included, twice as it restores
    the SIGINT handler (python/cpython#112559): for a retrieved series that pretty-prints six whole
    datasets, every element of them. Here the result leaves the task through a list, so the task's own
    result is None.
    """
    result: list[T] = []

    async def keep_result_out_of_the_task() -> None:
        result.append(await main)

    asyncio.run(keep_result_out_of_the_task())
    return result[0]
