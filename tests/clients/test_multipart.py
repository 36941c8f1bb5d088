"""The streaming multipart/related reader: parts across any chunking, and truncation caught."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.clients.errors import UpstreamProtocolError
from app.clients.multipart import Part, iter_parts, parse_content_type

BODY = (
    b"preamble to ignore\r\n"
    b"--XyZ\r\nContent-Type: application/dicom\r\n\r\nfirst\r\n--XyA-not-the-boundary\r\n"
    b"--XyZ\r\n\r\nsecond, no headers\r\n"
    b"--XyZ\r\nContent-Type: application/dicom\r\nContent-Length: 5\r\n\r\nthird\r\n"
    b"--XyZ--\r\nepilogue to ignore"
)


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def parts(data: bytes, size: int, boundary: str = "XyZ") -> list[Part]:
    return [part async for part in iter_parts(chunked(data, size), boundary)]


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 64, 100_000])
async def test_parts_are_the_same_whatever_the_chunking(chunk_size: int) -> None:
    found = await parts(BODY, chunk_size)
    assert [p.content for p in found] == [b"first\r\n--XyA-not-the-boundary", b"second, no headers", b"third"]
    assert found[0].headers == {"content-type": "application/dicom"}
    assert found[1].headers == {}
    assert found[2].headers == {"content-type": "application/dicom", "content-length": "5"}


@pytest.mark.parametrize(
    ("cut", "where"),
    [
        (len(b"preamble to ignore\r\n--X"), "before the first part"),
        (BODY.index(b"first") + 3, "in a part's content"),
        (BODY.index(b"Content-Length") + 4, "in part headers"),
        (BODY.index(b"--XyZ--") + 5, "in a delimiter line"),
    ],
)
async def test_a_truncated_body_says_where_it_ends(cut: int, where: str) -> None:
    with pytest.raises(UpstreamProtocolError) as caught:
        await parts(BODY[:cut], 3)
    assert str(caught.value) == f"multipart body truncated {where} (no close delimiter --XyZ--)"


def test_content_type_parameters() -> None:
    parsed = parse_content_type('multipart/related; type="application/dicom"; boundary="b-1"')
    assert (parsed.boundary, parsed.type) == ("b-1", "application/dicom")
    assert parse_content_type("multipart/related; boundary=abc").type is None


def test_content_type_must_be_multipart_related_with_a_boundary() -> None:
    with pytest.raises(UpstreamProtocolError) as caught:
        parse_content_type("application/dicom+json")
    assert str(caught.value) == "expected a multipart/related answer, got Content-Type 'application/dicom+json'"
    with pytest.raises(UpstreamProtocolError) as caught:
        parse_content_type('multipart/related; type="application/dicom"')
    assert str(caught.value) == (
        "multipart/related answer without a boundary: Content-Type 'multipart/related; type=\"application/dicom\"'"
    )


@pytest.mark.parametrize("chunk_size", [1, 3, 64])
async def test_a_part_cut_short_of_its_content_length_is_truncated(chunk_size: int) -> None:
    body = b"--XyZ\r\nContent-Length: 10\r\n\r\nonly six\r\n--XyZ--\r\n"
    with pytest.raises(UpstreamProtocolError) as caught:
        await parts(body[: body.index(b"six")], chunk_size)
    assert str(caught.value) == "multipart body truncated in a part's content (no close delimiter --XyZ--)"


async def test_a_content_length_that_does_not_end_at_the_boundary_is_refused() -> None:
    body = b"--XyZ\r\nContent-Length: 4\r\n\r\nfirst\r\n--XyZ--\r\n"
    with pytest.raises(UpstreamProtocolError) as caught:
        await parts(body, 5)
    assert str(caught.value) == (
        "multipart part's content does not end at a boundary after its Content-Length (4 bytes)"
    )


async def test_an_invalid_content_length_is_refused() -> None:
    with pytest.raises(UpstreamProtocolError) as caught:
        await parts(b"--XyZ\r\nContent-Length: -3\r\n\r\nabc\r\n--XyZ--\r\n", 7)
    assert str(caught.value) == "multipart part with an invalid Content-Length '-3'"


@pytest.mark.parametrize("chunk_size", [1000, 65_536, 300_000])
async def test_large_parts_with_and_without_content_length_arrive_intact(chunk_size: int) -> None:
    """Parts larger than a chunk, ending anywhere in one: each content exactly as sent."""
    contents = [bytes([k]) * (250_000 + 7919 * k) for k in range(5)]
    body = b"".join(
        b"--XyZ\r\n" + (f"Content-Length: {len(c)}\r\n".encode() if k % 2 else b"") + b"\r\n" + c + b"\r\n"
        for k, c in enumerate(contents)
    )
    found = await parts(body + b"--XyZ--\r\n", chunk_size)
    assert [p.content for p in found] == contents
