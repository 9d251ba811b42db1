"""Unit tier: the pieces of scripts/bench_series.py (make bench: series stored and memory against
kube-prometheus-stack) that need no cluster: which of kube-prometheus-stack's rendered objects go
into the API server and how its Services are pointed at the chart's exporters, the operator's
arguments, the swaps made to the configuration the operator generates, the job -> exporter
mapping and the node count. The objects below are shaped as kube-prometheus-stack 88.5.3 renders
them (names, labels, selectors, ports); the generated configuration as prometheus-operator
writes it."""
import importlib.util

import pytest

from harness import paths, swaps
from harness.manifests import Manifests
from harness.render import render_raw

pytestmark = pytest.mark.unit

_spec = importlib.util.spec_from_file_location("bench_series", paths.ROOT / "scripts" / "bench_series.py")
bench_series = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_series)

KPS_LABELS = {"app.kubernetes.io/instance": "kps", "release": "kps"}


def svc(name, selector, ports, labels, namespace=None):
    md = {"name": name, "labels": {**KPS_LABELS, **labels}}
    if namespace:
        md["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Service", "metadata": md, "spec": {"selector": selector, "ports": ports}}


def sm(name, endpoints, selector, namespace_selector=None):
    spec = {"selector": {"matchLabels": selector}, "endpoints": endpoints}
    if namespace_selector:
        spec["namespaceSelector"] = namespace_selector
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": name, "namespace": "monitoring", "labels": {"release": "kps"}}, "spec": spec}


KPS = Manifests([
    svc("kps-kube-state-metrics", {"app.kubernetes.io/name": "kube-state-metrics", "app.kubernetes.io/instance": "kps"},
        [{"name": "http", "protocol": "TCP", "port": 8080, "targetPort": "http"}],
        {"app.kubernetes.io/name": "kube-state-metrics"}, "monitoring"),
    svc("kps-prometheus-node-exporter", {"app.kubernetes.io/name": "prometheus-node-exporter", "app.kubernetes.io/instance": "kps"},
        [{"port": 9100, "targetPort": 9100, "protocol": "TCP", "name": "http-metrics"}],
        {"app.kubernetes.io/name": "prometheus-node-exporter", "jobLabel": "node-exporter"}, "monitoring"),
    svc("kps-kube-prometheus-stack-coredns", {"k8s-app": "kube-dns"},
        [{"name": "http-metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}],
        {"app": "kube-prometheus-stack-coredns", "jobLabel": "coredns"}, "kube-system"),
    sm("kps-kube-state-metrics", [{"port": "http", "honorLabels": True}],
       {"app.kubernetes.io/name": "kube-state-metrics", "app.kubernetes.io/instance": "kps"}),
    sm("kps-kube-prometheus-stack-kubelet",
       [{"port": "https-metrics", "scheme": "https"}, {"port": "https-metrics", "scheme": "https", "path": "/metrics/cadvisor"},
        {"port": "https-metrics", "scheme": "https", "path": "/metrics/probes"}],
       {"app.kubernetes.io/name": "kubelet", "k8s-app": "kubelet"}, {"matchNames": ["kube-system"]}),
    {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
     "metadata": {"name": "kps-kube-prometheus-stack-k8s.rules", "namespace": "monitoring", "labels": {"release": "kps"}},
     "spec": {"groups": []}},
    {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
     "metadata": {"name": "kps-kube-prometheus-stack-prometheus", "namespace": "monitoring"},
     "spec": {"serviceAccountName": "kps-kube-prometheus-stack-prometheus",
              "serviceMonitorSelector": {"matchLabels": {"release": "kps"}}, "serviceMonitorNamespaceSelector": {}}},
    {"apiVersion": "v1", "kind": "ServiceAccount",
     "metadata": {"name": "kps-kube-prometheus-stack-prometheus", "namespace": "monitoring"}},
    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "kps-grafana", "namespace": "monitoring"}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
     "metadata": {"name": "kps-kube-prometheus-stack-prometheus"}, "rules": []},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "kps-grafana-clusterrole"},
     "rules": []},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
     "metadata": {"name": "kps-kube-prometheus-stack-prometheus"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kps-kube-prometheus-stack-prometheus"},
     "subjects": [{"kind": "ServiceAccount", "name": "kps-kube-prometheus-stack-prometheus", "namespace": "monitoring"}]},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "kps-kube-prometheus-stack-operator"},
     "spec": {"template": {"spec": {"containers": [{"name": "kube-prometheus-stack", "args": [
         "--kubelet-service=kube-system/kps-kube-prometheus-stack-kubelet", "--kubelet-endpoints=true",
         "--kubelet-endpointslice=false", "--localhost=127.0.0.1", "--web.enable-tls=true",
         "--web.cert-file=/cert/cert", "--web.listen-address=:10250"]}]}}}},
])


