"""The Helm chart in helm/conveyor: it renders, lints and validates for the main value sets.

Rendering runs Helm's own engine offline (no cluster); every rendered manifest is checked
against the Kubernetes 1.30 schemas, except the KEDA and Prometheus Operator resources,
whose required fields are checked here by hand.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

helm = pytest.importorskip("helm_python")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

from conveyor.config import CONFIG_ENV, SETTINGS_SPECS  # noqa: E402

CHART = Path(__file__).resolve().parents[2] / "helm" / "conveyor"
KUBE_VERSION = "1.30.0"
RELEASE = "rel"
NAMESPACE = "jobs"
CRD_KINDS = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}
REAL_ENV = {spec.env for spec in SETTINGS_SPECS} | {CONFIG_ENV}
SHUTDOWN_GRACE_MARGIN = 15

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "keda": {
        "worker": {
            "queues": ["default", "emails"],
            "autoscaling": {
                "enabled": True,
                "address": "redis.example:6379",
                "passwordSecret": {"name": "redis-auth", "key": "password"},
            },
        },
    },
    "keda-pending": {
        "worker": {"autoscaling": {"enabled": True, "metric": "pending"}},
        "redis": {"bundled": {"enabled": True}},
    },
    "api-hpa": {
        "api": {"autoscaling": {"enabled": True}},
        "worker": {"hpa": {"enabled": True}},
    },
    "existing-secret": {
        "existingSecret": "conveyor-credentials",
        "serviceMonitor": {"enabled": True},
        "config": {"extra": {"lease_seconds": "45", "max_attempts": 5}},
    },
    "bundled-redis": {
        "redis": {"bundled": {"enabled": True, "maxmemory": "1gb"}},
        "api": {"tokens": ["s3cret-token"]},
        "worker": {"shutdownTimeoutSeconds": 120.5, "handlers": ["app.handlers"]},
    },
}


def _render(values: dict[str, Any]) -> list[dict[str, Any]]:
    chart = helm.Chart.load(CHART)
    rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


@pytest.fixture(scope="module")
def manifests() -> dict[str, list[dict[str, Any]]]:
    return {name: _render(values) for name, values in VALUE_SETS.items()}


def _of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _one(docs: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, Any]:
    found = [d for d in _of_kind(docs, kind) if d["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"{kind} *{suffix}: {len(found)} found"
    return found[0]


def _pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for d in docs:
        if d["kind"] in {"Deployment", "StatefulSet"}:
            yield d["metadata"]["name"], d["spec"]["template"]["spec"]


def _env_names(node: Any) -> Iterator[str]:
    """Every CONVEYOR_* name anywhere: env entries, ConfigMap/Secret keys, trigger fields."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and key.startswith("CONVEYOR_"):
                yield key
            if key == "name" and isinstance(value, str) and value.startswith("CONVEYOR_"):
                yield value
            yield from _env_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from _env_names(item)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_lint_has_no_errors(name: str) -> None:
    report = helm.lint(CHART, VALUE_SETS[name], strict=True, kube_version=f"v{KUBE_VERSION}")
    errors = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert errors == []


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_manifests_are_valid_kubernetes(manifests, name: str) -> None:
    docs = manifests[name]
    assert docs
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CRD_KINDS:
            continue
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_conveyor_env_name_is_a_real_setting(manifests, name: str) -> None:
    used = set(_env_names(manifests[name]))
    assert "CONVEYOR_METRICS_PORT" in used
    assert used <= REAL_ENV, used - REAL_ENV


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_containers_are_non_root_and_read_only(manifests, name: str) -> None:
    for workload, spec in _pod_specs(manifests[name]):
        assert spec["securityContext"]["runAsNonRoot"] is True, workload
        tmp = {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}
        assert tmp in spec["volumes"], workload
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_probes_hit_the_real_endpoints(manifests, name: str) -> None:
    docs = manifests[name]
    expected = {"api": ("http", 8000), "worker": ("metrics", 9100), "scheduler": ("metrics", 9100)}
    for component, (port_name, port) in expected.items():
        spec = _one(docs, "Deployment", f"-{component}")["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert container["args"] == [component]
        image = "conveyor-api" if component == "api" else "conveyor-worker"
        assert container["image"] == f"ghcr.io/example/{image}:0.1.0"
        assert {"name": port_name, "containerPort": port, "protocol": "TCP"} in container["ports"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port_name}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port_name}
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        if component == "api":
            assert env["CONVEYOR_API_PORT"] == str(port)
            assert env["CONVEYOR_API_HOST"] == "0.0.0.0"
        else:
            assert env["CONVEYOR_METRICS_PORT"] == str(port)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_grace_period_outlasts_the_worker_shutdown_timeout(manifests, name: str) -> None:
    docs = manifests[name]
    config = _one(docs, "ConfigMap", "conveyor")["data"]
    timeout = float(config["CONVEYOR_SHUTDOWN_TIMEOUT_SECONDS"])
    spec = _one(docs, "Deployment", "-worker")["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] > timeout
    assert spec["terminationGracePeriodSeconds"] >= timeout + SHUTDOWN_GRACE_MARGIN


def test_defaults_render_the_plain_set(manifests) -> None:
    docs = manifests["defaults"]
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        ["ConfigMap", "Secret", "ServiceAccount", "Service"]
        + ["Deployment"] * 3
        + ["PodDisruptionBudget"] * 2
    )
    secret = _one(docs, "Secret", "conveyor")
    assert set(secret["stringData"]) == {"CONVEYOR_REDIS_URL"}
    assert _one(docs, "Deployment", "-worker")["spec"]["replicas"] == 2


