"""The loader on real scanner output: a GE 3 T knee exam (DESS + CubeQuant) and a GE MESE T2 series."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from app.imaging import load_acquisitions, select_series

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def real_exam(real_knee_dir):
    return load_acquisitions(real_knee_dir)


def test_real_exam_is_one_dess_and_one_t1rho_acquisition(real_exam) -> None:
    dess, t1rho = real_exam
    assert (dess.role, t1rho.role) == ("morphology", "t1rho")
    assert dess.echoes.times_ms == (7.48, 42.52)
    assert t1rho.echoes.times_ms == (1.0, 10.0, 30.0, 60.0)  # spin-lock times, stored in EchoTime
    # GE writes each echo / spin-lock volume as its own series sharing SeriesNumber.
    assert (dess.series_number, len(dess.series_instance_uids)) == (5, 2)
    assert (t1rho.series_number, len(t1rho.series_instance_uids)) == (7, 4)
    for acquisition in real_exam:
        assert acquisition.echoes.array.shape[1:] == (80, 512, 512)
        assert acquisition.orientation == "sagittal"
        assert acquisition.study_date == datetime.date(2016, 8, 30)
        # No Laterality attribute and no side in the descriptions: the knee lies 46 mm right of midline.
        assert (acquisition.laterality, acquisition.laterality_source) == ("right", "patient_position")
    # Slice spacing from ImagePositionPatient: 1.5 mm for both; CubeQuant's slices are 3 mm thick,
    # reconstructed every 1.5 mm (overlapping).
    assert dess.spacing_mm == pytest.approx((1.5, 0.3125, 0.3125))
    assert t1rho.spacing_mm == pytest.approx((1.5, 0.3125, 0.3125))
    assert (float(dess.first.SliceThickness), float(t1rho.first.SliceThickness)) == (1.5, 3.0)


def test_real_exam_geometry(real_exam) -> None:
    dess = real_exam[0]
    # Slices run along the normal (LPS -x, patient's right): the first is the leftmost, at LPS x = 13.0848.
    expected = np.array(
        [[1.5, 0.0, 0.0, -13.0848], [0.0, 0.0, -0.3125, 68.3588], [0.0, -0.3125, 0.0, 79.8372], [0, 0, 0, 1]]
    )
    np.testing.assert_allclose(dess.echoes.affine, expected, atol=1e-4)
    assert float(dess.headers[0][0].ImagePositionPatient[0]) == pytest.approx(13.0848)
    assert float(dess.headers[1][-1].ImagePositionPatient[0]) == pytest.approx(-105.415)  # as the scanner wrote it
    assert dess.echoes.array.dtype == np.float32 and dess.echoes.array.max() > 100


def test_real_exam_selection(real_exam) -> None:
    selection = select_series(real_exam)
    assert selection.morphology.description == "Sag DESS 3132 30 HiRes thk1p5 ARCx2"
    assert selection.t1rho is not None and selection.t1rho.description == "cubequant T1rho"
    assert selection.t2 is None


def test_real_mese_is_one_t2_acquisition_of_eight_echoes(mese_t2_dir) -> None:
    (t2,) = load_acquisitions(mese_t2_dir)
    assert t2.role == "t2"
    assert t2.shape == (24, 256, 256)
    np.testing.assert_allclose(t2.echoes.times_ms, [6.312 * k for k in range(1, 9)], atol=1e-3)
    assert t2.spacing_mm == pytest.approx((4.0, 0.625, 0.625), abs=1e-4)
    assert t2.study_date is None  # StudyDate 00010101 after anonymisation
    assert t2.orientation == "sagittal"  # oblique by a few degrees
    assert len(t2.series_instance_uids) == 1


def test_real_cubequant_slices_are_thicker_than_their_spacing(real_exam) -> None:
    """CubeQuant reconstructs 3 mm slices every 1.5 mm: relaxometry must know the 3 mm (partial volume)."""
    t1rho = next(a for a in real_exam if a.role == "t1rho")
    assert t1rho.echoes.slice_thickness_mm == 3.0
    assert t1rho.spacing_mm[0] == pytest.approx(1.5)
