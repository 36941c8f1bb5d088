"""``mskcds ingest`` and ``mskcds worker``: queueing a study that arrived, and refusing bad input clearly."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from app.analysis import job_id_for
from app.cli import cli
from app.settings import Settings, get_settings
from tests.analysis.analyzers import MODEL_KEY
from tests.analysis.conftest import PACS, make_ref

UID = make_ref().study_instance_uid


@pytest.fixture(autouse=True)
def _embedded_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSKCDS_ANALYZER", "tests.analysis.analyzers:fixed_analyzer")
    monkeypatch.setenv("MSKCDS_DICOMWEB_ALLOWLIST", json.dumps([PACS]))
    monkeypatch.setenv("MSKCDS_WORKER_POLL_S", "0.05")
    get_settings.cache_clear()


def invoke(*args: str) -> tuple[int, dict | None, str]:
    result = CliRunner().invoke(cli, list(args))
    stdout = result.stdout.strip()
    return result.exit_code, json.loads(stdout) if stdout else None, result.stderr


def test_ingest_queues_the_study_once() -> None:
    job = {"job_id": job_id_for(UID, MODEL_KEY), "study_instance_uid": UID, "status": "queued", "attempts": 0}
    assert invoke("ingest", UID, "--dicomweb", PACS)[:2] == (0, {**job, "error": None})
    assert invoke("ingest", UID, "--dicomweb", PACS, "--patient", "Patient/p-42")[:2] == (0, {**job, "error": None})


def test_ingest_with_wait_runs_the_analysis_in_embedded_mode() -> None:
    code, job, _ = invoke("ingest", UID, "--dicomweb", PACS, "--wait", "20")
    assert (code, job["status"], job["attempts"]) == (0, "done", 1)


def test_ingest_reports_a_failed_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSKCDS_ANALYZER", "tests.analysis.analyzers:failing_analyzer")
    get_settings.cache_clear()
    code, job, _ = invoke("ingest", UID, "--dicomweb", PACS, "--patient", "Patient/p-42", "--wait", "20")
    assert (code, job["status"], job["error"]) == (
        1,
        "failed",
        "ValueError: no knee morphology series in the study of [redacted]",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["1.2.x", "--dicomweb", PACS], "study_instance_uid: '1.2.x' is not a DICOM UID"),
        ([UID], "give --dicomweb URL or set MSKCDS_DICOMWEB_URL"),
        (
            [UID, "--dicomweb", "http://elsewhere.test/dicom-web"],
            "DICOMweb server http://elsewhere.test/dicom-web is not allowlisted: add it to MSKCDS_DICOMWEB_ALLOWLIST",
        ),
        ([UID, "--dicomweb", PACS, "--patient", "Smith^John"], "patient_reference: 'Smith^John' is not a FHIR"),
    ],
)
def test_ingest_refuses_bad_input(args: list[str], message: str) -> None:
    code, job, stderr = invoke("ingest", *args)
    assert (code, job) == (2, None)
    assert stderr.startswith(f"Error: {message}")


@pytest.mark.parametrize(
    ("analyzer", "message"),
    [
        ("nowhere", "MSKCDS_ANALYZER='nowhere': expected 'package.module:attribute'"),
        (
            "tests.analysis.nowhere:x",
            "MSKCDS_ANALYZER='tests.analysis.nowhere:x': cannot import 'tests.analysis.nowhere'",
        ),
        ("tests.analysis.analyzers:nothing", "tests.analysis.analyzers has no 'nothing'"),
        ("tests.analysis.analyzers:build_result", "has no 'model_versions' mapping (artifact name -> version)"),
    ],
)
def test_worker_refuses_an_analyzer_it_cannot_use(monkeypatch: pytest.MonkeyPatch, analyzer: str, message: str) -> None:
    monkeypatch.setenv("MSKCDS_ANALYZER", analyzer)
    get_settings.cache_clear()
    code, _, stderr = invoke("worker")
    assert code == 2
    assert stderr.startswith("Error: ") and message in stderr


def test_scale_mode_needs_postgresql() -> None:
    with pytest.raises(ValidationError, match="MSKCDS_QUEUE=procrastinate keeps its jobs in PostgreSQL"):
        Settings(queue="procrastinate")
    with pytest.raises(ValidationError, match=r"MSKCDS_WORKER_STALL_AFTER_S \(15.0\) must be at least twice"):
        Settings(worker_heartbeat_s=10, worker_stall_after_s=15)
