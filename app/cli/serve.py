"""``mskcds serve``: run the CDS Hooks service with uvicorn."""

from __future__ import annotations

import typer

from app.cli._root import cli


@cli.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="interface to listen on (0.0.0.0 in a container)"),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port"),
    workers: int = typer.Option(1, min=1, help="uvicorn worker processes (more than one needs "
                                               "MSKCDS_REPLAY_CACHE_URL so replay protection spans them)"),
    access_log: bool = typer.Option(False, help="uvicorn's access log (paths and status codes only)"),
) -> None:
    """Serve the CDS Hooks API (discovery, the three knee MRI services, feedback, /health, /ready, /metrics)."""
    import uvicorn

    from app.settings import get_settings

    settings = get_settings()
    if workers > 1 and settings.auth_required and not settings.replay_cache_url:
        typer.echo("error: --workers > 1 needs MSKCDS_REPLAY_CACHE_URL (e.g. redis://127.0.0.1:6379/0): each "
                   "worker's in-process jti cache would let a JWT be replayed against another worker", err=True)
        raise typer.Exit(2)
    typer.echo(f"msk-cds serving on http://{host}:{port} (discovery: {str(settings.public_base_url).rstrip('/')}"
               "/cds-services)", err=True)
    uvicorn.run("app.main:create_app", factory=True, host=host, port=port, workers=workers,
                log_config=None, access_log=access_log, proxy_headers=True, server_header=False)
