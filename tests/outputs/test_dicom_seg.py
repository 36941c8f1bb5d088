"""DICOM SEG of the knee segmentation: written, re-read with pydicom and highdicom, values and geometry exact."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.uid import SegmentationStorage

from app.outputs.dicom_seg import build_segmentation, segment_numbers
from schemas.labels import Label
from schemas.volume import LPS_TO_RAS, Volume
from tests.integration.synthetic import StudySpec
from tests.outputs.dicom_examples import ALGORITHM, SOURCE_AFFINE_RAS, knee_labels, source_series


@pytest.fixture(scope="module")
def sources() -> list[pydicom.Dataset]:
    return source_series()


@pytest.fixture(scope="module")
def seg_file(sources: list[pydicom.Dataset], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("seg") / "seg.dcm"
    build_segmentation(knee_labels(), sources, ALGORITHM).save_as(path, enforce_file_format=True)
    return path


def _label_map(segmentation: hd.seg.Segmentation, pixels: np.ndarray) -> np.ndarray:
    """Segment numbers back to msk-cds label values."""
    lookup = np.zeros(len(segmentation.SegmentSequence) + 1, dtype=np.uint8)
    for label, number in segment_numbers(segmentation).items():
        lookup[number] = label
    return lookup[pixels]


def test_header_identifies_the_study_series_and_frame_of_reference(
    seg_file: Path, sources: list[pydicom.Dataset]
) -> None:
    ds = pydicom.dcmread(seg_file)
    assert ds.SOPClassUID == SegmentationStorage
    assert ds.Modality == "SEG"
    assert ds.SegmentationType == "BINARY"
    assert ds.StudyInstanceUID == sources[0].StudyInstanceUID
    assert ds.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    assert ds.PatientID == sources[0].PatientID
    assert ds.SeriesInstanceUID != sources[0].SeriesInstanceUID
    assert ds.ContentLabel == "KNEE_SEG"
    assert list(ds.SoftwareVersions) == ["msk-cds 0.1.0", "knee-sam 0.3.0"]
    referenced = {item.ReferencedSOPInstanceUID for item in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == {source.SOPInstanceUID for source in sources}


def test_segments_carry_the_labels_and_their_snomed_codes(seg_file: Path) -> None:
    ds = pydicom.dcmread(seg_file)
    described = {
        item.SegmentLabel: (
            item.SegmentedPropertyCategoryCodeSequence[0].CodeValue,
            item.SegmentedPropertyTypeCodeSequence[0].CodeValue,
            item.SegmentAlgorithmType,
        )
        for item in ds.SegmentSequence
    }
    assert described == {
        "femur": ("91723000", "71341001", "AUTOMATIC"),
        "tibia": ("91723000", "12611008", "AUTOMATIC"),
        "femoral cartilage": ("85756007", "309312004", "AUTOMATIC"),
        "medial tibial cartilage": ("85756007", "309312004", "AUTOMATIC"),
        "lateral tibial cartilage": ("85756007", "309312004", "AUTOMATIC"),
        "medial meniscus": ("91723000", "74135004", "AUTOMATIC"),
    }
    by_label = {item.SegmentLabel: item for item in ds.SegmentSequence}
    medial = by_label["medial tibial cartilage"].SegmentedPropertyTypeCodeSequence[0]
    assert medial.SegmentedPropertyTypeModifierCodeSequence[0].CodeValue == "255561001"  # Medial
    assert by_label["femoral cartilage"].PrimaryAnatomicStructureSequence[0].CodeValue == "71341001"  # on the femur
    algorithm = by_label["femur"].SegmentationAlgorithmIdentificationSequence[0]
    assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == ("knee-sam", "0.3.0")
    assert algorithm.AlgorithmFamilyCodeSequence[0].CodeValue == "123110"  # Artificial Intelligence


def test_pixels_round_trip_per_source_image(seg_file: Path, sources: list[pydicom.Dataset]) -> None:
    segmentation = hd.seg.segread(seg_file)
    pixels = segmentation.get_pixels_by_source_instance(
        [source.SOPInstanceUID for source in sources], combine_segments=True
    )
    np.testing.assert_array_equal(_label_map(segmentation, pixels), knee_labels().array)


def test_geometry_round_trips(seg_file: Path) -> None:
    volume = hd.seg.segread(seg_file).get_volume(combine_segments=True)
    np.testing.assert_allclose(LPS_TO_RAS @ volume.affine, SOURCE_AFFINE_RAS, atol=1e-6)
    assert volume.array.shape == (8, 32, 32)


def test_a_label_map_on_another_grid_keeps_its_geometry(sources: list[pydicom.Dataset], tmp_path: Path) -> None:
    """Geometry travels with the data: a map on every other source slice encodes at its own positions."""
    full = knee_labels()
    coarse = Volume(full.array[::2], full.affine @ np.diag([2.0, 1.0, 1.0, 1.0]))
    path = tmp_path / "coarse.dcm"
    build_segmentation(coarse, sources, ALGORITHM).save_as(path, enforce_file_format=True)
    segmentation = hd.seg.segread(path)
    volume = segmentation.get_volume(combine_segments=True)
    np.testing.assert_allclose(LPS_TO_RAS @ volume.affine, coarse.affine, atol=1e-6)
    np.testing.assert_array_equal(_label_map(segmentation, volume.array), coarse.array)


def test_labelmap_segmentation_type(sources: list[pydicom.Dataset], tmp_path: Path) -> None:
    path = tmp_path / "labelmap.dcm"
    build_segmentation(knee_labels(), sources, ALGORITHM, segmentation_type="LABELMAP").save_as(path)
    segmentation = hd.seg.segread(path)
    assert segmentation.SegmentationType == "LABELMAP"
    pixels = segmentation.get_pixels_by_source_instance(
        [source.SOPInstanceUID for source in sources], combine_segments=True
    )
    np.testing.assert_array_equal(_label_map(segmentation, pixels), knee_labels().array)


def test_empty_label_map_is_refused(sources: list[pydicom.Dataset]) -> None:
    empty = Volume(np.zeros((8, 32, 32), np.uint8), SOURCE_AFFINE_RAS)
    with pytest.raises(ValueError, match=r"^label map is empty \(background only\): there is no segment to encode$"):
        build_segmentation(empty, sources, ALGORITHM)


def test_unknown_label_values_are_refused(sources: list[pydicom.Dataset]) -> None:
    labels = knee_labels().array.copy()
    labels[0, 0, 0] = 42
    with pytest.raises(ValueError, match=r"^label map holds values that are not msk-cds knee labels: \[42\]$"):
        build_segmentation(Volume(labels, SOURCE_AFFINE_RAS), sources, ALGORITHM)


def test_sources_from_two_series_are_refused(sources: list[pydicom.Dataset]) -> None:
    other = source_series(StudySpec(study_instance_uid=sources[0].StudyInstanceUID))
    with pytest.raises(ValueError, match=r"^source images must all belong to one series"):
        build_segmentation(knee_labels(), sources + other, ALGORITHM)
    with pytest.raises(ValueError, match=r"^a SEG needs the source images it was derived from; none were given$"):
        build_segmentation(knee_labels(), [], ALGORITHM)


def test_segment_numbers_map_labels(seg_file: Path) -> None:
    assert segment_numbers(pydicom.dcmread(seg_file)) == {
        Label.FEMUR: 1,
        Label.TIBIA: 2,
        Label.FEMORAL_CARTILAGE: 3,
        Label.MEDIAL_TIBIAL_CARTILAGE: 4,
        Label.LATERAL_TIBIAL_CARTILAGE: 5,
        Label.MEDIAL_MENISCUS: 6,
    }
