"""The Helm chart in helm/conveyor: it renders, lints and validates for the main value sets.

Rendering runs Helm's own engine offline (no cluster); every rendered manifest is checked
against the Kubernetes 1.30 schemas, except the KEDA and Prometheus Operator resources,
whose required fields are checked here by hand. The bundled Redis's password handling runs
for real: its init script and its redis-server arguments, as rendered, against a local
redis-server.

Offline rendering has no cluster, so ``lookup`` finds nothing and the generated password and
token are new on every render; their stability across upgrades rests on the lookup in
``conveyor.stableRandom`` and is not exercised here.
"""

from __future__ import annotations

import base64
import copy
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

helm = pytest.importorskip("helm_python")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

import redis  # noqa: E402

from conveyor.config import CONFIG_ENV, SETTINGS_SPECS  # noqa: E402
from conveyor.config_redis import parse_target  # noqa: E402
from tests.helpers.redis_server import free_port  # noqa: E402

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
            "queues": ["default:3", "emails"],  # a weight is not part of the stream name
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
    "bundled-keda-metrics-token": {
        "redis": {"bundled": {"enabled": True}},
        "worker": {"autoscaling": {"enabled": True}},
        "metricsAuth": "token",
        "serviceMonitor": {"enabled": True},
    },
    "bundled-existing-password": {
        "redis": {
            "bundled": {
                "enabled": True,
                "auth": {"existingSecret": "redis-pw", "existingSecretKey": "pw"},
            }
        },
        "worker": {"autoscaling": {"enabled": True}},
        "api": {"tokenSecret": {"name": "api-tokens", "key": "full"}},
        "metricsAuth": "token",
        "serviceMonitor": {
            "enabled": True,
            "bearerTokenSecret": {"name": "scrape-token", "key": "token"},
        },
        "networkPolicy": {
            "api": {"from": [{"namespaceSelector": {"matchLabels": {"team": "edge"}}}]},
            "metrics": {"from": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]},
            "egress": {
                "worker": [
                    {
                        "to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}],
                        "ports": [{"port": 443, "protocol": "TCP"}],
                    }
                ],
            },
        },
    },
    "open-no-network-policy": {
        "api": {"auth": "none"},
        "networkPolicy": {"enabled": False},
    },
    "egress-unrestricted": {
        "redis": {"bundled": {"enabled": True}},
        "networkPolicy": {"egress": {"restrict": False}},
    },
}
COMPONENTS = ("api", "worker", "scheduler")


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


