"""T2 and T1rho of real knee cartilage: the real MESE series and the real GE CubeQuant exam.

Neither series has a label map, so the cartilage regions are the hand-picked ROIs of
``tests/measurement/real_rois.py`` (a box in the MESE contact zone; the trochlear cartilage band in the
CubeQuant images). Each ROI becomes a label map on its series' grid and goes through ``measure`` like
any label map. Prints the regional values and the fit reports, and writes the T1rho map picture to
``docs/images/t1rho_map_real.png`` and the T2 one to ``docs/images/t2_map_real.png``.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/measure_real_relaxometry.py
"""

from __future__ import annotations

import numpy as np

from app.imaging import load_acquisitions
from app.measurement import measure_knee
from app.measurement.maps import render_relaxation_map
from schemas.labels import Label
from schemas.volume import Volume
from tests.data import REPO_ROOT, shared_data_dir, unpacked
from tests.measurement.real_rois import cubequant_t1rho_roi, mese_t2_roi

IMAGES = REPO_ROOT / "docs" / "images"


def main() -> None:
    mese = unpacked(shared_data_dir() / "pymskt-knee" / "mese-t2.tar.xz") / "MESE_T2_dicom_data_anon"
    cubequant = unpacked(shared_data_dir() / "real-knee-ge-3t" / "cubequant-t1rho.tar.xz") / "cubeQuant"
    for name, folder, roi_of, key in (
        ("MESE T2", mese, lambda a: mese_t2_roi(a.shape), "t2"),
        ("CubeQuant T1rho", cubequant, lambda a: cubequant_t1rho_roi(a.echoes.array[0]), "t1rho"),
    ):
        (acquisition,) = load_acquisitions(folder)
        roi = roi_of(acquisition)
        labels = Volume(np.where(roi, int(Label.FEMORAL_CARTILAGE), 0).astype(np.int16), acquisition.echoes.affine)
        series = {key: acquisition.echoes}
        measurement = measure_knee(labels, "right", "user", **series)
        relaxation = measurement.relaxation[key]
        values = relaxation.map_ms.array[relaxation.valid]
        mean = measurement.biomarkers.get(f"{key}_mean", "F")
        sd = measurement.biomarkers.get(f"{key}_sd", "F")
        spacing = ", ".join(f"{v:.3f}" for v in acquisition.spacing_mm)
        print(f"{name}: {acquisition.description!r}, times {acquisition.echoes.times_ms} ms, voxels {spacing} mm")
        median = np.median(values)
        print(f"  ROI {int(roi.sum())} voxels; {key} mean {mean:.1f} ms, SD {sd:.1f} ms, median {median:.1f} ms")
        low, high = np.percentile(values, [5, 95])
        print(f"  5th-95th percentile {low:.1f}-{high:.1f} ms; {relaxation.report}")
        picture = IMAGES / f"{key}_map_real.png"
        slice_index = render_relaxation_map(relaxation, acquisition.echoes, "T2" if key == "t2" else "T1rho", picture)
        print(f"  picture: {picture.relative_to(REPO_ROOT)} (slice {slice_index + 1})")


if __name__ == "__main__":
    main()
