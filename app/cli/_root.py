"""The root ``mskcds`` Typer application; command modules register their commands on :data:`cli`."""

from __future__ import annotations

import typer

from app import __version__
from app.log import configure_logging
from app.settings import get_settings

cli = typer.Typer(
    name="mskcds",
    help="Clinical decision support for musculoskeletal MRI.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold patient data
)


@cli.callback()
def _configure() -> None:
    """Configure logging once per invocation from the settings."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)


@cli.command()
def version() -> None:
    """Print the msk-cds version."""
    typer.echo(__version__)
