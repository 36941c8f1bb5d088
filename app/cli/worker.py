"""``mskcds worker`` (run analyses from the queue) and ``mskcds ingest`` (queue a study that arrived)."""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from app.cli._root import cli
from app.settings import Settings, get_settings

if TYPE_CHECKING:
    from app.analysis import Analyzer, JobState, StudyRef

_TERMINAL = ("done", "failed")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


@cli.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", min=1, help="analyses at once [MSKCDS_WORKER_CONCURRENCY]")
    ] = None,
) -> None:
    """Run analyses from the job queue until Ctrl-C or SIGTERM (a run cut short is run again by another worker).

    Scale mode (MSKCDS_QUEUE=procrastinate): one of many worker processes on the PostgreSQL queue.
    Embedded mode: works the SQLite job table, e.g. beside a `mskcds serve` that runs no worker.
    """
    from app.analysis.analyzer import AnalyzerConfigError, resolve_analyzer

    settings = get_settings()
    if concurrency is not None:
        settings = settings.model_copy(update={"worker_concurrency": concurrency})
    try:
        analyzer = resolve_analyzer(settings.analyzer)
    except AnalyzerConfigError as exc:
        raise _fail(str(exc)) from None
    if settings.worker_metrics_port:
        _serve_metrics(settings.worker_metrics_port, analyzer)
    if settings.queue == "procrastinate":
        from app.analysis.scale import run_worker

        asyncio.run(run_worker(settings, analyzer))
    else:
        asyncio.run(_embedded_worker(settings, analyzer))


def _serve_metrics(port: int, analyzer: Analyzer) -> None:
    """Expose this worker's Prometheus metrics (analysis stage durations, model versions, upstream errors).

    The same endpoint is the worker's liveness probe in the Helm chart: it answers while the process lives.
    """
    from prometheus_client import start_http_server

    from app.analysis.analyzer import model_versions_of
    from app.metrics import set_model_versions

    set_model_versions(model_versions_of(analyzer))
    start_http_server(port, addr="0.0.0.0")  # a pod port: the NetworkPolicy limits who reaches it


async def _embedded_worker(settings: Settings, analyzer: Analyzer) -> None:
    from app.analysis import create_analysis_service

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with create_analysis_service(settings, analyzer, run_worker=True):
        await stop.wait()


@cli.command()
def ingest(
    study_uid: Annotated[str, typer.Argument(help="StudyInstanceUID of the study that arrived")],
    dicomweb: Annotated[
        str | None, typer.Option("--dicomweb", help="DICOMweb base URL holding it [MSKCDS_DICOMWEB_URL]")
    ] = None,
    patient: Annotated[
        str | None, typer.Option("--patient", help="FHIR Patient reference for the outputs, e.g. Patient/123")
    ] = None,
    fhir: Annotated[str | None, typer.Option("--fhir", help="FHIR server for the outputs [MSKCDS_FHIR_URL]")] = None,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0,
            help="seconds to wait for the outcome; in embedded mode this process runs the analysis meanwhile",
        ),
    ] = 0.0,
) -> None:
    """Queue the analysis of a study (e.g. on a PACS notification); prints the job as JSON.

    Exit status: 0 queued, running or done; 1 failed, or not finished within --wait; 2 bad input.
    """
    from app.analysis import NotAllowlisted, StudyRef

    settings = get_settings()
    dicomweb_url = dicomweb or settings.dicomweb_url
    if not dicomweb_url:
        raise _fail("give --dicomweb URL or set MSKCDS_DICOMWEB_URL")
    try:
        ref = StudyRef(
            study_instance_uid=study_uid,
            dicomweb_url=dicomweb_url,
            patient_reference=patient,
            fhir_url=fhir or settings.fhir_url or None,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        raise _fail(f"{error['loc'][0]}: {error['msg'].removeprefix('Value error, ')}") from None
    try:
        state = asyncio.run(_ingest(settings, ref, wait))
    except NotAllowlisted as exc:
        raise _fail(str(exc)) from None
    typer.echo(state.model_dump_json())
    if state.status == "failed" or (wait > 0 and state.status not in _TERMINAL):
        if state.status != "failed":
            typer.echo(f"Job still {state.status} after {wait:g} s", err=True)
        raise typer.Exit(1)


async def _ingest(settings: Settings, ref: StudyRef, wait_s: float) -> JobState:
    from app.analysis import create_analysis_service

    run_worker = wait_s > 0 and settings.queue == "inprocess"
    async with create_analysis_service(settings, run_worker=run_worker) as service:
        state = await service.submit(ref)
        deadline = asyncio.get_running_loop().time() + wait_s
        while state.status not in _TERMINAL and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
            state = await service.job_state(ref.study_instance_uid) or state
        return state
