"""Fixtures shared by every test package: real data, settings isolation."""

from __future__ import annotations

import lzma
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.settings import get_settings
from tests.data import cache_dir, shared_data_dir, unpacked, verified


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every test starts from default settings, with its own cache directory."""
    monkeypatch.setenv("MSKCDS_CACHE_DIR", str(tmp_path / "mskcds-cache"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def real_knee_dir() -> Path:
    """The real GE 3 T knee exam, unpacked: ``DESS/01``, ``DESS/02``, ``cubeQuant/01..04``."""
    source = shared_data_dir() / "real-knee-ge-3t"
    dess = unpacked(source / "dess.tar.xz")
    t1rho = unpacked(source / "cubequant-t1rho.tar.xz")
    combined = cache_dir() / "real-knee-ge-3t"
    combined.mkdir(exist_ok=True)
    for part in (dess, t1rho):
        for child in part.iterdir():
            link = combined / child.name
            if child.is_dir() and not link.exists():
                link.symlink_to(child)
    return combined


@pytest.fixture(scope="session")
def mese_t2_dir() -> Path:
    """The real multi-echo spin-echo T2 series (24 slices x 8 echoes in one series)."""
    return unpacked(shared_data_dir() / "pymskt-knee" / "mese-t2.tar.xz") / "MESE_T2_dicom_data_anon"


@pytest.fixture(scope="session")
def pymskt_dir() -> Path:
    """pymskt's real label maps and thickness reference, with ``right_knee_example.nrrd`` decompressed."""
    source = shared_data_dir() / "pymskt-knee"
    target = cache_dir() / "pymskt-knee"
    target.mkdir(exist_ok=True)
    nrrd = target / "right_knee_example.nrrd"
    if not nrrd.exists():
        partial = nrrd.with_suffix(".partial")
        partial.write_bytes(lzma.decompress(verified(source / "right_knee_example.nrrd.xz").read_bytes()))
        partial.rename(nrrd)
    for name in ("SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd", "femur_thickness_mm_10k_pts.vtk"):
        link = target / name
        if not link.exists():
            link.symlink_to(verified(source / name))
    return target
