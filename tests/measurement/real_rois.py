"""Cartilage regions picked by hand in the real relaxometry series (no label maps exist for them).

Indices are (slice, row, column) of the arrays ``app.imaging.load_acquisitions`` returns (slices in
geometric order, 0-based), chosen by looking at the first-echo / first-spin-lock images:

- **MESE T2** (``mese_t2_dir``, 24 sagittal slices of 256 x 256 at 0.625 mm, 4 mm apart): slices 16-18,
  rows 148-153, columns 137-157 - the weight-bearing contact zone of the femorotibial compartment,
  between the femoral and tibial cortices and clear of the menisci (which lie in front of and behind
  it) and of the marrow (bright in this non-fat-suppressed series) above and below.
- **CubeQuant T1rho** (``real_knee_dir/cubeQuant``, 80 sagittal slices of 512 x 512 at 0.3125 mm, 1.5 mm
  apart): slices 44-50, rows 245-304, columns 160-219, and within that box the voxels brighter than
  half the box's 99th percentile at the first spin-lock time (1 ms) - the band of trochlear cartilage
  on the anterior femur, which is bright at short spin-lock times against the dark fat-suppressed
  bone and fat (see ``docs/measurement.md`` for a picture with the outline).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

MESE_T2_BOX = (slice(16, 19), slice(148, 154), slice(137, 158))
CUBEQUANT_T1RHO_BOX = (slice(44, 51), slice(245, 305), slice(160, 220))


def mese_t2_roi(shape: tuple[int, int, int]) -> NDArray[np.bool_]:
    roi = np.zeros(shape, dtype=bool)
    roi[MESE_T2_BOX] = True
    return roi


def cubequant_t1rho_roi(first_spin_lock: NDArray) -> NDArray[np.bool_]:
    box = first_spin_lock[CUBEQUANT_T1RHO_BOX]
    roi = np.zeros(first_spin_lock.shape, dtype=bool)
    roi[CUBEQUANT_T1RHO_BOX] = box > 0.5 * np.percentile(box, 99)
    return roi