@pytest.fixture(scope="module")
def ours():
    return Manifests(render_raw()[0])


def by(objs, kind, name):
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def test_stand_in_services_select_our_exporters_on_their_ports(ours):
    made = swaps.Swaps()
    objs = bench_series.kps_objects(KPS, ours, "monitoring", made)
    ksm = by(objs, "Service", "kps-kube-state-metrics")
    ne = by(objs, "Service", "kps-prometheus-node-exporter")
    our_ksm = next(o for o in ours.of_kind("Deployment") if o["metadata"]["name"] == "p5-kube-state-metrics")
    our_ne = next(o for o in ours.of_kind("DaemonSet") if o["metadata"]["name"] == "p5-node-exporter")
    assert ksm["spec"]["selector"] == our_ksm["spec"]["selector"]["matchLabels"]
    assert ne["spec"]["selector"] == our_ne["spec"]["selector"]["matchLabels"]
    # The port the chart's pods declare; the Service port's name, which the ServiceMonitor names, kept.
    assert ksm["spec"]["ports"] == [{"name": "http", "protocol": "TCP", "port": 8080, "targetPort": 8080}]
    assert ne["spec"]["ports"][0]["targetPort"] == 9100 and ne["spec"]["ports"][0]["name"] == "http-metrics"
    assert ksm["metadata"]["labels"] == KPS.get("Service", "kps-kube-state-metrics")["metadata"]["labels"]
    # A Service of a program that does not run here stays as rendered.
    assert by(objs, "Service", "kps-kube-prometheus-stack-coredns") == KPS.get("Service", "kps-kube-prometheus-stack-coredns")
    assert sum("selects the chart's" in s for s in made) == 2


def test_monitors_rules_and_prometheus_rbac_go_in_unchanged(ours):
    made = swaps.Swaps()
    objs = bench_series.kps_objects(KPS, ours, "monitoring", made)
    for kind, name in (("ServiceMonitor", "kps-kube-state-metrics"), ("ServiceMonitor", "kps-kube-prometheus-stack-kubelet"),
                       ("PrometheusRule", "kps-kube-prometheus-stack-k8s.rules"),
                       ("ClusterRole", "kps-kube-prometheus-stack-prometheus"),
                       ("ClusterRoleBinding", "kps-kube-prometheus-stack-prometheus")):
        assert by(objs, kind, name) == KPS.get(kind, name)
    prom = by(objs, "Prometheus", "kps-kube-prometheus-stack-prometheus")
    assert prom["metadata"]["namespace"] == bench_series.KPS_PROM_NAMESPACE
    assert prom["spec"] == KPS.get("Prometheus", "kps-kube-prometheus-stack-prometheus")["spec"]
    sas = [o for o in objs if o["kind"] == "ServiceAccount"]
    assert {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in sas} == {
        ("monitoring", "kps-kube-prometheus-stack-prometheus"),
        (bench_series.KPS_PROM_NAMESPACE, "kps-kube-prometheus-stack-prometheus")}
    assert not any(o["metadata"]["name"].startswith("kps-grafana") for o in objs if o["kind"] != "Service")