AUTH_CONF = "/run/redis-auth/auth.conf"
REDIS_HOST = f"{RELEASE}-conveyor-redis"


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _secret_ref(entry: dict[str, Any]) -> tuple[str, str]:
    ref = entry["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def _secret_values(docs: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """Every value of every rendered Secret, by (Secret name, key)."""
    values: dict[tuple[str, str], str] = {}
    for d in _of_kind(docs, "Secret"):
        name = d["metadata"]["name"]
        for key, value in d.get("stringData", {}).items():
            values[name, key] = value
        for key, value in d.get("data", {}).items():
            values[name, key] = base64.b64decode(value).decode()
    return values


def _expand(container: dict[str, Any], secrets: dict[tuple[str, str], str]) -> dict[str, str]:
    """The container's env as the kubelet makes it: secretKeyRef resolved, then $(VAR)
    replaced by a variable defined earlier in the list."""
    env: dict[str, str] = {}
    for e in container.get("env", []):
        if "valueFrom" in e:
            env[e["name"]] = secrets[_secret_ref(e)]
        else:
            env[e["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), e["value"])
    return env


def _conveyor_containers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        c: _one(docs, "Deployment", f"-{c}")["spec"]["template"]["spec"]["containers"][0]
        for c in COMPONENTS
    }


def _policies(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """NetworkPolicies by the component they select."""
    return {
        d["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]: d["spec"]
        for d in _of_kind(docs, "NetworkPolicy")
    }


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
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
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
        ["ConfigMap", "ServiceAccount", "Service"]
        + ["Secret"] * 2
        + ["Deployment"] * 3
        + ["PodDisruptionBudget"] * 2
        + ["NetworkPolicy"] * 3
    )
    secret = _one(docs, "Secret", "conveyor")
    assert set(secret["stringData"]) == {"CONVEYOR_REDIS_URL"}
    assert _one(docs, "ConfigMap", "conveyor")["data"]["CONVEYOR_API_AUTH"] == "token"
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
    assert _one(docs, "ConfigMap", "conveyor")["data"]["CONVEYOR_QUEUES"] == "default:3,emails"
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
    assert args[:2] == ["redis-server", AUTH_CONF]
    flags = dict(zip(args[2::2], args[3::2], strict=True))
    assert flags["--appendonly"] == "yes"
    assert flags["--appendfsync"] == "everysec"
    assert flags["--maxmemory-policy"] == "noeviction"
    assert flags["--maxmemory"] == "1gb"
    assert flags["--dir"] == "/data"
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    # The bundled Redis's URL is built in each pod (below): no Secret for it but the password.
    names = {d["metadata"]["name"] for d in _of_kind(docs, "Secret")}
    assert names == {f"{RELEASE}-conveyor-redis-auth", f"{RELEASE}-conveyor-api-token"}
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


# --- secrets: the bundled Redis's password and the API token --------------------------------


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_no_secret_in_any_command_args_or_plain_env(manifests, name: str) -> None:
    docs = manifests[name]
    secrets = [v for v in _secret_values(docs).values() if len(v) >= 8 and "://" not in v]
    for workload, spec in _pod_specs(docs):
        for c in _containers(spec):
            argv = " ".join([*c.get("command", []), *c.get("args", [])])
            assert "requirepass" not in argv.replace("requirepass $REDIS_PASSWORD", "")
            assert "--pass" not in argv, (workload, c["name"])
            assert " -a " not in f" {argv} ", (workload, c["name"])
            plain = " ".join(str(e.get("value", "")) for e in c.get("env", []))
            for secret in secrets:
                assert secret not in argv, (workload, c["name"])
                assert secret not in plain, (workload, c["name"])


def test_bundled_redis_gets_a_generated_password_secret(manifests) -> None:
    docs = manifests["bundled-keda-metrics-token"]
    secret = _one(docs, "Secret", "-redis-auth")
    password = base64.b64decode(secret["data"]["redis-password"]).decode()
    assert re.fullmatch(r"[A-Za-z0-9]{32}", password)
    # A new one on every offline render (no cluster to look the old one up in).
    again = _render(VALUE_SETS["bundled-keda-metrics-token"])
    assert _one(again, "Secret", "-redis-auth")["data"]["redis-password"] != password
    ref = (f"{RELEASE}-conveyor-redis-auth", "redis-password")
    spec = _one(docs, "StatefulSet", "-redis")["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    assert _secret_ref(_env(init)["REDIS_PASSWORD"]) == ref
    (server,) = spec["containers"]
    assert _secret_ref(_env(server)["REDISCLI_AUTH"]) == ref
    for probe in ("livenessProbe", "readinessProbe"):
        assert "redis-cli ping" in " ".join(server[probe]["exec"]["command"])
    auth = {"name": "auth", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
    assert auth in spec["volumes"]
    # KEDA authenticates with the same Secret.
    trigger_auth = _one(docs, "TriggerAuthentication", "-worker")["spec"]["secretTargetRef"]
    assert trigger_auth == [{"parameter": "password", "name": ref[0], "key": ref[1]}]
    (trigger,) = _one(docs, "ScaledObject", "-worker")["spec"]["triggers"]
    assert trigger["authenticationRef"]["name"] == f"{RELEASE}-conveyor-worker"


@pytest.mark.parametrize("name", ["bundled-redis", "bundled-keda-metrics-token"])
def test_api_worker_scheduler_reach_the_bundled_redis_with_its_password(
    manifests, name: str
) -> None:
    docs = manifests[name]
    secrets = _secret_values(docs)
    password = secrets[f"{RELEASE}-conveyor-redis-auth", "redis-password"]
    for component, container in _conveyor_containers(docs).items():
        env = _env(container)
        names = list(env)
        assert names.index("REDIS_PASSWORD") < names.index("CONVEYOR_REDIS_URL"), component
        assert _secret_ref(env["REDIS_PASSWORD"]) == (
            f"{RELEASE}-conveyor-redis-auth",
            "redis-password",
        )
        assert env["CONVEYOR_REDIS_URL"]["value"] == (
            f"redis://:$(REDIS_PASSWORD)@{REDIS_HOST}:6379/0"
        )
        url = _expand(container, secrets)["CONVEYOR_REDIS_URL"]
        assert url == f"redis://:{password}@{REDIS_HOST}:6379/0"
        parse_target(url)  # Conveyor accepts it
        pool_kwargs = redis.Redis.from_url(url).connection_pool.connection_kwargs
        assert pool_kwargs["password"] == password


def test_bundled_redis_with_an_existing_password_secret(manifests) -> None:
    docs = manifests["bundled-existing-password"]
    names = {d["metadata"]["name"] for d in _of_kind(docs, "Secret")}
    assert names == set()  # the password and the tokens are the user's Secrets
    spec = _one(docs, "StatefulSet", "-redis")["spec"]["template"]["spec"]
    assert _secret_ref(_env(spec["initContainers"][0])["REDIS_PASSWORD"]) == ("redis-pw", "pw")
    assert _secret_ref(_env(spec["containers"][0])["REDISCLI_AUTH"]) == ("redis-pw", "pw")
    for component, container in _conveyor_containers(docs).items():
        env = _env(container)
        assert _secret_ref(env["REDIS_PASSWORD"]) == ("redis-pw", "pw"), component
        if component == "api":
            assert _secret_ref(env["CONVEYOR_API_TOKENS"]) == ("api-tokens", "full")
        else:
            assert "CONVEYOR_API_TOKENS" not in env
    trigger_auth = _one(docs, "TriggerAuthentication", "-worker")["spec"]["secretTargetRef"]
    assert trigger_auth == [{"parameter": "password", "name": "redis-pw", "key": "pw"}]


def test_api_token_is_generated_by_default_and_only_the_api_gets_it(manifests) -> None:
    docs = manifests["defaults"]
    secret = _one(docs, "Secret", "-api-token")
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert re.fullmatch(r"[A-Za-z0-9]{40}", token)
    containers = _conveyor_containers(docs)
    env = _env(containers["api"])
    assert _secret_ref(env["CONVEYOR_API_TOKENS"]) == (f"{RELEASE}-conveyor-api-token", "token")
    assert _expand(containers["api"], _secret_values(docs))["CONVEYOR_API_TOKENS"] == token
    for component in ("worker", "scheduler"):
        assert "CONVEYOR_API_TOKENS" not in _env(containers[component])
    notes = helm.Chart.load(CHART).render({}, name=RELEASE, namespace=NAMESPACE)
    (text,) = [t for path, t in notes.items() if path.endswith("NOTES.txt")]
    assert f"secret {RELEASE}-conveyor-api-token" in text


def test_tokens_given_in_values_go_to_the_api_only(manifests) -> None:
    docs = manifests["bundled-redis"]
    secret = _one(docs, "Secret", "-api-token")
    assert base64.b64decode(secret["data"]["token"]).decode() == "s3cret-token"
    containers = _conveyor_containers(docs)
    ref = _secret_ref(_env(containers["api"])["CONVEYOR_API_TOKENS"])
    assert ref == (f"{RELEASE}-conveyor-api-token", "token")
    for component in ("worker", "scheduler"):
        assert "CONVEYOR_API_TOKENS" not in _env(containers[component])
    several = _render({"api": {"tokens": ["first-token", "second-token"]}})
    token = _one(several, "Secret", "-api-token")["data"]["token"]
    assert base64.b64decode(token).decode() == "first-token,second-token"
    # A change of api.tokens rolls the api pods.
    annotations = _one(several, "Deployment", "-api")["spec"]["template"]["metadata"]
    other = _one(_render({"api": {"tokens": ["first-token"]}}), "Deployment", "-api")
    checksum = annotations["annotations"]["checksum/api-tokens"]
    assert other["spec"]["template"]["metadata"]["annotations"]["checksum/api-tokens"] != checksum


def test_tokens_of_an_existing_secret_come_by_env_from(manifests) -> None:
    docs = manifests["existing-secret"]
    assert _of_kind(docs, "Secret") == []  # nothing generated: its CONVEYOR_API_TOKENS counts
    assert "CONVEYOR_API_TOKENS" not in _env(_conveyor_containers(docs)["api"])


def test_open_api_is_explicit_and_gets_no_token(manifests) -> None:
    docs = manifests["open-no-network-policy"]
    assert _one(docs, "ConfigMap", "conveyor")["data"]["CONVEYOR_API_AUTH"] == "none"
    assert "CONVEYOR_API_TOKENS" not in set(_env_names(docs))
    assert [d["metadata"]["name"] for d in _of_kind(docs, "Secret")] == [f"{RELEASE}-conveyor"]
    assert _of_kind(docs, "NetworkPolicy") == []


def test_the_bundled_redis_really_requires_its_password(tmp_path: Path) -> None:
    """The rendered init script and redis-server arguments, run against a local redis-server:
    Redis refuses a client without the password, the probe command passes with REDISCLI_AUTH,
    the URL the pods build connects, and the password is in no process's command line."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.fail("redis-server and redis-cli are needed (they run every Redis test)")
    values = VALUE_SETS["bundled-keda-metrics-token"]
    docs = _render(values)
    secrets = _secret_values(docs)
    password = secrets[f"{RELEASE}-conveyor-redis-auth", "redis-password"]
    spec = _one(docs, "StatefulSet", "-redis")["spec"]["template"]["spec"]
    (init,), (server,) = spec["initContainers"], spec["containers"]
    auth_dir, data_dir = tmp_path / "auth", tmp_path / "data"
    auth_dir.mkdir()
    data_dir.mkdir()
    relocate = {"/run/redis-auth": str(auth_dir), "/data": str(data_dir)}

    def local(word: str) -> str:
        for pod_path, here in relocate.items():
            word = word.replace(pod_path, here)
        return word

    env = {"PATH": os.environ["PATH"], **_expand(init, secrets)}
    script = [local(w) for w in init["command"]]
    subprocess.run(script, env=env, check=True, timeout=10)
    conf = auth_dir / "auth.conf"
    assert conf.read_text() == f"requirepass {password}\n"
    assert conf.stat().st_mode & 0o077 == 0

    bad = subprocess.run(script, env={**env, "REDIS_PASSWORD": "has space@"}, timeout=10,
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode != 0
    assert "URL-safe" in bad.stderr
    assert "has space" not in bad.stderr

    port = free_port()
    argv = [local(w) for w in server["args"]] + ["--port", str(port), "--bind", "127.0.0.1"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, password=password, socket_timeout=2)
        deadline = time.monotonic() + 10
        while True:
            try:
                assert client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, socket_timeout=2).get("x")
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        assert password not in cmdline
        probe_command = server["readinessProbe"]["exec"]["command"]
        probe = [w.replace("redis-cli", f"redis-cli -p {port}") for w in probe_command]
        probe_env = {"PATH": os.environ["PATH"], **_expand(server, secrets)}
        assert subprocess.run(probe, env=probe_env, timeout=10).returncode == 0
        wrong = {**probe_env, "REDISCLI_AUTH": "wrong"}
        assert subprocess.run(probe, env=wrong, timeout=10, capture_output=True).returncode != 0
        url = _expand(_conveyor_containers(docs)["worker"], secrets)["CONVEYOR_REDIS_URL"]
        local_url = url.replace(f"@{REDIS_HOST}:6379", f"@127.0.0.1:{port}")
        assert redis.Redis.from_url(local_url, socket_timeout=2).ping()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"api": {"auth": "none", "tokens": ["t0ken-abc"]}}, "api.auth=none"),
        ({"api": {"auth": "none", "tokenSecret": {"name": "s"}}}, "api.auth=none"),
        ({"api": {"auth": "none"}, "metricsAuth": "token"}, "metricsAuth=token needs"),
        ({"api": {"tokens": ["t0ken-abc"], "tokenSecret": {"name": "s"}}}, "not both"),
        (
            {
                "api": {"tokens": ["a-token", "b-token"]},
                "metricsAuth": "token",
                "serviceMonitor": {"enabled": True},
            },
            "bearerTokenSecret",
        ),
        (
            {
                "existingSecret": "creds",
                "metricsAuth": "token",
                "serviceMonitor": {"enabled": True},
            },
            "bearerTokenSecret",
        ),
    ],
    ids=repr,
)
def test_contradictory_auth_values_fail_the_render(override: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError, match=re.escape(message)):
        _render(override)


