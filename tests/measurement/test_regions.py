"""Regions, laterality and menisci on a blocky knee whose landmarks are known exactly (``shapes.TOY``)."""

from __future__ import annotations

import numpy as np
import pytest

from app.measurement import measure_knee
from app.measurement.knee import KneeMeasurement
from app.measurement.regions import CENTRAL_FEMUR_FRACTION, RegionError, knee_frame, tibial_subregions
from schemas.biomarkers import BiomarkerName, BiomarkerSet
from schemas.labels import Label
from tests.measurement.shapes import TOY, ball, grid_affine, labelled, rotation, shape_for, spherical_shell, toy_knee

# A right knee on an axis-aligned sagittal-like grid, and a left knee on an anisotropic oblique one.
KNEES = {
    "right": dict(spacing=(0.8, 0.8, 0.8), rotate=None),
    "left": dict(spacing=(0.5, 0.5, 1.0), rotate=rotation(3, 5, 12)),
}


@pytest.fixture(scope="module", params=list(KNEES))
def toy(request: pytest.FixtureRequest) -> tuple[str, KneeMeasurement]:
    side = request.param
    spec = KNEES[side]
    shape = shape_for((90, 90, 80), spec["spacing"])
    labels = toy_knee(grid_affine(spec["spacing"], shape, spec["rotate"], centre=(0, 5, -5)), shape, side)
    return side, measure_knee(labels, side, "user")


def medial_sign(side: str) -> float:
    return -1.0 if side == "right" else 1.0


def test_knee_frame_finds_the_notch_and_the_condyles_posterior_ends(toy: tuple[str, KneeMeasurement]) -> None:
    side, measurement = toy
    frame = measurement.frame
    assert frame is not None and frame.laterality == side
    assert not frame.shaft_in_view  # the toy's field of view stops 35 mm above the condyles
    assert frame.condyles_fitted  # the condyles' centres lie on a line along x: the axes are RAS
    np.testing.assert_allclose(frame.axes, np.eye(3), atol=0.02)  # within ~1 degree
    assert frame.notch_m == pytest.approx(0.0, abs=2.0)  # the notch spans x = -8 .. 8
    assert frame.notch_a == pytest.approx(TOY["notch_anterior_y"], abs=0.5)
    posterior = TOY["condyle_y"][0] - TOY["condyle_radius"]
    assert frame.posterior_a_medial == pytest.approx(posterior, abs=1.0)
    assert frame.posterior_a_lateral == pytest.approx(posterior, abs=1.0)
    assert measurement.notes == ()


def test_medial_plates_lie_towards_the_patients_midline_side_for_each_laterality(
    toy: tuple[str, KneeMeasurement],
) -> None:
    side, measurement = toy
    femur = measurement.plates[Label.FEMORAL_CARTILAGE]
    xyz = femur.thickness.bone_surface.xyz
    sign = medial_sign(side)
    area = femur.thickness.bone_surface.area_mm2
    for medial, lateral in (("cMF", "cLF"), ("pMF", "pLF")):
        assert np.all(xyz[femur.plate == medial, 0] * sign > 0)
        assert np.all(xyz[femur.plate == lateral, 0] * sign < 0)
        # ... and on the condyles (centred at |x| = 20), not just on the right side of the notch plane.
        for name, expected in ((medial, 1), (lateral, -1)):
            centre = np.average(xyz[femur.plate == name, 0], weights=area[femur.plate == name])
            assert centre * sign * expected == pytest.approx(TOY["condyle_x"], abs=2.0)
    frame = measurement.frame
    assert frame is not None
    central_limit = frame.notch_a - CENTRAL_FEMUR_FRACTION * (frame.notch_a - frame.posterior_a_medial)
    a = frame.femur_coordinates(xyz)[:, 1]
    assert a[femur.plate == "cMF"].min() >= central_limit and a[femur.plate == "cMF"].max() <= frame.notch_a
    assert np.all(a[femur.plate == "TrF"] > frame.notch_a)
    # Internal femoral subregions are next to the notch, external ones away from it.
    assert np.abs(xyz[femur.subregion == "icMF", 0]).max() < np.abs(xyz[femur.subregion == "ecMF", 0]).min()
    medial_tibia = measurement.plates[Label.MEDIAL_TIBIAL_CARTILAGE]
    tibia_xyz = medial_tibia.thickness.bone_surface.xyz
    assert np.all(tibia_xyz[:, 0] * sign > 0)
    assert (tibia_xyz[medial_tibia.subregion == "eMT", 0] * sign).min() > (
        tibia_xyz[medial_tibia.subregion == "iMT", 0] * sign
    ).max()
    assert tibia_xyz[medial_tibia.subregion == "aMT", 1].min() > tibia_xyz[medial_tibia.subregion == "pMT", 1].max()


