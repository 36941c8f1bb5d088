"""The knee's bones and cartilage, built from the seed, placed so that joints close exactly.

Dimensions are those of an adult knee (bicondylar width ~76 mm, condylar sagittal radii ~18 mm
posteriorly and ~35 mm distally, tibial plateau ~76 x 52 mm, patella ~46 x 43 x 22 mm), scaled by a
size factor and jittered per part. Joints are closed numerically, not by hand: each femoral condyle is
lowered onto its tibial plate until the cartilage surfaces are ``joint_gap_mm`` apart, and the
patella is moved back onto the trochlea the same way, so thinning and defects narrow the joint space
as they do in OA.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from app.imaging.phantom.cartilage import (
    CartilageModel,
    Defect,
    FemoralCartilage,
    PatellarCartilage,
    Relaxometry,
    Subregion,
    TibialCartilage,
)
from app.imaging.phantom.frames import E_A, E_M, E_S, Bone, RigidFrame, axes, band_axes
from app.imaging.phantom.pathology import DefectSpec, Pathology
from app.imaging.phantom.shapes import Capsule, Ellipsoid, Points, RoundedSlab, Shape, Union, rotation
from app.imaging.phantom.surface import SurfaceSamples, bone_surface
from schemas.labels import Label

SAGITTAL = axes(E_A, E_S, E_M)  # slab in the a-s plane, extruded medio-laterally
AXIAL = axes(E_M, E_A, E_S)  # slab in the m-a plane, extruded vertically
CORONAL = axes(E_M, E_S, E_A)  # slab in the m-s plane, extruded antero-posteriorly

# Part indices (fixed so cartilage models can name them).
MC, LC, M_FACET, L_FACET, GROOVE = range(5)  # the femur's cartilage-bearing parts
PLATEAU = 0  # the tibia's
P_MEDIAL_FACET, P_LATERAL_FACET = range(2)  # the patella's


@dataclass(frozen=True)
class Articulation:
    """A bone with the cartilage it carries."""

    bone: Bone
    cartilage: CartilageModel

    def outer_distance(self, knee_points: Points, margin: float = 12.0) -> NDArray[np.float64]:
        """Distance to the cartilage surface (bone surface where uncovered); exact where thickness is constant."""
        query, part = self.bone.query(knee_points, margin)
        sample = self.cartilage.sample(query.point, query.normal, part)
        return query.distance - sample.thickness_mm

    def articular_outer_points(
        self, spacing_mm: float, parts: frozenset[int], keep: Callable[[SurfaceSamples], NDArray]
    ) -> Points:
        """BONE-frame points on the cartilage's outer surface over the selected interface samples."""
        surface = bone_surface(self.bone, parts, spacing_mm, keep)
        sample = self.cartilage.sample(surface.point, surface.normal, surface.part)
        return surface.point + sample.thickness_mm[:, None] * surface.normal


@dataclass(frozen=True)
class KneeBones:
    """Bones, cartilage and the landmarks the ground truth and the soft tissues refer to."""

    femur: Articulation
    tibia: Articulation
    patella: Articulation
    fibula: Bone
    landmarks: dict[str, float]
    osteophytes: list[tuple[str, Capsule]]  # (site, knee-frame sphere; bone and cartilage excluded)
    bmls: list[tuple[str, Ellipsoid]]  # (site, knee-frame ellipsoid; only inside bone)
    size: float  # the size factor the knee was drawn with

    @property
    def articulations(self) -> tuple[Articulation, ...]:
        return (self.femur, self.tibia, self.patella)


class _Jitter:
    """Draws shape parameters: a global size factor times a small per-parameter variation."""

    def __init__(self, rng: np.random.Generator, scale: float, spread: float = 0.05) -> None:
        self.rng, self.scale, self.spread = rng, scale, spread

    def __call__(self, value: float) -> float:
        return float(value * self.scale * self.rng.uniform(1 - self.spread, 1 + self.spread))

    def point(self, *xyz: float) -> NDArray[np.float64]:
        return np.array([self(v) if v else 0.0 for v in xyz])