# --- the ServiceMonitor's token ---------------------------------------------------------------


def test_service_monitor_sends_the_api_token_when_metrics_need_one(manifests) -> None:
    monitor = _one(manifests["bundled-keda-metrics-token"], "ServiceMonitor", "conveyor")
    endpoints = {e["port"]: e for e in monitor["spec"]["endpoints"]}
    assert endpoints["http"]["bearerTokenSecret"] == {
        "name": f"{RELEASE}-conveyor-api-token",
        "key": "token",
    }
    assert "bearerTokenSecret" not in endpoints["metrics"]  # the probe servers check no token
    config = _one(manifests["bundled-keda-metrics-token"], "ConfigMap", "conveyor")["data"]
    assert config["CONVEYOR_METRICS_AUTH"] == "token"
    chosen = _one(manifests["bundled-existing-password"], "ServiceMonitor", "conveyor")
    (http,) = [e for e in chosen["spec"]["endpoints"] if e["port"] == "http"]
    assert http["bearerTokenSecret"] == {"name": "scrape-token", "key": "token"}
    one_token = _render(
        {
            "api": {"tokens": ["only-token"]},
            "metricsAuth": "token",
            "serviceMonitor": {"enabled": True},
        }
    )
    (http,) = [
        e
        for e in _one(one_token, "ServiceMonitor", "conveyor")["spec"]["endpoints"]
        if e["port"] == "http"
    ]
    assert http["bearerTokenSecret"] == {"name": f"{RELEASE}-conveyor-api-token", "key": "token"}
    plain = _one(manifests["existing-secret"], "ServiceMonitor", "conveyor")
    assert all("bearerTokenSecret" not in e for e in plain["spec"]["endpoints"])


