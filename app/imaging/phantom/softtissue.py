"""Soft tissues around the bones: menisci, joint fluid, tendons and ligaments, muscles, fat, vessels, nerves.

None of these carries a thickness truth, so simple implicit shapes suffice (capsules, bands,
elliptic cylinders). What matters is that they sit where a radiologist expects them on a sagittal
slice: the menisci as dark wedges between femur and tibia (larger posterior horn medially), the
patellar and quadriceps tendons as dark bands, the cruciates in the notch, Hoffa's fat pad behind the
patellar tendon, the gastrocnemius heads behind the condyles, the popliteal vessels and tibial nerve
in the popliteal fat, and a subcutaneous fat layer under the skin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.imaging.phantom.anatomy import KneeBones
from app.imaging.phantom.cartilage import TibialCartilage
from app.imaging.phantom.frames import E_M, band_axes
from app.imaging.phantom.pathology import Pathology
from app.imaging.phantom.shapes import Capsule, Ellipsoid, Points, RoundedSlab, Shape, smoothstep
from schemas.labels import Label


@dataclass(frozen=True)
class Meniscus:
    """A wedge-shaped C (medial) or near-O (lateral) ring on a tibial plate, in tibia coordinates.

    In elliptical polar coordinates around the plate centre (``rho`` = 1 at the outer rim), the
    meniscus spans ``inner < rho < 1``; its height rises linearly from the free inner edge to a peak
    near the rim and falls off in a rounded outer margin: the triangular cross-section of a sagittal
    MR slice. The ring is open towards the intercondylar region (``gap_direction``).
    """

    label: Label
    center: NDArray[np.float64]  # (m, a)
    radii: NDArray[np.float64]  # outer (m, a)
    inner: float
    height_anterior: float
    height_posterior: float
    gap_direction: float  # +1: opening towards +m
    gap_half_angle_deg: float
    maceration: float = 0.0
    tear: bool = False

    def polar(self, points: Points) -> tuple[NDArray, NDArray, NDArray]:
        rel = (points[:, :2] - self.center) / self.radii
        rho = np.hypot(rel[:, 0], rel[:, 1])
        safe = np.maximum(rho, 1e-9)
        return rho, rel[:, 0] / safe, rel[:, 1] / safe

    def height(self, points: Points) -> NDArray[np.float64]:
        """Local height of the meniscus above the tibial cartilage (0 outside the ring)."""
        rho, cos_m, sin_a = self.polar(points)
        posterior = np.clip(-sin_a, 0.0, 1.0)
        peak = self.height_anterior + (self.height_posterior - self.height_anterior) * (0.5 - 0.5 * sin_a)
        peak = peak * (1.0 - self.maceration * posterior**2)
        crest = 0.8
        rising = np.clip((rho - self.inner) / (crest - self.inner), 0.0, 1.0)
        falling = np.sqrt(np.clip(1.0 - ((rho - crest) / (1.0 - crest)) ** 2, 0.0, 1.0))
        profile = np.where(rho < crest, rising, falling)
        opening = np.cos(np.deg2rad(self.gap_half_angle_deg))
        in_gap = cos_m * self.gap_direction > opening
        return np.where(in_gap | (rho >= 1.0) | (rho <= self.inner), 0.0, peak * profile)

    def cleft(self, points: Points, base: NDArray, height: NDArray) -> NDArray[np.bool_]:
        """A horizontal tear through the posterior horn (fluid signal inside the meniscus)."""
        if not self.tear:
            return np.zeros(len(points), dtype=bool)
        rho, _, sin_a = self.polar(points)
        middle = base + 0.45 * height
        return (sin_a < -0.55) & (np.abs(points[:, 2] - middle) < 0.45) & (rho > self.inner + 0.08) & (rho < 0.95)


@dataclass(frozen=True)
class SoftTissue:
    """Everything around the bones, in knee coordinates unless stated."""

    limb_center_a: float
    limb_radii: NDArray[np.float64]  # (m, a) at the joint line
    fat_mm: float
    muscles: tuple[Shape, ...]
    tendons: tuple[Shape, ...]  # tendons and ligaments (no label)
    vessels: tuple[Capsule, ...]  # popliteal artery and vein (no label)
    nerves: tuple[Capsule, ...]
    menisci: tuple[Meniscus, ...]  # tibia coordinates
    fluid_film_mm: float
    pouch_mm: float
    pouch_center_s: float  # femur coordinates
    pouch_half_height: float
    cyst: Ellipsoid | None

    def limb_level(self, points: Points, inset_mm: float = 0.0) -> NDArray[np.float64]:
        """Elliptic-cylinder level (< 1 inside) of the skin (``inset_mm`` = 0) or an inner layer.

        The limb widens towards the thigh and narrows towards the calf.
        """
        s = points[:, 2]
        widen = (1.0 + 0.0025 * np.clip(s - 20.0, 0.0, 120.0)) * (1.0 - 0.0008 * np.clip(-s - 40.0, 0.0, 150.0))
        radii_m = self.limb_radii[0] * widen - inset_mm
        radii_a = self.limb_radii[1] * widen - inset_mm
        return np.hypot(points[:, 0] / radii_m, (points[:, 1] - self.limb_center_a) / radii_a)

    def level_clearance(self, level: NDArray, inset_mm: float) -> NDArray[np.float64]:
        """Lower bound on the distance to the level-1 ellipse for points at ``level`` (homothetic level sets)."""
        return np.abs(level - 1.0) * (min(self.limb_radii) - inset_mm) * 0.9

    def pouch_thickness(self, femur_points: Points) -> NDArray[np.float64]:
        """Thickness of the suprapatellar recess over the anterior femur (femur coordinates)."""
        s_rel = (femur_points[:, 2] - self.pouch_center_s) / self.pouch_half_height
        m_rel = femur_points[:, 0] / 24.0
        return self.pouch_mm * np.clip(1.0 - s_rel**2, 0.0, 1.0) * np.clip(1.0 - m_rel**2, 0.0, 1.0)


def build_soft_tissue(rng: np.random.Generator, bones: KneeBones, pathology: Pathology) -> SoftTissue:
    """Soft tissues fitted around ``bones``."""
    size = bones.size
    habitus = float(rng.uniform(0.95, 1.15))

    def k(*xyz: float) -> NDArray[np.float64]:
        return np.array(xyz) * size

    femur, tibia, patella = bones.femur.bone.frame, bones.tibia.bone.frame, bones.patella.bone.frame

    def band(start: NDArray, end: NDArray, half_width: float, radius: float) -> RoundedSlab:
        return RoundedSlab(
            (start + end) / 2,
            band_axes(end - start, E_M),
            half_width,
            0.4,
            float(np.linalg.norm(end - start) / 2),
            radius,
        )

    def at(frame_points: NDArray, frame) -> NDArray:
        return frame.to_parent(np.asarray(frame_points, dtype=float)[None])[0]

    muscles = (
        Capsule(k(-21, -40, 20), k(-16, -50, -150), 15 * size * habitus),  # medial gastrocnemius
        Capsule(k(21, -38, 18), k(14, -48, -150), 13 * size * habitus),  # lateral gastrocnemius
        Capsule(k(0, -28, -60), k(0, -33, -200), 18 * size * habitus),  # soleus
        Capsule(k(-14, -32, -30), k(20, -25, -14), 6 * size),  # popliteus
        Capsule(k(22, 16, -60), k(22, 20, -200), 12 * size),  # tibialis anterior
        Capsule(k(-32, 6, 48), k(-20, 10, 200), 16 * size * habitus),  # vastus medialis
        Capsule(k(34, -2, 70), k(25, 5, 200), 16 * size * habitus),  # vastus lateralis
        Capsule(k(0, 30, 80), k(0, 26, 200), 14 * size * habitus),  # rectus femoris / intermedius
        Capsule(k(-30, -42, 30), k(-22, -40, 200), 12 * size * habitus),  # semimembranosus
        Capsule(k(-44, -24, 10), k(-36, -26, 200), 8 * size),  # sartorius / gracilis
        Capsule(k(34, -40, 10), k(25, -42, 200), 13 * size * habitus),  # biceps femoris
    )
    tendons: tuple[Shape, ...] = (
        band(at([0, 1.5, -25 * size], patella), at([0, 21 * size, -40 * size], tibia), 11 * size, 2.2),  # patellar
        band(at([0, 2, 19 * size], patella), k(0, 32, 100), 12 * size, 2.6),  # quadriceps
        Capsule(at(k(3, 8, 0), tibia), at(k(8, -13, 22), femur), 4.0 * size),  # ACL
        Capsule(at(k(-1, -21, -4), tibia), at(k(-3, -14, 22), femur), 4.5 * size),  # PCL, tibial half
        Capsule(at(k(-3, -14, 22), femur), at(k(-6, 4, 15), femur), 4.5 * size),  # PCL, femoral half
        band(at(k(-42, -4, 30), femur), at(k(-39, -2, -55), tibia), 5 * size, 1.2),  # MCL
        Capsule(at(k(41, -6, 28), femur), at(k(34, -18, -14), tibia), 2.5 * size),  # LCL
    )
    vessels = (
        Capsule(k(2, -40, 150), k(0, -36, -150), 3.2 * size),  # popliteal artery
        Capsule(k(-4, -45, 150), k(-3, -41, -150), 4.2 * size),  # popliteal vein
    )
    nerves = (
        Capsule(k(5, -50, 150), k(1, -46, -150), 2.5 * size),  # tibial nerve
        Capsule(k(30, -44, 80), k(41, -26, -40), 1.8 * size),  # common peroneal nerve
    )
    plates = bones.tibia.cartilage
    assert isinstance(plates, TibialCartilage)
    extrusion = np.array([-pathology.meniscal_extrusion_mm, 0.0])
    menisci = (
        Meniscus(
            Label.MEDIAL_MENISCUS,
            plates.medial_center + np.array([-1.0, 0.0]) + extrusion,
            plates.medial_radii * np.array([1.27, 1.28]),
            inner=0.6,
            height_anterior=4.5 * size,
            height_posterior=6.5 * size,
            gap_direction=1.0,
            gap_half_angle_deg=35.0,
            maceration=pathology.meniscal_maceration,
            tear=pathology.meniscal_tear,
        ),
        Meniscus(
            Label.LATERAL_MENISCUS,
            plates.lateral_center + np.array([0.5, 0.0]),
            plates.lateral_radii * np.array([1.27, 1.27]),
            inner=0.55,
            height_anterior=5.5 * size,
            height_posterior=6.0 * size,
            gap_direction=-1.0,
            gap_half_angle_deg=22.0,
        ),
    )
    femur_model = bones.femur.cartilage
    top = float(femur_model.trochlea_top_s)  # type: ignore[attr-defined]
    cyst = Ellipsoid(k(-20, -54, 6), np.eye(3), np.array([7.0, 6.0, 15.0]) * size) if pathology.popliteal_cyst else None
    return SoftTissue(
        limb_center_a=-2.0 * size,
        limb_radii=np.array([56.0, 64.0]) * size * habitus,
        fat_mm=float(rng.uniform(4.0, 9.0)) * habitus,
        muscles=muscles,
        tendons=tendons,
        vessels=vessels,
        nerves=nerves,
        menisci=menisci,
        fluid_film_mm=0.8 + 0.05 * pathology.effusion_mm,
        pouch_mm=pathology.effusion_mm,
        pouch_center_s=top + 12.0 * size,
        pouch_half_height=26.0 * size,
        cyst=cyst,
    )


__all__ = ["Meniscus", "SoftTissue", "build_soft_tissue", "smoothstep"]
