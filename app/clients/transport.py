"""An httpx transport that moves the bytes with aiohttp: httpx's API, aiohttp's speed on large bodies.

Why: reading a 47 MB WADO-RS series cost ~0.1 s of CPU through httpx's own HTTP/1.1 stack (h11 +
anyio: every 64 KiB read resumes and pauses the socket and passes through h11's buffer) and ~0.03 s
through aiohttp (llhttp in C, a socket read as data arrives): docs/integration.md, "The WADO-RS
benchmark". The clients keep using :class:`httpx.AsyncClient` and :func:`app.clients.http.request`
unchanged: authentication, redirects (not followed), content decoding and the retry and error mapping
stay httpx's and ours; this transport only sends the request httpx built and hands back the raw answer.

aiohttp's exceptions become the httpx exceptions httpx's own transport raises for the same fault, so
:func:`app.clients.http.request` maps them to the same :mod:`app.clients.errors` as before. Timeouts:
httpx's ``connect`` bounds the TCP/TLS connect, ``read`` each wait for data, ``pool`` the wait for a
free connection (connect included); aiohttp has no write timeout (``write`` is not applied).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx
from yarl import URL


@contextmanager
def _httpx_errors(request: httpx.Request) -> Iterator[None]:
    """Raise the httpx exception httpx's own transport raises for the fault aiohttp reported."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
    except aiohttp.ServerTimeoutError as exc:  # SocketTimeoutError: no data within the read timeout
        raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
    except aiohttp.ClientConnectorError as exc:  # refused, unresolvable, TLS handshake or certificate
        raise httpx.ConnectError(str(exc), request=request) from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
        # closed before a complete answer, a body cut short, a malformed status line or header
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc
    except (aiohttp.ClientOSError, aiohttp.ClientConnectionError) as exc:  # reset while reading or writing
        raise httpx.ReadError(str(exc), request=request) from exc
    except aiohttp.ClientError as exc:
        raise httpx.TransportError(str(exc), request=request) from exc


class _Body(httpx.AsyncByteStream):
    """An aiohttp answer's body, in the pieces it arrives in (no re-chunking, no copy)."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors(self._request):
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        # Back to the pool when the body was read to its end, else the connection is closed.
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx's requests with one aiohttp session: at most ``max_connections``, kept alive between requests.

    The session is created on first use, inside the running event loop (aiohttp requires it). Proxies
    from the environment stay httpx's business: httpx mounts its own transport for proxied URLs.
    """

    def __init__(self, *, max_connections: int, tls: ssl.SSLContext, keepalive_s: float = 5.0) -> None:
        self._max_connections = max_connections
        self._tls = tls
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    def _open_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, ssl=self._tls, keepalive_timeout=self._keepalive_s
        )
        return aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # httpx decodes Content-Encoding, as with its own transport
            trust_env=False,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            self._session = self._open_session()
        timeout = request.extensions.get("timeout", {})
        body = await request.aread()
        with _httpx_errors(request):
            response = await self._session.request(
                request.method,
                URL(str(request.url), encoded=True),  # httpx encoded it already: send it byte for byte
                headers=list(request.headers.multi_items()),
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            request=request,
            extensions={
                "http_version": b"HTTP/%d.%d" % tuple(response.version or (1, 1)),
                "reason_phrase": (response.reason or "").encode(),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
