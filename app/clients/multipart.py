"""Streaming reader of ``multipart/related`` bodies (RFC 2046 section 5.1, RFC 2387), as WADO-RS sends them.

Parts are yielded as soon as their closing delimiter has arrived, and the bytes before it are dropped,
so a series streams through one part (one instance) at a time instead of being held whole. A body that
ends before the close delimiter (``--boundary--``) is truncated, and says so.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage

from app.clients.errors import UpstreamProtocolError

_CRLF = b"\r\n"


@dataclass(frozen=True)
class Part:
    """One body part: its headers (names lower-cased) and content."""

    headers: dict[str, str]
    content: bytes


@dataclass(frozen=True)
class MultipartType:
    """The parameters of a ``multipart/related`` Content-Type header."""

    boundary: str
    type: str | None


def parse_content_type(header: str | None) -> MultipartType:
    """Boundary and ``type`` parameter of a ``multipart/related`` Content-Type, or UpstreamProtocolError."""
    message = EmailMessage()
    message["content-type"] = header or ""
    if message.get_content_type() != "multipart/related":
        raise UpstreamProtocolError(f"expected a multipart/related answer, got Content-Type {header!r}")
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise UpstreamProtocolError(f"multipart/related answer without a boundary: Content-Type {header!r}")
    part_type = message.get_param("type")
    return MultipartType(boundary=boundary, type=part_type if isinstance(part_type, str) else None)


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split(_CRLF):
        if not line:
            continue
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise UpstreamProtocolError(f"malformed multipart part header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


async def iter_parts(chunks: AsyncIterable[bytes], boundary: str) -> AsyncIterator[Part]:
    """Yield the parts of a multipart body read from ``chunks``, one at a time."""
    delimiter = b"--" + boundary.encode("latin-1")
    body_end = _CRLF + delimiter
    buffer = bytearray()
    source = aiter(chunks)
    exhausted = False

    async def fill() -> bool:
        nonlocal exhausted
        if exhausted:
            return False
        try:
            buffer.extend(await anext(source))
        except StopAsyncIteration:
            exhausted = True
            return False
        return True

    async def find(token: bytes, start: int) -> int:
        """Index of ``token`` at or after ``start``, reading more as needed; -1 if the body ends first."""
        scanned = start
        while True:
            index = buffer.find(token, scanned)
            if index >= 0:
                return index
            scanned = max(start, len(buffer) - len(token) + 1)
            if not await fill():
                return -1

    def truncated(where: str) -> UpstreamProtocolError:
        return UpstreamProtocolError(f"multipart body truncated {where} (no close delimiter --{boundary}--)")

    # The preamble (ignored) ends at the first delimiter.
    start = await find(delimiter, 0)
    if start < 0:
        raise truncated("before the first part")
    del buffer[: start + len(delimiter)]
    while True:
        while len(buffer) < 2 and await fill():
            pass
        if buffer[:2] == b"--":
            return  # close delimiter; the epilogue is ignored
        line_end = await find(_CRLF, 0)
        if line_end < 0:
            raise truncated("in a delimiter line")
        headers_end = await find(_CRLF + _CRLF, line_end)
        if headers_end < 0:
            raise truncated("in part headers")
        headers = _parse_headers(bytes(buffer[line_end + 2 : headers_end]))
        content_start = headers_end + 4
        content_end = await find(body_end, content_start)
        if content_end < 0:
            raise truncated("in a part's content")
        content = bytes(buffer[content_start:content_end])
        del buffer[: content_end + len(body_end)]
        yield Part(headers=headers, content=content)
