"""Cartilage plates: where cartilage covers each bone, how thick it is, and which Eckstein region it is.

Cartilage is a layer laid on the bone along the outward normal: a point ``x`` outside bone ``B`` is
cartilage when ``0 < d_B(x) <= t(p)``, with ``p`` the closest point of B's surface and ``t(p)`` the
thickness function below. Because ``d_B`` is an exact distance, the layer's thickness measured along
the bone normal at ``p`` is exactly ``t(p)`` (except within ``t`` of a concave crease between two
parts of a bone, where the layers of both parts meet).

``t(p) = base(p) * (floor + (1 - floor) * taper(p)) * pathology(p)`` on the covered surface
(``taper(p) > 0``), and cartilage is absent elsewhere:

- ``base`` is thickest where the joint bears weight (distal femoral condyles, centre of the tibial
  plates, the trochlear groove, the patellar ridge) and thinner posteriorly;
- ``taper`` falls smoothly from 1 to 0 over a band at the plate margin, so cartilage thins to
  ``floor * base`` at the edge of the bone-cartilage interface;
- ``pathology`` removes a fraction of the thickness in focal defects (all of it in the core of a
  full-thickness defect, leaving denuded bone that still belongs to the interface) and thins whole
  regions.

**Eckstein regions** (Eckstein et al., Osteoarthritis Cartilage 2006; OAI Chondrometrics), in the
femur's own anatomical frame (m lateral, a anterior, s superior; origin in the notch):

- medial / lateral femur: split by the sagittal plane through the centre of the intercondylar notch
  (``m = 0``);
- anterior end of the notch: the most distal point of the femur's section in that plane, where the
  trochlear groove meets the notch roof (``a = a_notch``);
- TrF: femoral cartilage anterior to ``a_notch``;
- cMF / cLF: from ``a_notch`` posteriorly over 60 % of the distance to the posterior end of that
  condyle (``a_post``), i.e. ``a_notch - 0.6 (a_notch - a_post) < a <= a_notch``;
- pMF / pLF: posterior to that; MF = cMF + pMF, LF = cLF + pLF, F = all femoral cartilage;
- MT, LT, P: medial tibial, lateral tibial and patellar cartilage.

The region of a cartilage point is the region of its bone-surface point ``p``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from app.imaging.phantom.shapes import Points, smoothstep
from schemas.labels import Label

#: Thickness at the very margin of a plate, as a fraction of the local base thickness.
MARGIN_FLOOR = 0.3


class Subregion(IntEnum):
    """Smallest cartilage regions of the phantom; the reported plates are unions of these."""

    NONE = 0
    CMF = 1
    PMF = 2
    CLF = 3
    PLF = 4
    TRF = 5
    MT = 6
    LT = 7
    P = 8


#: Reported plates (Eckstein names, as in ``schemas.biomarkers.REGIONS``) -> their subregions.
PLATES: dict[str, frozenset[Subregion]] = {
    "F": frozenset({Subregion.CMF, Subregion.PMF, Subregion.CLF, Subregion.PLF, Subregion.TRF}),
    "MF": frozenset({Subregion.CMF, Subregion.PMF}),
    "LF": frozenset({Subregion.CLF, Subregion.PLF}),
    "cMF": frozenset({Subregion.CMF}),
    "cLF": frozenset({Subregion.CLF}),
    "TrF": frozenset({Subregion.TRF}),
    "MT": frozenset({Subregion.MT}),
    "LT": frozenset({Subregion.LT}),
    "P": frozenset({Subregion.P}),
}


@dataclass(frozen=True)
class Defect:
    """A focal cartilage lesion centred on a bone-surface point (bone coordinates)."""

    center: NDArray[np.float64]
    radius_mm: float
    depth: float  # fraction of the thickness removed in the core; 1.0 = full thickness (denuded bone)

    def factor(self, points: Points) -> NDArray[np.float64]:
        distance = np.linalg.norm(points - self.center, axis=1)
        return 1.0 - self.depth * (1.0 - smoothstep(0.6 * self.radius_mm, self.radius_mm, distance))

    def nearness(self, points: Points) -> NDArray[np.float64]:
        """1 in and around the lesion, fading to 0 at twice its radius (degenerated matrix: higher T2)."""
        distance = np.linalg.norm(points - self.center, axis=1)
        return 1.0 - smoothstep(self.radius_mm, 2.0 * self.radius_mm, distance)


@dataclass(frozen=True)
class Relaxometry:
    """Cartilage T2 and T1rho from the bone (deep) to the articular surface, in ms."""

    t2_deep: float
    t2_surface: float
    t1rho_deep: float
    t1rho_surface: float


@dataclass(frozen=True)
class PlateSample:
    """Cartilage at bone-surface points."""

    thickness_mm: NDArray[np.float64]  # 0 where uncovered or denuded
    covered: NDArray[np.bool_]  # part of the bone-cartilage interface (denuded areas included)
    label: NDArray[np.uint8]  # cartilage label, 0 where uncovered
    subregion: NDArray[np.uint8]


@dataclass(frozen=True)
class CartilageModel:
    """Cartilage of one bone; subclasses say where it covers, how thick, and which region it is."""

    defects: tuple[Defect, ...] = ()
    thinning: dict[Subregion, float] = field(default_factory=dict)  # thickness multiplier per subregion
    relaxometry: dict[Subregion, Relaxometry] = field(default_factory=dict)
    lesion_t2_increase_ms: float = 0.0

    def taper(self, points: Points, normals: Points, parts: NDArray[np.intp]) -> NDArray[np.float64]:
        raise NotImplementedError

    def base(self, points: Points, normals: Points, parts: NDArray[np.intp]) -> NDArray[np.float64]:
        raise NotImplementedError

    def regions(self, points: Points) -> NDArray[np.uint8]:
        raise NotImplementedError

    def labels(self, points: Points) -> NDArray[np.uint8]:
        raise NotImplementedError

    def sample(self, points: Points, normals: Points, parts: NDArray[np.intp]) -> PlateSample:
        """Thickness, coverage, label and region at bone-surface points (bone coordinates)."""
        taper = self.taper(points, normals, parts)
        covered = taper > 0
        thickness = np.zeros(len(points))
        label = np.zeros(len(points), dtype=np.uint8)
        subregion = np.zeros(len(points), dtype=np.uint8)
        if covered.any():
            p, n, k = points[covered], normals[covered], parts[covered]
            sub = self.regions(p)
            t = self.base(p, n, k) * (MARGIN_FLOOR + (1.0 - MARGIN_FLOOR) * taper[covered])
            for region, factor in self.thinning.items():
                t = np.where(sub == region, t * factor, t)
            for defect in self.defects:
                t = t * defect.factor(p)
            thickness[covered] = np.maximum(t, 0.0)
            label[covered] = self.labels(p)
            subregion[covered] = sub
        return PlateSample(thickness, covered, label, subregion)

    def relaxation(
        self, points: Points, subregion: NDArray[np.uint8], depth_fraction: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(T2, T1rho) in ms of cartilage at surface points ``points`` and relative depth (0 bone, 1 surface)."""
        t2 = np.zeros(len(points))
        t1rho = np.zeros(len(points))
        for region, values in self.relaxometry.items():
            here = subregion == region
            f = depth_fraction[here]
            t2[here] = values.t2_deep + (values.t2_surface - values.t2_deep) * f
            t1rho[here] = values.t1rho_deep + (values.t1rho_surface - values.t1rho_deep) * f
        if self.defects and self.lesion_t2_increase_ms:
            near = np.max([d.nearness(points) for d in self.defects], axis=0)
            t2 += self.lesion_t2_increase_ms * near
            t1rho += 1.3 * self.lesion_t2_increase_ms * near
        return t2, t1rho


