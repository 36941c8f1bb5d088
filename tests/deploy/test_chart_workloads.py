"""What the rendered workloads promise: hardened pods, probes on the agreed endpoints, GPUs for workers,
TLS-only ingress of the CDS Hooks paths, and egress limited to what was configured."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.chart import MINIMAL_VALUES, deep_merge, of_kind, one, pod_specs, production_values, render


@pytest.fixture(params=["minimal", "production"])
def docs(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(MINIMAL_VALUES if request.param == "minimal" else production_values())


def _container(docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    (container,) = one(docs, "Deployment", component)["spec"]["template"]["spec"]["containers"]
    return container


def test_pods_are_hardened(docs: list[dict[str, Any]]) -> None:
    for name, spec in pod_specs(docs):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == 10001, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        assert "hostNetwork" not in spec and "hostPID" not in spec, name
        assert all("hostPath" not in volume for volume in spec["volumes"]), name
        for container in spec["containers"]:
            assert container["securityContext"] == {
                "runAsNonRoot": True,
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "privileged": False,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            }, name


def test_writable_paths_are_empty_dirs(docs: list[dict[str, Any]]) -> None:
    """A read-only root file system needs emptyDir volumes where the processes write."""
    for name, spec in pod_specs(docs):
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        mounts = {mount["mountPath"]: mount["name"] for mount in spec["containers"][0]["volumeMounts"]}
        for path in ("/tmp", "/var/cache/mskcds"):
            assert "emptyDir" in volumes[mounts[path]], (name, path)


def test_secrets_arrive_as_files_never_as_environment(docs: list[dict[str, Any]]) -> None:
    configmap = one(docs, "ConfigMap")
    secrets_dir = configmap["data"]["MSKCDS_SECRETS_DIR"]
    for name, spec in pod_specs(docs):
        container = spec["containers"][0]
        assert "env" not in container, name
        assert container["envFrom"] == [{"configMapRef": {"name": configmap["metadata"]["name"]}}], name
        mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
        assert mounts["secrets"] == {"name": "secrets", "mountPath": secrets_dir, "readOnly": True}, name
        (secret_volume,) = [volume for volume in spec["volumes"] if volume["name"] == "secrets"]
        assert secret_volume["secret"]["defaultMode"] == 0o440


def test_api_probes_and_command(docs: list[dict[str, Any]]) -> None:
    container = _container(docs, "api")
    assert container["args"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}


def test_worker_probes_metrics_and_gpu(docs: list[dict[str, Any]]) -> None:
    container = _container(docs, "worker")
    metrics_port = int(one(docs, "ConfigMap")["data"]["MSKCDS_WORKER_METRICS_PORT"])
    assert container["args"] == ["worker"]
    assert container["ports"] == [{"name": "metrics", "containerPort": metrics_port, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 1
    spec = one(docs, "Deployment", "worker")["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert spec["terminationGracePeriodSeconds"] == 600
    shm = {volume["name"]: volume for volume in spec["volumes"]}["dshm"]
    assert shm["emptyDir"]["medium"] == "Memory"


def test_api_needs_no_gpu_and_autoscales_on_cpu(docs: list[dict[str, Any]]) -> None:
    container = _container(docs, "api")
    assert not any("gpu" in name for name in container["resources"].get("limits", {}))
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == one(docs, "Deployment", "api")["metadata"]["name"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "replicas" not in one(docs, "Deployment", "api")["spec"], "the HPA owns the replica count"


def test_gpu_scheduling_values_reach_the_worker() -> None:
    docs = render(production_values())
    spec = one(docs, "Deployment", "worker")["spec"]["template"]["spec"]
    assert spec["runtimeClassName"] == "nvidia"
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["key"] == "nvidia.com/gpu.memory"
    two_gpus = render(
        deep_merge(MINIMAL_VALUES, {"worker": {"gpu": {"count": 2, "resourceName": "nvidia.com/mig-3g.40gb"}}})
    )
    limits = _container(two_gpus, "worker")["resources"]["limits"]
    assert limits == {"memory": "16Gi", "nvidia.com/mig-3g.40gb": 2}


def test_config_changes_roll_the_pods() -> None:
    before = one(render(MINIMAL_VALUES), "Deployment", "api")["spec"]["template"]["metadata"]["annotations"]
    changed = render(deep_merge(MINIMAL_VALUES, {"config": {"logLevel": "DEBUG"}}))
    after = one(changed, "Deployment", "api")["spec"]["template"]["metadata"]["annotations"]
    assert before["checksum/config"] != after["checksum/config"]
    assert before["checksum/secret"] == after["checksum/secret"]


def test_ingress_publishes_only_cds_services_over_tls() -> None:
    ingress = one(render(production_values()), "Ingress")
    assert ingress["spec"]["tls"] == [{"secretName": "mskcds-tls", "hosts": ["cds.hospital.example.org"]}]
    (rule,) = ingress["spec"]["rules"]
    assert [path["path"] for path in rule["http"]["paths"]] == ["/cds-services"]
    assert rule["http"]["paths"][0]["backend"]["service"]["port"] == {"name": "http"}


def test_network_policies_allow_dns_and_the_configured_endpoints_only() -> None:
    values = production_values()
    docs = render(values)
    policies = {doc["metadata"]["labels"]["app.kubernetes.io/component"]: doc for doc in of_kind(docs, "NetworkPolicy")}
    egress = values["networkPolicy"]["egress"]
    dns_ports = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    expected = {
        "api": egress["database"] + egress["redis"] + egress["fhir"] + egress["dicomweb"] + egress["jwks"],
        "worker": egress["database"] + egress["fhir"] + egress["dicomweb"],
    }
    for component, policy in policies.items():
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        dns, *rest = policy["spec"]["egress"]
        assert dns["ports"] == dns_ports
        assert rest == expected[component], component
    monitoring = values["networkPolicy"]["metricsFrom"]
    assert policies["worker"]["spec"]["ingress"] == [
        {"ports": [{"port": "metrics", "protocol": "TCP"}], "from": monitoring}
    ]
    assert policies["api"]["spec"]["ingress"] == [
        {"ports": [{"port": "http", "protocol": "TCP"}], "from": values["networkPolicy"]["apiFrom"]},
        {"ports": [{"port": "http", "protocol": "TCP"}], "from": monitoring},
    ]


def test_image_digest_wins_over_tag() -> None:
    digest = "sha256:" + "a" * 64
    docs = render(deep_merge(MINIMAL_VALUES, {"image": {"worker": {"digest": digest}}}))
    assert _container(docs, "worker")["image"] == f"registry.example.org/msk-cds/worker@{digest}"
    assert _container(docs, "api")["image"] == "registry.example.org/msk-cds/api:0.1.0"


def test_models_volume_mounts_over_the_model_dir() -> None:
    docs = render(
        deep_merge(MINIMAL_VALUES, {"models": {"volume": {"persistentVolumeClaim": {"claimName": "mskcds-models"}}}})
    )
    model_dir = one(docs, "ConfigMap")["data"]["MSKCDS_MODEL_DIR"]
    for name, spec in pod_specs(docs):
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        assert volumes["models"] == {"name": "models", "persistentVolumeClaim": {"claimName": "mskcds-models"}}, name
        mount = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}["models"]
        assert mount == {"name": "models", "mountPath": model_dir, "readOnly": True}, name
