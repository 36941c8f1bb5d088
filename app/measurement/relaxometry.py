"""Voxel-wise mono-exponential relaxometry: T2 (multi-echo spin echo, or the two DESS echoes) and T1rho.

Model: a voxel's magnitude at echo / spin-lock time ``t`` is ``S(t) = S0 exp(-t / T)``.

How it is fitted, for all voxels at once (numpy, no per-voxel Python loop):

1. **Noise floor.** Magnitude images carry Rician noise: where the signal has decayed to a few times
   the noise, the magnitude stops falling and a plain exponential fit overestimates ``T`` (the bias
   grows with ``T`` and with later echoes). Rather than dropping late echoes (which wastes data and
   selects on noisy values), the fit uses the exact second moment of the Rician distribution,
   ``E[M^2] = S^2 + 2 sigma^2``: it fits ``M^2`` with ``S0^2 exp(-2t/T) + 2 sigma^2``, which is unbiased in
   expectation at any SNR. ``sigma`` is measured where it matters, in the fitted tissue itself, from a
   first fit's residuals (:func:`residual_noise_sigma`; parallel imaging makes noise vary across the
   image, so the air around the knee can mislead), and from the air only when two time points leave no
   residuals (:func:`estimate_noise_sigma`, e.g. DESS).
2. **Start.** A log-linear fit of the noise-corrected magnitudes, weighted by signal^2 (the variance of
   ``log M`` is ``sigma^2 / M^2``), gives ``S0`` and ``T`` in closed form.
3. **Refinement.** Levenberg-Marquardt on the squared-magnitude model, each step solving every voxel's
   2x2 normal equations in closed form; residuals are weighted by the inverse variance of ``M^2``
   (``~ 4 sigma^2 (S^2 + sigma^2)``).
4. **Goodness of fit.** A voxel whose magnitude residuals are larger than twice the noise (RMS) is not
   described by one exponential (partial volume with fluid or fat, motion, flow) and is excluded from
   regional statistics; without a noise estimate, residuals above 10 % of ``S0`` are.
5. **Physiological range.** Values outside the range for the tissue are clipped in the map (so it can
   be displayed) and excluded from regional statistics. Every exclusion is counted in
   :class:`FitReport`; nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.special import gammaincinv

from schemas.volume import EchoSeries, Volume

#: Where a fit's noise level came from: passed in, the image background, the tissue's fit residuals, or
#: nowhere (no background, two time points: no correction).
NoiseSource = Literal["given", "background", "residuals", "none"]

#: Physiological range (ms) of cartilage relaxation times; outside it a fit is not a cartilage value.
T2_RANGE_MS = (1.0, 100.0)
T1RHO_RANGE_MS = (1.0, 150.0)
#: Fewest background voxels from which the noise level is estimated.
_MIN_BACKGROUND_VOXELS = 1000
#: E[M^2 | M < 3 sigma] / sigma^2 for Rayleigh-distributed M.
_TRUNCATED_RAYLEIGH_SECOND_MOMENT = 2 * (1 - 5.5 * np.exp(-4.5)) / (1 - np.exp(-4.5))
#: Levenberg-Marquardt iterations (converges in 3-5 from the log-linear start).
_ITERATIONS = 8
#: Residual RMS above this multiple of the noise marks a poor fit.
POOR_FIT_NOISE_MULTIPLE = 2.0
#: Without a noise estimate, residual RMS above this fraction of S0 marks a poor fit.
POOR_FIT_RELATIVE = 0.1


@dataclass(frozen=True)
class FitReport:
    """What happened to the voxels of one relaxation map."""

    n_voxels: int  # voxels fitted (inside the mask)
    n_poor_fit: int  # excluded: an exponential does not describe them
    n_below_range: int  # excluded and clipped: below the physiological range
    n_above_range: int  # excluded and clipped: above the physiological range
    noise_sigma: float  # noise level the fit corrected for
    noise_source: NoiseSource  # where it came from

    @property
    def n_valid(self) -> int:
        return self.n_voxels - self.n_poor_fit - self.n_below_range - self.n_above_range


@dataclass(frozen=True)
class RelaxationMap:
    """A fitted relaxation-time map on the echo series' grid."""

    map_ms: Volume  # float32; NaN outside the mask; clipped to the physiological range
    valid: NDArray[np.bool_]  # voxels that count in regional statistics
    report: FitReport