def test_operator_runs_with_kps_kubelet_arguments():
    args = bench_series.operator_args(KPS, "127.0.0.1:1234")
    assert args == ["--kubelet-service=kube-system/kps-kube-prometheus-stack-kubelet", "--kubelet-endpoints=true",
                    "--kubelet-endpointslice=false", "--kubelet-sync-period=10s", "--web.listen-address=127.0.0.1:1234"]


def test_expected_jobs_are_named_as_the_operator_names_them():
    assert bench_series.expected_jobs(KPS, "monitoring") == [
        "serviceMonitor/monitoring/kps-kube-state-metrics/0",
        "serviceMonitor/monitoring/kps-kube-prometheus-stack-kubelet/0",
        "serviceMonitor/monitoring/kps-kube-prometheus-stack-kubelet/1",
        "serviceMonitor/monitoring/kps-kube-prometheus-stack-kubelet/2"]


SA = "/var/run/secrets/kubernetes.io/serviceaccount"
GENERATED = {
    "global": {"evaluation_interval": "30s", "scrape_interval": "30s",
               "external_labels": {"prometheus": "kps-operated/kps", "prometheus_replica": "$(POD_NAME)"}},
    "rule_files": ["/etc/prometheus/rules/prometheus-kps-kube-prometheus-stack-prometheus-rulefiles-0/*.yaml"],
    "scrape_configs": [
        {"job_name": "serviceMonitor/monitoring/kps-kube-prometheus-stack-kubelet/1", "honor_labels": True,
         "kubernetes_sd_configs": [{"role": "endpoints", "namespaces": {"names": ["kube-system"]}}],
         "scrape_interval": "30s", "metrics_path": "/metrics/cadvisor", "scheme": "https",
         "tls_config": {"insecure_skip_verify": True, "ca_file": f"{SA}/ca.crt"},
         "authorization": {"type": "Bearer", "credentials_file": f"{SA}/token"},
         "metric_relabel_configs": [{"source_labels": ["__name__"], "regex": "container_cpu_(cfs_throttled_seconds_total)",
                                     "action": "drop"}]},
        {"job_name": "serviceMonitor/monitoring/kps-kube-state-metrics/0", "honor_labels": True,
         "kubernetes_sd_configs": [{"role": "endpoints", "namespaces": {"names": ["monitoring"]}}],
         "relabel_configs": [{"source_labels": ["__tmp_hash", "__tmp_disable_sharding"], "regex": "$(SHARD);|.+;.+",
                              "action": "keep"}]},
    ],
    "alerting": {"alertmanagers": [{"kubernetes_sd_configs": [{"role": "endpoints"}], "path_prefix": "/"}]},
}