def _relaxometry(base: dict[str, tuple[float, float, float, float]], increase: float) -> dict[Subregion, Relaxometry]:
    names = {
        "CMF": "F", "PMF": "F", "CLF": "F", "PLF": "F", "TRF": "F", "MT": "MT", "LT": "LT", "P": "P",
    }  # fmt: skip
    medial = {"CMF", "PMF", "MT"}
    result = {}
    for region in Subregion:
        if region is Subregion.NONE:
            continue
        t2d, t2s, t1d, t1s = base[names[region.name]]
        extra = increase * (1.3 if region.name in medial else 1.0)
        result[region] = Relaxometry(t2d + extra, t2s + extra, t1d + 1.3 * extra, t1s + 1.3 * extra)
    return result


#: Healthy cartilage (T2 deep, T2 surface, T1rho deep, T1rho surface) in ms per plate family, 3 T.
HEALTHY_RELAXOMETRY: dict[str, tuple[float, float, float, float]] = {
    "F": (30.0, 48.0, 34.0, 52.0),
    "MT": (28.0, 43.0, 32.0, 47.0),
    "LT": (27.0, 41.0, 31.0, 45.0),
    "P": (29.0, 46.0, 33.0, 50.0),
}


def build_bones(rng: np.random.Generator, pathology: Pathology) -> KneeBones:
    """Draw a knee from ``rng`` and put ``pathology`` into it."""
    size = float(rng.uniform(0.9, 1.1))
    j = _Jitter(rng, size)
    relax = _relaxometry(HEALTHY_RELAXOMETRY, pathology.t2_increase_ms)
    common = {
        "relaxometry": relax,
        "thinning": pathology.thinning,
        "lesion_t2_increase_ms": 8.0 + pathology.t2_increase_ms,
    }

    tibia = _tibia(j, rng, common)
    femur = _femur(j, rng, common)
    femur = _seat_femur(femur, tibia, pathology.joint_gap_mm, flexion_deg=float(rng.uniform(0.0, 10.0)))
    patella = _place_patella(_draw_patella(j, rng, common, femur), femur, pathology.joint_gap_mm)
    landmarks = _landmarks(femur, tibia, patella)
    femur = replace(femur, cartilage=replace(femur.cartilage, a_notch=landmarks["femur_a_notch"]))

    defects: dict[str, list[Defect]] = {"femur": [], "tibia": [], "patella": []}
    for spec in pathology.defects:
        bone_name, defect = _place_defect(spec, femur, tibia, patella)
        defects[bone_name].append(defect)
    femur = replace(femur, cartilage=replace(femur.cartilage, defects=tuple(defects["femur"])))
    tibia = replace(tibia, cartilage=replace(tibia.cartilage, defects=tuple(defects["tibia"])))
    patella = replace(patella, cartilage=replace(patella.cartilage, defects=tuple(defects["patella"])))
    # Defects thin the cartilage where the joint closes: seat again so contact stays exact.
    if defects["femur"] or defects["tibia"] or pathology.thinning:
        femur = _seat_femur(femur, tibia, pathology.joint_gap_mm, flexion_deg=None)
        patella = _place_patella(patella, femur, pathology.joint_gap_mm)
        landmarks = _landmarks(femur, tibia, patella)

    fibula = Bone(
        Label.FIBULA,
        Union(
            (
                Capsule(j.point(31, -19, -17), j.point(31, -19, -17), j(9.0)),
                Capsule(j.point(31, -19, -22), j.point(30, -16, -300), j(7.5)),
            )
        ),
        tibia.bone.frame,
        frozenset(),
    )
    osteophytes = [(site, _osteophyte(site, radius, femur, tibia, patella)) for site, radius in pathology.osteophytes]
    bmls = [(site, _bml(site, radius, femur, tibia)) for site, radius in pathology.bmls]
    return KneeBones(femur, tibia, patella, fibula, landmarks, osteophytes, bmls, size)


