"""The analysis store on SQLite: results written once, job transitions, feedback counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, func, select, update

from app.analysis import FeedbackCount, FeedbackRecord, OverrideReasonCode, job_id_for
from app.analysis.db import create_store_engine, ensure_schema, jobs_table, results_table
from app.analysis.feedback import FeedbackStore
from app.analysis.jobs import JobStore, lost_worker_error
from app.analysis.results import ResultCache, ResultStore
from app.settings import Settings
from tests.analysis.analyzers import MODEL_KEY, build_result
from tests.analysis.conftest import make_ref


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def engine(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Engine]:
    """The store on the embedded SQLite file, and on a fresh PostgreSQL database."""
    url = settings.resolved_database_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = create_store_engine(url)
    ensure_schema(engine)
    yield engine
    engine.dispose()


def result_rows(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        return [
            tuple(row) for row in connection.execute(select(results_table.c.study_instance_uid, results_table.c.result))
        ]


def test_embedded_store_is_a_sqlite_file_under_the_cache_dir(settings: Settings) -> None:
    engine = create_store_engine(settings.resolved_database_url)
    ensure_schema(engine)
    assert engine.url.database == str(settings.cache_dir / "mskcds.sqlite3")
    assert (settings.cache_dir / "mskcds.sqlite3").is_file()
    engine.dispose()


def test_double_completion_stores_one_result_the_first(engine: Engine) -> None:
    jobs, ref = JobStore(engine), make_ref()
    state, needs_delivery = jobs.submit(ref, MODEL_KEY)
    first = build_result(ref)
    second = first.model_copy(update={"created_at": first.created_at + timedelta(hours=1)})
    assert (state.status, needs_delivery) == ("queued", True)
    assert jobs.complete(state.job_id, first, MODEL_KEY) is True
    assert jobs.complete(state.job_id, second, MODEL_KEY) is False
    assert result_rows(engine) == [(ref.study_instance_uid, first.model_dump_json())]
    assert jobs.get(state.job_id).status == "done"
    assert ResultStore(engine, MODEL_KEY, cache_size=4).get(ref.study_instance_uid) == first


def test_results_are_keyed_by_model_versions(engine: Engine) -> None:
    jobs, ref = JobStore(engine), make_ref()
    state, _ = jobs.submit(ref, MODEL_KEY)
    jobs.complete(state.job_id, build_result(ref), MODEL_KEY)
    assert ResultStore(engine, "knee-test-segmenter=2.0.0", cache_size=4).get(ref.study_instance_uid) is None


def test_submit_twice_gives_the_same_job_and_one_row(engine: Engine) -> None:
    jobs, ref = JobStore(engine), make_ref()
    first, _ = jobs.submit(ref, MODEL_KEY)
    jobs.set_delivery(first.job_id, 7)
    second, needs_delivery = jobs.submit(ref, MODEL_KEY)
    assert first == second
    assert first.job_id == job_id_for(ref.study_instance_uid, MODEL_KEY)
    assert needs_delivery is False
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(jobs_table)).scalar() == 1


def test_a_job_is_claimed_once(engine: Engine) -> None:
    jobs, ref = JobStore(engine), make_ref()
    jobs.submit(ref, MODEL_KEY)
    claimed = jobs.claim_next(MODEL_KEY, "worker-a", stall_after_s=60, max_attempts=3)
    assert (claimed.ref, claimed.attempt, claimed.worker) == (ref, 1, "worker-a")
    assert jobs.claim_next(MODEL_KEY, "worker-b", stall_after_s=60, max_attempts=3) is None
    assert jobs.claim_next("other-model=1", "worker-b", stall_after_s=60, max_attempts=3) is None
    assert jobs.depth(MODEL_KEY) == {"queued": 0, "running": 1}


def test_a_run_without_heartbeat_is_taken_over(engine: Engine) -> None:
    jobs = JobStore(engine)
    jobs.submit(make_ref(), MODEL_KEY)
    lost = jobs.claim_next(MODEL_KEY, "worker-a", stall_after_s=60, max_attempts=3)
    taken = jobs.claim_next(MODEL_KEY, "worker-b", stall_after_s=0, max_attempts=3)
    assert (taken.job_id, taken.attempt) == (lost.job_id, 2)
    assert jobs.heartbeat(lost.job_id, "worker-a") is False
    assert jobs.heartbeat(lost.job_id, "worker-b") is True


def test_a_job_that_loses_its_last_worker_fails(engine: Engine) -> None:
    jobs = JobStore(engine)
    jobs.submit(make_ref(), MODEL_KEY)
    lost = jobs.claim_next(MODEL_KEY, "worker-a", stall_after_s=60, max_attempts=1)
    assert jobs.claim_next(MODEL_KEY, "worker-b", stall_after_s=0, max_attempts=1) is None
    state = jobs.get(lost.job_id)
    assert (state.status, state.attempts) == ("failed", 1)
    assert state.error == lost_worker_error(1, 1)
    assert state.error == "WorkerLost: the worker running attempt 1 of 1 stopped sending heartbeats"


def test_a_retry_waits_for_its_backoff(engine: Engine) -> None:
    jobs = JobStore(engine)
    jobs.submit(make_ref(), MODEL_KEY)
    run = jobs.claim_next(MODEL_KEY, "worker-a", stall_after_s=60, max_attempts=3)
    jobs.retry_later(run.job_id, "worker-a", "ConnectionError: timed out", delay_s=3600)
    state = jobs.get(run.job_id)
    assert (state.status, state.attempts, state.error) == ("queued", 1, "ConnectionError: timed out")
    assert jobs.claim_next(MODEL_KEY, "worker-a", stall_after_s=60, max_attempts=3) is None
    with engine.begin() as connection:
        connection.execute(update(jobs_table).values(run_after=datetime.now(UTC) - timedelta(seconds=1)))
    assert jobs.claim_next(MODEL_KEY, "worker-a", stall_after_s=60, max_attempts=3).attempt == 2


def test_delivered_job_rules(engine: Engine) -> None:
    jobs = JobStore(engine)
    state, _ = jobs.submit(make_ref(), MODEL_KEY)
    jobs.set_delivery(state.job_id, 11)
    first = jobs.claim_delivered(state.job_id, 11, "w1/11", stall_after_s=60, max_attempts=3)
    assert first.attempt == 1
    # a second queue job for the same study while the first run is alive: no second run
    assert jobs.claim_delivered(state.job_id, 12, "w2/12", stall_after_s=60, max_attempts=3) is None
    # the queue redelivers job 11 after losing its worker: that run is taken over
    assert jobs.claim_delivered(state.job_id, 11, "w2/11", stall_after_s=60, max_attempts=3).attempt == 2
    jobs.complete(state.job_id, build_result(make_ref()), MODEL_KEY)
    assert jobs.claim_delivered(state.job_id, 11, "w3/11", stall_after_s=60, max_attempts=3) is None


def test_failed_job_is_queued_afresh_on_submit(engine: Engine) -> None:
    jobs, ref = JobStore(engine), make_ref()
    jobs.submit(ref, MODEL_KEY)
    run = jobs.claim_next(MODEL_KEY, "worker-a", stall_after_s=60, max_attempts=3)
    jobs.fail(run.job_id, "ValueError: no knee", worker="worker-a")
    assert jobs.get(run.job_id).status == "failed"
    state, needs_delivery = jobs.submit(ref, MODEL_KEY)
    assert (state.status, state.attempts, state.error, needs_delivery) == ("queued", 0, None, True)


def test_times_must_be_timezone_aware(engine: Engine) -> None:
    with pytest.raises(Exception, match="naive datetime given to the analysis store"), engine.begin() as connection:
        connection.execute(update(jobs_table).values(run_after=datetime(2026, 1, 1)))


def test_result_cache_keeps_the_most_recently_used() -> None:
    cache = ResultCache(capacity=2)
    a, b, c = (build_result(make_ref(n)) for n in (1, 2, 3))
    cache.put(a)
    cache.put(b)
    assert cache.get(a.study_instance_uid) == a
    cache.put(c)
    assert [cache.get(r.study_instance_uid) for r in (a, b, c)] == [a, None, c]
    disabled = ResultCache(capacity=0)
    disabled.put(a)
    assert (disabled.get(a.study_instance_uid), len(disabled)) == (None, 0)


def feedback(card: str, outcome: str, minute: int, **extra: object) -> FeedbackRecord:
    return FeedbackRecord(
        card=card, outcome=outcome, outcome_timestamp=datetime(2026, 11, 2, 10, minute, tzinfo=UTC), **extra
    )


def test_feedback_counted_per_service_card_outcome_once(engine: Engine) -> None:
    store = FeedbackStore(engine)
    reason = OverrideReasonCode(system="http://example.org/override", code="not-relevant")
    records = [
        ("knee-triage", feedback("card-1", "accepted", 1, accepted_suggestions=["s-1"])),
        ("knee-triage", feedback("card-1", "accepted", 1, accepted_suggestions=["s-1"])),  # posted twice
        ("knee-triage", feedback("card-1", "overridden", 2, override_reason=reason)),
        ("knee-triage", feedback("card-1", "overridden", 3)),
        ("knee-risk", feedback("card-1", "accepted", 1)),
    ]
    assert [store.record(service, record) for service, record in records] == [True, False, True, True, True]
    assert store.counts() == [
        FeedbackCount(service_id="knee-risk", card="card-1", outcome="accepted", count=1),
        FeedbackCount(service_id="knee-triage", card="card-1", outcome="accepted", count=1),
        FeedbackCount(service_id="knee-triage", card="card-1", outcome="overridden", count=2),
    ]


def test_feedback_fields_must_fit_the_outcome() -> None:
    with pytest.raises(ValidationError, match="an overridden card has no accepted suggestions"):
        feedback("c", "overridden", 1, accepted_suggestions=["s-1"])
    with pytest.raises(ValidationError, match="an accepted card has no override reason"):
        feedback("c", "accepted", 1, override_reason=OverrideReasonCode(code="x"))
    with pytest.raises(ValidationError, match="timezone"):
        FeedbackRecord(card="c", outcome="accepted", outcome_timestamp=datetime(2026, 1, 1))
