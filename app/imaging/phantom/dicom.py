"""The phantom study as DICOM MR Image Storage instances (PS3.3 A.4: classic MR Image IOD).

Modules written: Patient, General Study, Patient Study, General Series, Frame of Reference, General
Equipment, General Image, Image Plane, Image Pixel, MR Image, SOP Common. Sagittal images use
ImageOrientationPatient [0, 1, 0, 0, 0, -1] like the real exams; ImagePositionPatient is each slice's
first voxel in LPS. Echoes of one series are told apart by EchoNumbers and EchoTime; T1rho volumes are
separate series sharing one SeriesNumber with the spin-lock time in EchoTime, as GE CubeQuant writes.

Every UID is a name-based UUID (RFC 4122 version 5) of the phantom's seed, side, grade, protocols and
the object, written as a 2.25 UID (PS3.5 B.2), so the same inputs always give the same study.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, MRImageStorage

from app import __version__
from app.imaging.phantom.protocols import ProtocolSpec
from schemas.volume import LPS_TO_RAS

MANUFACTURER = "msk-cds"
MODEL_NAME = "knee phantom"
FIELD_STRENGTH_T = 3.0
LARMOR_MHZ_PER_T = 42.577478518


#: Namespace of the phantom's name-based UUIDs.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/msk-cds/phantom")


def _uid(*parts: str) -> str:
    """A deterministic 2.25 UID: the decimal value of a version-5 UUID of ``parts``."""
    return UID(f"2.25.{uuid.uuid5(_NAMESPACE, '|'.join(parts)).int}")


@dataclass(frozen=True)
class StudyIdentity:
    """Patient and study attributes of one phantom (synthetic, derived from the seed)."""

    key: tuple[str, ...]  # entropy for UIDs
    study_instance_uid: str
    frame_of_reference_uid: str
    accession_number: str
    study_id: str
    study_date: date
    patient_id: str
    patient_name: str
    birth_date: date
    sex: Literal["F", "M"]
    weight_kg: float
    height_m: float

    @staticmethod
    def for_phantom(seed: int, side: str, grade: int, protocols: list[ProtocolSpec]) -> StudyIdentity:
        digest = hashlib.sha256("".join(p.model_dump_json() for p in protocols).encode()).hexdigest()[:16]
        key = ("msk-cds phantom", str(seed), side, str(grade), digest)
        rng = np.random.default_rng(seed)
        study_date = date(2024, 1, 1) + timedelta(days=seed % 730)
        age_days = int(rng.integers(40 * 365, 80 * 365))
        sex: Literal["F", "M"] = "F" if rng.random() < 0.55 else "M"
        height = float(rng.normal(1.64 if sex == "F" else 1.77, 0.06))
        return StudyIdentity(
            key=key,
            study_instance_uid=_uid(*key, "study"),
            frame_of_reference_uid=_uid(*key, "frame of reference"),
            accession_number=f"PH{seed:08d}{grade}{'R' if side == 'right' else 'L'}"[:16],
            study_id=str(seed % 100000),
            study_date=study_date,
            patient_id=f"MSKCDS-PH-{seed:06d}",
            patient_name=f"PHANTOM^KNEE {seed}",
            birth_date=study_date - timedelta(days=age_days),
            sex=sex,
            weight_kg=round(float(rng.uniform(21.0, 35.0)) * height**2, 1),
            height_m=round(height, 2),
        )

    def uid(self, *parts: str) -> str:
        return _uid(*self.key, *parts)

    @property
    def age(self) -> str:
        years = (self.study_date - self.birth_date).days // 365
        return f"{years:03d}Y"


def _ds(value: float) -> str:
    """A decimal string (VR DS, at most 16 characters)."""
    text = f"{value:.6g}"
    return text if len(text) <= 16 else f"{value:.8e}"[:16]


def series_datasets(
    identity: StudyIdentity,
    spec: ProtocolSpec,
    pixels: NDArray[np.float32],
    affine_ras: NDArray[np.float64],
    side: Literal["left", "right"],
) -> list[Dataset]:
    """Datasets for every time point and slice of one protocol (pixels: ``(times, slices, rows, cols)``)."""
    n_times, n_slices, rows, columns = pixels.shape
    lps = LPS_TO_RAS @ affine_ras  # index -> LPS
    row_dir = lps[:3, 2] / np.linalg.norm(lps[:3, 2])  # along a row: increasing column index
    col_dir = lps[:3, 1] / np.linalg.norm(lps[:3, 1])  # down a column: increasing row index
    normal = np.cross(row_dir, col_dir)
    orientation = [float(round(v, 6)) + 0.0 for v in (*row_dir, *col_dir)]
    study_time = "093000"
    datasets = []
    for t in range(n_times):
        series_key = (spec.name, str(t)) if spec.separate_series else (spec.name,)
        series_uid = identity.uid("series", *series_key)
        time_ms = spec.times_ms[t]
        for k in range(n_slices):
            position = (lps @ np.array([k, 0.0, 0.0, 1.0]))[:3]
            instance = k + 1 if spec.separate_series else k * n_times + t + 1
            ds = Dataset()
            ds.SpecificCharacterSet = "ISO_IR 100"
            ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
            ds.SOPClassUID = MRImageStorage
            ds.SOPInstanceUID = identity.uid("instance", spec.name, str(t), str(k))
            ds.StudyDate = identity.study_date.strftime("%Y%m%d")
            ds.SeriesDate = ds.StudyDate
            ds.AcquisitionDate = ds.StudyDate
            ds.ContentDate = ds.StudyDate
            ds.StudyTime = study_time
            ds.SeriesTime = f"{9 + spec.series_number // 6:02d}{(spec.series_number * 7) % 60:02d}00"
            ds.AcquisitionTime = ds.SeriesTime
            ds.ContentTime = ds.SeriesTime
            ds.AccessionNumber = identity.accession_number
            ds.Modality = "MR"
            ds.Manufacturer = MANUFACTURER
            ds.ReferringPhysicianName = ""
            ds.StudyDescription = f"MRI KNEE {side.upper()} WO CONTRAST"
            ds.SeriesDescription = spec.series_description
            ds.ManufacturerModelName = MODEL_NAME
            ds.PatientName = identity.patient_name
            ds.PatientID = identity.patient_id
            ds.PatientBirthDate = identity.birth_date.strftime("%Y%m%d")
            ds.PatientSex = identity.sex
            ds.PatientAge = identity.age
            ds.PatientSize = _ds(identity.height_m)
            ds.PatientWeight = _ds(identity.weight_kg)
            ds.BodyPartExamined = "KNEE"
            ds.ScanningSequence = spec.scanning_sequence.split("\\")
            ds.SequenceVariant = spec.sequence_variant.split("\\")
            ds.ScanOptions = spec.scan_options.split("\\") if spec.scan_options else ""
            ds.MRAcquisitionType = spec.mr_acquisition_type
            ds.SequenceName = {"dess": "*dess3d", "mese": "*se2d_me", "t1rho": "*fse3d_sl"}[spec.signal_model]
            ds.AngioFlag = "N"
            ds.SliceThickness = _ds(spec.slice_thickness_mm)
            ds.RepetitionTime = _ds(spec.repetition_time_ms)
            ds.EchoTime = _ds(time_ms)
            ds.NumberOfAverages = "1"
            ds.ImagingFrequency = _ds(FIELD_STRENGTH_T * LARMOR_MHZ_PER_T)
            ds.ImagedNucleus = "1H"
            ds.EchoNumbers = str(t + 1)
            ds.MagneticFieldStrength = _ds(FIELD_STRENGTH_T)
            ds.SpacingBetweenSlices = _ds(spec.slice_spacing_mm)
            ds.EchoTrainLength = str(len(spec.echo_times_ms) if spec.signal_model == "mese" else 1)
            ds.PercentSampling = "100"
            ds.PercentPhaseFieldOfView = "100"
            ds.SoftwareVersions = __version__
            ds.ProtocolName = spec.name
            ds.AcquisitionMatrix = [0, spec.matrix, spec.matrix, 0]
            ds.InPlanePhaseEncodingDirection = "ROW"
            ds.FlipAngle = _ds(spec.flip_angle_deg)
            ds.PatientPosition = "FFS"
            ds.StudyInstanceUID = identity.study_instance_uid
            ds.SeriesInstanceUID = series_uid
            ds.StudyID = identity.study_id
            ds.SeriesNumber = str(spec.series_number)
            ds.AcquisitionNumber = "1"
            ds.InstanceNumber = str(instance)
            ds.ImagePositionPatient = [_ds(v) for v in position]
            ds.ImageOrientationPatient = [_ds(v) for v in orientation]
            ds.FrameOfReferenceUID = identity.frame_of_reference_uid
            ds.Laterality = "R" if side == "right" else "L"
            ds.PositionReferenceIndicator = ""
            ds.SliceLocation = _ds(float(position @ normal))
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows = rows
            ds.Columns = columns
            ds.PixelSpacing = [_ds(spec.pixel_mm), _ds(spec.pixel_mm)]
            ds.BitsAllocated = 16
            ds.BitsStored = 12
            ds.HighBit = 11
            ds.PixelRepresentation = 0
            ds.PixelData = pixels[t, k].astype("<u2").tobytes()
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MRImageStorage
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta = meta
            datasets.append(ds)
    return datasets


def series_folder(spec: ProtocolSpec, dataset: Dataset) -> str:
    """Folder of a dataset in the written study: one per series (``NNN_name`` or ``NNN_name_E``)."""
    folder = f"{spec.series_number:03d}_{spec.name}"
    return f"{folder}_{int(dataset.EchoNumbers):02d}" if spec.separate_series else folder