def _tibia(j: _Jitter, rng: np.random.Generator, common: dict) -> Articulation:
    plateau_h, plateau_r = j(4.0), j(6.0)
    parts: list[Shape] = [
        RoundedSlab(np.array([0.0, 0.0, -(plateau_h + plateau_r)]), AXIAL, j(33.0), j(21.0), plateau_h, plateau_r),
        RoundedSlab(j.point(0, -2, -27), AXIAL, j(28.0), j(18.0), j(6.0), j(7.0)),  # metaphysis, flaring
        RoundedSlab(j.point(0, -3, -47), AXIAL, j(22.0), j(15.0), j(8.0), j(8.0)),
        RoundedSlab(j.point(0, -3, -68), AXIAL, j(16.0), j(11.0), j(8.0), j(7.0)),
        Capsule(j.point(0, -3, -72), j.point(0, -4, -300), j(13.0)),  # shaft
        Capsule(j.point(0, 19, -26), j.point(0, 17, -50), j(6.5)),  # tibial tuberosity
        Capsule(j.point(-5, 1, -5), j.point(-5, 0.5, 5.0), j(3.0)),  # medial intercondylar tubercle (spine)
        Capsule(j.point(5, -1.5, -5), j.point(5, -2.5, 4.0), j(3.0)),  # lateral tubercle
    ]
    slope = float(rng.uniform(3.0, 9.0))
    frame = RigidFrame(rotation("x", slope) @ rotation("y", float(rng.uniform(-2.0, 2.0))), np.zeros(3))
    bone = Bone(Label.TIBIA, Union(tuple(parts)), frame, frozenset({PLATEAU}))
    cartilage = TibialCartilage(
        plateau=PLATEAU,
        medial_center=j.point(-20, -1),
        medial_radii=np.array([j(13.0), j(17.0)]),
        lateral_center=j.point(19.5, -2),
        lateral_radii=np.array([j(12.0), j(15.0)]),
        peak_medial=float(rng.uniform(2.1, 2.5)),
        peak_lateral=float(rng.uniform(2.6, 3.1)),
        **common,
    )
    return Articulation(bone, cartilage)


def _femur(j: _Jitter, rng: np.random.Generator, common: dict) -> Articulation:
    blumensaat = rotation("x", -float(rng.uniform(30.0, 40.0))) @ SAGITTAL  # notch roof rises posteriorly
    parts: list[Shape] = [
        RoundedSlab(j.point(-24, -7, 22), SAGITTAL, j(17.0), j(12.0), j(4.0), j(11.0)),  # medial condyle
        RoundedSlab(j.point(24, -6, 23.5), SAGITTAL, j(16.0), j(11.5), j(3.5), j(11.0)),  # lateral condyle
        RoundedSlab(j.point(-15, 9, 36), SAGITTAL, j(7.0), j(14.0), j(4.0), j(9.0)),  # medial trochlear facet
        RoundedSlab(j.point(15, 10, 38), SAGITTAL, j(8.0), j(15.0), j(5.0), j(9.0)),  # lateral trochlear facet
        RoundedSlab(j.point(0, 8.5, 36), SAGITTAL, j(7.0), j(14.0), j(4.0), j(8.0)),  # trochlear groove floor
        RoundedSlab(j.point(0, -8, 34), blumensaat, j(18.0), j(8.0), j(5.0), j(6.0)),  # notch roof
        RoundedSlab(j.point(-21, -1, 46), SAGITTAL, j(12.0), j(16.0), j(6.0), j(8.0)),  # medial column
        RoundedSlab(j.point(21, 0, 47), SAGITTAL, j(12.0), j(16.0), j(6.0), j(8.0)),  # lateral column
        RoundedSlab(j.point(0, 0, 62), AXIAL, j(20.0), j(13.0), j(10.0), j(8.0)),  # metaphysis, flaring
        RoundedSlab(j.point(0, 2, 86), AXIAL, j(14.0), j(10.0), j(8.0), j(7.0)),
        Capsule(j.point(0, 3, 95), j.point(0, 4, 300), j(13.5)),  # shaft
        Capsule(j.point(-33, -6, 31), j.point(-33, -6, 31), j(8.5)),  # medial epicondyle
        Capsule(j.point(33, -6, 31), j.point(33, -6, 31), j(7.5)),  # lateral epicondyle
    ]
    shape = Union(tuple(parts))
    mc, lc = parts[MC], parts[LC]
    assert isinstance(mc, RoundedSlab) and isinstance(lc, RoundedSlab)
    groove = parts[GROOVE]
    assert isinstance(groove, RoundedSlab)
    cartilage = FemoralCartilage(
        condyles={MC: mc.center, LC: lc.center},
        trochlea=frozenset({M_FACET, L_FACET, GROOVE}),
        trochlea_top_s=float(groove.center[2] - 0.25 * (groove.b + groove.radius)),
        posterior_top_s=float(mc.center[2] + 0.35 * (mc.b + mc.radius)),
        a_posterior={
            "medial": float(mc.center[1] - mc.a - mc.radius),
            "lateral": float(lc.center[1] - lc.a - lc.radius),
        },
        thickness_medial={"distal": float(rng.uniform(2.3, 2.7)), "posterior": 1.9, "anterior": 2.4, "superior": 1.7},
        thickness_lateral={"distal": float(rng.uniform(2.2, 2.6)), "posterior": 1.9, "anterior": 2.7, "superior": 1.7},
        **common,
    )
    bone = Bone(Label.FEMUR, shape, RigidFrame.identity(), frozenset({MC, LC, M_FACET, L_FACET, GROOVE}))
    return Articulation(bone, cartilage)


