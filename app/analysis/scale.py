"""Scale mode: a durable queue in PostgreSQL (procrastinate) and separate ``mskcds worker`` processes.

Why procrastinate: the result store is PostgreSQL already, so the queue adds no second engine to run,
back up and secure; a job is deferred with a plain INSERT that PostgreSQL makes durable, workers wake on
LISTEN/NOTIFY, and each worker writes a heartbeat row, which is what finding a killed worker's jobs
needs. (arq keeps jobs in Redis, whose default configuration here keeps nothing on disk; Celery needs a
broker and a result backend besides the store.)

Delivery is at-least-once: a job whose worker stops sending heartbeats is put back in the queue by
another worker's recovery pass, so the same job may run twice. That is harmless because the job table
decides who runs (``JobStore.claim_delivered``) and a result is stored once per (study, model key).
Each model key has its own queue, so during a rolling upgrade a job waits for a worker that has the
models the API pod announced, instead of being analysed by older ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from datetime import timedelta

import procrastinate
from procrastinate import JobContext, RetryDecision
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import Job, Status
from procrastinate.retry import BaseRetryStrategy
from procrastinate.schema import SchemaManager
from sqlalchemy import Engine, make_url, text

from app.analysis.analyzer import Analyzer, model_versions_of, prepare_analyzer
from app.analysis.db import create_store_engine, ensure_schema, lock_schema, utcnow
from app.analysis.inprocess import worker_name
from app.analysis.jobs import JobStore, lost_worker_error
from app.analysis.records import model_key_for
from app.analysis.runner import JobRunner
from app.log import get_logger
from app.settings import Settings

TASK_NAME = "mskcds.analyze_study"


class RetryLater(Exception):
    """Raised by the task so procrastinate schedules the next run after the job's backoff."""

    def __init__(self, delay_s: float) -> None:
        super().__init__(f"retry in {delay_s:g} s")
        self.delay_s = delay_s


class AnalysisFailed(Exception):
    """Raised by the task so procrastinate records the job as failed (the job table holds the error)."""


class _RetryAsDecided(BaseRetryStrategy):
    """The runner decides about retries from the job table; procrastinate only carries the decision out."""

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, RetryLater):
            return RetryDecision(retry_at=utcnow() + timedelta(seconds=exception.delay_s))
        return None


def queue_name(model_key: str) -> str:
    """The procrastinate queue of one model key."""
    return "mskcds-analysis-" + hashlib.sha256(model_key.encode()).hexdigest()[:16]


def build_app(database_url: str, max_connections: int = 4) -> procrastinate.App:
    """A procrastinate app on the store's PostgreSQL database (libpq URL derived from the SQLAlchemy one)."""
    conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connector = procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=max_connections)
    return procrastinate.App(connector=connector)


def ensure_queue_schema(engine: Engine) -> None:
    """Install procrastinate's tables and functions into an empty database (idempotent, race-free).

    Upgrading procrastinate later needs its SQL migrations (``procrastinate schema --migrations``).
    """
    with engine.begin() as connection:
        lock_schema(connection)
        if connection.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is None:
            # through the driver without parameters, so the '%' in procrastinate's SQL stay literal
            connection.connection.cursor().execute(SchemaManager.get_schema())


class ProcrastinateQueue:
    """The service's side of scale mode: hands queued jobs to procrastinate."""

    kind = "procrastinate"

    def __init__(self, database_url: str, jobs: JobStore, model_key: str) -> None:
        self.app = build_app(database_url)
        self.jobs = jobs
        self.queue = queue_name(model_key)
        self._open = False

    async def start(self) -> None:
        await self.app.open_async()
        self._open = True

    async def close(self) -> None:
        if self._open:
            await self.app.close_async()
            self._open = False

    async def deliver(self, job_id: str) -> None:
        if not self._open:
            raise RuntimeError("scale mode: `await service.start()` opens the queue before the first submit")
        await deliver(self.app, self.jobs, self.queue, job_id)

    async def status(self) -> str:
        if not self._open:
            return "not started"
        try:
            return "ok" if await self.app.check_connection_async() else "procrastinate schema missing"
        except Exception as exc:
            return f"unreachable ({type(exc).__name__})"


async def deliver(app: procrastinate.App, jobs: JobStore, queue: str, job_id: str) -> None:
    """Defer the job on its model key's queue and record the queue job; a job queued already is left alone."""
    deferrer = app.configure_task(TASK_NAME, queue=queue, lock=job_id, queueing_lock=job_id)
    try:
        delivery = await deferrer.defer_async(job_id=job_id)
    except AlreadyEnqueued:
        return
    await asyncio.to_thread(jobs.set_delivery, job_id, delivery)


