"""The knee segmentation as a DICOM Segmentation (SEG) instance, so radiologists see it in their own viewer.

Built with highdicom from the label map (a :class:`~schemas.volume.Volume` in msk-cds's label convention)
and the headers of the series it was segmented on. The label map's affine places it in the source
series' frame of reference; highdicom derives every frame's position from it and links frames to source
images by geometry, so a map on the source grid and one on another grid (e.g. resampled) both encode
correctly. Each msk-cds label present in the map becomes one segment, described with SNOMED CT codes
(DICOM PS3.16 CID 7150 categories, CID 7151-style property types) and the segment label in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
from pydicom import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from app import __version__
from schemas.labels import Label
from schemas.volume import Volume

MANUFACTURER = "msk-cds"


@dataclass(frozen=True)
class SegmentCode:
    """How one msk-cds label is described in a SEG: property category, property type, optional modifier."""

    category: Code
    type: Code
    modifier: Code | None = None


_ANATOMY, _TISSUE, _ABNORMAL, _SUBSTANCE = (
    codes.SCT.AnatomicalStructure,
    codes.SCT.Tissue,
    codes.SCT.MorphologicallyAbnormalStructure,
    codes.SCT.BodySubstance,
)

#: Every label the knee models produce. Codes come from pydicom's DICOM code dictionary (no code is
#: invented); labels without a specific concept use the closest general one plus their segment label.
SEGMENT_CODES: dict[Label, SegmentCode] = {
    Label.FEMUR: SegmentCode(_ANATOMY, codes.SCT.Femur),
    Label.TIBIA: SegmentCode(_ANATOMY, codes.SCT.Tibia),
    Label.PATELLA: SegmentCode(_ANATOMY, codes.SCT.Patella),
    Label.FIBULA: SegmentCode(_ANATOMY, codes.SCT.Fibula),
    Label.FEMORAL_CARTILAGE: SegmentCode(_TISSUE, codes.SCT.Cartilage),
    Label.MEDIAL_TIBIAL_CARTILAGE: SegmentCode(_TISSUE, codes.SCT.Cartilage, codes.SCT.Medial),
    Label.LATERAL_TIBIAL_CARTILAGE: SegmentCode(_TISSUE, codes.SCT.Cartilage, codes.SCT.Lateral),
    Label.PATELLAR_CARTILAGE: SegmentCode(_TISSUE, codes.SCT.Cartilage),
    Label.MEDIAL_MENISCUS: SegmentCode(_ANATOMY, codes.SCT.Meniscus, codes.SCT.Medial),
    Label.LATERAL_MENISCUS: SegmentCode(_ANATOMY, codes.SCT.Meniscus, codes.SCT.Lateral),
    Label.MUSCLE: SegmentCode(_TISSUE, codes.SCT.Muscle),
    Label.SUBCUTANEOUS_FAT: SegmentCode(_TISSUE, codes.SCT.AdiposeTissue),
    Label.JOINT_FLUID: SegmentCode(_SUBSTANCE, codes.SCT.BodyFluid),
    Label.BONE_MARROW_LESION: SegmentCode(_ABNORMAL, codes.SCT.Lesion),
    Label.OSTEOPHYTE: SegmentCode(_ABNORMAL, codes.SCT.Lesion),
    Label.NERVE: SegmentCode(_ANATOMY, codes.SCT.PeripheralNerve),
}

#: The bone each cartilage plate rests on: the plate's primary anatomic structure.
_PLATE_BONE: dict[Label, Code] = {
    Label.FEMORAL_CARTILAGE: codes.SCT.Femur,
    Label.MEDIAL_TIBIAL_CARTILAGE: codes.SCT.Tibia,
    Label.LATERAL_TIBIAL_CARTILAGE: codes.SCT.Tibia,
    Label.PATELLAR_CARTILAGE: codes.SCT.Patella,
}


@dataclass(frozen=True)
class Algorithm:
    """The model that produced the label map (recorded in every segment and measurement)."""

    name: str
    version: str

    def identification(self) -> hd.AlgorithmIdentificationSequence:
        return hd.AlgorithmIdentificationSequence(
            name=self.name, version=self.version, family=codes.DCM.ArtificialIntelligence
        )


def segment_descriptions(labels_present: Sequence[Label], algorithm: Algorithm) -> list[hd.seg.SegmentDescription]:
    """One description per label, numbered 1..n in the given order (SEG requires consecutive numbers)."""
    descriptions = []
    for number, label in enumerate(labels_present, start=1):
        code = SEGMENT_CODES[label]
        description = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label.display_name,
            segmented_property_category=code.category,
            segmented_property_type=code.type,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm.identification(),
            tracking_id=f"msk-cds label {label.value}",
            tracking_uid=hd.UID(),
            anatomic_regions=[codes.SCT.KneeJoint],
            primary_anatomic_structures=[_PLATE_BONE[label]] if label in _PLATE_BONE else None,
        )
        if code.modifier is not None:
            description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
                hd.sr.CodedConcept.from_code(code.modifier)
            ]
        descriptions.append(description)
    return descriptions


#: Type 2 patient / study attributes (required, may be empty) that derived objects copy from the source.
_TYPE2_COPIED = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)


def with_type2_attributes(source_images: Sequence[Dataset]) -> list[Dataset]:
    """Shallow copies of the source headers with absent Type 2 attributes present and empty.

    Some writers drop empty Type 2 attributes; DICOM's remedy is an empty value, which is what highdicom
    needs to copy the patient and study modules into the derived object.
    """
    completed = []
    for dataset in source_images:
        copy = dataset.copy()
        for keyword in _TYPE2_COPIED:
            if keyword not in copy:
                setattr(copy, keyword, "")
        completed.append(copy)
    return completed


def labels_in(labels: Volume) -> list[Label]:
    """The msk-cds labels present in a label map, in label order.

    Raises:
        ValueError: when the map holds a value that is not a msk-cds label, or no label at all.
    """
    values = np.unique(labels.array)
    unknown = sorted(int(v) for v in values if v != 0 and int(v) not in SEGMENT_CODES)
    if unknown:
        raise ValueError(f"label map holds values that are not msk-cds knee labels: {unknown}")
    present = [Label(int(v)) for v in values if v != 0]
    if not present:
        raise ValueError("label map is empty (background only): there is no segment to encode")
    return present


def build_segmentation(
    labels: Volume,
    source_images: Sequence[Dataset],
    algorithm: Algorithm,
    *,
    series_number: int = 9001,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    segmentation_type: hd.seg.SegmentationTypeValues | str = hd.seg.SegmentationTypeValues.BINARY,
) -> hd.seg.Segmentation:
    """A SEG instance for ``labels``, derived from ``source_images`` (the series it was segmented on).

    ``source_images`` may be headers without pixel data (what the loader keeps). BINARY (the default) is
    the type every SEG-capable viewer reads; LABELMAP (DICOM 2024) is smaller but less widely supported.

    Raises:
        ValueError: for an unknown or empty label map, or source images from several series.
    """
    if not source_images:
        raise ValueError("a SEG needs the source images it was derived from; none were given")
    if len({str(ds.SeriesInstanceUID) for ds in source_images}) != 1:
        raise ValueError("source images must all belong to one series (the one that was segmented)")
    present = labels_in(labels)
    # Segment numbers run 1..n over the labels present; label values are not consecutive.
    lookup = np.zeros(max(SEGMENT_CODES) + 1, dtype=np.uint8)
    for number, label in enumerate(present, start=1):
        lookup[label] = number
    segments = lookup[labels.array.astype(np.intp)]
    volume = hd.Volume(
        segments,
        labels.affine,
        coordinate_system="PATIENT",
        frame_of_reference_uid=str(source_images[0].FrameOfReferenceUID),
        from_reference_convention="RAS",  # msk-cds affines are RAS; DICOM's patient coordinates are LPS
    )
    return hd.seg.Segmentation(
        source_images=with_type2_attributes(source_images),
        pixel_array=volume,
        segmentation_type=segmentation_type,
        segment_descriptions=segment_descriptions(present, algorithm),
        series_instance_uid=series_instance_uid or hd.UID(),
        series_number=series_number,
        sop_instance_uid=sop_instance_uid or hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=f"{algorithm.name} (msk-cds)",
        software_versions=[f"msk-cds {__version__}", f"{algorithm.name} {algorithm.version}"],
        device_serial_number="0",
        series_description=f"AI knee segmentation ({algorithm.name} {algorithm.version})",
        content_label="KNEE_SEG",
        content_description="Automatic knee segmentation (not verified by a clinician)",
    )


def segment_numbers(segmentation: Dataset) -> dict[Label, int]:
    """Which segment number holds which msk-cds label in a SEG written by :func:`build_segmentation`."""
    numbers: dict[Label, int] = {}
    for item in segmentation.SegmentSequence:
        tracking_id = str(item.get("TrackingID", ""))
        if tracking_id.startswith("msk-cds label "):
            numbers[Label(int(tracking_id.removeprefix("msk-cds label ")))] = int(item.SegmentNumber)
    return numbers
