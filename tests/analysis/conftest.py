"""Fixtures of the analysis tests: study references, fast-paced settings, a PostgreSQL database per test,
and real ``mskcds worker`` subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from app.analysis import StudyRef
from app.log import configure_logging
from app.settings import REPO_ROOT, Settings

PACS = "http://pacs.test/dicom-web"
FHIR = "http://fhir.test/r4"
PATIENT = "Patient/p-42"
#: Fast pace for tests: heartbeats every 0.25 s, a worker silent for 2 s counts as lost.
FAST = {
    "worker_poll_s": 0.05,
    "worker_heartbeat_s": 0.25,
    "worker_stall_after_s": 2.0,
    "job_retry_backoff_s": 0.05,
    "dicomweb_allowlist": [PACS],
    "fhir_allowlist": [FHIR],
}
ADMIN_URL = os.environ.get("MSKCDS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def make_ref(number: int = 1) -> StudyRef:
    return StudyRef(
        study_instance_uid=f"1.2.826.0.1.3680043.8.498.{number}",
        dicomweb_url=PACS,
        patient_reference=PATIENT,
        fhir_url=FHIR,
    )


@pytest.fixture(autouse=True)
def _logging_to_this_tests_stderr() -> None:
    """Log to the stderr of this test: an earlier test's capture stream (capsys, CliRunner) may be closed."""
    configure_logging("INFO", json=True)


@pytest.fixture
def settings() -> Settings:
    """Embedded mode (SQLite under this test's cache dir) at test pace."""
    return Settings(**FAST)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL for this test (dropped afterwards)."""
    name = f"mskcds_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {ADMIN_URL} ({exc}). Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, "
            "or point MSKCDS_TEST_POSTGRES_URL at a server where this user may create databases."
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield (
                make_url(ADMIN_URL)
                .set(drivername="postgresql+psycopg", database=name)
                .render_as_string(hide_password=False)
            )
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def scale_settings(postgres_url: str) -> Settings:
    return Settings(database_url=postgres_url, queue="procrastinate", **FAST)


class Workers:
    """``mskcds worker`` subprocesses started by a test, stopped (by pid) at its end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, settings: Settings, analyzer: str, **extra_env: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "MSKCDS_CACHE_DIR": str(settings.cache_dir),
            "MSKCDS_DATABASE_URL": settings.database_url,
            "MSKCDS_QUEUE": settings.queue,
            "MSKCDS_ANALYZER": analyzer,
            "MSKCDS_WORKER_POLL_S": str(settings.worker_poll_s),
            "MSKCDS_WORKER_HEARTBEAT_S": str(settings.worker_heartbeat_s),
            "MSKCDS_WORKER_STALL_AFTER_S": str(settings.worker_stall_after_s),
            "MSKCDS_JOB_RETRY_BACKOFF_S": str(settings.job_retry_backoff_s),
            "MSKCDS_TEST_ANALYZER_DIR": str(self.marker_dir),
            **extra_env,
        }
        log = (self.tmp_path / f"worker-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"], env=env, cwd=REPO_ROOT, stdout=log, stderr=log
        )
        self.processes.append(process)
        return process

    @property
    def marker_dir(self) -> Path:
        folder = self.tmp_path / "analyzer-markers"
        folder.mkdir(exist_ok=True)
        return folder

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.tmp_path.glob("worker-*.log")))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    started = Workers(tmp_path)
    yield started
    started.stop()


def eventually(
    condition: Callable[[], object], timeout_s: float, what: str, logs: Callable[[], str] = lambda: ""
) -> object:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` (and worker logs) after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"{what} within {timeout_s} s\n{logs()}")
