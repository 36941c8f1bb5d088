"""The analysis facade the API and the CLI use: results, job submission, waiting, feedback, readiness.

Built by :func:`create_analysis_service` from the settings. Embedded default (``MSKCDS_QUEUE=inprocess``):
SQLite under ``cache_dir`` and worker threads in this process. Scale mode (``procrastinate``):
PostgreSQL, and the analyses run in separate ``mskcds worker`` processes.

Lifecycle: ``await service.start()`` (the API's lifespan, or ``async with service``) starts the
in-process worker or opens the queue; ``await service.close()`` stops them. Reads and embedded
submits work before ``start``; a scale-mode submit needs the queue open.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Protocol

from sqlalchemy import Engine, text

from app.analysis.allowlist import check_allowlisted
from app.analysis.analyzer import Analyzer, model_versions_of, prepare_analyzer, resolve_analyzer
from app.analysis.db import create_store_engine, ensure_schema
from app.analysis.feedback import FeedbackCount, FeedbackRecord, FeedbackStore
from app.analysis.inprocess import InProcessWorker
from app.analysis.jobs import JobStore
from app.analysis.records import JobState, StudyRef, job_id_for, model_key_for
from app.analysis.results import ResultStore
from app.analysis.runner import JobRunner
from app.log import get_logger
from app.settings import Settings, get_settings
from schemas.analysis import AnalysisResult

#: How often :meth:`AnalysisService.wait_for` looks for the result.
_WAIT_POLL_S = 0.05


class _Queue(Protocol):
    kind: str

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def deliver(self, job_id: str) -> None: ...
    async def status(self) -> str: ...


class InProcessQueue:
    """The embedded queue seen from the service: the job table, plus this process's worker threads if any."""

    kind = "inprocess"

    def __init__(self, worker: InProcessWorker | None, grace_s: float, analyzer: Analyzer | None = None) -> None:
        self.worker = worker
        self.grace_s = grace_s
        self.analyzer = analyzer

    async def start(self) -> None:
        if self.worker is not None:
            # models load before the first claim (a failure stops start-up, not a job); off the event loop
            await asyncio.to_thread(prepare_analyzer, self.analyzer)
            self.worker.start()

    async def close(self) -> None:
        if self.worker is not None:
            await asyncio.to_thread(self.worker.stop, self.grace_s)

    async def deliver(self, job_id: str) -> None:
        if self.worker is not None:
            self.worker.wake()

    async def status(self) -> str:
        if self.worker is not None and not self.worker.alive:
            return "worker stopped"
        return "ok"