#: Sample spacing on articular surfaces when closing joints (the contact error is ~spacing^2 / 2R).
CONTACT_SPACING_MM = 0.8


def _condyle_clearance(femur: Articulation, tibia: Articulation, part: int) -> float:
    """Smallest distance between a femoral condyle's cartilage surface and the tibial cartilage surface."""

    def downward(surface: SurfaceSamples) -> NDArray:
        return femur.bone.frame.vectors_to_parent(surface.normal)[:, 2] < -0.5

    outer = femur.articular_outer_points(CONTACT_SPACING_MM, frozenset({part}), downward)
    return float(tibia.outer_distance(femur.bone.frame.to_parent(outer)).min())


def _seat_femur(femur: Articulation, tibia: Articulation, gap: float, flexion_deg: float | None) -> Articulation:
    """Flex the femur, then lower it (and the lateral condyle) until both compartments close to ``gap``."""
    bone = femur.bone
    if flexion_deg is not None:
        pivot = bone.shape.parts[MC].center  # type: ignore[attr-defined]
        turn = rotation("x", flexion_deg)
        bone = replace(bone, frame=RigidFrame(turn, pivot - turn @ pivot))
    for _ in range(4):
        shift = gap - _condyle_clearance(Articulation(bone, femur.cartilage), tibia, MC)
        bone = replace(bone, frame=replace(bone.frame, origin=bone.frame.origin + shift * E_S))
    for _ in range(4):
        shift = gap - _condyle_clearance(Articulation(bone, femur.cartilage), tibia, LC)
        local_up = bone.frame.vectors_to_local(E_S[None])[0]
        lateral = bone.shape.parts[LC]
        assert isinstance(lateral, RoundedSlab)
        moved = replace(lateral, center=lateral.center + shift * local_up / local_up[2])
        parts = list(bone.shape.parts)
        parts[LC] = moved
        condyles = dict(femur.cartilage.condyles)  # type: ignore[attr-defined]
        condyles[LC] = moved.center
        femur = replace(femur, cartilage=replace(femur.cartilage, condyles=condyles))
        bone = replace(bone, shape=Union(tuple(parts)))
    return Articulation(bone, femur.cartilage)


def _draw_patella(j: _Jitter, rng: np.random.Generator, common: dict, femur: Articulation) -> Articulation:
    """The patella at the height of the trochlea, still well anterior of it (see :func:`_place_patella`)."""
    facet_angle = float(rng.uniform(20.0, 28.0))  # the articular surface is a wide V around the median ridge
    parts = (
        RoundedSlab(j.point(-8, 0, 0), rotation("z", -facet_angle) @ CORONAL, j(9.0), j(12.0), j(2.5), j(8.5)),
        RoundedSlab(j.point(9, 0, 0), rotation("z", facet_angle) @ CORONAL, j(10.0), j(12.0), j(2.5), j(8.5)),
        Capsule(j.point(0, 2, -13), j.point(0, 3.5, -21), j(6.0)),  # inferior pole (apex)
    )
    cartilage = PatellarCartilage(
        articular=frozenset({P_MEDIAL_FACET, P_LATERAL_FACET}),
        center=j.point(1, 2),
        radii=np.array([j(17.0), j(14.0)]),
        peak=float(rng.uniform(3.0, 3.6)),
        **common,
    )
    groove = femur.bone.shape.parts[GROOVE]
    assert isinstance(groove, RoundedSlab)
    height = float(femur.bone.frame.to_parent(groove.center[None])[0, 2]) + j(4.0)
    turn = rotation("z", float(rng.uniform(-4.0, 8.0))) @ rotation("x", float(rng.uniform(-5.0, 5.0)))
    frame = RigidFrame(turn, np.array([j(3.0), 80.0, height]))
    return Articulation(
        Bone(Label.PATELLA, Union(parts), frame, frozenset({P_MEDIAL_FACET, P_LATERAL_FACET})), cartilage
    )


