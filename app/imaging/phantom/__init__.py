"""Knee MRI phantoms with exact ground truth (see ``docs/imaging.md``).

``generate_phantom`` draws a knee from a seed, puts osteoarthritis of a grade into it, and synthesises
each protocol's images; ``write_phantom`` writes the study as DICOM plus ``labels.nii.gz``,
``thickness_truth.nii.gz`` and ``truth.json``.
"""

from app.imaging.phantom.generator import Phantom, generate_phantom, write_phantom
from app.imaging.phantom.protocols import (
    DEFAULT_PROTOCOLS,
    PROTOCOLS,
    SMALL_PROTOCOLS,
    ProtocolError,
    ProtocolSpec,
    parse_protocol,
)
from app.imaging.phantom.truth import PhantomTruth

__all__ = [
    "DEFAULT_PROTOCOLS",
    "PROTOCOLS",
    "SMALL_PROTOCOLS",
    "Phantom",
    "PhantomTruth",
    "ProtocolError",
    "ProtocolSpec",
    "generate_phantom",
    "parse_protocol",
    "write_phantom",
]