def test_kps_config_gets_our_swaps_and_local_files(tmp_path):
    made = swaps.Swaps()
    local = swaps.Local("https://127.0.0.1:6443", "http://127.0.0.1:7000", 9999, 9998, "10s", "10s")
    cfg = bench_series.kps_prometheus_config(GENERATED, local, tmp_path / "sa", tmp_path / "rules", made,
                                             {"SHARD": "0", "POD_NAME": "prometheus-kps-0"})
    kubelet, ksm = cfg["scrape_configs"]
    assert cfg["global"]["scrape_interval"] == "10s" and "scrape_interval" not in kubelet
    for job in (kubelet, ksm):
        sd = job["kubernetes_sd_configs"][0]
        assert sd["api_server"] == "https://127.0.0.1:6443" and job["proxy_url"] == "http://127.0.0.1:7000"
        assert sd["authorization"] == {"credentials_file": f"{tmp_path / 'sa'}/token"}
        assert sd["tls_config"] == {"ca_file": f"{tmp_path / 'sa'}/ca.crt"}
    # The kubelet job keeps KPS's https and token, as ours does (the stand-in kubelet authorizes the
    # token of KPS's ServiceAccount against the API server), with the ServiceAccount files local;
    # the relabelling is KPS's, unchanged.
    assert kubelet["scheme"] == "https", kubelet
    assert kubelet["authorization"] == {"type": "Bearer", "credentials_file": f"{tmp_path / 'sa'}/token"}, kubelet
    assert kubelet["tls_config"] == {"insecure_skip_verify": True, "ca_file": f"{tmp_path / 'sa'}/ca.crt"}, kubelet
    assert kubelet["metric_relabel_configs"] == GENERATED["scrape_configs"][0]["metric_relabel_configs"]
    assert kubelet["metrics_path"] == "/metrics/cadvisor" and kubelet["honor_labels"] is True
    assert ksm["kubernetes_sd_configs"][0]["namespaces"] == {"names": ["monitoring"]}
    assert "alerting" not in cfg
    assert cfg["rule_files"] == [f"{tmp_path / 'rules'}/*.yaml"]
    assert SA not in str(cfg)
    # The config-reloader's env substitution (one shard).
    assert cfg["global"]["external_labels"] == {"prometheus": "kps-operated/kps", "prometheus_replica": "prometheus-kps-0"}
    assert ksm["relabel_configs"][0]["regex"] == "0;|.+;.+"
    assert "$(" not in str(cfg)
    with pytest.raises(KeyError, match="SHARD"):
        bench_series.kps_prometheus_config(GENERATED, local, tmp_path / "sa", tmp_path / "rules", made, {"POD_NAME": "p"})
    assert any("alerting removed" in s for s in made) and any("rule_files" in s for s in made)
    assert GENERATED["scrape_configs"][0]["scheme"] == "https", "the generated config itself is left alone"


def test_kps_prometheus_keeps_only_storage_flags():
    args = ["--web.console.templates=/etc/prometheus/consoles", "--storage.tsdb.retention.time=10d",
            "--config.file=/etc/prometheus/config_out/prometheus.env.yaml", "--storage.tsdb.path=/prometheus",
            "--web.enable-lifecycle", "--web.external-url=http://x:9090", "--web.route-prefix=/",
            "--web.config.file=/etc/prometheus/web_config/web-config.yaml", "--storage.tsdb.wal-compression"]
    assert bench_series.kps_prometheus_flags(args) == [
        "--storage.tsdb.retention.time=10d", "--web.enable-lifecycle", "--storage.tsdb.wal-compression"]


@pytest.mark.parametrize("job, path, want", [
    ("kubelet", "/metrics", "kubelet"), ("kubelet", "/metrics/cadvisor", "cadvisor"),
    ("kubelet", "/metrics/probes", "kubelet probes"), ("cadvisor", "", "cadvisor"), ("kubelet", "", "kubelet"),
    ("kube-state-metrics", "", "kube-state-metrics"), ("node-exporter", "", "node-exporter"),
    ("phase5-services", "", "Phase 5 services"), ("monitoring-stack", "", "monitoring stack"),
    ("apiserver", "", "apiserver")])
def test_category(job, path, want):
    assert bench_series.category(job, path) == want


@pytest.mark.parametrize("pods", [60, 1000, 10000])
def test_nodes_hold_the_pods(pods):
    """The scheduler's view: 110 pods per node, and the Phase 5 pods' CPU requests within a node's
    allocatable CPU (the workload's containers request a fifth of their limit)."""
    from harness.controlplane import NODE_CAPACITY
    from harness.workload_state import CPU_LIMIT
    n = bench_series.nodes_for(pods)
    per_node = min(110, int(float(NODE_CAPACITY["cpu"]) / (CPU_LIMIT / 5))) - 1
    assert per_node == 79
    assert n * per_node >= pods + bench_series.RESERVED
    assert n == 3 or (n - 1) * per_node < pods + bench_series.RESERVED


