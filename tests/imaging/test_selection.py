"""Roles from acquisition attributes; the study selection and its errors; laterality rules."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset

from app.imaging import SeriesSelectionError, load_acquisitions, select_series
from app.imaging.laterality import from_description, from_position
from app.imaging.selection import classify, is_echo_train


def _header(acquisition_type: str, tr: float, sequence: str, variant: str = "NONE") -> Dataset:
    ds = Dataset()
    ds.MRAcquisitionType = acquisition_type
    ds.RepetitionTime = str(tr)
    ds.ScanningSequence = sequence.split("\\")
    ds.SequenceVariant = variant.split("\\")
    return ds


@pytest.mark.parametrize(
    ("header", "times", "role"),
    [
        (_header("3D", 25, "RM"), (7.48, 42.52), "morphology"),  # GE DESS (research-mode sequence code)
        (_header("3D", 16.3, "GR", "SS"), (4.7, 27.9), "morphology"),  # OAI-style DESS
        (_header("3D", 20, "GR", "SP"), (5.0,), "morphology"),  # 3D SPGR / FLASH
        (_header("3D", 1302, "RM"), (1.0, 10.0, 30.0, 60.0), "t1rho"),  # GE CubeQuant
        (_header("3D", 1200, "SE", "SK\\MP"), (10.0, 20.0, 30.0, 40.0), "t1rho"),  # prepared, evenly spaced TSL
        (_header("3D", 9, "GR", "MP"), (0.0, 10.0, 40.0, 80.0), "t1rho"),  # MAPSS-like GRE readout
        (_header("2D", 2450, "SE", "SK"), tuple(6.312 * k for k in range(1, 9)), "t2"),  # GE MESE
        (_header("2D", 2700, "SE"), (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0), "t2"),  # OAI MESE
        (_header("3D", 50, "GR"), (5.0, 10.0, 15.0, 20.0), "other"),  # multi-echo GRE: T2*
        (_header("3D", 1200, "SE"), (30.0,), "other"),  # 3D FSE proton density
        (_header("2D", 3000, "SE"), (10.0, 20.0, 30.0), "other"),  # 3 echoes: too few for T2
    ],
)
def test_roles_come_from_acquisition_attributes(header: Dataset, times: tuple[float, ...], role: str) -> None:
    assert classify(header, times) == role


def test_echo_train_test() -> None:
    assert is_echo_train((10, 20, 30, 40))
    assert is_echo_train((6.312, 12.624, 18.936, 25.248))
    assert not is_echo_train((1, 10, 30, 60))
    assert not is_echo_train((0, 10, 20, 30))  # first time zero: a preparation, not an echo
    assert not is_echo_train((15,))


@pytest.mark.parametrize(
    ("description", "side"),
    [
        ("SAG PD FS RT KNEE", "right"),
        ("Knee_Lt sag DESS", "left"),
        ("LEFT KNEE T2 MAP", "left"),
        ("sag t2 right", "right"),
        ("R KNEE", "right"),
        ("Sag DESS 3132 30 HiRes thk1p5 ARCx2", None),
        ("cubequant T1rho", None),
        ("PORT R sag", None),  # a lone R next to something other than KNEE is not a side
        ("RT LT knee compare", None),
        ("right and left knee", None),
        ("", None),
    ],
)
def test_laterality_from_series_description_is_conservative(description: str, side: str | None) -> None:
    assert from_description(description) == side


def test_laterality_from_position_needs_a_clear_offset() -> None:
    assert from_position(np.array([-46.0, 0, 0])) == "right"  # the real GE exam
    assert from_position(np.array([75.0, 0, 0])) == "left"
    assert from_position(np.array([-25.0, 0, 0])) is None


def test_no_morphology_acquisition_is_a_selection_error(phantom_dir) -> None:
    relaxometry = [a for a in load_acquisitions(phantom_dir) if a.role != "morphology"]
    message = (
        r"no morphology acquisition: expected a 3D gradient-echo series .* found: "
        r"series 5 'SAG T2 MAP MESE' \(2D, TR 2700 ms, 7 time point\(s\), role t2\)"
    )
    with pytest.raises(SeriesSelectionError, match=message):
        select_series(relaxometry)
    with pytest.raises(SeriesSelectionError, match="no acquisitions to select from"):
        select_series([])


def test_acquisitions_of_two_studies_are_refused(phantom_factory) -> None:
    mixed = load_acquisitions(
        phantom_factory.phantom().datasets() + phantom_factory.phantom(seed=1, protocols=["dess-small"]).datasets()
    )
    with pytest.raises(SeriesSelectionError, match="come from 2 different studies; select one study first"):
        select_series(mixed)
