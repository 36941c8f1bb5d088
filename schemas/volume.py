"""Arrays that carry their geometry.

A :class:`Volume` is a 3D array plus the 4x4 affine that maps voxel indices ``(i, j, k)`` to patient
coordinates in millimetres, **RAS+** as in NIfTI: +x towards the patient's Right, +y Anterior,
+z Superior. DICOM's LPS coordinates are converted once, on load (``x_ras = -x_lps``,
``y_ras = -y_lps``).

Spacing, orientation and physical positions are always derived from the affine, never passed
separately, so a biomarker cannot be computed with the wrong voxel size.

Axis order of volumes loaded from DICOM: axis 0 = slice (sorted along the slice normal), axis 1 =
image row, axis 2 = image column. ``volume.array[k]`` is therefore the k-th displayed 2D slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

#: Converts between DICOM LPS and NIfTI RAS patient coordinates (it is its own inverse).
LPS_TO_RAS: NDArray[np.float64] = np.diag([-1.0, -1.0, 1.0, 1.0])


def _check_affine(affine: NDArray[np.floating]) -> NDArray[np.float64]:
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"affine must be 4x4, got shape {affine.shape}")
    if not np.allclose(affine[3], [0, 0, 0, 1]):
        raise ValueError(f"affine's last row must be [0, 0, 0, 1], got {affine[3].tolist()}")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise ValueError("affine is singular (zero voxel size or collinear axes)")
    return affine


@dataclass(frozen=True)
class Volume:
    """A 3D image or label map with its voxel-to-patient (RAS, mm) affine."""

    array: NDArray
    affine: NDArray[np.float64]

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValueError(f"a Volume is 3D, got an array of shape {self.array.shape}")
        object.__setattr__(self, "affine", _check_affine(self.affine))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)  # type: ignore[return-value]

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel size along each array axis, from the affine's column norms."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def voxel_volume_mm3(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    @property
    def direction(self) -> NDArray[np.float64]:
        """Unit vectors (columns) of each array axis in RAS."""
        return self.affine[:3, :3] / np.asarray(self.spacing_mm)

    def world(self, ijk: NDArray) -> NDArray[np.float64]:
        """RAS mm coordinates of voxel indices ``ijk`` (shape ``(..., 3)``)."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def index(self, xyz: NDArray) -> NDArray[np.float64]:
        """Continuous voxel indices of RAS points ``xyz`` (shape ``(..., 3)``)."""
        inverse = np.linalg.inv(self.affine)
        xyz = np.asarray(xyz, dtype=np.float64)
        return xyz @ inverse[:3, :3].T + inverse[:3, 3]

    def with_array(self, array: NDArray) -> Volume:
        """A volume on the same grid holding other values (e.g. a label map for this image)."""
        if array.shape != self.array.shape:
            raise ValueError(f"array shape {array.shape} does not match the grid {self.array.shape}")
        return Volume(array, self.affine)


@dataclass(frozen=True)
class EchoSeries:
    """Co-registered volumes at several echo or spin-lock times: the input of relaxometry.

    ``array`` has shape ``(n_times, I, J, K)``; ``times_ms`` holds the echo time (T2) or spin-lock
    time (T1rho) of each volume, in milliseconds and increasing. ``slice_thickness_mm`` is the thickness
    of each slice along axis 0 (DICOM SliceThickness) when it differs from the slice spacing the affine
    gives (a gap between slices, or overlapping slices such as 3 mm reconstructed every 1.5 mm); a voxel's
    signal comes from that thickness, which matters for partial volume. None: equal to the spacing.
    """

    array: NDArray
    affine: NDArray[np.float64]
    times_ms: tuple[float, ...]
    slice_thickness_mm: float | None = None

    def __post_init__(self) -> None:
        if self.array.ndim != 4:
            raise ValueError(f"an EchoSeries is 4D (times, I, J, K), got shape {self.array.shape}")
        if len(self.times_ms) != self.array.shape[0]:
            raise ValueError(f"{len(self.times_ms)} times for {self.array.shape[0]} volumes")
        if any(b <= a for a, b in zip(self.times_ms, self.times_ms[1:], strict=False)):
            raise ValueError(f"times must increase strictly, got {self.times_ms}")
        if self.slice_thickness_mm is not None and not self.slice_thickness_mm > 0:
            raise ValueError(f"slice thickness must be positive, got {self.slice_thickness_mm}")
        object.__setattr__(self, "affine", _check_affine(self.affine))

    def volume(self, index: int = 0) -> Volume:
        """The volume at one time point, with this series' geometry."""
        return Volume(self.array[index], self.affine)
