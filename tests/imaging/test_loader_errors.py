"""Malformed input gives a clear error (or a warning, for what can be set aside) naming the problem."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import pydicom
import pydicom.config
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from structlog.testing import capture_logs

from app.imaging import LoaderError, load_acquisitions
from app.imaging.loader import _study_date


@pytest.fixture
def dess_copy(phantom_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the small phantom's DESS series (40 slices x 2 echoes, IM00001..IM00080)."""
    target = tmp_path / "dess"
    shutil.copytree(phantom_dir / "003_dess-small", target)
    return target


def _edit(path: Path, **attributes: object) -> None:
    ds = pydicom.dcmread(path)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)


def test_truncated_file_is_refused_by_name(dess_copy: Path) -> None:
    victim = dess_copy / "IM00021.dcm"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(LoaderError, match=r"IM00021\.dcm: cannot decode pixel data: The number of bytes of pixel data"):
        load_acquisitions(dess_copy)
    victim.write_bytes(victim.read_bytes()[:600])
    with pytest.raises(LoaderError, match=r"IM00021\.dcm: MR Image Storage instance without pixel data \(truncated"):
        load_acquisitions(dess_copy)


def test_non_dicom_file_in_a_folder_is_skipped_with_a_count(dess_copy: Path) -> None:
    (dess_copy / "notes.txt").write_text("not an image")
    (dess_copy / "sub").mkdir()
    (dess_copy / "sub" / "thumbs.db").write_bytes(b"\x00" * 300)
    with capture_logs() as logs:
        (acquisition,) = load_acquisitions(dess_copy)
    assert acquisition.shape == (40, 96, 96)
    assert {"event": "skipped files that are not DICOM", "count": 2, "log_level": "warning"}.items() <= logs[0].items()


def test_non_dicom_file_named_explicitly_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "report.txt"
    text.write_text("hello")
    with pytest.raises(LoaderError, match=r"report\.txt is not a DICOM file \(no DICM preamble"):
        load_acquisitions([text])
    with pytest.raises(LoaderError, match=r"missing\.dcm does not exist"):
        load_acquisitions(tmp_path / "missing.dcm")


def test_missing_slice_is_refused_with_the_gap(dess_copy: Path) -> None:
    # Slice 11 (0-based 10) holds instances 21 and 22 (both echoes).
    (dess_copy / "IM00021.dcm").unlink()
    (dess_copy / "IM00022.dcm").unlink()
    with pytest.raises(
        LoaderError, match=r"missing slice: gap of 5\.60 mm between slices .* spacing is 2\.80 mm \(.*IM000(19|20)\.dcm"
    ):
        load_acquisitions(dess_copy)


def test_two_orientations_in_one_series_are_refused(dess_copy: Path) -> None:
    _edit(dess_copy / "IM00031.dcm", ImageOrientationPatient=[1, 0, 0, 0, 1, 0])
    with pytest.raises(LoaderError, match=r"series 3 'SAG 3D DESS WE' mixes image orientations: .*IM00031\.dcm differ"):
        load_acquisitions(dess_copy)


def test_two_image_sizes_in_one_series_are_refused(dess_copy: Path) -> None:
    _edit(dess_copy / "IM00031.dcm", PixelSpacing=[1.5, 1.5])
    with pytest.raises(
        LoaderError, match=r"mixes image sizes: .*IM00031\.dcm differ from .* \(96x96, 1\.4 x 1\.4 mm\)"
    ):
        load_acquisitions(dess_copy)


def test_duplicated_slice_is_refused(dess_copy: Path) -> None:
    copy = dess_copy / "copy.dcm"
    shutil.copy(dess_copy / "IM00041.dcm", copy)
    _edit(copy, SOPInstanceUID=generate_uid())
    with pytest.raises(LoaderError, match=r"at 4\.7 ms: duplicated slice at position .* \(.*(IM00041|copy)\.dcm"):
        load_acquisitions(dess_copy)


def test_localizer_mixed_into_a_series_is_skipped_with_a_warning(dess_copy: Path) -> None:
    scout = dess_copy / "scout.dcm"
    shutil.copy(dess_copy / "IM00041.dcm", scout)
    _edit(scout, SOPInstanceUID=generate_uid(), ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"],
          ImageOrientationPatient=[1, 0, 0, 0, 1, 0])  # fmt: skip
    with capture_logs() as logs:
        (acquisition,) = load_acquisitions(dess_copy)
    assert acquisition.shape == (40, 96, 96)
    assert any(log["event"] == "skipped localizer images" and log["count"] == 1 for log in logs)


def _text_report(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR Storage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid
    ds.Modality = "SR"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def test_non_image_objects_are_skipped_and_refused_when_alone(dess_copy: Path) -> None:
    report = _text_report(pydicom.dcmread(dess_copy / "IM00001.dcm").StudyInstanceUID)
    report.save_as(dess_copy / "report.dcm", enforce_file_format=True)
    with capture_logs() as logs:
        (acquisition,) = load_acquisitions(dess_copy)
    assert acquisition.role == "morphology"
    (warning,) = [log for log in logs if log["event"] == "skipped DICOM objects that are not images"]
    assert warning["kinds"] == "1 Basic Text SR Storage"
    with pytest.raises(LoaderError, match=r"no MR images in the input: 1 DICOM object\(s\), none of them an image"):
        load_acquisitions([report])


def test_non_mr_images_are_refused(dess_copy: Path) -> None:
    _edit(dess_copy / "IM00005.dcm", Modality="CT")
    with pytest.raises(
        LoaderError, match=r"1 image\(s\) of modality CT are not MR; only MR is analysed \(.*IM00005\.dcm"
    ):
        load_acquisitions(dess_copy)


def test_a_mixture_of_files_and_datasets_is_refused(dess_copy: Path) -> None:
    with pytest.raises(LoaderError, match="not a mixture"):
        load_acquisitions([dess_copy / "IM00001.dcm", pydicom.dcmread(dess_copy / "IM00002.dcm")])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20160830", datetime.date(2016, 8, 30)),
        ("00010101", None),
        ("", None),
        ("2016-08-30", None),
        ("19000229", None),
    ],
)
def test_study_date_placeholders_are_unknown(value: str, expected: datetime.date | None) -> None:
    ds = Dataset()
    with pydicom.config.disable_value_validation():  # malformed on purpose
        ds.StudyDate = value
    assert _study_date(ds) == expected
