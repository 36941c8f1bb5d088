"""The phantom's ground truth is exact and self-consistent, deterministic per seed, mirrored per side."""

from __future__ import annotations

import numpy as np
import pytest

from app.imaging.phantom import generate_phantom
from app.imaging.phantom import truth as truth_module
from app.imaging.phantom.cartilage import PLATES
from app.imaging.phantom.surface import bone_surface
from schemas.labels import Label

#: Same field of view as dess-small (96 x 1.4 mm, 40 x 2.8 mm), at twice the resolution per axis.
DESS_FINE = "dess-small:matrix=192,pixel=0.7,slices=80,thickness=1.4,spacing=1.4"
CARTILAGE_PLATE_LABELS = {
    "F": Label.FEMORAL_CARTILAGE,
    "MT": Label.MEDIAL_TIBIAL_CARTILAGE,
    "LT": Label.LATERAL_TIBIAL_CARTILAGE,
    "P": Label.PATELLAR_CARTILAGE,
}


def _counts(phantom) -> dict[str, float]:
    voxel = phantom.labels.voxel_volume_mm3
    values, counts = np.unique(phantom.labels.array, return_counts=True)
    return {Label(v).name.lower(): float(c * voxel) for v, c in zip(values, counts, strict=True) if v}


@pytest.mark.slow
def test_truth_volumes_match_voxel_counts_at_two_resolutions(phantom_factory) -> None:
    coarse = phantom_factory.phantom(protocols=["dess-small"])
    fine = phantom_factory.phantom(protocols=[DESS_FINE])
    # The truth hardly depends on the grid (same field of view): where boundaries are supersampled
    # (bone, cartilage, menisci, lesions) it has converged to 0.5 %; muscle and fat boundaries are
    # counted at voxel centres and agree to 1.5 %, and so do the sub-millimetre fluid films to 3 %.
    supersampled = {label.name.lower() for label in truth_module.fine_labels(fine.labels.spacing_mm)}
    for name, volume in fine.truth.volume_mm3.items():
        tolerance = 0.03 if name == "joint_fluid" else 0.005 if name in supersampled else 0.015
        assert coarse.truth.volume_mm3[name] == pytest.approx(volume, rel=tolerance, abs=20.0), name
    # Voxel counts approach the truth as voxels shrink (1.4 x 1.4 x 2.8 mm, then 0.7 x 0.7 x 1.4 mm):
    # within 2 % for bones, muscle and fat at both, within 12 % / 5 % for cartilage and menisci.
    for phantom, thin_tolerance in ((coarse, 0.12), (fine, 0.05)):
        counts = _counts(phantom)
        for label in (Label.FEMUR, Label.TIBIA, Label.PATELLA, Label.MUSCLE, Label.SUBCUTANEOUS_FAT):
            name = label.name.lower()
            assert counts[name] == pytest.approx(phantom.truth.volume_mm3[name], rel=0.02), name
        for label in (*CARTILAGE_PLATE_LABELS.values(), Label.MEDIAL_MENISCUS, Label.LATERAL_MENISCUS):
            name = label.name.lower()
            assert counts[name] == pytest.approx(phantom.truth.volume_mm3[name], rel=thin_tolerance), name


def test_mean_thickness_agrees_with_volume_over_area(phantom_factory) -> None:
    """Independent of the thickness formula: a layer's volume / its base area ~ its mean thickness.

    The layer lies on convex bone, so volume / area exceeds the mean thickness by about H t / 2
    (mean curvature H); it must stay within 0-12 %.
    """
    truth = phantom_factory.phantom().truth
    for plate, label in CARTILAGE_PLATE_LABELS.items():
        ratio = truth.volume_mm3[label.name.lower()] / truth.interface_area_mm2[plate]
        assert 1.0 <= ratio / truth.thickness_mm[plate] < 1.12, plate


def test_thickness_truth_matches_layer_measured_along_normals(phantom_factory) -> None:
    """March from the bone surface along its normal through the label function: the cartilage ends at t(p)."""
    phantom = phantom_factory.phantom()
    model = phantom.model
    rng = np.random.default_rng(0)
    for articulation in model.bones.articulations:
        bone = articulation.bone
        surface = bone_surface(bone, bone.articular, 0.5)
        sample = articulation.cartilage.sample(surface.point, surface.normal, surface.part)
        interior = np.flatnonzero(sample.thickness_mm > 0.5)
        chosen = rng.choice(interior, size=min(150, interior.size), replace=False)
        steps = np.arange(0.005, 6.0, 0.01)
        points = surface.point[chosen, None, :] + steps[None, :, None] * surface.normal[chosen, None, :]
        knee = bone.frame.to_parent(points.reshape(-1, 3))
        labels = model.evaluate(knee).label.reshape(len(chosen), len(steps))
        expected_label = sample.label[chosen]
        in_layer = labels == expected_label[:, None]
        measured = np.argmin(in_layer, axis=1) * 0.01  # first step that left the cartilage
        error = np.abs(measured - sample.thickness_mm[chosen])
        # Away from creases between parts the layer is exact to the 0.01 mm step.
        assert np.median(error) <= 0.01, bone.label.name
        assert np.mean(error < 0.02) > 0.95, bone.label.name