def _place_patella(patella: Articulation, femur: Articulation, gap: float) -> Articulation:
    """Move the patella back (bisection on its a position) until its cartilage is ``gap`` from the femur's."""
    bone = patella.bone

    def backward(surface: SurfaceSamples) -> NDArray:
        return bone.frame.vectors_to_parent(surface.normal)[:, 1] < -0.4

    def at(a: float) -> Bone:
        return replace(
            bone, frame=replace(bone.frame, origin=np.array([bone.frame.origin[0], a, bone.frame.origin[2]]))
        )

    outer_local = patella.articular_outer_points(CONTACT_SPACING_MM, bone.articular, backward)
    low, high = 0.0, 90.0
    for _ in range(24):
        middle = 0.5 * (low + high)
        if femur.outer_distance(at(middle).frame.to_parent(outer_local)).min() > gap:
            high = middle
        else:
            low = middle
    return Articulation(at(high), patella.cartilage)


def _landmarks(femur: Articulation, tibia: Articulation, patella: Articulation) -> dict[str, float]:
    """Femur-frame landmarks of the Eckstein regions (see ``cartilage.py``)."""
    a_notch = 0.0
    a_range, s_range, step = (-45.0, 45.0), (-5.0, 45.0), 0.5
    for _ in range(3):  # coarse to fine search of the lowest femur point in the plane m = 0
        a = np.arange(*a_range, step)
        s = np.arange(*s_range, step)
        aa, ss = np.meshgrid(a, s, indexing="ij")
        plane = np.column_stack([np.zeros(aa.size), aa.ravel(), ss.ravel()])
        inside = (femur.bone.shape.distance(plane) <= 0).reshape(aa.shape)
        lowest = np.where(inside, ss, np.inf).min(axis=1)
        a_notch, s_low = float(a[np.argmin(lowest)]), float(lowest.min())
        a_range, s_range, step = (
            (a_notch - 4 * step, a_notch + 4 * step),
            (s_low - 4 * step, s_low + 4 * step),
            step / 10,
        )
    model = femur.cartilage
    assert isinstance(model, FemoralCartilage)
    return {
        "femur_a_notch": a_notch,
        "femur_a_posterior_medial": model.a_posterior["medial"],
        "femur_a_posterior_lateral": model.a_posterior["lateral"],
    }


def _surface_point(bone: Bone, target: NDArray, outward: NDArray) -> tuple[NDArray, NDArray]:
    """Bone-frame surface point (and normal) closest to ``target`` moved 15 mm ``outward``."""
    source = bone.frame.to_parent((target + 15.0 * outward)[None])
    query, _ = bone.query(source, np.inf)
    return query.point[0], query.normal[0]


def _place_defect(
    spec: DefectSpec, femur: Articulation, tibia: Articulation, patella: Articulation
) -> tuple[str, Defect]:
    """Turn a plate-relative defect into a bone-surface defect."""
    if spec.plate in ("cMF", "cLF"):
        model = femur.cartilage
        assert isinstance(model, FemoralCartilage)
        side = "medial" if spec.plate == "cMF" else "lateral"
        part = femur.bone.shape.parts[MC if side == "medial" else LC]
        assert isinstance(part, RoundedSlab)
        length = model.a_notch - model.a_posterior[side]
        a = model.a_notch - (0.3 + 0.2 * spec.v) * length
        m = part.center[0] + spec.u * (part.half_length + 0.4 * part.radius)
        point, _ = _surface_point(femur.bone, np.array([m, a, part.center[2] - part.b - part.radius]), -E_S)
        return "femur", Defect(point, spec.radius_mm, spec.depth)
    if spec.plate == "TrF":
        groove = femur.bone.shape.parts[GROOVE]
        assert isinstance(groove, RoundedSlab)
        target = groove.center + np.array([8.0 * spec.u, groove.a + groove.radius, 6.0 * spec.v])
        point, _ = _surface_point(femur.bone, target, E_A)
        return "femur", Defect(point, spec.radius_mm, spec.depth)
    if spec.plate in ("MT", "LT"):
        model_t = tibia.cartilage
        assert isinstance(model_t, TibialCartilage)
        center, radii = (
            (model_t.medial_center, model_t.medial_radii)
            if spec.plate == "MT"
            else (model_t.lateral_center, model_t.lateral_radii)
        )
        m, a = center + 0.5 * radii * np.array([spec.u, spec.v])
        return "tibia", Defect(np.array([m, a, 0.0]), spec.radius_mm, spec.depth)
    if spec.plate == "P":
        point, _ = _surface_point(patella.bone, np.array([6.0 * spec.u, -11.0, 6.0 * spec.v]), -E_A)
        return "patella", Defect(point, spec.radius_mm, spec.depth)
    raise ValueError(f"unknown plate {spec.plate!r} for a cartilage defect")


