"""Data flows one way: protocol -> service -> analysis -> imaging / segmentation / measurement / clinical ->
outputs. A lower layer importing a higher one (say, measurement importing a model) fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Imported by every layer: settings, logging, metrics, checksums, and the schemas defined once.
FOUNDATION = {"schemas", "app.settings", "app.log", "app.metrics", "app.checksums"}
#: What each layer may import besides the foundation (and itself).
ALLOWED: dict[str, set[str]] = {
    "schemas": set(),
    "cds_hooks": set(),
    "app.imaging": set(),
    "app.measurement": set(),
    "app.clinical": set(),
    "app.outputs": set(),
    "app.clients": set(),
    "app.segmentation": {"app.imaging", "app.measurement"},
    "app.analysis": {
        "app.clients",
        "app.imaging",
        "app.segmentation",
        "app.measurement",
        "app.clinical",
        "app.outputs",
    },
    "app.api": {"app.analysis", "app.clients", "app.clinical", "cds_hooks"},
}
LAYERS = sorted({*ALLOWED, *FOUNDATION, "app.demo", "app.cli"}, key=len, reverse=True)


def _layer(module: str) -> str | None:
    return next((layer for layer in LAYERS if module == layer or module.startswith(layer + ".")), None)


def _imports(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_is_below_it(layer: str) -> None:
    folder = ROOT.joinpath(*layer.split("."))
    allowed = ALLOWED[layer] | FOUNDATION | {layer}
    if layer == "schemas":
        allowed = {layer}
    wrong = sorted(
        f"{path.relative_to(ROOT)} imports {module}"
        for path in folder.rglob("*.py")
        for module in _imports(path)
        if _layer(module) not in allowed | {None}
    )
    assert not wrong, "\n".join(wrong)


def test_measurement_knows_nothing_but_schemas() -> None:
    """The paper's separation: any model's label map goes in, so measurement imports no project layer."""
    modules = {m for path in (ROOT / "app" / "measurement").rglob("*.py") for m in _imports(path)}
    assert {_layer(m) for m in modules} <= {None, "schemas", "app.measurement"}