def test_the_mirrored_knee_gives_the_same_biomarkers(toy: tuple[str, KneeMeasurement]) -> None:
    side, measurement = toy
    biomarkers = measurement.biomarkers
    assert biomarkers.laterality == side and biomarkers.laterality_source == "user"
    # Mirror symmetry is exact in the toy: medial and lateral values follow the anatomy, not the array.
    values = biomarkers.as_features()
    assert values["meniscus_extrusion:MM"] == pytest.approx(
        TOY["medial_meniscus_outer_x"] - TOY["tibia_half_width"], abs=0.7
    )
    assert values["meniscus_extrusion:LM"] == pytest.approx(
        TOY["lateral_meniscus_outer_x"] - TOY["tibia_half_width"], abs=0.7
    )
    height = TOY["meniscus_height"]
    medial_volume = (TOY["medial_meniscus_outer_x"] - 26) * 10 * height
    # Boxes on an axis-aligned grid are quantised by whole voxels: a sanity check only (phantoms check 2 %).
    assert values["meniscus_volume:MM"] == pytest.approx(medial_volume, rel=0.2)
    assert values["meniscus_thickness_mean:MM"] == pytest.approx(height, abs=0.35)
    assert values["meniscus_thickness_mean:LM"] == pytest.approx(height, abs=0.35)


def test_compartments_add_their_plates(toy: tuple[str, KneeMeasurement]) -> None:
    values = toy[1].biomarkers.as_features()
    for compartment, (tibia, femur) in {"MFTC": ("MT", "cMF"), "LFTC": ("LT", "cLF")}.items():
        assert values[f"cartilage_thickness_mean:{compartment}"] == pytest.approx(
            values[f"cartilage_thickness_mean:{tibia}"] + values[f"cartilage_thickness_mean:{femur}"], abs=0.002
        )
        assert values[f"cartilage_volume:{compartment}"] == pytest.approx(
            values[f"cartilage_volume:{tibia}"] + values[f"cartilage_volume:{femur}"], abs=0.2
        )
    # Plates partition the femur: their areas and volumes add up to F's.
    parts = ("TrF", "MF", "LF")
    assert sum(values[f"cartilage_surface_area:{p}"] for p in parts) == pytest.approx(
        values["cartilage_surface_area:F"], abs=0.5
    )
    assert sum(values[f"cartilage_volume:{p}"] for p in parts) == pytest.approx(values["cartilage_volume:F"], abs=0.5)


def test_biomarker_document_round_trips_through_json(toy: tuple[str, KneeMeasurement]) -> None:
    biomarkers = toy[1].biomarkers
    again = BiomarkerSet.model_validate_json(biomarkers.model_dump_json())
    assert again == biomarkers
    names = {b.name for b in biomarkers.biomarkers}
    assert {BiomarkerName.CARTILAGE_THICKNESS_P5, BiomarkerName.BONE_VOLUME, BiomarkerName.DENUDED_AREA_PCT} <= names
    regions = {b.region for b in biomarkers.biomarkers}
    assert {"MT", "LT", "cMF", "cLF", "TrF", "MF", "LF", "F", "MFTC", "LFTC", "femur", "tibia", "MM", "LM"} <= regions
    assert {"cMT", "eMT", "iMT", "aMT", "pMT", "ccMF", "ecMF", "icMF", "ccLF", "ecLF", "icLF"} <= regions


