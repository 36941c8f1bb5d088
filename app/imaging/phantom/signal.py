"""MR signal synthesis: tissue parameters -> echo images, then the scanner's imperfections.

Signal equations (magnitude, relative to water proton density):

- multi-echo spin echo: ``S(TE) = PD (1 - exp(-TR/T1)) exp(-TE/T2)`` — exactly mono-exponential, so a
  T2 fit of a pure voxel returns the truth (stimulated echoes are not modelled);
- spin-lock prepared 3D FSE (CubeQuant): ``S(TSL) = PD (1 - exp(-TR/T1)) exp(-TSL/T1rho) exp(-TE/T2)``;
- DESS: the steady-state FISP (S+) and PSIF (S-) signals of Hänicke et al. (MRM 1990), each dephased by
  ``exp(-TE1/T2*)``; fluid is bright on both echoes, cartilage intermediate, as on real DESS.

Then, in this order: partial-volume averaging through the slice (samples at several depths), blur
along the phase-encoding direction (as from k-space undersampling / partial Fourier), a smooth coil
sensitivity field, Rician noise, and 12-bit quantisation. Noise sigma and the stored scale are relative
to the signal of fluid at the first time point, so ``noise=0.02`` means an SNR of 50 in fluid.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter1d

from app.imaging.phantom.protocols import ProtocolSpec
from app.imaging.phantom.raster import RasterSample
from app.imaging.phantom.tissues import TISSUE_RELAXATION, Tissue, property_table

#: Stored value of fluid at the first time point; 12-bit storage leaves headroom for brighter voxels.
FLUID_STORED_VALUE = 1000.0
MAX_STORED_VALUE = 4095


def signal_equation(
    spec: ProtocolSpec,
    pd: NDArray,
    t1: NDArray,
    t2: NDArray,
    t2star: NDArray,
    t1rho: NDArray,
) -> list[NDArray[np.float64]]:
    """Noise-free signal for each time point of ``spec``."""
    tr = spec.repetition_time_ms
    if spec.signal_model == "mese":
        recovery = pd * (1.0 - np.exp(-tr / t1))
        return [recovery * np.exp(-te / t2) for te in spec.echo_times_ms]
    if spec.signal_model == "t1rho":
        weighted = pd * (1.0 - np.exp(-tr / t1)) * np.exp(-spec.echo_times_ms[0] / t2)
        return [weighted * np.exp(-tsl / t1rho) for tsl in spec.spin_lock_times_ms]
    alpha = np.deg2rad(spec.flip_angle_deg)
    e1, e2 = np.exp(-tr / t1), np.exp(-tr / t2)
    cos_a = np.cos(alpha)
    p = 1.0 - e1 * cos_a - e2**2 * (e1 - cos_a)
    q = e2 * (1.0 - e1) * (1.0 + cos_a)
    r = (1.0 - e2**2) / np.sqrt(np.maximum(p**2 - q**2, 1e-12))
    scale = pd * np.tan(alpha / 2) * np.exp(-spec.echo_times_ms[0] / t2star)
    return [scale * (1.0 - (e1 - cos_a) * r), scale * (1.0 - (1.0 - e1 * cos_a) * r)]


def _proton_density(spec: ProtocolSpec) -> NDArray[np.float64]:
    """Visible proton density per tissue: fat signal reduced by the protocol's fat suppression."""
    fat = np.array([TISSUE_RELAXATION[t].fat for t in Tissue])
    return np.where(fat, property_table("pd") * (1.0 - spec.fat_suppression), property_table("pd"))


def _tissue_signals(spec: ProtocolSpec) -> NDArray[np.float64]:
    """Signal of every tissue at every time point, ``(n_tissues, n_times)``, with its default relaxation."""
    names = ("t1_ms", "t2_ms", "t2star_ms", "t1rho_ms")
    return np.stack(signal_equation(spec, _proton_density(spec), *(property_table(name) for name in names)), axis=1)