# --- NetworkPolicies ----------------------------------------------------------------------------


def _pod_labels(docs: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, str]:
    labels: dict[str, str] = _one(docs, kind, suffix)["spec"]["template"]["metadata"]["labels"]
    return labels


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for e in selector.get("matchExpressions", []):
        assert e["operator"] == "In"
        if labels.get(e["key"]) not in e["values"]:
            return False
    return True


@pytest.mark.parametrize("name", ["defaults", "bundled-redis", "bundled-existing-password"])
def test_network_policies_select_each_component_and_open_only_its_port(
    manifests, name: str
) -> None:
    docs = manifests[name]
    policies = _policies(docs)
    bundled = name != "defaults"
    assert set(policies) == set(COMPONENTS) | ({"redis"} if bundled else set())
    for component, container in _conveyor_containers(docs).items():
        policy = policies[component]
        labels = _pod_labels(docs, "Deployment", f"-{component}")
        assert _selects(policy["podSelector"], labels)
        others = [c for c in COMPONENTS if c != component]
        assert not any(
            _selects(policy["podSelector"], _pod_labels(docs, "Deployment", f"-{o}"))
            for o in others
        )
        assert policy["policyTypes"] == ["Ingress", "Egress"]
        (ingress,) = policy["ingress"]
        port_names = {p["name"] for p in container["ports"]}
        assert [p["port"] for p in ingress["ports"]] == [
            "http" if component == "api" else "metrics"
        ]
        assert {p["port"] for p in ingress["ports"]} <= port_names
        dns = {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
        assert policy["egress"][0] == dns
        to_redis = policy["egress"][1]
        assert to_redis["ports"] == [{"port": 6379, "protocol": "TCP"}]
        if bundled:
            (peer,) = to_redis["to"]
            assert _selects(peer["podSelector"], _pod_labels(docs, "StatefulSet", "-redis"))
        else:
            assert "to" not in to_redis  # networkPolicy.egress.externalRedis.to is empty


def test_bundled_redis_accepts_only_this_release_and_keda(manifests) -> None:
    docs = manifests["bundled-keda-metrics-token"]
    policy = _policies(docs)["redis"]
    assert _selects(policy["podSelector"], _pod_labels(docs, "StatefulSet", "-redis"))
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["egress"] == []  # Redis connects nowhere
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": "redis", "protocol": "TCP"}]
    release, keda = ingress["from"]
    for component in COMPONENTS:
        assert _selects(release["podSelector"], _pod_labels(docs, "Deployment", f"-{component}"))
    assert not _selects(release["podSelector"], _pod_labels(docs, "StatefulSet", "-redis"))
    stranger = {"app.kubernetes.io/name": "conveyor", "app.kubernetes.io/instance": "other",
                "app.kubernetes.io/component": "api"}  # fmt: skip
    assert not _selects(release["podSelector"], stranger)
    assert "namespaceSelector" not in release  # this namespace only
    assert keda == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}},
        "podSelector": {"matchLabels": {"app": "keda-operator"}},
    }
    # Without KEDA its operator is not let in.
    (plain,) = _policies(manifests["bundled-redis"])["redis"]["ingress"]
    assert len(plain["from"]) == 1


