"""``mskcds demo``: the service on its embedded default, a phantom study, and an EHR calling it (``make run``)."""

from __future__ import annotations

import typer

from app.cli._root import cli


@cli.command()
def demo(
    host: str = typer.Option("127.0.0.1", help="interface the demo service listens on"),
    port: int = typer.Option(0, min=0, max=65535, help="TCP port (0: a free one)"),
    timeout: float = typer.Option(900.0, min=1, help="seconds to wait for the analysis before giving up"),
    keep_serving: bool = typer.Option(True, help="keep serving after the cards are shown (Ctrl-C stops)"),
) -> None:
    """Start the service with demo data, fire an order-sign hook at it, print the cards, keep serving."""
    import contextlib
    import tempfile
    import threading

    from rich.console import Console

    from app.demo.dicomweb import DicomFolder, dicomweb_router
    from app.demo.ehr import DemoEhr
    from app.demo.run import DICOMWEB_PATH, DemoEhrClient, prepare_study
    from app.demo.server import free_port, serving
    from app.demo.show import print_cards
    from app.main import create_app
    from app.settings import Settings, get_settings

    console = Console(stderr=False)
    stack = contextlib.ExitStack()
    base_settings = get_settings()
    with console.status("Preparing the demo study (a phantom knee MRI; generated once, then cached)..."):
        study = prepare_study(base_settings.cache_dir)
    console.print(f"Demo study: {study.folder} (StudyInstanceUID {study.study_instance_uid})")

    port = port or free_port(host)
    base_url = f"http://{host}:{port}"
    ehr = DemoEhr()
    # A result store of this run only: every run shows the hook before and after the analysis, and no job
    # of an earlier, interrupted run (whose DICOMweb service was on another port) is picked up.
    store = stack.enter_context(tempfile.TemporaryDirectory(prefix="mskcds-demo-"))
    settings = Settings(
        **{**base_settings.model_dump(
            exclude={"demo", "public_base_url", "cds_clients", "dicomweb_allowlist", "database_url"})},
        demo=True,
        public_base_url=base_url,
        cds_clients=[ehr.client_setting()],
        dicomweb_allowlist=[base_url + DICOMWEB_PATH],
        database_url=f"sqlite:///{store}/mskcds.sqlite3",
    )
    app = create_app(settings)
    app.include_router(dicomweb_router(DicomFolder(study.folder)), prefix=DICOMWEB_PATH)

    with stack, serving(app, host, port):
        console.print(f"msk-cds is serving on {base_url} (discovery: {base_url}/cds-services)")
        client = DemoEhrClient(base_url, ehr, study)
        first = client.order_sign()
        print_cards(console, f"order-sign, first call (HTTP {first.status})", first.cards)
        if first.pending:
            with console.status("The worker is analysing the study (fetch, segment, measure, triage)...") as status:
                last = client.until_analysed(
                    timeout, 2.0, lambda elapsed: status.update(f"Analysing the study... {elapsed:.0f} s")
                )
        else:
            last = first
        print_cards(console, f"order-sign, after the analysis (HTTP {last.status})", last.cards)
        if not last.analysed:
            why = f"did not finish within {timeout:g} s" if last.pending else "gave no triage (see the cards above)"
            console.print(f"[red]The analysis {why}.[/]")
            raise typer.Exit(1)
        if keep_serving:
            console.print(f"Still serving on {base_url}; Ctrl-C stops.")
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                console.print("Stopped.")
