"""Agreement of paired biomarker values: Bland–Altman limits and the intraclass correlation ICC(2,1).

Two questions a reader of a segmentation evaluation asks, answered the way the source paper and the
cartilage morphometry literature answer them:

- *By how much do they differ?* Bland & Altman (Lancet 1986): differences ``method - comparison``, their
  mean (bias), SD and 95 % limits of agreement ``bias +- 1.96 SD``.
- *Are subjects ranked and scaled alike?* ICC(2,1) of Shrout & Fleiss (1979), which McGraw & Wong (1996)
  call ICC(A,1): two-way random effects, absolute agreement, single measurement. Absolute agreement
  means a constant offset between the methods lowers it (a consistency ICC, ICC(3,1), would not), which
  is what matters when a biomarker is read against a fixed threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

#: 97.5th percentile of the standard normal: the limits cover 95 % of differences.
Z_95 = 1.96


@dataclass(frozen=True)
class BlandAltman:
    """Bias and 95 % limits of agreement of ``method - comparison``."""

    n: int
    bias: float
    sd: float
    lower: float
    upper: float


def bland_altman(method: ArrayLike, comparison: ArrayLike) -> BlandAltman:
    """Bland–Altman statistics of paired values (the SD with n - 1 degrees of freedom).

    Raises:
        ValueError: unequal lengths, non-finite values, or fewer than two pairs (no SD).
    """
    a, b = _pairs(method, comparison)
    difference = a - b
    bias = float(difference.mean())
    sd = float(difference.std(ddof=1))
    return BlandAltman(len(a), bias, sd, bias - Z_95 * sd, bias + Z_95 * sd)


def icc_a1(ratings: ArrayLike) -> float | None:
    """ICC(2,1) / ICC(A,1) of an (n subjects, k raters) table; ``None`` when undefined.

    ``(MSR - MSE) / (MSR + (k - 1) MSE + k (MSC - MSE) / n)`` with the two-way ANOVA mean squares of
    rows (subjects), columns (raters) and error. Undefined (None) when every value is the same (0 / 0).

    Raises:
        ValueError: not a 2D table of finite values with at least two rows and two columns.
    """
    table = np.asarray(ratings, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] < 2 or table.shape[1] < 2 or not np.isfinite(table).all():
        raise ValueError(f"ICC needs a finite (subjects, raters) table of at least 2 x 2, got shape {table.shape}")
    n, k = table.shape
    grand = table.mean()
    ss_rows = k * float(((table.mean(axis=1) - grand) ** 2).sum())
    ss_cols = n * float(((table.mean(axis=0) - grand) ** 2).sum())
    ss_error = float(((table - grand) ** 2).sum()) - ss_rows - ss_cols
    msr, msc = ss_rows / (n - 1), ss_cols / (k - 1)
    mse = max(ss_error, 0.0) / ((n - 1) * (k - 1))  # rounding can leave -1e-16 for a perfect fit
    denominator = msr + (k - 1) * mse + k * (msc - mse) / n
    if denominator <= 0:
        return None
    return (msr - mse) / denominator


def paired_icc(method: ArrayLike, comparison: ArrayLike) -> float | None:
    """ICC(2,1) of two methods measuring the same subjects."""
    a, b = _pairs(method, comparison)
    return icc_a1(np.column_stack([a, b]))


def _pairs(method: ArrayLike, comparison: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(method, dtype=np.float64).ravel()
    b = np.asarray(comparison, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in number: {a.size} and {b.size}")
    if a.size < 2:
        raise ValueError(f"agreement needs at least two pairs, got {a.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("paired values must be finite")
    return a, b


@dataclass(frozen=True)
class PanelData:
    """One Bland–Altman panel: pairs of a biomarker group, coloured by region."""

    title: str
    unit: str
    versus: str  # what the method is compared with, for the axis label
    method: Sequence[float]
    comparison: Sequence[float]
    regions: Sequence[str]


def bland_altman_figure(panels: Sequence[PanelData], path: Path, method_name: str) -> Path:
    """A PNG with one Bland–Altman panel per group (difference against mean, bias and limits drawn).

    Panels with fewer than two pairs show their points and say that no limits can be drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, max(1, len(panels)))
    rows = -(-max(1, len(panels)) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5.0 * columns, 4.2 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        a = np.asarray(panel.method, dtype=np.float64)
        b = np.asarray(panel.comparison, dtype=np.float64)
        regions = np.asarray(panel.regions)
        for region in dict.fromkeys(panel.regions):
            here = regions == region
            ax.scatter((a[here] + b[here]) / 2, a[here] - b[here], s=18, label=region)
        if len(a) >= 2:
            stats = bland_altman(a, b)
            ax.axhline(stats.bias, color="black", lw=1.2, label=f"bias {stats.bias:+.3g}")
            for limit in (stats.lower, stats.upper):
                ax.axhline(limit, color="grey", ls="--", lw=1.0)
            ax.set_title(f"{panel.title}\nLoA {stats.lower:+.3g} .. {stats.upper:+.3g} {panel.unit} (n={stats.n})")
        else:
            ax.set_title(f"{panel.title}\n(n={len(a)}: no limits of agreement)")
        ax.axhline(0.0, color="lightgrey", lw=0.8, zorder=0)
        ax.set_xlabel(f"mean of the two ({panel.unit})")
        ax.set_ylabel(f"{method_name} - {panel.versus} ({panel.unit})")
        ax.legend(fontsize=7, loc="best")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
