"""Thickness against analytic shells on isotropic, anisotropic, oblique and permuted grids."""

from __future__ import annotations

import numpy as np
import pytest

from app.measurement.geometry import check_orthogonal
from app.measurement.surfaces import level_crossings, smoothed_indicator
from app.measurement.thickness import plate_thickness
from schemas.labels import Label
from schemas.volume import Volume
from tests.measurement.shapes import (
    ball,
    grid_affine,
    labelled,
    ray_to_sphere,
    rotation,
    shape_for,
    spherical_shell,
)

CENTRE = np.array([0.23, -0.41, 0.17])  # off-grid, so no boundary sits on voxel centres
RADIUS = 15.0

GRIDS = {
    "isotropic 0.5 mm": dict(spacing=(0.5, 0.5, 0.5)),
    "OAI DESS 0.365x0.365x0.7 oblique": dict(spacing=(0.365, 0.365, 0.7), rotate=rotation(4, 9, 23)),
    "coronal 0.3125 in-plane, 1.5 mm slices, axes permuted": dict(
        spacing=(1.5, 0.3125, 0.3125), axis_order=(1, 2, 0), rotate=rotation(0, 0, 11)
    ),
    "0.7 mm isotropic oblique": dict(spacing=(0.7, 0.7, 0.7), rotate=rotation(30, 0, 33)),
}


def grid(name: str, extent_mm: float) -> tuple[np.ndarray, tuple[int, ...]]:
    spec = GRIDS[name]
    shape = shape_for(extent_mm, spec["spacing"])
    return grid_affine(spec["spacing"], shape, spec.get("rotate"), axis_order=spec.get("axis_order", (0, 1, 2))), shape


def area_mean(values: np.ndarray, area: np.ndarray) -> float:
    return float(np.average(values, weights=area))


@pytest.mark.parametrize("grid_name", GRIDS)
def test_sphere_surface_points_lie_on_the_sphere_with_radial_normals_and_its_area(grid_name: str) -> None:
    affine, shape = grid(grid_name, 2 * RADIUS + 8)
    labels = labelled(affine, shape, [(Label.FEMUR, ball(CENTRE, RADIUS))])
    surface = level_crossings(smoothed_indicator(labels.array == Label.FEMUR, labels.spacing_mm), affine)
    radial = surface.xyz - CENTRE
    radius = np.linalg.norm(radial, axis=1)
    # The smoothing's curvature shift is sigma^2 / R (sigma = the largest voxel size).
    expected_radius = RADIUS - max(labels.spacing_mm) ** 2 / RADIUS
    assert area_mean(radius, surface.area_mm2) == pytest.approx(expected_radius, abs=0.03)
    cosine = np.einsum("ij,ij->i", radial / radius[:, None], surface.normal)
    assert np.degrees(np.arccos(np.clip(cosine, -1, 1))).mean() < 4.0
    assert surface.area_mm2.sum() == pytest.approx(4 * np.pi * expected_radius**2, rel=0.015)


@pytest.mark.parametrize("method", ["normal", "nearest"])
@pytest.mark.parametrize("grid_name", GRIDS)
def test_spherical_shell_thickness_is_exact(grid_name: str, method: str) -> None:
    thickness = 2.2  # not a multiple of any voxel size
    affine, shape = grid(grid_name, 2 * (RADIUS + thickness) + 8)
    result = plate_thickness(spherical_shell(affine, shape, CENTRE, RADIUS, thickness), 4, 1, method)
    assert result is not None
    area = result.bone_surface.area_mm2
    assert area_mean(result.thickness_mm, area) == pytest.approx(thickness, abs=0.02)
    assert not result.denuded.any()
    assert np.sqrt(area_mean((result.thickness_mm - thickness) ** 2, area)) < 0.12
    assert result.area_mm2 == pytest.approx(4 * np.pi * RADIUS**2, rel=0.02)


