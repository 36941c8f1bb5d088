"""Locate the real data in shared/data and unpack its archives once into a cache directory.

The archives are verified against their SHA256SUMS before use. Several test processes may unpack at
the same time (parallel sessions, worktrees), so unpacking is serialised with a file lock and done into
a temporary directory that is renamed into place.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tarfile
from pathlib import Path

from app.checksums import sha256_of

REPO_ROOT = Path(__file__).resolve().parent.parent


class MissingTestData(RuntimeError):
    """The shared real data is not where the tests look for it."""


def shared_data_dir() -> Path:
    """``$MSKCDS_SHARED_DATA``, else ``<repo>/../shared/data``, else ``/work/shared/data``."""
    candidates = [Path(p) for p in [os.environ.get("MSKCDS_SHARED_DATA", "")] if p]
    candidates += [REPO_ROOT.parent / "shared" / "data", Path("/work/shared/data")]
    for candidate in candidates:
        if (candidate / "real-knee-ge-3t").is_dir():
            return candidate
    raise MissingTestData(
        "shared/data not found (looked in: " + ", ".join(map(str, candidates)) + "); "
        "set MSKCDS_SHARED_DATA to the folder holding real-knee-ge-3t/ and pymskt-knee/"
    )


def cache_dir() -> Path:
    path = Path(os.environ.get("MSKCDS_TEST_CACHE", Path.home() / ".cache" / "mskcds-test-data"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def verified(path: Path) -> Path:
    """``path`` after checking it against the SHA256SUMS file beside it."""
    sums = dict(reversed(line.split()) for line in (path.parent / "SHA256SUMS").read_text().splitlines() if line)
    if sha256_of(path) != sums[path.name]:
        raise MissingTestData(f"{path} does not match its SHA256SUMS entry")
    return path


def unpacked(archive: Path) -> Path:
    """The directory holding the contents of ``archive`` (a .tar.xz), unpacking it on first use."""
    target = cache_dir() / archive.name.removesuffix(".tar.xz")
    if (target / ".complete").exists():
        return target
    with (cache_dir() / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".complete").exists():
            staging = target.with_name(target.name + ".partial")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            with tarfile.open(verified(archive)) as tar:
                tar.extractall(staging, filter="data")
            (staging / ".complete").touch()
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
    return target