@pytest.mark.parametrize("side", ["right", "left"])
def test_tibial_central_subregion_is_the_20_percent_ellipse(side: str) -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (40000, 2)) * [15.0, 22.0]  # a rectangular plate, longer AP than ML
    xyz = np.column_stack([points, np.zeros(len(points))])
    area = np.full(len(points), 0.01)
    sub = tibial_subregions(xyz, area, side, medial_plate=True)
    assert (sub == "c").mean() == pytest.approx(0.2, abs=0.002)
    central = xyz[sub == "c"]
    assert np.abs(central[:, 1]).max() / np.abs(central[:, 0]).max() == pytest.approx(22 / 15, rel=0.05)
    sign = medial_sign(side)
    assert np.all(xyz[sub == "e", 0] * sign > 0)  # external = medial for the medial plate
    assert np.all(xyz[sub == "i", 0] * sign < 0)
    assert np.all(xyz[sub == "a", 1] > 0) and np.all(xyz[sub == "p", 1] < 0)
    lateral = tibial_subregions(xyz, area, side, medial_plate=False)
    assert np.all(xyz[lateral == "e", 0] * sign < 0)  # external = lateral for the lateral plate


def test_femur_without_a_notch_is_refused_with_a_reason() -> None:
    spacing = (1.0, 1.0, 1.0)
    shape = shape_for(40, spacing)
    labels = labelled(grid_affine(spacing, shape), shape, [(Label.FEMUR, ball((0, 0, 0), 12))])
    with pytest.raises(RegionError, match="could not find the intercondylar notch on the femur label"):
        knee_frame(labels, "right")
    no_femur = labelled(grid_affine(spacing, shape), shape, [(Label.TIBIA, ball((0, 0, 0), 12))])
    with pytest.raises(RegionError, match="no femur in the label map"):
        knee_frame(no_femur, "left")


def test_femoral_cartilage_without_femur_is_noted_and_only_its_volume_reported() -> None:
    spacing = (1.0, 1.0, 1.0)
    shape = shape_for(40, spacing)
    labels = labelled(grid_affine(spacing, shape), shape, [(Label.FEMORAL_CARTILAGE, ball((0, 0, 0), 6))])
    measurement = measure_knee(labels, "right", "user")
    assert measurement.notes == (
        "femoral regions not measured: no femur in the label map: femoral regions need the femur label",
        "femoral cartilage thickness not measured: no femur surface under it",
    )
    assert [b.key for b in measurement.biomarkers.biomarkers] == ["cartilage_volume:F"]
    assert measurement.biomarkers.biomarkers[0].value == pytest.approx(4 / 3 * np.pi * 6**3, rel=0.03)


def test_femur_without_landmarks_still_gives_the_whole_plate() -> None:
    spacing = (0.6, 0.6, 0.6)
    shape = shape_for(40, spacing)
    labels = spherical_shell(grid_affine(spacing, shape), shape, (0.1, 0.2, 0.3), 12.0, 2.0)
    measurement = measure_knee(labels, "left", "user")
    assert measurement.notes == (
        "femoral regions not measured: could not find the intercondylar notch on the femur label (no gap between "
        "two condyles in the distal femur); is the femur complete and the label map a knee?",
    )
    regions = {b.region for b in measurement.biomarkers.biomarkers}
    assert regions == {"F", "femur"}
    assert measurement.biomarkers.get("cartilage_thickness_mean", "F") == pytest.approx(2.0, abs=0.02)
