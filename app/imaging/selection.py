"""Which acquisition is what: roles from DICOM acquisition attributes, and the study's selection.

Descriptions differ between sites and scanners ("Sag DESS 3132 30 HiRes thk1p5 ARCx2", "SAG 3D DESS
WE", "cubequant T1rho"), so roles come from what the scanner did, not from what a technologist typed:

- **morphology**: a 3D acquisition (MRAcquisitionType 3D) of steady-state gradient-echo type — TR
  under 100 ms (DESS, FLASH, SPGR; GE writes ScanningSequence RM for research sequences, so TR
  decides, not the sequence code) — with one or two echoes. Among several: sagittal first, then the
  smallest voxel, then the most slices.
- **t2**: at least 4 echoes forming a spin-echo train: not gradient echo, not magnetisation-prepared
  (SequenceVariant MP), echo times equally spaced with the first echo at the echo spacing
  (TE_k = k * ESP within 10 %), as multi-echo spin-echo (CPMG) sequences produce.
- **t1rho**: at least 3 time points that are not such a train — spin-lock times, which GE CubeQuant
  stores in EchoTime, one series per time — or any magnetisation-prepared multi-time acquisition
  (SequenceVariant MP), excluding multi-echo gradient echo (T2* mapping). A T2-prepared sequence stored
  the same way cannot be told from T1rho by standard attributes; vendor private tags are not used.
- **other**: everything else (localizers are dropped on reading).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset

from app.imaging.acquisition import Acquisition, Role, StudySelection
from app.imaging.errors import SeriesSelectionError

#: Repetition time below which a 3D acquisition is a steady-state gradient echo (ms).
MAX_MORPHOLOGY_TR_MS = 100.0
#: Tolerance of the echo-train test, as a fraction of the echo spacing.
ECHO_TRAIN_TOLERANCE = 0.1


def _values(ds: Dataset, keyword: str) -> list[str]:
    value = ds.get(keyword)
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [str(v).strip().upper() for v in items if str(v).strip()]


def _float(ds: Dataset, keyword: str) -> float | None:
    try:
        value = ds.get(keyword)
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def is_echo_train(times_ms: Sequence[float]) -> bool:
    """Equally spaced echoes with the first at the spacing: TE_k = k * ESP (a CPMG echo train)."""
    if len(times_ms) < 2:
        return False
    times = np.asarray(times_ms, dtype=float)
    spacing = float(np.median(np.diff(times)))
    if spacing <= 0:
        return False
    expected = spacing * np.arange(1, len(times) + 1)
    return bool(np.all(np.abs(times - expected) <= ECHO_TRAIN_TOLERANCE * spacing))


def classify(first: Dataset, times_ms: Sequence[float]) -> Role:
    """The role of an acquisition from its first header and its time points (module docstring)."""
    sequence = _values(first, "ScanningSequence")
    variant = _values(first, "SequenceVariant")
    three_d = str(first.get("MRAcquisitionType", "")).strip().upper() == "3D"
    tr = _float(first, "RepetitionTime")
    gradient = "GR" in sequence
    prepared = "MP" in variant
    n = len(times_ms)
    if three_d and n <= 2 and ((tr is not None and tr < MAX_MORPHOLOGY_TR_MS) or (tr is None and gradient)):
        return "morphology"
    train = is_echo_train(times_ms)
    if n >= 4 and train and not gradient and not prepared:
        return "t2"
    if n >= 3 and (prepared or not train) and not (gradient and not prepared):
        return "t1rho"
    return "other"


def _preference(acquisition: Acquisition) -> tuple[float, ...]:
    voxel = float(np.prod(acquisition.spacing_mm))
    return (
        0.0 if acquisition.orientation == "sagittal" else 1.0,
        -len(acquisition.echoes.times_ms) if acquisition.role != "morphology" else 0.0,
        voxel,
        -acquisition.shape[0],
        float(acquisition.series_number or 0),
    )


def _exams(acquisitions: Sequence[Acquisition]) -> int:
    """How many exams the acquisitions come from: linked when they share a study or a frame of reference."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    for acquisition in acquisitions:
        keys = [f"study:{acquisition.study_instance_uid}"]
        if acquisition.frame_of_reference_uid:
            keys.append(f"for:{acquisition.frame_of_reference_uid}")
        for key in keys[1:]:
            parent[find(key)] = find(keys[0])
    return len({find(f"study:{a.study_instance_uid}") for a in acquisitions})


def select_series(acquisitions: Sequence[Acquisition]) -> StudySelection:
    """Pick the morphology acquisition (required) and the T2 / T1rho acquisitions (when present)."""
    if not acquisitions:
        raise SeriesSelectionError("no acquisitions to select from")
    if _exams(acquisitions) > 1:
        raise SeriesSelectionError(
            f"the acquisitions come from {_exams(acquisitions)} different studies; select one study first"
        )
    best: dict[Role, Acquisition] = {}
    for role in ("morphology", "t2", "t1rho"):
        candidates = [a for a in acquisitions if a.role == role]
        if candidates:
            best[role] = min(candidates, key=_preference)
    if "morphology" not in best:
        found = "; ".join(
            f"series {a.series_number} '{a.description}' ({a.first.get('MRAcquisitionType', '?')}, "
            f"TR {a.first.get('RepetitionTime', '?')} ms, {len(a.echoes.times_ms)} time point(s), role {a.role})"
            for a in acquisitions
        )
        raise SeriesSelectionError(
            "no morphology acquisition: expected a 3D gradient-echo series (e.g. DESS) with TR < "
            f"{MAX_MORPHOLOGY_TR_MS:g} ms and one or two echoes; found: {found}"
        )
    return StudySelection(best["morphology"], best.get("t2"), best.get("t1rho"))
