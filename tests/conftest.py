"""Fixtures shared by every test package: real data, settings isolation."""

from __future__ import annotations

import lzma
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from app.settings import get_settings
from tests.data import cache_dir, shared_data_dir, unpacked, verified

if TYPE_CHECKING:
    from app.imaging.phantom import Phantom


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


class PhantomFactory:
    """Knee phantoms for tests, generated once per session and argument set.

    ``factory(seed=..., side=..., grade=..., protocols=...)`` returns the folder the study was written to
    (DICOM series, labels.nii.gz, thickness_truth.nii.gz, truth.json); ``factory.phantom(...)`` returns
    the in-memory :class:`~app.imaging.phantom.Phantom` with the same arguments. Protocols default to
    the small test variants of dess, t2-mese and t1rho-cubequant.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._phantoms: dict[tuple, Phantom] = {}
        self._paths: dict[tuple, Path] = {}

    @staticmethod
    def _key(seed: int, side: str, grade: int, protocols: Sequence[str] | None) -> tuple:
        from app.imaging.phantom import SMALL_PROTOCOLS

        return (seed, side, grade, tuple(protocols or SMALL_PROTOCOLS))

    def phantom(
        self, seed: int = 0, side: str = "right", grade: int = 0, protocols: Sequence[str] | None = None
    ) -> Phantom:
        from app.imaging.phantom import generate_phantom

        key = self._key(seed, side, grade, protocols)
        if key not in self._phantoms:
            self._phantoms[key] = generate_phantom(seed=seed, side=side, grade=grade, protocols=list(key[3]))  # type: ignore[arg-type]
        return self._phantoms[key]

    def __call__(
        self, seed: int = 0, side: str = "right", grade: int = 0, protocols: Sequence[str] | None = None
    ) -> Path:
        from app.imaging.phantom import write_phantom

        key = self._key(seed, side, grade, protocols)
        if key not in self._paths:
            path = self.root / f"seed{seed}-{side}-grade{grade}-{len(self._paths)}"
            write_phantom(self.phantom(seed, side, grade, protocols), path)
            self._paths[key] = path
        return self._paths[key]


@pytest.fixture(scope="session")
def phantom_factory(tmp_path_factory: pytest.TempPathFactory) -> PhantomFactory:
    """Writes (and caches) small phantom studies: ``phantom_factory(seed=1, side="left", grade=4)``."""
    return PhantomFactory(tmp_path_factory.mktemp("phantoms"))


@pytest.fixture(scope="session")
def phantom_dir(phantom_factory: PhantomFactory) -> Path:
    """A small right grade-0 phantom (seed 0) written to disk with the dess, t2-mese and t1rho protocols."""
    return phantom_factory()
