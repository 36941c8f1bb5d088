"""Small synthetic MR studies built with pydicom, for loading into Orthanc.

Until the imaging area's phantom generator lands, these are the studies the DICOMweb tests read: a few
sagittal knee series with real geometry attributes and a known pixel pattern per slice, so a retrieval
can be checked value by value.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid


@dataclass(frozen=True)
class SeriesSpec:
    description: str
    slices: int = 8
    rows: int = 32
    columns: int = 32
    echo_time_ms: float = 5.0
    body_part: str = "KNEE"
    laterality: str = "R"


@dataclass(frozen=True)
class StudySpec:
    patient_id: str = "MSKCDS-TEST-1"
    accession_number: str = "ACC-0001"
    study_date: date = date(2024, 3, 15)
    series: tuple[SeriesSpec, ...] = (SeriesSpec("Sag 3D DESS WE"), SeriesSpec("Sag T2 Map", echo_time_ms=10.0))
    study_instance_uid: str = field(default_factory=generate_uid)


def pixel_pattern(series_index: int, slice_index: int, rows: int, columns: int) -> np.ndarray:
    """The known pixel values of one slice (unique per series and slice)."""
    base = np.arange(rows * columns, dtype=np.uint16).reshape(rows, columns)
    return (base + 1000 * series_index + 37 * slice_index).astype(np.uint16)


def build_study(spec: StudySpec) -> list[pydicom.Dataset]:
    """Every instance of the study, as datasets with file meta (ready to write as Part 10)."""
    datasets: list[pydicom.Dataset] = []
    for series_index, series in enumerate(spec.series):
        series_uid = generate_uid()
        frame_of_reference = generate_uid()
        for k in range(series.slices):
            ds = pydicom.Dataset()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.SOPClassUID = MRImageStorage
            ds.PatientID = spec.patient_id
            ds.PatientName = "Test^Synthetic"
            ds.PatientSex = "F"
            ds.StudyInstanceUID = spec.study_instance_uid
            ds.StudyDate = spec.study_date.strftime("%Y%m%d")
            ds.StudyTime = "101500"
            ds.AccessionNumber = spec.accession_number
            ds.StudyID = "1"
            ds.Modality = "MR"
            ds.SeriesInstanceUID = series_uid
            ds.SeriesNumber = series_index + 1
            ds.SeriesDescription = series.description
            ds.BodyPartExamined = series.body_part
            ds.Laterality = series.laterality
            ds.FrameOfReferenceUID = frame_of_reference
            ds.InstanceNumber = k + 1
            ds.EchoTime = series.echo_time_ms
            ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]  # sagittal
            ds.ImagePositionPatient = [float(k) * 0.7, -50.0, 50.0]
            ds.PixelSpacing = [0.5, 0.5]
            ds.SliceThickness = 0.7
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows = series.rows
            ds.Columns = series.columns
            ds.BitsAllocated = 16
            ds.BitsStored = 16
            ds.HighBit = 15
            ds.PixelRepresentation = 0
            ds.PixelData = pixel_pattern(series_index, k, series.rows, series.columns).tobytes()
            datasets.append(ds)
    return datasets


def part10(dataset: pydicom.Dataset) -> bytes:
    """A dataset as a Part 10 file (preamble, DICM, file meta)."""
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
