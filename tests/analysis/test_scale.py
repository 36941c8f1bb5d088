"""Scale mode for real: the machine's PostgreSQL, procrastinate, and ``mskcds worker`` subprocesses."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from app.analysis import create_analysis_service, job_id_for
from app.analysis.db import jobs_table, results_table
from app.analysis.jobs import JobStore
from tests.analysis.analyzers import MODEL_KEY, FixedAnalyzer, build_result
from tests.analysis.conftest import Workers, eventually, make_ref, scale_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIXED = "tests.analysis.analyzers:fixed_analyzer"
SLOW = "tests.analysis.analyzers:slow_analyzer"
FAILING = "tests.analysis.analyzers:failing_analyzer"


def sql(url: str, query: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query))]
    finally:
        engine.dispose()


def registered_workers(url: str) -> int:
    return sql(url, "SELECT count(*) FROM procrastinate_workers")[0][0]


async def test_scale_mode_end_to_end(postgres_url: str, workers: Workers) -> None:
    settings = scale_settings(postgres_url)
    ref, orphan = make_ref(1), make_ref(2)
    async with create_analysis_service(settings, FixedAnalyzer()) as service:
        # a job row whose delivery was lost (its API pod died between the two writes)
        JobStore(service.engine).submit(orphan, MODEL_KEY)
        first = await service.submit(ref)
        second = await service.submit(ref)
        assert first == second
        assert first.job_id == job_id_for(ref.study_instance_uid, MODEL_KEY)
        assert sql(postgres_url, "SELECT count(*) FROM procrastinate_jobs") == [(1,)]
        assert await service.queue_depth() == {"queued": 2, "running": 0}
        assert await service.readiness() == {"store": "ok", "queue": "ok"}

        worker = workers.start(settings, FIXED)
        for study in (ref, orphan):
            result = await service.wait_for(study.study_instance_uid, timeout_s=30)
            assert result == build_result(study), workers.logs()
            state = await service.job_state(study.study_instance_uid)
            assert (state.status, state.attempts, state.error) == ("done", 1, None)
    assert sql(postgres_url, "SELECT study_instance_uid FROM analysis_results ORDER BY 1") == [
        (ref.study_instance_uid,),
        (orphan.study_instance_uid,),
    ]
    assert sql(postgres_url, "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')") == [(0,)]
    workers.stop()  # SIGTERM: a clean stop, and the worker unregisters
    assert worker.returncode == 0, workers.logs()
    assert registered_workers(postgres_url) == 0


async def test_worker_killed_mid_analysis_job_completes_on_another(
    postgres_url: str, workers: Workers, tmp_path: Path
) -> None:
    settings = scale_settings(postgres_url)
    ref = make_ref()
    markers = workers.marker_dir
    async with create_analysis_service(settings, FixedAnalyzer()) as service:
        pool = [workers.start(settings, SLOW), workers.start(settings, SLOW)]
        eventually(lambda: registered_workers(postgres_url) == 2, 30, "two workers registered", workers.logs)
        await service.submit(ref)
        started = eventually(lambda: list(markers.glob("*.started")), 30, "a worker started the job", workers.logs)
        victim = int(started[0].stem)
        assert victim in {process.pid for process in pool}
        os.kill(victim, signal.SIGKILL)

        result = await service.wait_for(ref.study_instance_uid, timeout_s=60)
        assert result == build_result(ref), workers.logs()
        state = await service.job_state(ref.study_instance_uid)
        assert (state.status, state.attempts, state.error) == ("done", 2, None)
    survivor = next(process.pid for process in pool if process.pid != victim)
    assert sorted(path.name for path in markers.iterdir()) == sorted(
        [f"{victim}.started", f"{survivor}.started", f"{survivor}.finished"]
    )
    engine = create_engine(postgres_url)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(results_table)).scalar() == 1
        assert connection.execute(select(jobs_table.c.status)).scalars().all() == ["done"]
    engine.dispose()


async def test_failure_in_a_worker_is_recorded(postgres_url: str, workers: Workers) -> None:
    settings = scale_settings(postgres_url)
    ref = make_ref()
    async with create_analysis_service(settings, FixedAnalyzer()) as service:
        workers.start(settings, FAILING)
        await service.submit(ref)
        state = eventually(
            lambda: sql(postgres_url, "SELECT status, attempts, error FROM analysis_jobs WHERE status = 'failed'"),
            30,
            "the job failed",
            workers.logs,
        )
    assert state == [("failed", 1, "ValueError: no knee morphology series in the study of [redacted]")]
    assert sql(postgres_url, "SELECT status FROM procrastinate_jobs") == [("failed",)]
    assert "Patient/p-42" not in workers.logs()
