"""``mskcds demo`` (``make run``) start to end: in-progress card, then the triage and risk cards.

The real service, worker, analyzer (``MSKCDS_ANALYZER`` default) and models; only the demo study is the
small test variant of the phantom, so the test runs in CPU minutes rather than the full study's.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import app.demo.run as demo_run
from app.cli import cli
from app.imaging.phantom import SMALL_PROTOCOLS

pytestmark = pytest.mark.slow


def test_demo_shows_in_progress_then_triage_and_risk_cards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_run, "PHANTOM_PROTOCOLS", SMALL_PROTOCOLS[:2])  # DESS + T2, as the demo's own
    monkeypatch.setenv("COLUMNS", "200")  # rich: one card summary per line
    result = CliRunner().invoke(cli, ["demo", "--no-keep-serving", "--timeout", "600"])
    assert result.exit_code == 0, result.output + str(result.exception)
    first, _, after = result.stdout.partition("order-sign, after the analysis (HTTP 200)")
    assert "order-sign, first call (HTTP 200)" in first
    assert "Knee MRI analysis in progress; triage and risk will show on the next call" in first
    assert "Knee MRI triage: " in after and "(right knee, " in after
    assert "OA risk within" in after and "TKR risk within" in after
    assert "analysis failed" not in after.lower() and "could not be analysed" not in after
