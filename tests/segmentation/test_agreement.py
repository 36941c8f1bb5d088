"""Bland–Altman and ICC(2,1) on data with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.segmentation.agreement import PanelData, bland_altman, bland_altman_figure, icc_a1, paired_icc

VALUES = np.array([2.1, 2.4, 1.8, 2.9, 2.2, 1.5, 2.6])


def test_perfect_agreement() -> None:
    stats = bland_altman(VALUES, VALUES)
    assert (stats.bias, stats.sd, stats.lower, stats.upper) == (0.0, 0.0, 0.0, 0.0)
    assert paired_icc(VALUES, VALUES) == pytest.approx(1.0)


def test_constant_offset_is_the_bias_and_lowers_absolute_agreement() -> None:
    stats = bland_altman(VALUES + 0.3, VALUES)
    assert stats.bias == pytest.approx(0.3)
    assert stats.sd == pytest.approx(0.0, abs=1e-12)
    icc = paired_icc(VALUES + 0.3, VALUES)
    assert icc is not None and 0.5 < icc < 1.0  # a consistency ICC would stay 1


def test_limits_of_agreement() -> None:
    differences = np.array([0.1, -0.2, 0.3, 0.0, -0.1])
    stats = bland_altman(VALUES[:5] + differences, VALUES[:5])
    assert stats.n == 5
    assert stats.bias == pytest.approx(0.02)
    assert stats.sd == pytest.approx(np.std(differences, ddof=1))
    assert stats.upper - stats.bias == pytest.approx(1.96 * stats.sd)
    assert stats.bias - stats.lower == pytest.approx(1.96 * stats.sd)


def test_icc_shrout_fleiss_table() -> None:
    """Shrout & Fleiss (1979), Table 2: 6 targets, 4 judges; ICC(2,1) = 0.29."""
    ratings = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    assert icc_a1(ratings) == pytest.approx(0.2898, abs=5e-4)


def test_undefined_and_invalid() -> None:
    assert icc_a1(np.ones((4, 2))) is None
    with pytest.raises(ValueError, match="at least two pairs"):
        bland_altman([1.0], [1.0])
    with pytest.raises(ValueError, match="differ in number"):
        bland_altman([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        paired_icc([1.0, np.nan], [1.0, 2.0])


def test_figure_is_written(tmp_path: Path) -> None:
    panels = [
        PanelData("thickness", "mm", "reference", VALUES + 0.1, VALUES, ["MT", "LT", "MT", "LT", "P", "P", "TrF"]),
        PanelData("bone volume", "mm3", "truth", [1000.0], [990.0], ["femur"]),
    ]
    path = bland_altman_figure(panels, tmp_path / "ba.png", "predicted")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
