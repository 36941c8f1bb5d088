"""The embedded queue: worker threads in the service process, with the job table as the queue.

Nothing but the database holds a job, so nothing is lost when the process stops: queued jobs wait for
the next start, and a job that was running has a heartbeat that stops with it, so the next worker
(this process restarted, or another one on the same database) runs it again once the heartbeat is
older than the stall threshold. A submit in this process wakes a worker at once; jobs queued by other
processes (``mskcds ingest``) are found by polling.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid

from app.analysis.jobs import JobStore
from app.analysis.runner import JobRunner
from app.log import get_logger


def worker_name(prefix: str) -> str:
    """A name unique to this worker across hosts and restarts: ``prefix@host:pid:random``."""
    return f"{prefix}@{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class InProcessWorker:
    """``concurrency`` threads, each claiming and running one job at a time."""

    def __init__(
        self,
        jobs: JobStore,
        runner: JobRunner,
        model_key: str,
        *,
        concurrency: int,
        poll_s: float,
        stall_after_s: float,
    ) -> None:
        self.jobs = jobs
        self.runner = runner
        self.model_key = model_key
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.stall_after_s = stall_after_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._loop, args=(worker_name(f"inprocess-{index}"),), daemon=True)
            for index in range(self.concurrency)
        ]
        for thread in self._threads:
            thread.start()
        get_logger(__name__).info("analysis.worker_started", queue="inprocess", concurrency=self.concurrency)

    def wake(self) -> None:
        """A job was queued in this process: look now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout_s: float) -> None:
        """Ask the threads to stop and wait up to ``timeout_s``; a run still going keeps its heartbeat.

        The threads are daemons: a run that outlives the wait finishes (or dies with the process, and
        its heartbeat stops, so another worker takes it over).
        """
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads) and not self._stop.is_set()

    def _loop(self, name: str) -> None:
        while not self._stop.is_set():
            try:
                job = self.jobs.claim_next(self.model_key, name, self.stall_after_s, self.runner.policy.max_attempts)
                if job is not None:
                    self.runner.run(job)
                    continue
            except Exception as exc:  # the database may be away for a moment: keep the worker alive
                get_logger(__name__).error(
                    "analysis.worker_error", worker=name, error=type(exc).__name__
                )  # SQL errors quote parameters
            if self._wake.wait(self.poll_s):
                self._wake.clear()