def _weighted(normals: Points, values: dict[str, float]) -> NDArray[np.float64]:
    """Blend thickness by which way the surface faces (distal, posterior, anterior, superior)."""
    weights = {
        "distal": np.maximum(-normals[:, 2], 0.0) ** 2,
        "posterior": np.maximum(-normals[:, 1], 0.0) ** 2,
        "anterior": np.maximum(normals[:, 1], 0.0) ** 2,
        "superior": np.maximum(normals[:, 2], 0.0) ** 2,
    }
    total = sum(weights.values()) + 1e-9
    return sum(weights[k] * values[k] for k in weights) / total  # type: ignore[return-value]


@dataclass(frozen=True)
class FemoralCartilage(CartilageModel):
    """Femoral cartilage on the condyles (parts ``condyles``) and the trochlea (parts ``trochlea``)."""

    condyles: dict[int, NDArray[np.float64]] = field(default_factory=dict)  # part -> core centre
    trochlea: frozenset[int] = frozenset()
    trochlea_top_s: float = 50.0
    posterior_top_s: float = 40.0
    a_notch: float = 0.0
    a_posterior: dict[str, float] = field(default_factory=dict)  # "medial"/"lateral" -> posterior end
    thickness_medial: dict[str, float] = field(default_factory=dict)
    thickness_lateral: dict[str, float] = field(default_factory=dict)

    def taper(self, points: Points, normals: Points, parts: NDArray[np.intp]) -> NDArray[np.float64]:
        sides = 1.0 - smoothstep(0.45, 0.75, np.abs(normals[:, 0]))
        on_condyle = np.isin(parts, list(self.condyles))
        on_trochlea = np.isin(parts, list(self.trochlea))
        s, a = points[:, 2], points[:, 1]
        # Posterior condyles: cartilage up to near their top; anteriorly up to the top of the trochlea.
        top = np.where(a < self.a_notch - 8.0, self.posterior_top_s, self.trochlea_top_s)
        height = 1.0 - smoothstep(top - 6.0, top, s)
        facing = np.where(on_trochlea, smoothstep(-0.15, 0.35, normals[:, 1]), 1.0)
        # Condyle surfaces that face up into the metaphysis carry none.
        upward = np.where(on_condyle, 1.0 - smoothstep(0.55, 0.8, normals[:, 2]), 1.0)
        taper = sides * height * facing * upward
        return np.where(on_condyle | on_trochlea, taper, 0.0)

    def base(self, points: Points, normals: Points, parts: NDArray[np.intp]) -> NDArray[np.float64]:
        medial = points[:, 0] < 0
        return np.where(medial, _weighted(normals, self.thickness_medial), _weighted(normals, self.thickness_lateral))

    def regions(self, points: Points) -> NDArray[np.uint8]:
        a = points[:, 1]
        medial = points[:, 0] < 0
        a_post = np.where(medial, self.a_posterior["medial"], self.a_posterior["lateral"])
        central_end = self.a_notch - 0.6 * (self.a_notch - a_post)
        central = np.where(medial, Subregion.CMF, Subregion.CLF)
        posterior = np.where(medial, Subregion.PMF, Subregion.PLF)
        region = np.where(a > self.a_notch, Subregion.TRF, np.where(a > central_end, central, posterior))
        return region.astype(np.uint8)

    def labels(self, points: Points) -> NDArray[np.uint8]:
        return np.full(len(points), Label.FEMORAL_CARTILAGE, dtype=np.uint8)


