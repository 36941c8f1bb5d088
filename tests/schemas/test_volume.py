import numpy as np
import pytest

from schemas.volume import LPS_TO_RAS, EchoSeries, Volume


def oblique_affine() -> np.ndarray:
    angle = np.deg2rad(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.7, 0.365, 0.365])
    affine[:3, 3] = [10, -20, 30]
    return affine


def test_spacing_and_voxel_volume_come_from_affine() -> None:
    v = Volume(np.zeros((4, 5, 6)), oblique_affine())
    assert v.spacing_mm == pytest.approx((0.7, 0.365, 0.365))
    assert v.voxel_volume_mm3 == pytest.approx(0.7 * 0.365 * 0.365)


def test_world_and_index_are_inverse() -> None:
    v = Volume(np.zeros((4, 5, 6)), oblique_affine())
    ijk = np.array([[1.0, 2.0, 3.0], [0, 0, 0]])
    np.testing.assert_allclose(v.index(v.world(ijk)), ijk, atol=1e-12)
    np.testing.assert_allclose(v.world(np.zeros(3)), [10, -20, 30])


def test_lps_to_ras_is_an_involution() -> None:
    np.testing.assert_array_equal(LPS_TO_RAS @ LPS_TO_RAS, np.eye(4))


@pytest.mark.parametrize(
    ("array", "affine", "message"),
    [
        (np.zeros((2, 2)), np.eye(4), "a Volume is 3D"),
        (np.zeros((2, 2, 2)), np.eye(3), "must be 4x4"),
        (np.zeros((2, 2, 2)), np.diag([1, 1, 0, 1]), "singular"),
    ],
)
def test_volume_refuses_bad_geometry(array: np.ndarray, affine: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Volume(array, affine)


def test_echo_series_checks_times() -> None:
    with pytest.raises(ValueError, match="must increase strictly"):
        EchoSeries(np.zeros((2, 3, 3, 3)), np.eye(4), (10.0, 10.0))
    with pytest.raises(ValueError, match="2 times for 3 volumes"):
        EchoSeries(np.zeros((3, 3, 3, 3)), np.eye(4), (10.0, 20.0))
    series = EchoSeries(np.arange(54.0).reshape(2, 3, 3, 3), np.eye(4), (10.0, 20.0))
    assert series.volume(1).array[0, 0, 0] == 27.0


def test_echo_series_slice_thickness_is_optional_and_positive() -> None:
    assert EchoSeries(np.zeros((2, 3, 3, 3)), np.eye(4), (10.0, 20.0)).slice_thickness_mm is None
    assert EchoSeries(np.zeros((2, 3, 3, 3)), np.eye(4), (10.0, 20.0), slice_thickness_mm=3.0).slice_thickness_mm == 3.0
    with pytest.raises(ValueError, match=r"slice thickness must be positive, got 0\.0"):
        EchoSeries(np.zeros((2, 3, 3, 3)), np.eye(4), (10.0, 20.0), slice_thickness_mm=0.0)
