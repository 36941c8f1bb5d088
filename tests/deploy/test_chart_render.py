"""The chart renders, lints and validates offline against the Kubernetes API schemas."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest

from tests.deploy.chart import (
    CHART_DIR,
    KUBE_VERSIONS,
    MINIMAL_VALUES,
    NAMESPACE,
    of_kind,
    one,
    production_values,
    render,
)

#: Custom resources: kubernetes-validate ships no schema for them; they are checked structurally below.
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
}


def _values(name: str) -> dict[str, Any]:
    return MINIMAL_VALUES if name == "minimal" else production_values()


def _kinds(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(f"{doc['kind']}/{doc['metadata']['name']}" for doc in docs)


def test_minimal_values_render_the_core_objects() -> None:
    assert _kinds(render(MINIMAL_VALUES)) == [
        "ConfigMap/mskcds-msk-cds",
        "Deployment/mskcds-msk-cds-api",
        "Deployment/mskcds-msk-cds-worker",
        "HorizontalPodAutoscaler/mskcds-msk-cds-api",
        "PodDisruptionBudget/mskcds-msk-cds-api",
        "PodDisruptionBudget/mskcds-msk-cds-worker",
        "Secret/mskcds-msk-cds",
        "Service/mskcds-msk-cds-api",
        "Service/mskcds-msk-cds-worker-metrics",
        "ServiceAccount/mskcds-msk-cds",
    ]


def test_production_values_render_every_optional_object() -> None:
    kinds = _kinds(render(production_values()))
    # existingSecret: the chart renders no Secret of its own.
    assert "Secret/mskcds-msk-cds" not in kinds
    for expected in (
        "Ingress/mskcds-msk-cds-api",
        "NetworkPolicy/mskcds-msk-cds-api",
        "NetworkPolicy/mskcds-msk-cds-worker",
        "ScaledObject/mskcds-msk-cds-worker",
        "TriggerAuthentication/mskcds-msk-cds-worker",
        "ServiceMonitor/mskcds-msk-cds-api",
        "ServiceMonitor/mskcds-msk-cds-worker",
    ):
        assert expected in kinds


@pytest.mark.parametrize("values_name", ["minimal", "production"])
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(values_name: str, kube_version: str) -> None:
    validated = 0
    for doc in render(_values(values_name)):
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            continue
        try:
            # strict: unknown fields (a typo such as `readinessprobe`) fail too.
            kubernetes_validate.validate(doc, kube_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = f"{doc['kind']}/{doc['metadata']['name']}: " + ".".join(map(str, error.path))
            pytest.fail(f"invalid for Kubernetes {kube_version}: {where}: {error.message}")
        validated += 1
    assert validated >= 10


def test_kubernetes_validate_catches_a_wrong_field() -> None:
    """The validator above is not vacuous: a misspelt probe field fails it."""
    deployment = one(render(MINIMAL_VALUES), "Deployment", "api")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    broken = {
        **deployment,
        "spec": {
            **deployment["spec"],
            "template": {
                **deployment["spec"]["template"],
                "spec": {**deployment["spec"]["template"]["spec"], "containers": [{**container, "readinessprobe": {}}]},
            },
        },
    }
    with pytest.raises(kubernetes_validate.ValidationError, match="readinessprobe"):
        kubernetes_validate.validate(broken, KUBE_VERSIONS[0], strict=True)


@pytest.mark.parametrize("values_name", ["minimal", "production"])
def test_helm_lint_is_clean(values_name: str) -> None:
    report = helm.lint(CHART_DIR, values=_values(values_name), strict=True, namespace=NAMESPACE, kube_version="v1.30.0")
    problems = [message for message in report["messages"] if message["severity"] >= 2]  # warnings and errors
    assert report["errors"] == [] and problems == []


def test_service_monitors_select_the_services_and_name_their_ports() -> None:
    docs = render(production_values())
    services = of_kind(docs, "Service")
    for monitor in of_kind(docs, "ServiceMonitor"):
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        selected = [
            service
            for service in services
            if monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, monitor["metadata"]["name"]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] in {port["name"] for port in selected[0]["spec"]["ports"]}


def test_keda_scales_the_worker_deployment_on_the_job_table() -> None:
    docs = render(production_values())
    scaled = one(docs, "ScaledObject")
    worker = one(docs, "Deployment", "worker")
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": worker["metadata"]["name"],
    }
    assert "replicas" not in worker["spec"], "KEDA owns the replica count"
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 8)
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    assert trigger["metadata"] == {
        "query": "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')",
        "targetQueryValue": "2",
        "activationTargetQueryValue": "0",
    }
    auth = one(docs, "TriggerAuthentication")
    assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "connection", "name": "mskcds-keda-postgresql", "key": "connection"}
    ]


def test_keda_prometheus_trigger() -> None:
    values = production_values()
    values["worker"]["keda"]["trigger"] = "prometheus"
    docs = render(values)
    assert of_kind(docs, "TriggerAuthentication") == []
    (trigger,) = one(docs, "ScaledObject")["spec"]["triggers"]
    assert trigger == {
        "type": "prometheus",
        "metadata": {
            "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
            "query": "sum(max by (status) (mskcds_analysis_queue_depth))",
            "threshold": "2",
            "activationThreshold": "0",
        },
    }