async def run_worker(settings: Settings, analyzer: Analyzer, concurrency: int | None = None) -> None:
    """Run one worker process until SIGINT / SIGTERM: analyses, heartbeats, and recovery of lost jobs."""
    model_versions = model_versions_of(analyzer)
    model_key = model_key_for(model_versions)
    concurrency = concurrency or settings.worker_concurrency
    await asyncio.to_thread(prepare_analyzer, analyzer)  # load the models before taking any job
    engine = create_store_engine(settings.resolved_database_url)
    try:
        ensure_schema(engine)
        ensure_queue_schema(engine)
        jobs = JobStore(engine)
        runner = JobRunner.from_settings(settings, jobs, analyzer, model_versions)
        app = build_app(settings.resolved_database_url, max_connections=concurrency + 4)
        name = worker_name("procrastinate")
        queue = queue_name(model_key)

        @app.task(name=TASK_NAME, pass_context=True, retry=_RetryAsDecided())
        def analyze_study(context: JobContext, job_id: str) -> str:
            assert context.job.id is not None
            try:
                claimed = jobs.claim_delivered(
                    job_id,
                    context.job.id,
                    f"{name}/{context.job.id}",
                    settings.worker_stall_after_s,
                    settings.job_max_attempts,
                )
                if claimed is None:
                    return "nothing to do"
                outcome = runner.run(claimed)
            except Exception as exc:
                # The store failed (the runner handles the analyzer's own errors): this delivery comes
                # back after the backoff and takes its run over. No chained cause: SQL errors quote
                # their parameters, and procrastinate logs the traceback.
                get_logger(__name__).warning("analysis.store_error", job_id=job_id, error=type(exc).__name__)
                raise RetryLater(settings.job_retry_backoff_s) from None
            if outcome.kind == "retry":
                raise RetryLater(outcome.delay_s)
            if outcome.kind == "failed":
                raise AnalysisFailed(outcome.error)
            return "done"

        async with app.open_async():
            recovery = asyncio.create_task(_recover_forever(app, jobs, settings, model_key))
            get_logger(__name__).info(
                "analysis.worker_started", queue="procrastinate", concurrency=concurrency, model_key=model_key
            )
            try:
                await app.run_worker_async(
                    queues=[queue],
                    name=name,
                    concurrency=concurrency,
                    fetch_job_polling_interval=settings.worker_poll_s,
                    update_heartbeat_interval=settings.worker_heartbeat_s,
                    stalled_worker_timeout=settings.worker_stall_after_s,
                    delete_jobs="successful",
                )
            finally:
                recovery.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await recovery
    finally:
        engine.dispose()


async def _recover_forever(app: procrastinate.App, jobs: JobStore, settings: Settings, model_key: str) -> None:
    while True:
        await asyncio.sleep(settings.worker_heartbeat_s)
        try:
            await recover_lost_jobs(app, jobs, settings, model_key)
        except Exception as exc:  # keep recovering on the next pass; the database may be away for a moment
            get_logger(__name__).warning("analysis.recovery_failed", error=type(exc).__name__)


async def recover_lost_jobs(app: procrastinate.App, jobs: JobStore, settings: Settings, model_key: str) -> int:
    """One recovery pass; returns how many jobs it put back in the queue.

    Jobs of workers whose heartbeat is older than the stall threshold go back to the queue (or fail,
    when that was their last allowed run), and queued jobs that no queue job carries are delivered.
    """
    queue = queue_name(model_key)
    recovered = 0
    stalled = await app.job_manager.get_stalled_jobs(
        queue=queue, task_name=TASK_NAME, seconds_since_heartbeat=settings.worker_stall_after_s
    )
    for job in stalled:
        job_id = str(job.task_kwargs["job_id"])
        state = await asyncio.to_thread(jobs.get, job_id)
        try:
            if state is not None and state.status == "running" and state.attempts >= settings.job_max_attempts:
                error = lost_worker_error(state.attempts, settings.job_max_attempts)
                await asyncio.to_thread(jobs.fail, job_id, error)
                await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
                get_logger(__name__).warning("analysis.lost_job_failed", job_id=job_id, attempts=state.attempts)
            else:
                await app.job_manager.retry_job(job)
                recovered += 1
                get_logger(__name__).warning("analysis.lost_job_requeued", job_id=job_id, delivery=job.id)
        except Exception as exc:  # another worker's recovery pass was first
            get_logger(__name__).info("analysis.lost_job_skipped", job_id=job_id, reason=type(exc).__name__)
    for job_id in await asyncio.to_thread(jobs.undelivered, model_key, settings.worker_stall_after_s):
        await deliver(app, jobs, queue, job_id)
        recovered += 1
        get_logger(__name__).warning("analysis.undelivered_job_queued", job_id=job_id)
    return recovered
