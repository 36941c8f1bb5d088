"""One run of one job, the same in both modes: heartbeat, analyse, then store the result or the error.

Which failures are retried: a ``ValueError`` says the study itself cannot be analysed (no knee
morphology series, unreadable DICOM: the imaging layer's ``LoaderError`` is one), so running it again
would fail again and the job fails at once. Anything else (network, GPU, out of memory) is retried
after a backoff that doubles with each attempt, until ``job_max_attempts`` runs have failed.

Errors are stored and logged as ``ExceptionType: message`` with the job's patient reference removed,
never with a traceback's locals; log lines name the job id, not the patient or the study.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from app.analysis.analyzer import Analyzer
from app.analysis.jobs import ClaimedJob, JobStore
from app.analysis.records import StudyRef
from app.log import get_logger
from app.settings import Settings
from schemas.analysis import AnalysisResult

_MAX_ERROR_CHARS = 500
REDACTED = "[redacted]"


class AnalysisRejected(ValueError):
    """The analyzer returned a result that does not belong to the job (wrong study or model versions)."""


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended; ``delay_s`` is the backoff before the retry when ``kind`` is 'retry'."""

    kind: Literal["done", "retry", "failed"]
    error: str | None = None
    delay_s: float = 0.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often a job runs and how long it waits between runs."""

    max_attempts: int
    backoff_s: float

    def delay_s(self, attempt: int) -> float:
        """Wait after the failed run number ``attempt`` (1-based): backoff, 2x backoff, 4x backoff, ..."""
        return self.backoff_s * 2 ** (attempt - 1)


class JobRunner:
    """Runs claimed jobs with the analyzer of this worker."""

    def __init__(
        self,
        jobs: JobStore,
        analyzer: Analyzer,
        model_versions: dict[str, str],
        policy: RetryPolicy,
        heartbeat_s: float,
        on_result: Callable[[AnalysisResult], None] | None = None,
    ) -> None:
        self.jobs = jobs
        self.analyzer = analyzer
        self.model_versions = model_versions
        self.policy = policy
        self.heartbeat_s = heartbeat_s
        self.on_result = on_result

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        jobs: JobStore,
        analyzer: Analyzer,
        model_versions: dict[str, str],
        on_result: Callable[[AnalysisResult], None] | None = None,
    ) -> JobRunner:
        policy = RetryPolicy(settings.job_max_attempts, settings.job_retry_backoff_s)
        return cls(jobs, analyzer, model_versions, policy, settings.worker_heartbeat_s, on_result)

    def run(self, job: ClaimedJob) -> RunOutcome:
        get_logger(__name__).info("analysis.run_started", job_id=job.job_id, attempt=job.attempt, worker=job.worker)
        try:
            with _Heartbeat(self.jobs, job, self.heartbeat_s):
                result = self.analyzer(job.ref)
                self._check(job, result)
        except Exception as exc:
            return self._failed(job, exc)
        stored = self.jobs.complete(job.job_id, result, job.model_key)
        if self.on_result is not None:
            self.on_result(result)
        get_logger(__name__).info("analysis.run_done", job_id=job.job_id, attempt=job.attempt, stored=stored)
        return RunOutcome("done")

    def _check(self, job: ClaimedJob, result: AnalysisResult) -> None:
        if result.study_instance_uid != job.ref.study_instance_uid:
            raise AnalysisRejected("the analyzer returned the result of another study")
        if result.model_versions != self.model_versions:
            raise AnalysisRejected(
                f"the analyzer returned model versions {result.model_versions}, but announced {self.model_versions}"
            )

    def _failed(self, job: ClaimedJob, exc: Exception) -> RunOutcome:
        error = public_error(exc, job.ref)
        where = _where(exc)
        if isinstance(exc, ValueError) or job.attempt >= self.policy.max_attempts:
            self.jobs.fail(job.job_id, error, worker=job.worker)
            get_logger(__name__).warning(
                "analysis.run_failed", job_id=job.job_id, attempt=job.attempt, error=error, where=where
            )
            return RunOutcome("failed", error)
        delay_s = self.policy.delay_s(job.attempt)
        self.jobs.retry_later(job.job_id, job.worker, error, delay_s)
        get_logger(__name__).warning(
            "analysis.run_retry", job_id=job.job_id, attempt=job.attempt, error=error, where=where, delay_s=delay_s
        )
        return RunOutcome("retry", error, delay_s)


def public_error(exc: BaseException, ref: StudyRef) -> str:
    """``ExceptionType: message``, without the job's patient reference, short enough for a card or a log."""
    message = str(exc)
    if ref.patient_reference:
        message = message.replace(ref.patient_reference, REDACTED)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."


def _where(exc: BaseException) -> str:
    """The innermost frames of the traceback (file:line function), which locate a bug but carry no data."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    return " < ".join(f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} {frame.name}" for frame in reversed(frames))


class _Heartbeat:
    """Keeps a running job's heartbeat fresh from a side thread while the analyzer works."""

    def __init__(self, jobs: JobStore, job: ClaimedJob, interval_s: float) -> None:
        self._jobs = jobs
        self._job = job
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job.job_id[:8]}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                if not self._jobs.heartbeat(self._job.job_id, self._job.worker):
                    get_logger(__name__).warning(
                        "analysis.run_taken_over", job_id=self._job.job_id, worker=self._job.worker
                    )
                    return
            except Exception as exc:  # the database may be away for a moment; the next beat tries again
                get_logger(__name__).warning(
                    "analysis.heartbeat_failed", job_id=self._job.job_id, error=type(exc).__name__
                )
