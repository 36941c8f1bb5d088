"""Streaming reader of ``multipart/related`` bodies (RFC 2046 section 5.1, RFC 2387), as WADO-RS sends them.

Parts are yielded as soon as their closing delimiter has arrived, and the bytes before it are dropped,
so a series streams through one part (one instance) at a time instead of being held whole. A body that
ends before the close delimiter (``--boundary--``) is truncated, and says so.

Copies are what this costs (a 160-instance series is 47 MB), so a part's content is copied once: when
the part carries a ``Content-Length`` (DICOMweb servers send one; RFC 2046 does not require it), its
content is joined straight from the chunks that hold it and the boundary delimiter is expected right
after it; without one, the delimiter is searched for (``bytes.find``, resumed where the last search
stopped) in a buffer whose consumed front is dropped without moving the rest.
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


def _content_length(headers: dict[str, str]) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    if not value.isdigit():
        raise UpstreamProtocolError(f"multipart part with an invalid Content-Length {value!r}")
    return int(value)


class _Body:
    """The body received and not yet consumed: ``data[pos:]``, read from ``chunks`` as needed.

    ``data`` is usually one received chunk, read in place (``bytes.find`` from ``pos``, no copy); it
    becomes a growing bytearray only while something spans chunks and its length is unknown.
    """

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._source = aiter(chunks)
        self._exhausted = False
        self._data: bytes | bytearray = b""
        self._pos = 0

    def __len__(self) -> int:
        return len(self._data) - self._pos

    async def _next_chunk(self) -> bytes | None:
        if self._exhausted:
            return None
        try:
            return await anext(self._source)
        except StopAsyncIteration:
            self._exhausted = True
            return None

    async def _fill(self) -> bool:
        """Append the next chunk; False if the body has ended."""
        chunk = await self._next_chunk()
        if chunk is None:
            return False
        if not len(self):
            self._data, self._pos = chunk, 0
        else:
            if isinstance(self._data, bytes):
                self._data = bytearray(memoryview(self._data)[self._pos :])
            else:
                del self._data[: self._pos]  # drops the front without moving the rest
            self._pos = 0
            self._data += chunk
        return True

    async def have(self, size: int) -> bool:
        """Whether ``size`` bytes are available, reading more as needed."""
        while len(self) < size:
            if not await self._fill():
                return False
        return True

    async def find(self, token: bytes, start: int = 0) -> int:
        """Index of ``token`` at or after ``start``, reading more as needed; -1 if the body ends first."""
        scanned = start
        while True:
            index = self._data.find(token, self._pos + scanned)
            if index >= 0:
                return index - self._pos
            scanned = max(start, len(self) - len(token) + 1)
            if not await self._fill():
                return -1

    def peek(self, start: int, end: int) -> bytes:
        return bytes(self._data[self._pos + start : self._pos + end])

    def skip(self, size: int) -> None:
        self._pos += size

    def take(self, size: int) -> bytes:
        """The next ``size`` available bytes, consumed (one copy; none when they are a whole chunk)."""
        if self._pos == 0 and size == len(self._data) and isinstance(self._data, bytes):
            taken = self._data
        else:
            with memoryview(self._data) as view:
                taken = bytes(view[self._pos : self._pos + size])
        self._pos += size
        return taken

    async def take_exactly(self, size: int) -> bytes | None:
        """The next ``size`` bytes, consumed, joined from the chunks holding them (one copy); None at an early end."""
        if len(self) >= size:
            return self.take(size)
        pieces: list[bytes | memoryview] = [memoryview(self._data)[self._pos :]]
        missing = size - len(self)
        while True:
            chunk = await self._next_chunk()
            if chunk is None:
                return None
            if len(chunk) >= missing:
                break
            pieces.append(chunk)
            missing -= len(chunk)
        pieces.append(memoryview(chunk)[:missing])
        taken = b"".join(pieces)
        pieces.clear()  # releases the views (a bytearray with views cannot be resized)
        self._data, self._pos = chunk, missing
        return taken


async def iter_parts(chunks: AsyncIterable[bytes], boundary: str) -> AsyncIterator[Part]:
    """Yield the parts of a multipart body read from ``chunks``, one at a time."""
    delimiter = b"--" + boundary.encode("latin-1")
    body_end = _CRLF + delimiter
    body = _Body(chunks)

    def truncated(where: str) -> UpstreamProtocolError:
        return UpstreamProtocolError(f"multipart body truncated {where} (no close delimiter --{boundary}--)")

    # The preamble (ignored) ends at the first delimiter.
    start = await body.find(delimiter)
    if start < 0:
        raise truncated("before the first part")
    body.skip(start + len(delimiter))
    while True:
        await body.have(2)
        if body.peek(0, 2) == b"--":
            return  # close delimiter; the epilogue is ignored
        line_end = await body.find(_CRLF)
        if line_end < 0:
            raise truncated("in a delimiter line")
        headers_end = await body.find(_CRLF + _CRLF, line_end)
        if headers_end < 0:
            raise truncated("in part headers")
        headers = _parse_headers(body.peek(line_end + 2, headers_end))
        body.skip(headers_end + 4)
        length = _content_length(headers)
        if length is None:
            content_end = await body.find(body_end)
            if content_end < 0:
                raise truncated("in a part's content")
            content = body.take(content_end)
        else:
            taken = await body.take_exactly(length)
            if taken is None or not await body.have(len(body_end)):
                raise truncated("in a part's content")
            if body.peek(0, len(body_end)) != body_end:
                raise UpstreamProtocolError(
                    f"multipart part's content does not end at a boundary after its Content-Length ({length} bytes)"
                )
            content = taken
        body.skip(len(body_end))
        yield Part(headers=headers, content=content)