@pytest.mark.parametrize("method", ["normal", "nearest"])
@pytest.mark.parametrize("grid_name", ["isotropic 0.5 mm", "OAI DESS 0.365x0.365x0.7 oblique"])
def test_varying_thickness_matches_the_analytic_value_point_by_point(grid_name: str, method: str) -> None:
    # Outer sphere shifted off the inner one: the cartilage is 1.1 to 3.3 mm thick.
    outer_centre, outer_radius = CENTRE + np.array([1.0, 0.5, 0.0]), RADIUS + 2.2 - 0.0
    affine, shape = grid(grid_name, 2 * (RADIUS + 3.5) + 8)
    labels = labelled(
        affine,
        shape,
        [(Label.FEMUR, ball(CENTRE, RADIUS)), (Label.FEMORAL_CARTILAGE, ball(outer_centre, outer_radius))],
    )
    result = plate_thickness(labels, 4, 1, method)
    assert result is not None
    direction = result.bone_surface.xyz - CENTRE
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    on_bone = CENTRE + RADIUS * direction
    if method == "normal":
        truth = ray_to_sphere(on_bone, direction, outer_centre, outer_radius)
    else:
        truth = outer_radius - np.linalg.norm(on_bone - outer_centre, axis=1)
    area = result.bone_surface.area_mm2
    assert truth.min() < 1.2 and truth.max() > 3.2
    assert area_mean(result.thickness_mm, area) == pytest.approx(area_mean(truth, area), abs=0.02)
    assert np.sqrt(area_mean((result.thickness_mm - truth) ** 2, area)) < 0.1


def test_full_thickness_defect_counts_as_denuded_with_zero_thickness() -> None:
    affine, shape = grid("OAI DESS 0.365x0.365x0.7 oblique", 2 * (RADIUS + 2) + 8)
    half_angle = 5.0 / RADIUS  # a round defect about 10 mm across, on top of the "condyle"
    up = np.array([0.0, 0.0, 1.0])

    def cartilage(xyz: np.ndarray) -> np.ndarray:
        offset = xyz - CENTRE
        cosine = offset @ up / np.maximum(np.linalg.norm(offset, axis=-1), 1e-9)
        return ball(CENTRE, RADIUS + 2.0)(xyz) & (cosine < np.cos(half_angle))

    labels = labelled(affine, shape, [(Label.FEMUR, ball(CENTRE, RADIUS)), (Label.FEMORAL_CARTILAGE, cartilage)])
    result = plate_thickness(labels, 4, 1)
    assert result is not None
    area = result.bone_surface.area_mm2
    defect_area = 2 * np.pi * RADIUS**2 * (1 - np.cos(half_angle))
    assert area[result.denuded].sum() == pytest.approx(defect_area, rel=0.1)
    assert (result.thickness_mm[result.denuded] == 0).all()
    denuded_direction = result.bone_surface.xyz[result.denuded] - CENTRE
    assert np.all(denuded_direction @ up > 0)  # all of it in the defect
    expected_mean = 2.0 * (1 - defect_area / (4 * np.pi * RADIUS**2))
    assert area_mean(result.thickness_mm, area) == pytest.approx(expected_mean, abs=0.03)


def test_missing_bone_or_cartilage_gives_no_thickness() -> None:
    affine, shape = grid("isotropic 0.5 mm", 20)
    only_cartilage = labelled(affine, shape, [(Label.FEMORAL_CARTILAGE, ball(CENTRE, 5))])
    assert plate_thickness(only_cartilage, 4, 1) is None
    assert plate_thickness(only_cartilage, 5, 2) is None


def test_sheared_grid_is_refused() -> None:
    affine = np.eye(4)
    affine[0, 1] = 0.3
    with pytest.raises(ValueError, match=r"not perpendicular \(two axes meet at 73.30 degrees\)"):
        check_orthogonal(Volume(np.zeros((2, 2, 2)), affine))
