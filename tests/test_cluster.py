"""Cluster tier, the checks that need running containers: health through the service
proxy, every target up, datasources healthy, the Watchdog in Alertmanager, a log line in
Loki, a span in Jaeger, `helm test`. They run on a real cluster (kind in the GitHub
workflow, or any cluster in KUBECONFIG); on the local control plane's simulated nodes no
container runs, so each skips in one line saying so. What the API server decides (install,
upgrade, admission, immutable fields, PDBs, ...) is tests/test_cluster_install.py, which
runs on both.

Health checks go through the API server's service proxy, so no port-forward is needed.
"""
import json
import os
import subprocess
import time
import uuid

import pytest

from harness import paths, tools
from harness.polling import wait_until

pytestmark = pytest.mark.cluster

RELEASE = "p5ct"
NAMESPACE = os.environ.get("CLUSTER_TEST_NAMESPACE", "p5-monitoring-test")
CI_VALUES = paths.UMBRELLA / "ci" / "kind-values.yaml"
k8s = None


def run(*cmd, timeout=900):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def proxy(service, port, path, scheme="http"):
    """GET through the API server's service proxy; returns the body text."""
    api = k8s.CoreV1Api()
    return api.connect_get_namespaced_service_proxy_with_path(
        f"{scheme}:{RELEASE}-{service}:{port}", NAMESPACE, path.lstrip("/"), _request_timeout=20)


def eventually(check, timeout=300, every=5):
    return wait_until(check, timeout, check.__doc__ or check, every, error=AssertionError)


@pytest.fixture(scope="module")
def installed(cluster):
    if cluster.simulated:
        pytest.skip("needs running containers; the local control plane's nodes are simulated (kwok)")
    global k8s
    from kubernetes import client, config
    config.load_kube_config(config_file=cluster.kubeconfig)
    k8s = client
    helm = tools.require("helm")
    core = k8s.CoreV1Api()
    try:
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NAMESPACE, labels={
            "pod-security.kubernetes.io/enforce": "privileged",
            "pod-security.kubernetes.io/warn": "restricted"})))
    except k8s.exceptions.ApiException as e:
        if e.status != 409:
            raise
    run(helm, "upgrade", "--install", RELEASE, str(paths.UMBRELLA), "-n", NAMESPACE,
        "-f", str(CI_VALUES), "--wait", "--timeout", "12m")
    yield helm
    subprocess.run([helm, "uninstall", RELEASE, "-n", NAMESPACE, "--wait"], capture_output=True)
    core.delete_namespace(NAMESPACE)


def test_every_pod_ready(installed):
    def all_ready():
        pods = k8s.CoreV1Api().list_namespaced_pod(NAMESPACE, label_selector=f"app.kubernetes.io/instance={RELEASE}").items
        return pods and all(any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
                            for p in pods if p.status.phase != "Succeeded")
    eventually(all_ready)


def test_every_prometheus_target_up(installed):
    def targets_up():
        data = json.loads(proxy("prometheus", 9090, "/api/v1/targets"))["data"]["activeTargets"]
        down = [t["scrapeUrl"] for t in data if t["health"] != "up"]
        assert data and not down, f"targets not up: {down}"
        return True
    eventually(targets_up, timeout=420)


def test_grafana_datasources_healthy(installed):
    for uid in ("prometheus", "loki", "jaeger"):
        def healthy(uid=uid):
            out = json.loads(proxy("grafana", 3000, f"/api/datasources/uid/{uid}/health"))
            return out.get("status") == "OK"
        eventually(healthy)


def test_alertmanager_receives_watchdog(installed):
    def watchdog():
        alerts = json.loads(proxy("alertmanager", 9093, "/api/v2/alerts"))
        return any(a["labels"].get("alertname") == "Watchdog" for a in alerts)
    eventually(watchdog, timeout=420)


def test_log_line_found_with_logql(installed):
    marker = f"phase5-cluster-test-{uuid.uuid4().hex[:8]}"
    ns = "phase5-logtest"
    core = k8s.CoreV1Api()
    try:
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=ns)))
    except k8s.exceptions.ApiException as e:
        if e.status != 409:
            raise
    pod = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="logger", labels={"app": "logger"}), spec=k8s.V1PodSpec(
        restart_policy="Never", containers=[k8s.V1Container(
            name="logger", image="docker.io/library/busybox:1.37.0",
            command=["sh", "-c", f'echo \'{{"level":"info","msg":"{marker}"}}\'; sleep 60'])]))
    core.create_namespaced_pod(ns, pod)
    try:
        def found():
            q = f'{{namespace="{ns}"}} |= "{marker}"'
            out = json.loads(proxy("loki", 3100, f"/loki/api/v1/query_range?query={q}&limit=5"))
            return out["data"]["result"]
        eventually(found, timeout=300)
    finally:
        core.delete_namespace(ns)


def test_span_found_in_jaeger(installed):
    """A span POSTed over OTLP HTTP (through the proxy) comes back from the query API."""
    service = f"cluster-test-{uuid.uuid4().hex[:6]}"
    trace_id = uuid.uuid4().hex
    now = time.time_ns()
    body = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeSpans": [{"spans": [{"traceId": trace_id, "spanId": trace_id[:16], "name": "probe", "kind": 1,
                                       "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1000000)}]}]}]}
    api = k8s.CoreV1Api()
    api.api_client.call_api(
        f"/api/v1/namespaces/{NAMESPACE}/services/http:{RELEASE}-jaeger:4318/proxy/v1/traces", "POST",
        body=body, header_params={"Content-Type": "application/json"}, auth_settings=["BearerToken"],
        _request_timeout=20)
    eventually(lambda: json.loads(proxy("jaeger", 16686, f"/api/traces?service={service}"))["data"], timeout=120)


def test_helm_upgrade_with_changed_values(installed):
    run(installed, "upgrade", RELEASE, str(paths.UMBRELLA), "-n", NAMESPACE, "-f", str(CI_VALUES),
        "--set-json", 'global.commonLabels={"upgraded":"yes"}', "--wait", "--timeout", "10m")


def test_helm_test_pods_pass(installed):
    """The chart's own `helm test` pods (they probe each component from inside the cluster)."""
    run(installed, "test", RELEASE, "-n", NAMESPACE, "--timeout", "5m")