def test_thickness_map_holds_thickness_at_interface_bone_voxels(phantom_factory) -> None:
    phantom = phantom_factory.phantom()
    values = phantom.thickness.array
    labels = phantom.labels.array
    finite = np.isfinite(values)
    assert finite.sum() > 1000
    assert set(np.unique(labels[finite])) <= {Label.FEMUR, Label.TIBIA, Label.PATELLA}
    assert values[finite].min() >= 0 and values[finite].max() < 4.5
    # Interface voxels average close to the area-weighted truth (voxels sample the surface unevenly).
    assert np.mean(values[finite & (labels == Label.FEMUR)]) == pytest.approx(phantom.truth.thickness_mm["F"], rel=0.15)
    assert phantom.thickness.affine.tolist() == phantom.labels.affine.tolist()


def test_truth_reports_every_plate_and_label(phantom_factory) -> None:
    truth = phantom_factory.phantom().truth
    assert set(truth.thickness_mm) == set(PLATES) == set(truth.t2_ms) == set(truth.t1rho_ms)
    assert set(truth.volume_mm3) == {label.name.lower() for label in Label if label != Label.BACKGROUND}
    # Healthy cartilage at 3 T: mean femoral thickness 1.5-2.6 mm, T2 30-50 ms, T1rho 30-55 ms.
    assert 1.5 < truth.thickness_mm["F"] < 2.6
    assert all(30 < v < 50 for v in truth.t2_ms.values())
    assert all(30 < v < 55 for v in truth.t1rho_ms.values())
    assert truth.findings == [] and truth.denuded_area_pct["F"] == 0.0


def test_relaxation_truth_is_depth_average(phantom_factory) -> None:
    """T2 rises linearly from the bone to the surface, so the plate mean lies between its ends."""
    phantom = phantom_factory.phantom()
    relaxometry = phantom.model.bones.femur.cartilage.relaxometry
    femoral = [relaxometry[region] for region in PLATES["F"]]
    deep = min(r.t2_deep for r in femoral)
    surface = max(r.t2_surface for r in femoral)
    assert deep < phantom.truth.t2_ms["F"] < surface
    # Convex plates hold more superficial than deep cartilage: the mean sits just above the midpoint.
    assert phantom.truth.t2_ms["F"] == pytest.approx((deep + surface) / 2, abs=1.5)


def test_grade_4_has_denuded_bone_and_lesions_grade_0_has_none(phantom_factory) -> None:
    healthy = phantom_factory.phantom(grade=0).truth
    diseased = phantom_factory.phantom(grade=4).truth
    assert all(v == 0.0 for v in healthy.denuded_area_pct.values())
    assert diseased.denuded_area_pct["cMF"] > 1.0 and diseased.denuded_area_pct["MT"] > 1.0
    assert diseased.thickness_mm["cMF"] < 0.75 * healthy.thickness_mm["cMF"]
    assert diseased.thickness_mm["MT"] < 0.75 * healthy.thickness_mm["MT"]
    assert healthy.volume_mm3["bone_marrow_lesion"] == 0 and diseased.volume_mm3["bone_marrow_lesion"] > 500
    assert healthy.volume_mm3["osteophyte"] == 0 and diseased.volume_mm3["osteophyte"] > 100
    assert diseased.volume_mm3["joint_fluid"] > 3 * healthy.volume_mm3["joint_fluid"]
    assert diseased.t2_ms["cMF"] > healthy.t2_ms["cMF"] + 8
    assert any(f.startswith("full-thickness cartilage defect, cMF") for f in diseased.findings)
    assert "popliteal (Baker's) cyst" in diseased.findings
    # Same seed, same knee: the bones do not change with the grade.
    assert diseased.size_factor == healthy.size_factor


@pytest.mark.slow
def test_same_seed_same_study_other_seed_other_knee(phantom_factory) -> None:
    first = phantom_factory.phantom(seed=1, protocols=["dess-small"])
    again = generate_phantom(seed=1, protocols=["dess-small"])
    assert np.array_equal(first.labels.array, again.labels.array)
    assert np.array_equal(first.images["dess-small"].array, again.images["dess-small"].array)
    assert first.truth == again.truth
    assert [d.SOPInstanceUID for d in first.datasets()] == [d.SOPInstanceUID for d in again.datasets()]
    other = phantom_factory.phantom(seed=0, protocols=["dess-small"])
    assert not np.array_equal(first.labels.array, other.labels.array)
    assert first.truth.thickness_mm != other.truth.thickness_mm
    assert first.truth.study_instance_uid != other.truth.study_instance_uid


def test_left_knee_is_the_mirrored_right_knee(phantom_factory) -> None:
    right = phantom_factory.phantom(side="right")
    left = phantom_factory.phantom(side="left")
    assert np.array_equal(left.labels.array, right.labels.array[::-1])
    for name, series in right.images.items():
        assert np.array_equal(left.images[name].array, series.array[:, ::-1])
    n = right.labels.shape[0]
    mirror = np.diag([-1.0, 1.0, 1.0, 1.0])
    # Slice k of the left knee lies where slice n-1-k of the right one lies, mirrored in x.
    np.testing.assert_allclose(left.labels.affine @ [0, 5, 7, 1], mirror @ right.labels.affine @ [n - 1, 5, 7, 1])
    assert left.truth.thickness_mm == right.truth.thickness_mm
    assert left.truth.volume_mm3 == right.truth.volume_mm3
    # Medial is towards the midline: the right knee's medial condyle lies left (-x) of its lateral one.
    for phantom, sign in ((right, -1.0), (left, 1.0)):
        femur = phantom.knee_to_ras @ phantom.model.bones.femur.bone.frame.as_matrix()
        medial, lateral = (femur @ [x, 0, 20, 1] for x in (-24.0, 24.0))
        assert np.sign(medial[0] - lateral[0]) == sign
        assert np.sign(medial[0]) == -sign  # and the knee lies on its own side of the patient