@dataclass(frozen=True)
class ExponentialFit:
    s0: NDArray[np.float64]
    time_constant_ms: NDArray[np.float64]
    residual_rms: NDArray[np.float64]  # RMS of magnitude residuals


def estimate_noise_sigma(series: EchoSeries) -> float | None:
    """Noise standard deviation from the air around the body, or None when there is no clean air region.

    In air a magnitude image is Rayleigh-distributed: ``E[M^2] = 2 sigma^2`` and ``P(M < sigma) = 0.39``.
    Starting from the darkest 5 % of the non-zero voxels of the first volume (scanners often set the
    region outside the body exactly to 0, which carries no noise information), the estimate is refined
    on the voxels below three times it (second moment of the Rayleigh distribution truncated there,
    ``1.899 sigma^2``) until it settles; the result is accepted only if those voxels have the Rayleigh
    shape (between 34 % and 45 % of them below ``sigma``) and are at least 1 % of the image.
    """
    values = series.array[0].astype(np.float64).ravel()
    values = values[values > 0]
    if len(values) < _MIN_BACKGROUND_VOXELS:
        return None
    sigma = float(np.percentile(values, 5)) / np.sqrt(2 * np.log(2))  # Rayleigh median = 1.177 sigma
    for _ in range(20):
        background = values[values < 3 * sigma]
        if len(background) < max(_MIN_BACKGROUND_VOXELS, 0.01 * len(values)):
            return None
        updated = float(np.sqrt(np.mean(background**2) / _TRUNCATED_RAYLEIGH_SECOND_MOMENT))
        converged = abs(updated - sigma) <= 1e-3 * sigma
        sigma = updated
        if converged:
            break
    below = float(np.mean(background < sigma))
    return sigma if 0.34 <= below <= 0.45 else None


def residual_noise_sigma(fit: ExponentialFit, n_times: int) -> float | None:
    """Noise standard deviation from the fit residuals of the tissue itself (robust median), if it has any.

    With ``k = n_times - 2`` degrees of freedom, ``n_times * RMS^2 / sigma^2`` follows a chi-square
    distribution with ``k`` degrees of freedom; its median, not its mean, is used so that voxels the
    model does not describe (partial volume) cannot inflate the estimate.
    """
    dof = n_times - 2
    if dof < 1 or not len(fit.residual_rms):
        return None
    median = float(np.median(n_times * fit.residual_rms**2 / dof))
    chi2_median = 2.0 * float(gammaincinv(dof / 2.0, 0.5))  # median of the chi-square distribution
    return float(np.sqrt(median / (chi2_median / dof)))