def test_network_policy_sources_and_extra_egress_are_configurable(manifests) -> None:
    policies = _policies(manifests["bundled-existing-password"])
    (api_in,) = policies["api"]["ingress"]
    assert api_in["from"] == [{"namespaceSelector": {"matchLabels": {"team": "edge"}}}]
    monitoring = [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    for component in ("worker", "scheduler"):
        (ingress,) = policies[component]["ingress"]
        assert ingress["from"] == monitoring
    extra = {
        "to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}],
        "ports": [{"port": 443, "protocol": "TCP"}],
    }
    assert policies["worker"]["egress"][-1] == extra
    assert extra not in policies["api"]["egress"]
    assert extra not in policies["scheduler"]["egress"]
    unrestricted = _policies(manifests["egress-unrestricted"])
    for policy in unrestricted.values():
        assert policy["policyTypes"] == ["Ingress"]
        assert "egress" not in policy


@pytest.mark.parametrize(
    "override",
    [
        {"networkPolicy": {"enabled": "yes"}},
        {"networkPolicy": {"egress": {"externalRedis": {"ports": [0]}}}},
        {"networkPolicy": {"wide": True}},
        {"api": {"auth": "open"}},
        {"metricsAuth": "basic"},
        {"config": {"extra": {"api_auth": "none"}}},
        {"redis": {"bundled": {"auth": {"password": "x"}}}},
    ],
    ids=repr,
)
def test_schema_rejects_bad_security_values(override: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmError):
        helm.Chart.load(CHART).render(copy.deepcopy(override), name=RELEASE, namespace=NAMESPACE)
