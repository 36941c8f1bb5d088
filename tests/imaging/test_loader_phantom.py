"""The loader on every phantom protocol: exact geometry, times, grouping, roles; files == in-memory datasets."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, MRImageStorage, RLELossless

from app.imaging import load_acquisitions, select_series
from app.imaging.phantom import PhantomTruth

ISSUE_ATTRIBUTES = (
    "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "SpacingBetweenSlices",
    "EchoTime", "EchoNumbers", "RepetitionTime", "FlipAngle", "MagneticFieldStrength", "Laterality",
    "BodyPartExamined", "PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
    "AccessionNumber", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID", "ImageType",
    "MRAcquisitionType", "ScanningSequence", "SequenceVariant", "StudyDate", "Modality",
)  # fmt: skip


def _by_series_number(acquisitions):
    return {a.series_number: a for a in acquisitions}


def test_every_protocol_loads_with_the_phantom_geometry_and_times(phantom_dir, phantom_factory) -> None:
    phantom = phantom_factory.phantom()
    acquisitions = _by_series_number(load_acquisitions(phantom_dir))
    assert len(acquisitions) == len(phantom.truth.protocols) == 3
    roles = {"dess": "morphology", "mese": "t2", "t1rho": "t1rho"}
    for spec in phantom.truth.protocols:
        acquisition = acquisitions[spec.series_number]
        series = phantom.images[spec.name]
        assert acquisition.role == roles[spec.signal_model]
        assert acquisition.echoes.times_ms == spec.times_ms
        np.testing.assert_allclose(acquisition.echoes.affine, series.affine, atol=1e-3)
        np.testing.assert_array_equal(acquisition.echoes.array, series.array)
        assert acquisition.shape == (spec.slices, spec.matrix, spec.matrix)
        assert acquisition.spacing_mm == pytest.approx((spec.slice_spacing_mm, spec.pixel_mm, spec.pixel_mm))
        assert len(acquisition.series_instance_uids) == (len(spec.times_ms) if spec.separate_series else 1)
        assert acquisition.orientation == "sagittal"
        assert (acquisition.laterality, acquisition.laterality_source) == ("right", "dicom")
        assert acquisition.study_instance_uid == phantom.truth.study_instance_uid
        assert all("PixelData" not in header for headers in acquisition.headers for header in headers)


def test_labels_nifti_shares_the_morphology_geometry(phantom_dir) -> None:
    morphology = select_series(load_acquisitions(phantom_dir)).morphology
    labels = nib.load(phantom_dir / "labels.nii.gz")
    assert labels.shape == morphology.shape
    np.testing.assert_allclose(labels.affine, morphology.echoes.affine, atol=1e-3)
    thickness = nib.load(phantom_dir / "thickness_truth.nii.gz")
    np.testing.assert_allclose(thickness.affine, labels.affine)


def test_truth_json_round_trips(phantom_dir, phantom_factory) -> None:
    truth = PhantomTruth.model_validate(json.loads((phantom_dir / "truth.json").read_text()))
    assert truth == phantom_factory.phantom().truth
    assert truth.side == "right" and truth.grade == 0 and truth.seed == 0


def test_selection_picks_each_protocol(phantom_dir) -> None:
    selection = select_series(load_acquisitions(phantom_dir))
    assert selection.morphology.description == "SAG 3D DESS WE"
    assert selection.t2 is not None and selection.t2.echoes.times_ms == (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0)
    assert selection.t1rho is not None and selection.t1rho.echoes.times_ms == (1.0, 10.0, 30.0, 60.0)


def test_in_memory_datasets_give_the_same_acquisitions_as_files(phantom_dir, phantom_factory) -> None:
    datasets = phantom_factory.phantom().datasets()
    from_memory = load_acquisitions(datasets[::-1])  # any order
    from_files = load_acquisitions(phantom_dir)
    assert [a.series_instance_uids for a in from_memory] == [a.series_instance_uids for a in from_files]
    for a, b in zip(from_memory, from_files, strict=True):
        np.testing.assert_array_equal(a.echoes.array, b.echoes.array)
        np.testing.assert_array_equal(a.echoes.affine, b.echoes.affine)
        assert a.echoes.times_ms == b.echoes.times_ms and a.role == b.role
    assert all("PixelData" in ds for ds in datasets)  # the caller's datasets are left untouched


def test_written_files_are_part10_mr_images_with_the_attributes_selection_needs(phantom_dir) -> None:
    files = sorted(phantom_dir.rglob("*.dcm"))
    assert len(files) == 40 * 2 + 10 * 7 + 14 * 4
    raw = files[0].read_bytes()
    assert raw[128:132] == b"DICM"
    ds = pydicom.dcmread(files[0])
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.SOPClassUID == MRImageStorage == ds.file_meta.MediaStorageSOPClassUID
    for keyword in ISSUE_ATTRIBUTES:
        assert ds.get(keyword) not in (None, ""), keyword
    assert [float(v) for v in ds.ImageOrientationPatient] == [0, 1, 0, 0, 0, -1]
    assert (ds.Laterality, ds.BodyPartExamined, ds.MRAcquisitionType) == ("R", "KNEE", "3D")
    uids = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files}
    assert len(uids) == len(files)


def test_slice_gap_of_2d_protocol_is_in_positions_not_thickness(phantom_dir) -> None:
    t2 = select_series(load_acquisitions(phantom_dir)).t2
    assert t2 is not None
    assert float(t2.first.SliceThickness) == 4.0 and float(t2.first.SpacingBetweenSlices) == 10.0
    assert t2.spacing_mm[0] == pytest.approx(10.0)
    assert t2.first.MRAcquisitionType == "2D"


@pytest.mark.parametrize("syntax", [RLELossless, DeflatedExplicitVRLittleEndian])
def test_compressed_transfer_syntaxes_decode_to_the_same_pixels(phantom_factory, tmp_path, syntax) -> None:
    phantom = phantom_factory.phantom()
    datasets = [ds for ds in phantom.datasets() if ds.SeriesNumber == 5]
    for i, ds in enumerate(datasets):
        if syntax == RLELossless:
            ds.compress(RLELossless)
        else:
            ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        ds.save_as(tmp_path / f"{i}.dcm", enforce_file_format=True)
    assert pydicom.dcmread(tmp_path / "0.dcm").file_meta.TransferSyntaxUID == syntax
    (acquisition,) = load_acquisitions(tmp_path)
    np.testing.assert_array_equal(acquisition.echoes.array, phantom.images["t2-mese-small"].array)


def test_rescale_slope_and_intercept_are_applied(phantom_factory) -> None:
    datasets = [ds for ds in phantom_factory.phantom().datasets() if ds.SeriesNumber == 3]
    for ds in datasets:
        ds.RescaleSlope, ds.RescaleIntercept = "0.5", "-10"
    (acquisition,) = load_acquisitions(datasets)
    expected = phantom_factory.phantom().images["dess-small"].array * 0.5 - 10
    np.testing.assert_allclose(acquisition.echoes.array, expected)
