"""The ``mskcds`` command line: thin wrappers over the layers.

Each command module registers its commands on the root app when imported below. Modules import heavy
libraries (torch, onnxruntime) inside the command functions so ``mskcds --help`` stays fast.
"""

from __future__ import annotations

from app.cli import (
    analyze,  # noqa: F401  (mskcds analyze, mskcds segment)
    clinical,  # noqa: F401
    demo,  # noqa: F401  (mskcds demo: make run)
    imaging,  # noqa: F401  (mskcds phantom, mskcds inspect)
    measure,  # noqa: F401  (mskcds measure)
    segmentation,  # noqa: F401  (mskcds train-seg, mskcds export-onnx)
    segmentation_eval,  # noqa: F401  (mskcds evaluate-seg)
    serve,  # noqa: F401
    worker,  # noqa: F401
)
from app.cli._root import cli

__all__ = ["cli", "main"]


def main() -> None:
    """Console-script entry point."""
    cli()
