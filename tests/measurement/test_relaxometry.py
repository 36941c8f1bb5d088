"""Relaxometry: exact recovery, Rician noise floor, noise estimation, exclusions and erosion."""

from __future__ import annotations

import numpy as np
import pytest

from app.measurement.relaxometry import (
    T2_RANGE_MS,
    estimate_noise_sigma,
    fit_monoexponential,
    relaxation_map,
    residual_noise_sigma,
)
from schemas.volume import EchoSeries

MESE_TE_MS = np.array([6.3, 12.6, 18.9, 25.2, 31.5, 37.8, 44.1, 50.5])  # the real GE MESE series' echoes
SPIN_LOCK_MS = np.array([1.0, 10.0, 30.0, 60.0])  # the real CubeQuant series' spin-lock times


def rician(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.abs(clean + rng.normal(0, sigma, clean.shape) + 1j * rng.normal(0, sigma, clean.shape))


def test_noise_free_decay_is_recovered_exactly() -> None:
    times = MESE_TE_MS
    t2 = np.array([20.0, 35.0, 50.0, 80.0])
    s0 = np.array([500.0, 1000.0, 2000.0, 50.0])
    fit = fit_monoexponential(s0[:, None] * np.exp(-times / t2[:, None]), times)
    np.testing.assert_allclose(fit.time_constant_ms, t2, rtol=1e-6)
    np.testing.assert_allclose(fit.s0, s0, rtol=1e-6)
    np.testing.assert_allclose(fit.residual_rms, 0, atol=1e-6)


@pytest.mark.parametrize(("times", "true_ms"), [(MESE_TE_MS, 40.0), (MESE_TE_MS, 60.0), (SPIN_LOCK_MS, 45.0)])
def test_rician_noise_floor_is_corrected_at_low_snr(times: np.ndarray, true_ms: float) -> None:
    rng = np.random.default_rng(7)
    sigma = 1000.0 / 15  # SNR 15 at t = 0
    noisy = rician(np.broadcast_to(1000.0 * np.exp(-times / true_ms), (20000, len(times))), sigma, rng)
    naive = fit_monoexponential(noisy, times, 0.0).time_constant_ms
    corrected = fit_monoexponential(noisy, times, sigma).time_constant_ms
    assert np.median(naive) - true_ms > 1.0  # the noise floor inflates the uncorrected fit
    assert np.median(corrected) == pytest.approx(true_ms, abs=0.5)
    assert np.mean(corrected) == pytest.approx(true_ms, abs=1.5)


def test_noise_level_from_background_and_from_residuals() -> None:
    rng = np.random.default_rng(3)
    sigma = 12.0
    image = np.zeros((len(MESE_TE_MS), 40, 64, 64))
    image[:, :, 16:48, 16:48] = 800.0 * np.exp(-MESE_TE_MS / 35.0)[:, None, None, None]
    noisy = rician(image, sigma, rng)
    series = EchoSeries(noisy, np.eye(4), tuple(MESE_TE_MS))
    assert estimate_noise_sigma(series) == pytest.approx(sigma, rel=0.05)
    tissue = noisy[:, :, 16:48, 16:48].reshape(len(MESE_TE_MS), -1).T
    assert residual_noise_sigma(fit_monoexponential(tissue, MESE_TE_MS), len(MESE_TE_MS)) == pytest.approx(
        sigma, rel=0.05
    )
    # No background at all (tissue fills the field of view, outside zeroed): no background estimate.
    masked = EchoSeries(np.where(image > 0, noisy, 0.0), np.eye(4), tuple(MESE_TE_MS))
    assert estimate_noise_sigma(masked) is None


def test_map_counts_every_excluded_voxel() -> None:
    rng = np.random.default_rng(11)
    shape = (4, 30, 30)
    t2 = np.full(shape, 35.0)
    t2[0] = 400.0  # joint fluid: above the range
    t2[1, :10] = 10.0  # below it
    clean = 1000.0 * np.exp(-MESE_TE_MS[:, None, None, None] / t2[None])
    clean[:, 2, :5] += 1000.0 * np.exp(-MESE_TE_MS / 250.0)[:, None, None]  # two compartments: not one exponential
    series = EchoSeries(rician(clean, 5.0, rng), np.eye(4), tuple(MESE_TE_MS))
    mask = np.ones(shape, dtype=bool)
    valid_range = (20.0, 100.0)
    result = relaxation_map(series, mask, valid_range, noise_sigma=5.0)
    report = result.report
    assert report.n_voxels == 3600
    assert report.n_above_range == 900
    assert report.n_below_range == 300
    assert report.n_poor_fit == 150
    assert report.n_valid == 3600 - 900 - 300 - 150
    assert report.noise_source == "given"
    assert np.nanmax(result.map_ms.array) == valid_range[1]  # clipped for display, and excluded
    assert np.nanmin(result.map_ms.array) == valid_range[0]
    assert not result.valid[0].any()
    assert np.nanmean(result.map_ms.array[result.valid]) == pytest.approx(35.0, abs=0.3)


def test_map_refuses_a_mask_on_another_grid() -> None:
    series = EchoSeries(np.ones((2, 4, 4, 4)), np.eye(4), (10.0, 20.0))
    with pytest.raises(ValueError, match=r"mask shape \(3, 4, 4\) does not match the echo series grid \(4, 4, 4\)"):
        relaxation_map(series, np.ones((3, 4, 4), dtype=bool), T2_RANGE_MS)
