"""Which knee: from DICOM, else the series description, else where the knee lies in the scanner.

1. ``Laterality`` (0020,0060) or ``ImageLaterality`` (0020,0062): ``R`` / ``L``.
2. The series description (then protocol name), conservatively: the words LEFT / RIGHT anywhere, or
   LT / RT / L / R only next to a word starting with KNEE (``"R KNEE"``, ``"Knee_Lt"``). A description
   that names both sides, or has a stray LT / RT for the other side, gives nothing.
3. Patient position: ImagePositionPatient is in the patient's own coordinates, whose x = 0 is the
   scanner's isocentre; a knee coil holds the examined knee beside the midline, so a field of view
   centred more than :data:`MIDLINE_OFFSET_MM` to the patient's right (LPS x < -40) is a right knee and
   vice versa. The real exams here lie 46-75 mm off the midline. Nearer the midline (knee positioned
   at the isocentre) it says nothing.

Anything else: unknown (None); callers must then ask the user.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydicom.dataset import Dataset

from app.imaging.acquisition import LateralitySource

Side = Literal["left", "right"]
#: How far off the midline the field of view must be centred to infer the side from position.
MIDLINE_OFFSET_MM = 40.0

_CODES: dict[str, Side] = {"R": "right", "L": "left"}
_WORDS: dict[str, Side] = {"LEFT": "left", "RIGHT": "right"}
_ABBREVIATIONS: dict[str, Side] = {"LT": "left", "RT": "right", "L": "left", "R": "right"}


def from_dicom(headers: Sequence[Dataset]) -> Side | None:
    """Laterality or ImageLaterality, when all headers that carry one agree."""
    found = {
        _CODES[str(value).strip().upper()]
        for ds in headers
        for value in (ds.get("Laterality"), ds.get("ImageLaterality"))
        if value and str(value).strip().upper() in _CODES
    }
    return found.pop() if len(found) == 1 else None


def from_description(text: str) -> Side | None:
    """The side a series description names, or None when it names none or both."""
    tokens = [t for t in re.split(r"[^A-Z0-9]+", text.upper()) if t]
    confirmed: set[Side] = set()  # LEFT / RIGHT, or an abbreviation next to KNEE
    mentioned: set[Side] = set()  # ... or LT / RT anywhere: enough to doubt the other side
    for i, token in enumerate(tokens):
        if token in _WORDS:
            confirmed.add(_WORDS[token])
        elif token in _ABBREVIATIONS:
            neighbours = tokens[max(i - 1, 0) : i] + tokens[i + 1 : i + 2]
            if any(n.startswith("KNEE") for n in neighbours):
                confirmed.add(_ABBREVIATIONS[token])
            elif len(token) == 2:
                mentioned.add(_ABBREVIATIONS[token])
    return confirmed.pop() if len(confirmed) == 1 and mentioned <= confirmed else None


def from_position(center_lps: np.ndarray) -> Side | None:
    """The side of the patient the field of view is centred on, when clearly off the midline."""
    x = float(center_lps[0])
    if x <= -MIDLINE_OFFSET_MM:
        return "right"
    if x >= MIDLINE_OFFSET_MM:
        return "left"
    return None


def laterality(headers: Sequence[Dataset], center_lps: np.ndarray) -> tuple[Side | None, LateralitySource | None]:
    """The knee's side and where it came from (see the module docstring for the order of sources)."""
    side = from_dicom(headers)
    if side:
        return side, "dicom"
    first = headers[0]
    for text in (first.get("SeriesDescription"), first.get("ProtocolName")):
        side = from_description(str(text or ""))
        if side:
            return side, "series_description"
    side = from_position(center_lps)
    return (side, "patient_position") if side else (None, None)