def test_keda_scales_workers_on_each_queue_stream(manifests) -> None:
    docs = manifests["keda"]
    so = _one(docs, "ScaledObject", "-worker")
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    assert so["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-conveyor-worker"
    triggers = so["spec"]["triggers"]
    assert [t["metadata"]["stream"] for t in triggers] == [
        "conveyor:{default}:stream",
        "conveyor:{emails}:stream",
    ]
    for t in triggers:
        assert t["type"] == "redis-streams"
        meta = t["metadata"]
        assert meta["consumerGroup"] == "workers"
        assert meta["address"] == "redis.example:6379"
        assert int(meta["lagCount"]) > 0
        assert "pendingEntriesCount" not in meta
        assert all(isinstance(v, str) for v in meta.values())
        assert t["authenticationRef"]["name"] == f"{RELEASE}-conveyor-worker"
    auth = _one(docs, "TriggerAuthentication", "-worker")
    assert auth["spec"]["secretTargetRef"][0]["parameter"] == "password"
    # KEDA owns the replica count: no fixed replicas and no competing HPA.
    assert "replicas" not in _one(docs, "Deployment", "-worker")["spec"]
    assert _of_kind(docs, "HorizontalPodAutoscaler") == []


def test_keda_pending_signal_uses_pending_entries(manifests) -> None:
    (trigger,) = _one(manifests["keda-pending"], "ScaledObject", "-worker")["spec"]["triggers"]
    assert "lagCount" not in trigger["metadata"]
    assert int(trigger["metadata"]["pendingEntriesCount"]) > 0
    assert trigger["metadata"]["address"] == f"{RELEASE}-conveyor-redis:6379"


def test_hpa_for_api_and_cpu_fallback_for_workers(manifests) -> None:
    docs = manifests["api-hpa"]
    targets = {
        h["spec"]["scaleTargetRef"]["name"] for h in _of_kind(docs, "HorizontalPodAutoscaler")
    }
    assert targets == {f"{RELEASE}-conveyor-api", f"{RELEASE}-conveyor-worker"}
    assert "replicas" not in _one(docs, "Deployment", "-api")["spec"]
    assert _of_kind(docs, "ScaledObject") == []


def test_existing_secret_is_used_and_not_created(manifests) -> None:
    docs = manifests["existing-secret"]
    assert _of_kind(docs, "Secret") == []
    for workload, spec in _pod_specs(docs):
        refs = [e.get("secretRef", {}).get("name") for e in spec["containers"][0]["envFrom"]]
        assert "conveyor-credentials" in refs, workload
    config = _one(docs, "ConfigMap", "conveyor")["data"]
    assert config["CONVEYOR_LEASE_SECONDS"] == "45"
    assert config["CONVEYOR_MAX_ATTEMPTS"] == "5"
    monitor = _one(docs, "ServiceMonitor", "conveyor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchExpressions"]
    assert {e["port"] for e in monitor["spec"]["endpoints"]} == {"http", "metrics"}
    assert all(e["path"] == "/metrics" for e in monitor["spec"]["endpoints"])


def test_bundled_redis_is_durable_and_never_evicts(manifests) -> None:
    docs = manifests["bundled-redis"]
    sts = _one(docs, "StatefulSet", "-redis")
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    flags = dict(zip(args[1::2], args[2::2], strict=True))
    assert flags["--appendonly"] == "yes"
    assert flags["--appendfsync"] == "everysec"
    assert flags["--maxmemory-policy"] == "noeviction"
    assert flags["--maxmemory"] == "1gb"
    assert flags["--dir"] == "/data"
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    secret = _one(docs, "Secret", "conveyor")["stringData"]
    assert secret["CONVEYOR_REDIS_URL"] == f"redis://{RELEASE}-conveyor-redis:6379/0"
    assert secret["CONVEYOR_API_TOKENS"] == "s3cret-token"
    spec = _one(docs, "Deployment", "-worker")["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] == 136


@pytest.mark.parametrize(
    "override",
    [
        {"api": {"replicaCount": -1}},
        {"worker": {"replicaCount": -1}},
        {"worker": {"concurrency": "ten"}},
        {"worker": {"concurrency": 2.5}},
        {"worker": {"queues": []}},
        {"worker": {"shutdownTimeoutSeconds": -1}},
        {"worker": {"autoscaling": {"metric": "cpu"}}},
        {"redis": {"bundled": {"appendfsync": "sometimes"}}},
        {"config": {"extra": {"redis_url": "redis://x"}}},
        {"wokrer": {}},
    ],
    ids=repr,
)
def test_schema_rejects_bad_values(override: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmError):
        helm.Chart.load(CHART).render(copy.deepcopy(override), name=RELEASE, namespace=NAMESPACE)
