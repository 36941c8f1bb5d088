"""The job table: one row per (study, model key), the state every queue and every reader agrees on.

The queue only delivers job ids; what a job is, how often it ran, why it failed and whether it is done
live here, in the same database as the results. Every transition is a conditional UPDATE, so two
workers (threads, processes or pods) can never both take the same run, and a job completes in the same
transaction that stores its result.

Life of a job: ``queued`` -> ``running`` (claimed, heartbeating) -> ``done`` | ``queued`` again (a
retry after a backoff) | ``failed`` (attempts used up, or an input that cannot be analysed). A
``running`` row whose heartbeat stopped belongs to a lost worker: it may be claimed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.engine import Row

from app.analysis.db import insert_ignoring_conflict, jobs_table, utcnow
from app.analysis.records import JobState, StudyRef, job_id_for
from app.analysis.results import insert_result
from schemas.analysis import AnalysisResult

jobs = jobs_table.c


@dataclass(frozen=True)
class ClaimedJob:
    """A run a worker has taken: what to analyse, and which run of the job this is (1-based)."""

    job_id: str
    ref: StudyRef
    model_key: str
    attempt: int
    worker: str


class JobStore:
    """Job rows of the analysis store (synchronous; the service calls it from worker threads)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, job_id: str) -> JobState | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(jobs_table).where(jobs.job_id == job_id)).first()
        return _state(row) if row is not None else None

    def submit(self, ref: StudyRef, model_key: str) -> tuple[JobState, bool]:
        """Queue the study unless its job is queued, running or done; a failed job is queued afresh.

        Returns the job's state and whether it still needs a delivery (it is queued and no queue job
        carries it yet): the caller hands it to the queue and records the delivery.
        """
        job_id = job_id_for(ref.study_instance_uid, model_key)
        now = utcnow()
        with self.engine.begin() as connection:
            connection.execute(
                insert_ignoring_conflict(
                    connection,
                    jobs_table,
                    {
                        "job_id": job_id,
                        "study_instance_uid": ref.study_instance_uid,
                        "model_key": model_key,
                        "ref": ref.model_dump_json(),
                        "status": "queued",
                        "attempts": 0,
                        "run_after": now,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
            )
            connection.execute(
                update(jobs_table)
                .where(jobs.job_id == job_id, jobs.status == "failed")
                .values(
                    status="queued",
                    attempts=0,
                    error=None,
                    ref=ref.model_dump_json(),
                    run_after=now,
                    delivery=None,
                    updated_at=now,
                )
            )
            row = connection.execute(select(jobs_table).where(jobs.job_id == job_id)).one()
        return _state(row), row.status == "queued" and row.delivery is None

    def set_delivery(self, job_id: str, delivery: int) -> None:
        """Record the queue job that carries this job (scale mode), unless a worker recorded one already."""
        with self.engine.begin() as connection:
            connection.execute(
                update(jobs_table).where(jobs.job_id == job_id, jobs.delivery.is_(None)).values(delivery=delivery)
            )

    def undelivered(self, model_key: str, older_than_s: float) -> list[str]:
        """Queued jobs no queue job carries, left so by a process that died between the two writes."""
        cutoff = utcnow() - timedelta(seconds=older_than_s)
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(jobs.job_id).where(
                    jobs.model_key == model_key,
                    jobs.status == "queued",
                    jobs.delivery.is_(None),
                    jobs.updated_at < cutoff,
                )
            ).all()
        return [row.job_id for row in rows]

    def claim_next(self, model_key: str, worker: str, stall_after_s: float, max_attempts: int) -> ClaimedJob | None:
        """Take the oldest runnable job of this model key (embedded queue): queued and due, or stalled.

        A stalled job whose attempts are used up is marked failed instead: a study that kills its
        worker every time must not take every worker down in turn.
        """
        now = utcnow()
        stalled_before = now - timedelta(seconds=stall_after_s)
        runnable = and_(
            jobs.model_key == model_key,
            or_(
                and_(jobs.status == "queued", jobs.run_after <= now),
                and_(jobs.status == "running", jobs.heartbeat_at < stalled_before),
            ),
        )
        with self.engine.connect() as connection:
            candidates = connection.execute(
                select(jobs.job_id, jobs.status, jobs.attempts).where(runnable).order_by(jobs.run_after).limit(8)
            ).all()
        for candidate in candidates:
            if candidate.status == "running" and candidate.attempts >= max_attempts:
                self.fail(candidate.job_id, lost_worker_error(candidate.attempts, max_attempts))
                continue
            claimed = self._claim(candidate.job_id, candidate.status, candidate.attempts, worker, delivery=None)
            if claimed is not None:
                return claimed
        return None

    def claim_delivered(
        self, job_id: str, delivery: int, worker: str, stall_after_s: float, max_attempts: int
    ) -> ClaimedJob | None:
        """Take the job a queue delivered (scale mode), unless it needs no run.

        None when it is done or failed already, or when it runs on a live worker: a duplicate delivery
        (at-least-once) then ends without a second run. A redelivery of the very queue job the row
        records is the queue's own recovery of a lost worker and always takes the job, unless that
        worker's run was the last one allowed.
        """
        with self.engine.connect() as connection:
            row = connection.execute(select(jobs_table).where(jobs.job_id == job_id)).first()
        if row is None or row.status in ("done", "failed"):
            return None
        if row.status == "running":
            stalled = row.heartbeat_at is None or row.heartbeat_at < utcnow() - timedelta(seconds=stall_after_s)
            if row.delivery != delivery and not stalled:
                return None
            if row.attempts >= max_attempts:
                self.fail(job_id, lost_worker_error(row.attempts, max_attempts))
                return None
        return self._claim(job_id, row.status, row.attempts, worker, delivery=delivery)

    def _claim(self, job_id: str, status: str, attempts: int, worker: str, delivery: int | None) -> ClaimedJob | None:
        now = utcnow()
        values: dict[str, object] = {
            "status": "running",
            "attempts": attempts + 1,
            "worker": worker,
            "heartbeat_at": now,
            "updated_at": now,
        }
        if delivery is not None:
            values["delivery"] = delivery
        with self.engine.begin() as connection:
            taken = connection.execute(
                update(jobs_table)
                .where(jobs.job_id == job_id, jobs.status == status, jobs.attempts == attempts)
                .values(**values)
            ).rowcount
            if taken != 1:
                return None
            row = connection.execute(select(jobs.ref, jobs.model_key).where(jobs.job_id == job_id)).one()
        return ClaimedJob(job_id, StudyRef.model_validate_json(row.ref), row.model_key, attempts + 1, worker)

    def heartbeat(self, job_id: str, worker: str) -> bool:
        """Prove the worker still runs the job; False when the job is no longer this worker's run."""
        with self.engine.begin() as connection:
            return (
                connection.execute(
                    update(jobs_table)
                    .where(jobs.job_id == job_id, jobs.worker == worker, jobs.status == "running")
                    .values(heartbeat_at=utcnow())
                ).rowcount
                == 1
            )

    def complete(self, job_id: str, result: AnalysisResult, model_key: str) -> bool:
        """Store the result and mark the job done, in one transaction; True when this call stored it.

        A second completion (a duplicate run) stores nothing: the first result stays, and the job is done.
        """
        with self.engine.begin() as connection:
            stored = insert_result(connection, result, model_key)
            connection.execute(
                update(jobs_table)
                .where(jobs.job_id == job_id)
                .values(status="done", error=None, worker=None, heartbeat_at=None, updated_at=utcnow())
            )
        return stored

    def retry_later(self, job_id: str, worker: str, error: str, delay_s: float) -> None:
        """Put this worker's run back in the queue, due after the backoff, with the error kept."""
        now = utcnow()
        with self.engine.begin() as connection:
            connection.execute(
                update(jobs_table)
                .where(jobs.job_id == job_id, jobs.worker == worker, jobs.status == "running")
                .values(
                    status="queued",
                    error=error,
                    worker=None,
                    heartbeat_at=None,
                    run_after=now + timedelta(seconds=delay_s),
                    updated_at=now,
                )
            )

    def fail(self, job_id: str, error: str, worker: str | None = None) -> None:
        """Mark a running job failed (only the run of ``worker`` when given)."""
        condition = [jobs.job_id == job_id, jobs.status == "running"]
        if worker is not None:
            condition.append(jobs.worker == worker)
        with self.engine.begin() as connection:
            connection.execute(
                update(jobs_table)
                .where(*condition)
                .values(status="failed", error=error, worker=None, heartbeat_at=None, updated_at=utcnow())
            )

    def depth(self, model_key: str) -> dict[str, int]:
        """Jobs waiting and running for this model key (the queue depth the metrics report)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(jobs.status, func.count())
                .where(jobs.model_key == model_key, jobs.status.in_(("queued", "running")))
                .group_by(jobs.status)
            ).all()
        counts = {"queued": 0, "running": 0}
        counts.update({status: count for status, count in rows})
        return counts


def lost_worker_error(attempts: int, max_attempts: int) -> str:
    """The error of a job whose last allowed run died with its worker."""
    return f"WorkerLost: the worker running attempt {attempts} of {max_attempts} stopped sending heartbeats"


def _state(row: Row) -> JobState:
    return JobState(
        job_id=row.job_id,
        study_instance_uid=row.study_instance_uid,
        status=row.status,
        attempts=row.attempts,
        error=row.error,
    )
