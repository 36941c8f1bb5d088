"""Render the msk-cds Helm chart offline (helm-python-sdk bundles the Helm v4 SDK) and read its manifests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import helm_python as helm
import yaml

from tests.data import REPO_ROOT

CHART_DIR = REPO_ROOT / "helm" / "msk-cds"
PRODUCTION_VALUES = CHART_DIR / "values-production-gpu.yaml"
RELEASE = "mskcds"
NAMESPACE = "clinical"
#: Oldest Kubernetes minor the chart supports (Chart.yaml kubeVersion) and the newest kubernetes-validate knows.
KUBE_VERSIONS = ("1.27", "1.37")
#: The values without a safe default: where the external PostgreSQL and Redis are.
MINIMAL_VALUES: dict[str, Any] = {
    "database": {"url": "postgresql+psycopg://mskcds:pw@db.example.org:5432/mskcds"},
    "redis": {"url": "redis://redis.example.org:6379/0"},
}


def production_values() -> dict[str, Any]:
    return yaml.safe_load(PRODUCTION_VALUES.read_text())


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Kubernetes object the chart renders for ``values`` (schema validated by Helm first)."""
    return [dict(doc) for doc in _render(json.dumps(values, sort_keys=True))]


@cache
def _render(values_json: str) -> tuple[dict[str, Any], ...]:
    with helm.Chart.load(CHART_DIR) as chart:
        manifests = chart.render(values=json.loads(values_json), name=RELEASE, namespace=NAMESPACE)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return tuple(docs)


def render_error(values: dict[str, Any]) -> str:
    """The message Helm fails with for ``values`` (raises AssertionError when it renders)."""
    with helm.Chart.load(CHART_DIR) as chart:
        try:
            chart.render(values=values, name=RELEASE, namespace=NAMESPACE)
        except helm.HelmError as error:
            return str(error)
    raise AssertionError(f"the chart rendered with {values}")


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    """The single object of ``kind`` (for ``component``: api / worker)."""
    found = [
        doc
        for doc in of_kind(docs, kind)
        if component is None or doc["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]
    assert len(found) == 1, f"expected one {kind} {component or ''}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(Deployment name, pod spec) of every Deployment."""
    for doc in of_kind(docs, "Deployment"):
        yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = (
            deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged
