"""`make run` needs only the Python install; `make test` also installs the test servers."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from app.settings import REPO_ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")

TEST_SERVER_STEPS = ("apt-get install", "npm ci")


def planned(target: str) -> str:
    """What `make -B TARGET` would run (every prerequisite considered out of date), without running it."""
    return subprocess.run(["make", "-n", "-B", target], cwd=REPO_ROOT, capture_output=True, text=True,
                          check=True).stdout


def test_run_needs_no_test_server() -> None:
    plan = planned("run")
    assert "mskcds demo" in plan and 'pip install -q -e ".[test]"' in plan
    assert not [step for step in TEST_SERVER_STEPS if step in plan]


def test_test_installs_the_test_servers() -> None:
    plan = planned("test")
    assert all(step in plan for step in TEST_SERVER_STEPS) and "pytest" in plan
