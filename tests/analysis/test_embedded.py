"""Embedded mode end to end: SQLite store, in-process worker threads, the AnalysisService facade."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
import urllib.request

import pytest

from app.analysis import AnalysisService, JobState, NotAllowlisted, create_analysis_service, job_id_for
from app.log import configure_logging
from app.settings import Settings
from tests.analysis.analyzers import (
    MODEL_KEY,
    FailingAnalyzer,
    FixedAnalyzer,
    FlakyAnalyzer,
    WrongVersionsAnalyzer,
    build_result,
)
from tests.analysis.conftest import PATIENT, Workers, eventually, make_ref


async def wait_until_finished(service: AnalysisService, uid: str, timeout_s: float = 10.0) -> JobState:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = await service.job_state(uid)
        if state is not None and state.status in ("done", "failed"):
            return state
        await asyncio.sleep(0.05)
    pytest.fail(f"job of {uid} did not finish within {timeout_s} s")


async def test_submit_runs_in_process_and_result_is_served(settings: Settings) -> None:
    analyzer, ref = FixedAnalyzer(), make_ref()
    async with create_analysis_service(settings, analyzer) as service:
        assert service.model_key == MODEL_KEY
        assert await service.get_result(ref.study_instance_uid) is None
        queued = await service.submit(ref)
        assert (queued.job_id, queued.status, queued.attempts) == (
            job_id_for(ref.study_instance_uid, MODEL_KEY),
            "queued",
            0,
        )
        result = await service.wait_for(ref.study_instance_uid, timeout_s=10)
        assert result == build_result(ref)
        assert await service.get_result(ref.study_instance_uid) == result
        done = await service.job_state(ref.study_instance_uid)
        assert (done.status, done.attempts, done.error) == ("done", 1, None)
        again = await service.submit(ref)
        assert (again.job_id, again.status) == (queued.job_id, "done")
        assert await service.queue_depth() == {"queued": 0, "running": 0}
        assert await service.readiness() == {"store": "ok", "queue": "ok"}
    assert analyzer.calls == 1


async def test_double_submit_while_queued_is_one_job(settings: Settings) -> None:
    ref = make_ref()
    async with create_analysis_service(settings, FixedAnalyzer(), run_worker=False) as service:
        first, second = await asyncio.gather(service.submit(ref), service.submit(ref))
        assert first == second
        assert await service.queue_depth() == {"queued": 1, "running": 0}


async def test_queued_jobs_survive_a_restart(settings: Settings) -> None:
    refs = [make_ref(n) for n in (1, 2)]
    async with create_analysis_service(settings, FixedAnalyzer(), run_worker=False) as before:
        for ref in refs:
            await before.submit(ref)
    analyzer = FixedAnalyzer()
    async with create_analysis_service(settings, analyzer) as after:
        for ref in refs:
            assert await after.wait_for(ref.study_instance_uid, timeout_s=10) == build_result(ref)
    assert analyzer.calls == 2


async def test_unanalysable_study_fails_at_once_without_patient_data(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", json=True)
    ref = make_ref()
    async with create_analysis_service(settings, FailingAnalyzer()) as service:
        await service.submit(ref)
        state = await wait_until_finished(service, ref.study_instance_uid)
        assert (state.status, state.attempts) == ("failed", 1)
        assert state.error == "ValueError: no knee morphology series in the study of [redacted]"
        assert await service.get_result(ref.study_instance_uid) is None
        resubmitted = await service.submit(ref)
        assert (resubmitted.status, resubmitted.attempts, resubmitted.error) == ("queued", 0, None)
        await wait_until_finished(service, ref.study_instance_uid)
    logs = capsys.readouterr().err
    assert '"event": "analysis.run_failed"' in logs
    assert PATIENT not in logs
    assert ref.study_instance_uid not in logs


async def test_transient_failure_is_retried_after_backoff(settings: Settings) -> None:
    analyzer, ref = FlakyAnalyzer(failures=1), make_ref()
    async with create_analysis_service(settings, analyzer) as service:
        await service.submit(ref)
        state = await wait_until_finished(service, ref.study_instance_uid)
    assert (state.status, state.attempts, state.error, analyzer.calls) == ("done", 2, None, 2)


async def test_transient_failure_gives_up_after_max_attempts(settings: Settings) -> None:
    analyzer, ref = FlakyAnalyzer(failures=10), make_ref()
    async with create_analysis_service(settings, analyzer) as service:
        await service.submit(ref)
        state = await wait_until_finished(service, ref.study_instance_uid)
    assert (state.status, state.attempts, analyzer.calls) == ("failed", 3, 3)
    assert state.error == "ConnectionError: DICOMweb server did not answer"


async def test_result_from_other_model_versions_is_refused(settings: Settings) -> None:
    ref = make_ref()
    async with create_analysis_service(settings, WrongVersionsAnalyzer()) as service:
        await service.submit(ref)
        state = await wait_until_finished(service, ref.study_instance_uid)
        assert await service.get_result(ref.study_instance_uid) is None
    assert (state.status, state.attempts) == ("failed", 1)
    assert state.error == (
        "AnalysisRejected: the analyzer returned model versions "
        "{'knee-test-segmenter': '0.9.0', 'test-triage': '0.1.0'}, "
        "but announced {'knee-test-segmenter': '1.0.0', 'test-triage': '0.1.0'}"
    )


async def test_wait_for_gives_up_after_its_budget(settings: Settings) -> None:
    async with create_analysis_service(settings, FixedAnalyzer(), run_worker=False) as service:
        await service.submit(make_ref())
        started = time.monotonic()
        assert await service.wait_for(make_ref().study_instance_uid, timeout_s=0.3) is None
        assert 0.3 <= time.monotonic() - started < 1.0


async def test_study_on_a_server_not_allowlisted_is_refused(settings: Settings) -> None:
    settings = settings.model_copy(update={"dicomweb_allowlist": []})
    async with create_analysis_service(settings, FixedAnalyzer(), run_worker=False) as service:
        with pytest.raises(NotAllowlisted, match="is not allowlisted: add it to MSKCDS_DICOMWEB_ALLOWLIST"):
            await service.submit(make_ref())
        assert await service.queue_depth() == {"queued": 0, "running": 0}


@pytest.mark.integration
async def test_embedded_worker_killed_mid_analysis_loses_nothing(settings: Settings, workers: Workers) -> None:
    """A `mskcds worker` on the SQLite store dies mid-job; the next embedded worker runs the job again."""
    ref = make_ref()
    async with create_analysis_service(settings, FixedAnalyzer(), run_worker=False) as service:
        await service.submit(ref)
    victim = workers.start(settings, "tests.analysis.analyzers:slow_analyzer")
    eventually(lambda: list(workers.marker_dir.glob("*.started")), 30, "the worker started the job", workers.logs)
    victim.send_signal(signal.SIGKILL)
    victim.wait()

    analyzer = FixedAnalyzer()
    async with create_analysis_service(settings, analyzer) as restarted:
        assert await restarted.wait_for(ref.study_instance_uid, timeout_s=20) == build_result(ref)
        state = await restarted.job_state(ref.study_instance_uid)
    assert (state.status, state.attempts, analyzer.calls) == ("done", 2, 1)


def test_worker_serves_its_metrics_for_probes_and_prometheus(settings: Settings, workers: Workers) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    workers.start(settings, "tests.analysis.analyzers:fixed_analyzer", MSKCDS_WORKER_METRICS_PORT=str(port))

    def scrape() -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                return response.read().decode()
        except OSError:
            return None

    body = str(eventually(scrape, 20, "worker /metrics answered", workers.logs))
    assert 'mskcds_model_info{model="knee-test-segmenter",version="1.0.0"} 1.0' in body
    assert "mskcds_analysis_stage_duration_seconds" in body
