"""What the loader returns: acquisitions with their geometry, times and the headers they came from."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Literal

from pydicom.dataset import Dataset

from schemas.volume import EchoSeries, Volume

Role = Literal["morphology", "t2", "t1rho", "other"]
Orientation = Literal["sagittal", "coronal", "axial", "oblique"]
LateralitySource = Literal["dicom", "series_description", "patient_position"]


@dataclass(frozen=True)
class Acquisition:
    """One acquisition: all echo / spin-lock volumes of one scan, co-registered on one grid.

    ``echoes.array`` has axes (time, slice, row, column), slices in geometric order along the slice
    normal; ``echoes.affine`` maps (slice, row, column) to patient RAS in mm; ``echoes.times_ms`` are
    echo times, or spin-lock times for T1rho (GE stores those in EchoTime).
    """

    role: Role
    echoes: EchoSeries
    study_instance_uid: str
    series_instance_uids: tuple[str, ...]  # several when echoes / spin-locks are separate series (GE)
    series_number: int | None
    description: str
    laterality: Literal["left", "right"] | None
    laterality_source: LateralitySource | None
    orientation: Orientation
    study_date: datetime.date | None
    headers: tuple[tuple[Dataset, ...], ...] = field(repr=False)  # per time point, geometric order, no PixelData
    frame_of_reference_uid: str | None = None

    def volume(self, index: int = 0) -> Volume:
        """The volume at one time point."""
        return self.echoes.volume(index)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(slices, rows, columns)."""
        return tuple(int(n) for n in self.echoes.array.shape[1:])  # type: ignore[return-value]

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return self.volume(0).spacing_mm

    @property
    def first(self) -> Dataset:
        """The header of the first slice of the first time point (acquisition-level attributes)."""
        return self.headers[0][0]

    def summary(self) -> dict[str, object]:
        """What ``mskcds inspect --json`` prints for this acquisition (no patient data)."""
        return {
            "series_instance_uids": list(self.series_instance_uids),
            "series_number": self.series_number,
            "description": self.description,
            "role": self.role,
            "shape": list(self.shape),
            "spacing_mm": [round(v, 6) for v in self.spacing_mm],
            "echo_times_ms": list(self.echoes.times_ms),
            "times_are": "spin_lock" if self.role == "t1rho" else "echo",
            "laterality": self.laterality,
            "laterality_source": self.laterality_source,
            "orientation": self.orientation,
            "mr_acquisition_type": str(self.first.get("MRAcquisitionType", "")) or None,
            "repetition_time_ms": float(self.first.RepetitionTime) if self.first.get("RepetitionTime") else None,
            "study_instance_uid": self.study_instance_uid,
            "study_date": self.study_date.isoformat() if self.study_date else None,
        }


@dataclass(frozen=True)
class StudySelection:
    """The acquisitions the analysis uses: morphology always, relaxometry when present."""

    morphology: Acquisition
    t2: Acquisition | None = None
    t1rho: Acquisition | None = None
