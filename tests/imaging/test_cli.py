"""``mskcds phantom`` then ``mskcds inspect --json``, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data import REPO_ROOT


def _mskcds(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.slow
def test_phantom_then_inspect_reports_morphology_and_t2_geometry(tmp_path: Path) -> None:
    out = tmp_path / "p"
    made = _mskcds(
        "phantom", str(out), "--seed", "1", "--protocol", "dess-small", "--protocol", "t2-mese-small:slices=12"
    )
    assert made.returncode == 0, made.stderr
    assert (out / "truth.json").exists() and (out / "labels.nii.gz").exists()
    shown = _mskcds("inspect", str(out), "--json")
    assert shown.returncode == 0, shown.stderr
    acquisitions = json.loads(shown.stdout)["acquisitions"]
    morphology, t2 = acquisitions
    assert (morphology["role"], morphology["shape"], morphology["spacing_mm"]) == (
        "morphology",
        [40, 96, 96],
        [2.8, 1.4, 1.4],
    )
    assert (t2["role"], t2["shape"], t2["spacing_mm"]) == ("t2", [12, 80, 80], [10.0, 1.6, 1.6])
    assert t2["echo_times_ms"] == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0]
    assert morphology["echo_times_ms"] == [4.7, 27.9]
    assert {a["laterality"] for a in acquisitions} == {"right"} and {a["orientation"] for a in acquisitions} == {
        "sagittal"
    }
    table = _mskcds("inspect", str(out))
    assert table.returncode == 0 and "morphology" in table.stdout


def test_bad_protocol_override_exits_with_a_message(tmp_path: Path) -> None:
    result = _mskcds("phantom", str(tmp_path / "p"), "--protocol", "dess:matrx=256")
    assert result.returncode == 2
    assert "bad protocol override 'matrx=256' in 'dess:matrx=256'" in result.stderr
    assert "Traceback" not in result.stderr


def test_inspect_of_a_missing_path_exits_with_a_message(tmp_path: Path) -> None:
    missing = tmp_path / "a-folder-name-long-enough-to-pass-eighty-columns" / "[nowhere]"
    result = _mskcds("inspect", str(missing))
    assert result.returncode == 1
    # the whole path on one line, brackets and all: a user can copy it from the message
    assert f"{missing} does not exist" in result.stderr and "Traceback" not in result.stderr