def _sample_signals(spec: ProtocolSpec, sample: RasterSample) -> list[NDArray[np.float32]]:
    """Signal per voxel and time point: a table look-up, except where T2 / T1rho vary per point (cartilage)."""
    table = _tissue_signals(spec).astype(np.float32)
    signals = [table[:, i][sample.tissue] for i in range(table.shape[1])]
    varying = np.flatnonzero(~np.isnan(sample.t2_ms.ravel()))
    if varying.size:
        tissue = sample.tissue.ravel()[varying]
        t2 = sample.t2_ms.ravel()[varying].astype(np.float64)
        t1rho = sample.t1rho_ms.ravel()[varying].astype(np.float64)
        values = signal_equation(
            spec, _proton_density(spec)[tissue], property_table("t1_ms")[tissue], t2, 0.6 * t2, t1rho
        )
        for signal, value in zip(signals, values, strict=True):
            signal.ravel()[varying] = value
    return signals


def fluid_reference(spec: ProtocolSpec) -> float:
    """Noise-free signal of pure fluid at the first time point (the unit of noise and storage)."""
    fluid = TISSUE_RELAXATION[Tissue.FLUID]
    values = [np.array([v]) for v in (fluid.pd, fluid.t1_ms, fluid.t2_ms, fluid.t2star_ms, fluid.t1rho_ms)]
    return float(signal_equation(spec, *values)[0][0])


def coil_sensitivity(shape: tuple[int, int, int], strength: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """A smooth multiplicative field: 1 at the centre, falling by up to ``strength`` towards one side."""
    axes = [np.linspace(-1.0, 1.0, n) for n in shape]
    k, r, c = np.meshgrid(*axes, indexing="ij", sparse=True)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    linear = direction[0] * k + direction[1] * r + direction[2] * c
    radial = (k**2 + r**2 + c**2) / 3.0
    field = 1.0 - strength * (0.5 * (1.0 - linear) * 0.6 + 0.4 * radial)
    return np.clip(field, 0.05, None)


def synthesize(spec: ProtocolSpec, samples: list[RasterSample], rng: np.random.Generator) -> NDArray[np.float32]:
    """Stored pixel values (as float32) of every time point: array ``(n_times, slices, rows, columns)``."""
    total: list[NDArray[np.float32]] | None = None
    for sample in samples:
        signals = _sample_signals(spec, sample)
        total = signals if total is None else [a + b for a, b in zip(total, signals, strict=True)]
    assert total is not None
    scale = np.float32(1.0 / (len(samples) * fluid_reference(spec)))
    field = coil_sensitivity(samples[0].tissue.shape, spec.bias, rng).astype(np.float32)
    images = np.empty((len(total), *samples[0].tissue.shape), dtype=np.float32)
    for i, signal in enumerate(total):
        image = signal * scale
        if spec.blur > 0:
            image = gaussian_filter1d(image, spec.blur, axis=2, mode="nearest")
        image *= field
        if spec.noise > 0:
            noise = np.float32(spec.noise)
            image += noise * rng.standard_normal(image.shape, dtype=np.float32)
            image = np.hypot(image, noise * rng.standard_normal(image.shape, dtype=np.float32))
        images[i] = np.clip(np.rint(image * np.float32(FLUID_STORED_VALUE)), 0, MAX_STORED_VALUE)
    return images


def partial_volume_offsets(spec: ProtocolSpec) -> list[float]:
    """Where (in voxels along the slice axis, relative to the centre) a slice is sampled."""
    count = spec.partial_volume_samples or int(np.clip(round(spec.slice_thickness_mm / (2 * spec.pixel_mm)), 1, 2))
    thickness_in_voxels = spec.slice_thickness_mm / spec.slice_spacing_mm
    return [((j + 0.5) / count - 0.5) * thickness_in_voxels for j in range(count)]
