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
