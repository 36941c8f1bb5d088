"""MR tissue classes of the phantom and their relaxation parameters at 3 T.

Tissues are what the signal model sees; labels (``schemas.labels.Label``) are what the ground truth
says. They differ on purpose: cortical bone and marrow are both "femur", tendons and ligaments and
the infrapatellar fat pad have no label (0) but must look like themselves in the image.

Values are typical literature figures for knee tissues at 3 T (e.g. Gold et al., AJR 2004; Stanisz
et al., MRM 2005; Li et al. for T1rho). Cartilage T2 / T1rho are not fixed here: they vary with depth
and plate (see ``cartilage.py``) so relaxometry has a known, spatially varying truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray


class Tissue(IntEnum):
    """What a point of the phantom is made of, for the signal model."""

    AIR = 0
    FAT = 1
    MUSCLE = 2
    MARROW = 3
    CORTEX = 4
    CARTILAGE = 5
    MENISCUS = 6
    FLUID = 7
    TENDON = 8
    VESSEL = 9
    NERVE = 10
    EDEMA = 11  # bone marrow lesion


@dataclass(frozen=True)
class Relaxation:
    """Proton density (relative to water) and relaxation times in ms; ``fat`` marks suppressible signal."""

    pd: float
    t1_ms: float
    t2_ms: float
    t2star_ms: float
    t1rho_ms: float
    fat: bool = False


TISSUE_RELAXATION: dict[Tissue, Relaxation] = {
    Tissue.AIR: Relaxation(0.0, 1000.0, 1.0, 1.0, 1.0),
    Tissue.FAT: Relaxation(0.90, 380.0, 70.0, 35.0, 60.0, fat=True),
    Tissue.MUSCLE: Relaxation(0.55, 1400.0, 32.0, 18.0, 40.0),
    Tissue.MARROW: Relaxation(0.85, 370.0, 55.0, 10.0, 50.0, fat=True),
    Tissue.CORTEX: Relaxation(0.05, 1000.0, 0.5, 0.4, 1.0),
    Tissue.CARTILAGE: Relaxation(0.75, 1200.0, 38.0, 20.0, 42.0),  # T2 / T1rho replaced per point
    Tissue.MENISCUS: Relaxation(0.45, 1000.0, 10.0, 5.0, 15.0),
    Tissue.FLUID: Relaxation(1.00, 3000.0, 600.0, 250.0, 400.0),
    Tissue.TENDON: Relaxation(0.30, 800.0, 4.0, 2.0, 8.0),
    Tissue.VESSEL: Relaxation(0.10, 1600.0, 30.0, 10.0, 30.0),
    Tissue.NERVE: Relaxation(0.6, 1300.0, 45.0, 25.0, 50.0),
    Tissue.EDEMA: Relaxation(0.95, 1200.0, 90.0, 30.0, 90.0),
}


def property_table(name: str) -> NDArray[np.float64]:
    """One relaxation property for every tissue, indexable by tissue value (e.g. ``table[tissues]``)."""
    return np.array([getattr(TISSUE_RELAXATION[t], name) for t in Tissue], dtype=np.float64)
