"""The training-data pool: an interrupted slice preparation stops at once."""

from __future__ import annotations

import time

import pytest

from app.segmentation.recipe import worker_pool


def test_leaving_the_pool_by_an_error_cancels_the_queued_jobs() -> None:
    """Ctrl-C or a failed phantom during preparation must not first run every phantom still queued."""
    with pytest.raises(RuntimeError, match="interrupted"), worker_pool(1) as pool:
        jobs = [pool.submit(time.sleep, 0.5) for _ in range(10)]
        raise RuntimeError("interrupted")
    # one worker holds at most one job running and one handed over; the rest never start
    assert sum(job.cancelled() for job in jobs) >= 8
    assert all(job.done() for job in jobs)


def test_the_pool_runs_every_job_when_nothing_goes_wrong() -> None:
    with worker_pool(2) as pool:
        jobs = [pool.submit(pow, 2, n) for n in range(6)]
    assert [job.result() for job in jobs] == [1, 2, 4, 8, 16, 32]
