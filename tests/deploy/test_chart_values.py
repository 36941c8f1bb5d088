"""values.schema.json and the templates' own checks refuse bad values at install time, with a clear message."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.chart import MINIMAL_VALUES, deep_merge, one, production_values, render, render_error


def _schema_error(override: dict[str, Any]) -> str:
    return render_error(deep_merge(MINIMAL_VALUES, override))


def test_replicas_must_be_an_integer() -> None:
    assert "at '/api/replicas': got string, want integer" in _schema_error({"api": {"replicas": "three"}})
    assert "at '/worker/replicas': got string, want integer" in _schema_error({"worker": {"replicas": "three"}})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"unknownKey": 1}, "at '': additional properties 'unknownKey' not allowed"),
        ({"api": {"replica": 3}}, "at '/api': additional properties 'replica' not allowed"),
        ({"api": {"replicas": 0}}, "at '/api/replicas': minimum: got 0, want 1"),
        (
            {"image": {"pullPolicy": "Sometimes"}},
            "at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'",
        ),
        ({"image": {"api": {"digest": "sha256:abc"}}}, "at '/image/api/digest': 'sha256:abc' does not match pattern"),
        (
            {"config": {"logLevel": "TRACE"}},
            "at '/config/logLevel': value must be one of 'DEBUG', 'INFO', 'WARNING', 'ERROR'",
        ),
        (
            {"config": {"publicBaseUrl": "cds.example.org"}},
            "at '/config/publicBaseUrl': 'cds.example.org' does not match pattern",
        ),
        (
            {"config": {"fhirAllowlist": ["fhir.example.org"]}},
            "at '/config/fhirAllowlist/0': 'fhir.example.org' does not match pattern",
        ),
        (
            {"config": {"cdsClients": [{"iss": "https://ehr.example.org"}]}},
            "at '/config/cdsClients/0': 'oneOf' failed, none matched",
        ),
        ({"config": {"extraEnv": {"DEBUG": "1"}}}, "'DEBUG' does not match pattern '^MSKCDS_[A-Z0-9_]+$'"),
        ({"database": {"url": "mysql://db/mskcds"}}, "at '/database/url': 'mysql://db/mskcds' does not match pattern"),
        ({"securityContext": {"runAsUser": 0}}, "at '/securityContext/runAsUser': 'oneOf' failed, none matched"),
        ({"worker": {"gpu": {"count": 0}}}, "at '/worker/gpu/count': minimum: got 0, want 1"),
        (
            {"worker": {"keda": {"trigger": "redis"}}},
            "at '/worker/keda/trigger': value must be one of 'postgresql', 'prometheus'",
        ),
        ({"api": {"podDisruptionBudget": {"maxUnavailable": 1}}}, "at '/api/podDisruptionBudget': 'not' failed"),
        ({"ingress": {"enabled": True}}, "at '/ingress/tls': minItems: got 0, want 1"),
        ({"networkPolicy": {"enabled": True}}, "at '/networkPolicy/egress/database': minItems: got 0, want 1"),
        ({"serviceMonitor": {"interval": "often"}}, "at '/serviceMonitor/interval': 'often' does not match pattern"),
    ],
)
def test_schema_refuses(override: dict[str, Any], message: str) -> None:
    assert message in _schema_error(override)


def test_the_database_is_required() -> None:
    assert (
        "database.url is required: msk-cds keeps its results and job queue in an external PostgreSQL"
        in render_error({})
    )


def test_a_shared_replay_cache_is_required_with_several_api_replicas() -> None:
    without_redis = {"database": MINIMAL_VALUES["database"]}
    message = render_error(without_redis)
    assert "redis.url is required when the API can run more than one replica" in message
    single = deep_merge(without_redis, {"api": {"replicas": 1, "autoscaling": {"enabled": False}}})
    assert "mskcds_replay_cache_url" not in one(render(single), "Secret")["stringData"]
    assert "at '/redis/url': 'memcached://cache' does not match pattern" in _schema_error(
        {"redis": {"url": "memcached://cache"}}
    )


def test_the_database_url_is_given_once() -> None:
    message = render_error(deep_merge(MINIMAL_VALUES, {"secrets": {"existingSecret": "mskcds-credentials"}}))
    assert "database.url and secrets.existingSecret are exclusive" in message


def test_autoscaling_bounds_are_ordered() -> None:
    message = _schema_error({"api": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}})
    assert "api.autoscaling.minReplicas must not exceed api.autoscaling.maxReplicas" in message
    values = production_values()
    values["worker"]["keda"].update(minReplicaCount=9, maxReplicaCount=8)
    assert "worker.keda.minReplicaCount must not exceed worker.keda.maxReplicaCount" in render_error(values)


def test_keda_postgresql_trigger_needs_a_connection_secret() -> None:
    values = production_values()
    values["worker"]["keda"]["postgresql"]["connectionSecret"]["name"] = ""
    assert "worker.keda.postgresql.connectionSecret.name is required" in render_error(values)
