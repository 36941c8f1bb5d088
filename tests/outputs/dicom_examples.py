"""A small knee MR series and a label map on its grid, for the DICOM SEG / SR tests.

The series is the integration tests' synthetic sagittal study (8 slices of 32 x 32, 0.5 mm pixels, 0.7 mm
slice spacing); its voxel-to-RAS affine is worked out here by hand from the DICOM attributes, so the SEG
tests check highdicom's geometry against an independent answer.
"""

from __future__ import annotations

import numpy as np
import pydicom

from app.outputs.dicom_seg import Algorithm
from schemas.labels import Label
from schemas.volume import LPS_TO_RAS, Volume
from tests.integration.synthetic import StudySpec, build_study

ALGORITHM = Algorithm(name="knee-sam", version="0.3.0")


def source_series(spec: StudySpec | None = None) -> list[pydicom.Dataset]:
    """The first series (Sag 3D DESS WE) of a synthetic study, slices in acquisition order."""
    datasets = build_study(spec or StudySpec())
    return [ds for ds in datasets if ds.SeriesNumber == 1]


#: Voxel (slice, row, column) -> LPS mm for that series: ImagePositionPatient steps +0.7 mm in x per slice;
#: down a column (row index) runs ImageOrientationPatient's column cosines (0, 0, -1) x 0.5 mm; along a
#: row (column index) its row cosines (0, 1, 0) x 0.5 mm; the first pixel sits at (0, -50, 50).
SOURCE_AFFINE_LPS = np.array(
    [
        [0.7, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.5, -50.0],
        [0.0, -0.5, 0.0, 50.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
SOURCE_AFFINE_RAS = LPS_TO_RAS @ SOURCE_AFFINE_LPS


def knee_labels() -> Volume:
    """Boxes of four tissues on the source grid (shape (8, 32, 32)), every slice labelled somewhere."""
    array = np.zeros((8, 32, 32), dtype=np.uint8)
    array[:, 2:12, 2:30] = Label.FEMUR
    array[:, 12:14, 4:28] = Label.FEMORAL_CARTILAGE
    array[1:7, 15:17, 4:14] = Label.MEDIAL_TIBIAL_CARTILAGE
    array[1:7, 15:17, 16:28] = Label.LATERAL_TIBIAL_CARTILAGE
    array[:, 17:30, 2:30] = Label.TIBIA
    array[3:5, 14:15, 2:6] = Label.MEDIAL_MENISCUS
    return Volume(array, SOURCE_AFFINE_RAS)
