"""Why DICOM input cannot become acquisitions: errors that name the problem and the files."""

from __future__ import annotations

from collections.abc import Sequence


class LoaderError(ValueError):
    """The input would give a wrong volume (or none); the message names the problem and the file(s)."""


class SeriesSelectionError(LoaderError):
    """The study lacks an acquisition the analysis needs (e.g. no morphology series)."""


def name_files(origins: Sequence[str], limit: int = 3) -> str:
    """``a, b, c and 4 more`` for error messages."""
    shown = ", ".join(origins[:limit])
    return shown if len(origins) <= limit else f"{shown} and {len(origins) - limit} more"