@dataclass(frozen=True)
class TibialCartilage(CartilageModel):
    """Medial and lateral tibial cartilage: elliptical plates on the flat top of the plateau part."""

    plateau: int = 0
    medial_center: NDArray[np.float64] = field(default_factory=lambda: np.zeros(2))  # (m, a)
    medial_radii: NDArray[np.float64] = field(default_factory=lambda: np.ones(2))
    lateral_center: NDArray[np.float64] = field(default_factory=lambda: np.zeros(2))
    lateral_radii: NDArray[np.float64] = field(default_factory=lambda: np.ones(2))
    peak_medial: float = 2.3
    peak_lateral: float = 2.8

    def _rho(self, points: Points) -> tuple[NDArray, NDArray]:
        medial = points[:, 0] < 0
        center = np.where(medial[:, None], self.medial_center, self.lateral_center)
        radii = np.where(medial[:, None], self.medial_radii, self.lateral_radii)
        return np.linalg.norm((points[:, :2] - center) / radii, axis=1), medial

    def taper(self, points: Points, normals: Points, parts: NDArray[np.intp]) -> NDArray[np.float64]:
        rho, _ = self._rho(points)
        top = smoothstep(0.9, 0.97, normals[:, 2])
        taper = (1.0 - smoothstep(0.7, 1.0, rho)) * top
        return np.where((parts == self.plateau) & (rho < 1.0), taper, 0.0)

    def base(self, points: Points, normals: Points, parts: NDArray[np.intp]) -> NDArray[np.float64]:
        rho, medial = self._rho(points)
        return np.where(medial, self.peak_medial, self.peak_lateral) * (1.0 - 0.3 * rho**2)

    def regions(self, points: Points) -> NDArray[np.uint8]:
        return np.where(points[:, 0] < 0, Subregion.MT, Subregion.LT).astype(np.uint8)

    def labels(self, points: Points) -> NDArray[np.uint8]:
        medial = points[:, 0] < 0
        return np.where(medial, Label.MEDIAL_TIBIAL_CARTILAGE, Label.LATERAL_TIBIAL_CARTILAGE).astype(np.uint8)


@dataclass(frozen=True)
class PatellarCartilage(CartilageModel):
    """Patellar cartilage on the posterior (articular) face, thickest over the median ridge."""

    articular: frozenset[int] = frozenset()
    center: NDArray[np.float64] = field(default_factory=lambda: np.zeros(2))  # (m, s)
    radii: NDArray[np.float64] = field(default_factory=lambda: np.ones(2))
    peak: float = 3.3

    def _rho(self, points: Points) -> NDArray:
        return np.linalg.norm((points[:, [0, 2]] - self.center) / self.radii, axis=1)

    def taper(self, points: Points, normals: Points, parts: NDArray[np.intp]) -> NDArray[np.float64]:
        rho = self._rho(points)
        facing = smoothstep(0.35, 0.7, -normals[:, 1])
        taper = (1.0 - smoothstep(0.72, 1.0, rho)) * facing
        return np.where(np.isin(parts, list(self.articular)) & (rho < 1.0), taper, 0.0)

    def base(self, points: Points, normals: Points, parts: NDArray[np.intp]) -> NDArray[np.float64]:
        return self.peak * (1.0 - 0.35 * self._rho(points) ** 2)

    def regions(self, points: Points) -> NDArray[np.uint8]:
        return np.full(len(points), Subregion.P, dtype=np.uint8)

    def labels(self, points: Points) -> NDArray[np.uint8]:
        return np.full(len(points), Label.PATELLAR_CARTILAGE, dtype=np.uint8)