def fit_monoexponential(
    signal: NDArray[np.floating], times_ms: NDArray[np.floating] | tuple[float, ...], noise_sigma: float = 0.0
) -> ExponentialFit:
    """Fit ``S0 exp(-t/T)`` to each row of ``signal`` (shape ``(n_voxels, n_times)``); see the module docstring."""
    y = np.asarray(signal, dtype=np.float64)
    t = np.asarray(times_ms, dtype=np.float64)
    noise_power = 2.0 * noise_sigma**2
    squared = y**2

    # Log-linear start on noise-corrected magnitudes, weighted by signal^2.
    corrected = np.sqrt(np.maximum(squared - noise_power, (0.1 * max(noise_sigma, 1e-6)) ** 2 + 1e-12))
    w = corrected**2
    log_y = np.log(corrected)
    sw, swt, swtt = w.sum(1), (w * t).sum(1), (w * t * t).sum(1)
    swy, swty = (w * log_y).sum(1), (w * t * log_y).sum(1)
    determinant = sw * swtt - swt**2
    slope = (sw * swty - swt * swy) / np.where(determinant > 0, determinant, 1.0)
    rate = np.clip(-slope, 1e-4, 1.0)  # 1/ms: T between 1 ms and 10 s
    s0 = np.exp((swy + rate * swt) / np.maximum(sw, 1e-12))

    # Levenberg-Marquardt on M^2 = S0^2 exp(-2 R t) + 2 sigma^2, weights 1 / var(M^2).
    damping = np.full(len(y), 1e-3)

    def cost(s0_: NDArray, rate_: NDArray, weights: NDArray) -> NDArray:
        model = s0_[:, None] ** 2 * np.exp(-2 * rate_[:, None] * t) + noise_power
        return (weights * (squared - model) ** 2).sum(1)

    for _ in range(_ITERATIONS):
        decay = np.exp(-2 * rate[:, None] * t)
        model = s0[:, None] ** 2 * decay + noise_power
        weights = 1.0 / (s0[:, None] ** 2 * decay + noise_sigma**2 + 1e-12)
        residual = squared - model
        j_s0 = 2 * s0[:, None] * decay
        j_rate = -2 * t * s0[:, None] ** 2 * decay
        a11 = (weights * j_s0 * j_s0).sum(1)
        a12 = (weights * j_s0 * j_rate).sum(1)
        a22 = (weights * j_rate * j_rate).sum(1)
        b1 = (weights * j_s0 * residual).sum(1)
        b2 = (weights * j_rate * residual).sum(1)
        a11d, a22d = a11 * (1 + damping), a22 * (1 + damping)
        det = a11d * a22d - a12**2
        det = np.where(np.abs(det) > 1e-300, det, 1e-300)
        step_s0 = (a22d * b1 - a12 * b2) / det
        step_rate = (a11d * b2 - a12 * b1) / det
        new_s0 = np.maximum(s0 + step_s0, 1e-12)
        new_rate = np.clip(rate + step_rate, 1e-4, 1.0)
        better = cost(new_s0, new_rate, weights) < cost(s0, rate, weights)
        s0 = np.where(better, new_s0, s0)
        rate = np.where(better, new_rate, rate)
        damping = np.where(better, damping / 10, damping * 10)

    expected = np.sqrt(s0[:, None] ** 2 * np.exp(-2 * rate[:, None] * t) + noise_power)
    residual_rms = np.sqrt(((y - expected) ** 2).mean(1))
    return ExponentialFit(s0, 1.0 / rate, residual_rms)


def relaxation_map(
    series: EchoSeries, mask: NDArray[np.bool_], valid_range_ms: tuple[float, float], noise_sigma: float | None = None
) -> RelaxationMap:
    """Fit every voxel of ``mask`` (on the series' grid) and sort out the ones that cannot count."""
    if mask.shape != series.array.shape[1:]:
        raise ValueError(f"mask shape {mask.shape} does not match the echo series grid {series.array.shape[1:]}")
    signal = series.array[:, mask].T
    source: NoiseSource = "given"
    sigma = noise_sigma
    if sigma is None:
        first_pass = fit_monoexponential(signal, series.times_ms)
        sigma, source = residual_noise_sigma(first_pass, len(series.times_ms)), "residuals"
    if sigma is None:
        sigma, source = estimate_noise_sigma(series), "background"
    if sigma is None:
        sigma, source = 0.0, "none"
    fit = fit_monoexponential(signal, series.times_ms, sigma)
    if len(fit.s0) and sigma > 1e-6 * float(np.median(fit.s0)):
        poor = fit.residual_rms > POOR_FIT_NOISE_MULTIPLE * sigma
    else:
        poor = fit.residual_rms > POOR_FIT_RELATIVE * fit.s0
    low, high = valid_range_ms
    below = ~poor & (fit.time_constant_ms < low)
    above = ~poor & (fit.time_constant_ms > high)
    values = np.full(mask.shape, np.nan, dtype=np.float32)
    values[mask] = np.clip(fit.time_constant_ms, low, high)
    valid = np.zeros(mask.shape, dtype=bool)
    valid[mask] = ~(poor | below | above)
    report = FitReport(int(mask.sum()), int(poor.sum()), int(below.sum()), int(above.sum()), float(sigma), source)
    return RelaxationMap(Volume(values, series.affine), valid, report)