def _osteophyte(site: str, radius: float, femur: Articulation, tibia: Articulation, patella: Articulation) -> Capsule:
    """A bony spur at the margin of the articular surface, as a knee-frame sphere (minus bone and cartilage)."""
    mc, lc = femur.bone.shape.parts[MC], femur.bone.shape.parts[LC]
    l_facet = femur.bone.shape.parts[L_FACET]
    assert isinstance(mc, RoundedSlab) and isinstance(lc, RoundedSlab) and isinstance(l_facet, RoundedSlab)
    model_t = tibia.cartilage
    assert isinstance(model_t, TibialCartilage)
    plateau = tibia.bone.shape.parts[PLATEAU]
    assert isinstance(plateau, RoundedSlab)
    rim = plateau.a + plateau.radius
    sites: dict[str, tuple[Bone, NDArray, NDArray]] = {
        "medial femoral condyle": (
            femur.bone,
            mc.center + np.array([-(mc.half_length + mc.radius), 0.0, -mc.b]),
            np.array([-0.8, 0, -0.6]),
        ),
        "lateral femoral condyle": (
            femur.bone,
            lc.center + np.array([lc.half_length + lc.radius, 0.0, -lc.b]),
            np.array([0.8, 0, -0.6]),
        ),
        "medial tibial plateau": (
            tibia.bone,
            np.array([-rim, model_t.medial_center[1], -2.0]),
            np.array([-0.75, 0, 0.66]),
        ),
        "lateral tibial plateau": (
            tibia.bone,
            np.array([rim, model_t.lateral_center[1], -2.0]),
            np.array([0.75, 0, 0.66]),
        ),
        "patella superior pole": (patella.bone, np.array([0.0, -8.0, 20.0]), np.array([0, -0.55, 0.83])),
        "lateral trochlea": (
            femur.bone,
            l_facet.center + np.array([l_facet.half_length + l_facet.radius, 4.0, 0.0]),
            np.array([0.7, 0.7, 0]),
        ),
    }
    bone, target, direction = sites[site]
    direction = direction / np.linalg.norm(direction)
    point, normal = _surface_point(bone, target, direction)
    center = bone.frame.to_parent((point + 0.25 * radius * normal)[None])[0]
    return Capsule(center, center, radius)


def _bml(site: str, radius: float, femur: Articulation, tibia: Articulation) -> Ellipsoid:
    """A subchondral bone marrow lesion: a knee-frame ellipsoid, flattened against the articular surface."""
    if site == "medial tibial plateau":
        model_t = tibia.cartilage
        assert isinstance(model_t, TibialCartilage)
        point, normal, bone = np.array([*model_t.medial_center, 0.0]), E_S, tibia.bone
    else:
        part = femur.bone.shape.parts[MC if site.startswith("medial") else LC]
        assert isinstance(part, RoundedSlab)
        bone = femur.bone
        point, normal = _surface_point(bone, part.center - [0, 0, part.b + part.radius], -E_S)
    depth = 0.55 * radius
    center = bone.frame.to_parent((point - (depth + 1.0) * normal)[None])[0]
    normal_knee = bone.frame.vectors_to_parent(normal[None])[0]
    return Ellipsoid(center, band_axes(normal_knee, E_A), np.array([radius, 0.75 * radius, depth]))


__all__ = ["E_M", "Articulation", "KneeBones", "build_bones"]