def test_swaps_listed_once_per_kind():
    items = ["kps: alerting removed", "prometheus job a/0: https -> http", "prometheus job b/0: https -> http",
             "prometheus job a/0: proxy_url = the pod network"]
    assert bench_series.compact_swaps(items) == [
        "kps: alerting removed", "prometheus, 2 jobs (`a/0`, `b/0`): https -> http",
        "prometheus, 1 jobs (`a/0`): proxy_url = the pod network"]


class _Proc:
    """A Prometheus process as harness.process.Process is used here: start/stop/running."""

    def __init__(self, who, events):
        self.who, self.events, self.up = who, events, True
        self.proc = type("P", (), {"pid": 0})()

    def running(self):
        return self.up

    def start(self, timeout=60):
        self.up = True
        self.events.append(("start", self.who))
        return self

    def stop(self):
        self.up = False
        self.events.append(("stop", self.who))


@pytest.mark.parametrize("pods", [1000, bench_series.APART_FROM])
def test_each_prometheus_is_alone_when_measured_apart(monkeypatch, pods):
    """From APART_FROM pods on each Prometheus is counted while the other is stopped (both
    settled first); below, both are counted side by side. The processes, settle and measure
    are stand-ins recording who ran when; _settle_and_measure's protocol is the real one."""
    events = []
    ours, kps = _Proc("ours", events), _Proc("kps", events)
    urls = {"http://ours": ours, "http://kps": kps}
    st = type("St", (), {"prometheus": ours, "prom_url": "http://ours",
                         "cluster": type("C", (), {"snapshot": type("S", (), {"nodes": [1, 2]})()})(),
                         "workload": type("W", (), {"namespace": "phase5", "serve_apps": False})()})()
    kp = type("K", (), {"prometheus": kps, "url": "http://kps"})()
    settled = []

    def settle(bases, since, interval, timeout):
        settled.append({b: urls[b].running() for b in bases})
        return 1.0, []

    def measure(base, pid, namespace, npods, nodes):
        running = {w for w, p in (("ours", ours), ("kps", kps)) if p.running()}
        events.append(("measure", urls[base].who, frozenset(running)))
        return {"stored": {"cadvisor": 1}, "head": 1}
    monkeypatch.setattr(bench_series, "settle", settle)
    monkeypatch.setattr(bench_series, "measure", measure)
    monkeypatch.setattr(bench_series, "running_phase5_pods", lambda snap, ns: pods)
    monkeypatch.setattr(bench_series.time, "sleep", lambda s: None)
    row = {"pods": pods}
    bench_series._settle_and_measure(st, kp, row, 60.0, 900, 0.0, log=lambda *a: None)
    measured = [e for e in events if e[0] == "measure"]
    assert {m[1] for m in measured} == {"ours", "kps"}, events
    if pods >= bench_series.APART_FROM:
        assert row["apart"] and all(m[2] == {m[1]} for m in measured), events
        assert all(all(v) and len(v) == 1 for v in settled), settled
    else:
        assert not row["apart"] and all(m[2] == {"ours", "kps"} for m in measured), events
        assert settled == [{"http://ours": True, "http://kps": True}], settled


def test_a_size_whose_second_prometheus_failed_is_reported_not_measured():
    """Measured apart, ours can be counted and KPS's fail: the report names the failure (with
    the memory then) instead of failing itself."""
    row = {"pods": 10000, "apart": True, "ours": {"stored": {}, "head": 1}, "failed": "measuring: TimeoutError: x",
           "running": 9996, "elapsed_s": 900.0, "rss_at_failure": {"ours": 0, "kps": 9 * 2**30}}
    text = "\n".join(bench_series.section({"interval": "60s", "sizes": [row], "took": 1.0}))
    assert "### 10000 pods: not measured" in text and "KPS 9.0 GiB" in text, text