class AnalysisService:
    """Analyses ahead of time: stored results keyed by study + ``model_key``, and the jobs that make them."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine,
        model_key: str,
        results: ResultStore,
        jobs: JobStore,
        feedback: FeedbackStore,
        queue: _Queue,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.model_key = model_key
        self.results = results
        self.jobs = jobs
        self.feedback = feedback
        self.queue = queue

    async def start(self) -> None:
        await self.queue.start()

    async def close(self) -> None:
        await self.queue.close()
        self.engine.dispose()

    async def __aenter__(self) -> AnalysisService:
        await self.start()
        return self

    async def __aexit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()

    async def get_result(self, study_instance_uid: str) -> AnalysisResult | None:
        """The stored result for the current model versions; from memory when cached (no I/O)."""
        cached = self.results.cached(study_instance_uid)
        if cached is not None:
            return cached
        return await asyncio.to_thread(self.results.get, study_instance_uid)

    async def submit(self, ref: StudyRef) -> JobState:
        """Queue the study's analysis; the same study (and model versions) always gives the same job.

        A job queued, running or done is returned as it is; a failed one is queued again. Raises
        ``NotAllowlisted`` when the reference names a server this service may not contact. This is
        also the ingestion entry point (PACS notification endpoint, ``mskcds ingest``).
        """
        check_allowlisted(ref, self.settings)
        state, needs_delivery = await asyncio.to_thread(self.jobs.submit, ref, self.model_key)
        if needs_delivery:
            await self.queue.deliver(state.job_id)
        get_logger(__name__).info("analysis.submitted", job_id=state.job_id, status=state.status)
        return state

    async def job_state(self, study_instance_uid: str) -> JobState | None:
        """The study's job for the current model versions, or None when it was never submitted."""
        return await asyncio.to_thread(self.jobs.get, job_id_for(study_instance_uid, self.model_key))

    async def wait_for(self, study_instance_uid: str, timeout_s: float) -> AnalysisResult | None:
        """The result as soon as it is stored, or None after ``timeout_s`` (a hook's wait budget)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            result = await self.get_result(study_instance_uid)
            remaining = deadline - loop.time()
            if result is not None or remaining <= 0:
                return result
            await asyncio.sleep(min(_WAIT_POLL_S, remaining))

    async def queue_depth(self) -> dict[str, int]:
        """Jobs ``queued`` and ``running`` for the current model versions (for the metrics endpoint)."""
        return await asyncio.to_thread(self.jobs.depth, self.model_key)

    async def record_feedback(self, service_id: str, feedback: FeedbackRecord) -> None:
        """Store CDS Hooks feedback (the same feedback posted twice is stored once)."""
        await asyncio.to_thread(self.feedback.record, service_id, feedback)

    async def feedback_counts(self) -> list[FeedbackCount]:
        """Feedback counts per service, card and outcome."""
        return await asyncio.to_thread(self.feedback.counts)

    async def readiness(self) -> dict[str, str]:
        """``{"store": ..., "queue": ...}``, each "ok" or a short reason without internals."""
        try:
            await asyncio.to_thread(self._ping_store)
            store = "ok"
        except Exception as exc:
            store = f"unreachable ({type(exc).__name__})"
        return {"store": store, "queue": await self.queue.status()}

    def _ping_store(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))


def create_analysis_service(
    settings: Settings | None = None, analyzer: Analyzer | None = None, *, run_worker: bool | None = None
) -> AnalysisService:
    """Build the service from the settings; the analyzer defaults to ``MSKCDS_ANALYZER``.

    ``run_worker`` (embedded mode only) says whether this process runs analyses itself; by default it
    does. In scale mode the analyses run in ``mskcds worker`` processes, and ``run_worker=True`` is an
    error. The database schema is created when missing.
    """
    settings = settings or get_settings()
    analyzer = analyzer if analyzer is not None else resolve_analyzer(settings.analyzer)
    model_versions = model_versions_of(analyzer)
    model_key = model_key_for(model_versions)
    engine = create_store_engine(settings.resolved_database_url)
    ensure_schema(engine)
    results = ResultStore(engine, model_key, settings.result_cache_size)
    jobs = JobStore(engine)
    queue: _Queue
    if settings.queue == "procrastinate":
        if run_worker:
            raise ValueError("scale mode runs analyses in `mskcds worker` processes, not in the service")
        from app.analysis.scale import ProcrastinateQueue, ensure_queue_schema

        ensure_queue_schema(engine)
        queue = ProcrastinateQueue(settings.resolved_database_url, jobs, model_key)
    else:
        worker = None
        if run_worker is not False:
            runner = JobRunner.from_settings(settings, jobs, analyzer, model_versions, on_result=results.cache.put)
            worker = InProcessWorker(
                jobs,
                runner,
                model_key,
                concurrency=settings.worker_concurrency,
                poll_s=settings.worker_poll_s,
                stall_after_s=settings.worker_stall_after_s,
            )
        queue = InProcessQueue(worker, grace_s=settings.worker_heartbeat_s, analyzer=analyzer)
    return AnalysisService(
        settings,
        engine=engine,
        model_key=model_key,
        results=results,
        jobs=jobs,
        feedback=FeedbackStore(engine),
        queue=queue,
    )
