"""run_sync: asyncio.run for synchronous callers, without formatting the (possibly huge) result."""

from __future__ import annotations

import asyncio

import pytest

from app.clients.http import run_sync


class Expensive:
    """A result whose repr is counted (a list of datasets pretty-prints every element)."""

    reprs = 0

    def __repr__(self) -> str:
        Expensive.reprs += 1
        return "<Expensive>"


async def produce() -> Expensive:
    await asyncio.sleep(0)
    return Expensive()


def test_the_result_is_returned_and_never_formatted() -> None:
    Expensive.reprs = 0
    assert isinstance(run_sync(produce()), Expensive)
    assert Expensive.reprs == 0


def test_exceptions_reach_the_caller() -> None:
    async def fail() -> None:
        raise LookupError("no such series")

    with pytest.raises(LookupError, match="no such series"):
        run_sync(fail())
