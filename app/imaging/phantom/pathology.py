"""Osteoarthritis by grade: what each grade puts into the knee, drawn from the seed.

Grades follow the usual radiographic progression (Kellgren-Lawrence 0-4) with the MRI features a
MOAKS reader scores, medial compartment first as in most OA knees:

- grade 0: healthy cartilage and menisci, physiological fluid;
- grade 1: one shallow focal cartilage defect, T2 +2 ms, small effusion;
- grade 2: two partial-thickness defects, medial thinning 10 %, T2 +4 ms; medial posterior-horn tear and
  1.5 mm extrusion; 2 small osteophytes; effusion;
- grade 3: three defects (one deep), medial thinning 22 %, T2 +6 ms; tear, 3 mm extrusion; 4 osteophytes,
  one bone marrow lesion (BML); moderate effusion, joint-space narrowing;
- grade 4: full-thickness defects (denuded bone), medial thinning 40 %, T2 +9 ms; tear, maceration, 4.5 mm
  extrusion; 6 large osteophytes, 2 BMLs; large effusion, popliteal cyst, near bone-on-cartilage narrowing.

Positions are given relative to a plate (``(u, v)`` in -1..1 across / along it) and turned into bone
surface points by the anatomy, so lesions land on cartilage whatever the knee's shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.imaging.phantom.cartilage import Subregion

OSTEOPHYTE_SITES: tuple[str, ...] = (
    "medial femoral condyle",
    "medial tibial plateau",
    "lateral tibial plateau",
    "lateral femoral condyle",
    "patella superior pole",
    "lateral trochlea",
)
BML_SITES: tuple[str, ...] = ("medial femoral condyle", "medial tibial plateau", "lateral femoral condyle")


@dataclass(frozen=True)
class DefectSpec:
    plate: str  # "cMF", "cLF", "MT", "LT", "TrF", "P"
    u: float  # across the plate (-1 .. 1)
    v: float  # along the plate (-1 .. 1)
    radius_mm: float
    depth: float  # 1.0 = full thickness


@dataclass(frozen=True)
class Pathology:
    """Everything a grade changes, in anatomy-independent terms."""

    grade: int
    defects: tuple[DefectSpec, ...]
    thinning: dict[Subregion, float]
    joint_gap_mm: float  # fluid film between opposing cartilage surfaces at contact
    meniscal_extrusion_mm: float  # medial meniscus
    meniscal_tear: bool
    meniscal_maceration: float  # fraction of the medial posterior horn's height lost
    osteophytes: tuple[tuple[str, float], ...]  # (site, radius mm)
    bmls: tuple[tuple[str, float], ...]  # (site, radius mm)
    effusion_mm: float  # suprapatellar recess distension
    popliteal_cyst: bool
    t2_increase_ms: float


def pathology_for_grade(grade: int, rng: np.random.Generator) -> Pathology:
    """Draw the findings of ``grade`` (0-4)."""
    if not 0 <= grade <= 4:
        raise ValueError(f"grade must be 0-4, got {grade}")
    medial_plates = ("cMF", "MT")

    def defect(plate: str, radius: tuple[float, float], depth: tuple[float, float]) -> DefectSpec:
        return DefectSpec(
            plate=plate,
            u=float(rng.uniform(-0.35, 0.35)),
            v=float(rng.uniform(-0.35, 0.35)),
            radius_mm=float(rng.uniform(*radius)),
            depth=float(rng.uniform(*depth)),
        )

    defects: list[DefectSpec] = []
    if grade == 1:
        defects.append(defect(str(rng.choice(medial_plates)), (3.0, 4.5), (0.3, 0.45)))
    elif grade == 2:
        defects += [
            defect("cMF", (3.5, 5.5), (0.4, 0.65)),
            defect(str(rng.choice(("MT", "P"))), (3.5, 5.0), (0.35, 0.6)),
        ]
    elif grade == 3:
        defects += [
            defect("cMF", (5.0, 7.0), (0.8, 0.92)),
            defect("MT", (4.0, 6.0), (0.5, 0.7)),
            defect(str(rng.choice(("P", "TrF", "cLF"))), (3.5, 5.5), (0.4, 0.6)),
        ]
    elif grade == 4:
        defects += [
            defect("cMF", (6.5, 9.0), (1.0, 1.0)),
            defect("MT", (5.0, 7.5), (1.0, 1.0)),
            defect("P", (4.0, 6.0), (0.6, 0.85)),
            defect(str(rng.choice(("cLF", "TrF", "LT"))), (4.0, 6.0), (0.5, 0.8)),
        ]
    medial_thinning = {0: 1.0, 1: 1.0, 2: 0.9, 3: 0.78, 4: 0.6}[grade]
    thinning = {
        Subregion.CMF: medial_thinning,
        Subregion.PMF: 0.5 + 0.5 * medial_thinning,
        Subregion.MT: medial_thinning,
    }
    if grade == 4:
        thinning |= {Subregion.CLF: 0.92, Subregion.LT: 0.92, Subregion.P: 0.85, Subregion.TRF: 0.9}
    n_osteophytes = {0: 0, 1: 0, 2: 2, 3: 4, 4: 6}[grade]
    osteophyte_radius = {2: (1.8, 2.8), 3: (2.8, 4.2), 4: (4.0, 6.0)}.get(grade, (0.0, 0.0))
    n_bmls = {3: 1, 4: 2}.get(grade, 0)
    return Pathology(
        grade=grade,
        defects=tuple(defects),
        thinning={k: v for k, v in thinning.items() if v != 1.0},
        joint_gap_mm={0: 0.4, 1: 0.35, 2: 0.3, 3: 0.15, 4: 0.05}[grade],
        meniscal_extrusion_mm={0: 0.0, 1: 0.0, 2: 1.5, 3: 3.0, 4: 4.5}[grade] * float(rng.uniform(0.85, 1.15)),
        meniscal_tear=grade >= 2,
        meniscal_maceration=0.5 if grade == 4 else 0.0,
        osteophytes=tuple((site, float(rng.uniform(*osteophyte_radius))) for site in OSTEOPHYTE_SITES[:n_osteophytes]),
        bmls=tuple((site, float(rng.uniform(6.0, 9.0) + 2.0 * (grade - 3))) for site in BML_SITES[:n_bmls]),
        effusion_mm={0: 1.2, 1: 2.0, 2: 3.5, 3: 6.0, 4: 10.0}[grade] * float(rng.uniform(0.85, 1.15)),
        popliteal_cyst=grade == 4,
        t2_increase_ms={0: 0.0, 1: 2.0, 2: 4.0, 3: 6.0, 4: 9.0}[grade],
    )
