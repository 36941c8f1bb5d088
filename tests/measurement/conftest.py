"""Phantom studies for the measurement tests, generated once and kept on disk.

A phantom at a resolution where 0.1 mm means something takes tens of seconds to synthesise, so each
one made by the imaging area's ``phantom_factory`` is also kept under the test data cache, keyed by its
parameters and by the phantom generator's own source code: change the generator and the phantoms are
made again, never reused stale.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from schemas.volume import EchoSeries, Volume
from tests.conftest import PhantomFactory
from tests.data import REPO_ROOT, cache_dir


@dataclass(frozen=True)
class PhantomStudy:
    """What the measurement tests need from a phantom: labels, images and the exact answers."""

    labels: Volume
    images: dict[str, EchoSeries]
    truth: dict


def _generator_fingerprint() -> str:
    digest = hashlib.sha256()
    for source in sorted((REPO_ROOT / "app" / "imaging" / "phantom").glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def _load_or_generate(
    factory: PhantomFactory, seed: int, side: str, grade: int, protocols: tuple[str, ...]
) -> PhantomStudy:
    key = hashlib.sha256(json.dumps([seed, side, grade, protocols, _generator_fingerprint()]).encode()).hexdigest()
    path = cache_dir() / "measurement-phantoms" / f"{key[:24]}.npz"
    if not path.exists():
        phantom = factory.phantom(seed=seed, side=side, grade=grade, protocols=protocols)
        arrays = {"labels": phantom.labels.array, "affine": phantom.labels.affine}
        for name, series in phantom.images.items():
            arrays[f"image/{name}"] = series.array
            arrays[f"affine/{name}"] = series.affine
            arrays[f"times/{name}"] = np.array(series.times_ms)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.npz")
        np.savez(partial, truth=json.dumps(phantom.truth.model_dump(mode="json")), **arrays)
        partial.rename(path)
    data = np.load(path)
    names = [name.removeprefix("image/") for name in data.files if name.startswith("image/")]
    images = {
        name: EchoSeries(data[f"image/{name}"], data[f"affine/{name}"], tuple(data[f"times/{name}"])) for name in names
    }
    return PhantomStudy(Volume(data["labels"], data["affine"]), images, json.loads(str(data["truth"])))


@pytest.fixture(scope="session")
def phantom_study(phantom_factory: PhantomFactory) -> Callable[..., PhantomStudy]:
    """Factory: ``phantom_study(seed, side, grade, protocols)`` -> a cached :class:`PhantomStudy`."""
    made: dict[tuple, PhantomStudy] = {}

    def get(seed: int, side: str, grade: int, protocols: tuple[str, ...]) -> PhantomStudy:
        key = (seed, side, grade, protocols)
        if key not in made:
            made[key] = _load_or_generate(phantom_factory, seed, side, grade, protocols)
        return made[key]

    return get
