"""Dashboard query latency at 10,000 pods (issue 27), on backfilled blocks (scripts/bench.py runs it;
`make bench-queries` or `scripts/bench.py --only queries` runs it alone).

Why backfilled and not live: 10,000 pods scraped live need 10,000 HTTP targets on this machine
for hours; what a query costs depends on the series and samples Prometheus holds, not on how they
arrived. So this writes the series a 10,000-pod Phase 5 cluster stores under the chart's default
configuration, for `--span` (2 h) at the scrape interval (15 s), and queries a real Prometheus on them:

1. The cluster: `pods` Phase 5 pods over the six services of the synthetic workload
   (harness.workload_state), 100 per node, with the data tier's exporters and the monitoring
   stack's pods. Its series are the families the synthetic workload serves
   (harness.workload_metrics), only those the keep-lists store (files/keep-lists.yaml: cAdvisor,
   kubelet, kube-state-metrics, node-exporter, the stack's own jobs; the Phase 5 jobs keep
   everything), with the labels the chart's relabelling gives them (files/prometheus.yml: job,
   instance, and namespace/service/pod on the Phase 5 and stack jobs; honor_labels on
   kube-state-metrics; instance = node and service = kubelet on cAdvisor), plus each target's
   `up` and scrape_* series. Counters grow at the workload's baseline rates with jitter, gauges
   move; each target keeps its own scrape offset.
2. Raw blocks: scripts/bench-backfill (Go, built here from the module cache) writes them with
   the TSDB block writer `promtool tsdb create-blocks-from openmetrics` uses, without the
   OpenMetrics text in between (tens of gigabytes at this size).
3. Recorded series: the chart's rendered recording rules (defaults), backfilled by the real
   `promtool tsdb create-blocks-from rules` against bin/prometheus serving the raw blocks, over
   the queried window plus five minutes; rules that read other rules' records in a later pass.
4. bin/prometheus on all blocks (compaction off, so nothing moves while measuring): every
   Prometheus panel query of every dashboard (harness.dashboards.panel_queries: Grafana's
   macros, $datasource and the All value of $cluster/$namespace/$service substituted; $pod and $node,
   the drill-downs of the per-pod and per-node panels, have no All and start at their first value, as in Grafana) as a range
   query over the last `--window` (1 h) at the step Grafana asks for (the datasource's
   timeInterval, 15 s: a 1 h range over ~1,000 pixels asks for less), `--runs` times each
   (fewer when one query's runs pass `--budget` seconds); then every recording rule's recorded
   series against its raw expression, the same way.

Limits, said in the report: the data sits in persistent blocks, where a live Prometheus holds the
last two to three hours in its head (in memory); the page cache is warm after the first run; the
machine is shared, so absolute milliseconds are noisy (the ratios less so).
"""
import hashlib
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from harness import paths, tools
from harness.dashboards import panel_queries
from harness.ports import free_port
from harness.process import Process
from harness.prometheus import rendered
from harness.workload_state import (BUCKETS, CONSUMER_TOPICS, CPU_LIMIT, FAST_LATENCY, MEM_LIMIT,
                                    PHASE5_SERVICES, ServiceState)

ROOT = paths.ROOT
GENERATOR = ROOT / "scripts" / "bench-backfill"
NAMESPACE = "phase5-prod"
RELEASE_NS = "monitoring"
PODS_PER_NODE = 100
GOAL_MS = 50.0
MANY_SERIES = 1000      # a panel query returning more series than this is flagged
STACK_PODS = ("p5-prometheus-0", "p5-alertmanager-0", "p5-grafana-0", "p5-loki-0", "p5-jaeger-0",
              "p5-kube-state-metrics-0")
DAEMONSETS = ("p5-node-exporter", "p5-alloy")


def _h(*parts, n=10):
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()[:n]


def _frac(*parts):
    return int(_h(*parts, n=8), 16) / 16**8


# ----------------------------------------------------------------------------- 1. the cluster
def cluster(pods):
    """The cluster's objects: nodes, Phase 5 pods (service, name, ip, node, uid, replicaset),
    the monitoring stack's pods and DaemonSet pods."""
    nodes = [f"node-{i:03d}" for i in range(max(1, math.ceil(pods / PODS_PER_NODE)))]
    per = [pods // len(PHASE5_SERVICES) + (i < pods % len(PHASE5_SERVICES)) for i in range(len(PHASE5_SERVICES))]
    out, k = [], 0
    for svc, n in zip(PHASE5_SERVICES, per):
        rs = f"{svc}-{_h(svc, 'rs')}"
        for i in range(n):
            out.append({"service": svc, "pod": f"{rs}-{_h(svc, i, n=5)}", "ip": f"10.{64 + k // 65536}.{k // 256 % 256}.{k % 256}",
                        "node": nodes[k % len(nodes)], "uid": _uuid(svc, i), "replicaset": rs, "index": i,
                        "namespace": NAMESPACE, "kind": "ReplicaSet", "owner": rs, "container": svc})
            k += 1
    for kind, svc, port in (("postgres", "postgres-exporter", 9187), ("redis", "redis-exporter", 9121),
                            ("kafka", "kafka-exporter", 9308)):
        rs = f"{svc}-{_h(svc, 'rs')}"
        out.append({"service": svc, "pod": f"{rs}-{_h(svc, 0, n=5)}", "ip": f"10.96.0.{len(out) % 250}", "node": nodes[0],
                    "uid": _uuid(svc, 0), "replicaset": rs, "index": 0, "namespace": NAMESPACE, "kind": "ReplicaSet",
                    "owner": rs, "container": f"{kind}-exporter", "exporter": kind, "port": port})
    stack = [{"service": p.rsplit("-", 1)[0], "pod": p, "ip": f"10.97.0.{i}", "node": nodes[i % len(nodes)],
              "uid": _uuid(p), "namespace": RELEASE_NS, "kind": "StatefulSet", "owner": p.rsplit("-", 1)[0],
              "container": p.split("-")[1]} for i, p in enumerate(STACK_PODS)]
    for ds in DAEMONSETS:
        for j, node in enumerate(nodes):
            stack.append({"service": ds, "pod": f"{ds}-{_h(ds, node, n=5)}", "ip": f"10.98.{j // 256}.{j % 256}",
                          "node": node, "uid": _uuid(ds, node), "namespace": RELEASE_NS, "kind": "DaemonSet",
                          "owner": ds, "container": ds.split("-", 1)[1]})
    return {"nodes": nodes, "pods": out, "stack": stack}


def _uuid(*parts):
    h = hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


# ----------------------------------------------------------------------------- series
class Series:
    """Collects series lines for bench-backfill: c(labels, rate) a counter, g(labels, value,
    jitter) a gauge; target(...) sets the labels and scrape offset of what follows and adds the
    target's up and scrape_* series when it is closed."""

    def __init__(self, out, interval_ms, limits):
        self.out, self.interval_ms, self.limits = out, interval_ms, limits
        self.n, self._target, self._count = 0, None, 0

    def target(self, job, instance, **labels):
        self.close()
        self._target = {"job": job, "instance": instance, **labels}
        self._offset = int(_frac(job, instance) * self.interval_ms)
        self._count = 0

    def close(self):
        t = self._target
        if t is None:
            return
        self._target = None
        n, limit = self._count, self.limits.get(t["job"], 0)
        for name, v, j in (("up", 1, 0), ("scrape_duration_seconds", 0.004 + n * 2e-6, 0.3),
                           ("scrape_samples_scraped", n, 0), ("scrape_samples_post_metric_relabeling", n, 0),
                           ("scrape_series_added", 0, 0), ("scrape_timeout_seconds", 10, 0),
                           ("scrape_sample_limit", limit, 0), ("scrape_body_size_bytes", n * 90, 0.01)):
            self._line("g", {"__name__": name, **t}, v, 0, j)

    def c(self, metric, rate, jitter=0.2, /, **labels):
        start = rate * 3600 * (1 + 23 * _frac(metric, self._target["instance"], *labels.values()))
        self._line("c", {"__name__": metric, **self._target, **labels}, start, rate, jitter)

    def g(self, metric, value, jitter=0.0, /, **labels):
        self._line("g", {"__name__": metric, **self._target, **labels}, value, 0, jitter)

    def _line(self, kind, labels, v, r, j):
        flat = [x for k, val in sorted(labels.items()) if val != "" for x in (k, str(val))]
        self.out.write(json.dumps({"l": flat, "k": kind, "v": v, "r": r, "j": j,
                                   "o": self._offset}, separators=(",", ":")) + "\n")
        self.n += 1
        self._count += 1


def app_series(s, p, st):
    """The application metrics of one Phase 5 pod (harness.workload_metrics._app_metrics)."""
    ok, err = st.req_rate * (1 - st.error_share), st.req_rate * st.error_share
    for method, share in (("GET", 0.7), ("POST", 0.3)):
        s.c("http_requests_total", ok * share, method=method, status="200")
        s.c("http_requests_total", err * share, 0.5, method=method, status="500")
    for le, frac in zip(BUCKETS, st.latency):
        s.c("http_request_duration_seconds_bucket", st.req_rate * frac, 0.05, le=_le(le))
    s.c("http_request_duration_seconds_bucket", st.req_rate, 0.05, le="+Inf")
    s.c("http_request_duration_seconds_count", st.req_rate, 0.05)
    s.c("http_request_duration_seconds_sum", st.req_rate * 0.06)
    for op in ("create", "update", "complete", "delete"):
        s.c("task_operations_total", 0.8, operation=op, status="success")
        s.c("task_operations_total", 0.004, 0.5, operation=op, status="failure")
    for ch in ("email", "push", "in-app"):
        s.c("reminder_delivery_total", 0.5 * (1 - st.reminder_fail_share), channel=ch, status="success")
        s.c("reminder_delivery_total", 0.5 * st.reminder_fail_share, 0.5, channel=ch, status="failed")
        s.c("reminder_delivery_failed_total", 0.5 * st.reminder_fail_share, 0.5, channel=ch)
    for op in ("create", "update", "delete"):
        s.c("audit_log_writes_total", 1.0, operation=op)
        s.c("audit_log_errors_total", st.audit_error_rate / 3, operation=op)
    s.g("websocket_connections_active", 40 + p["index"] % 20, 0.2)
    s.c("websocket_messages_sent_total", 12.0)
    s.c("websocket_messages_received_total", 3.0)
    s.g("database_connections_active", st.db_active, 0.3)
    s.g("database_connections_idle", max(st.db_max - st.db_active - 70, 0), 0.3)
    s.g("database_connections_max", st.db_max)
    for tp in CONSUMER_TOPICS.get(p["service"], ()):
        s.g("kafka_consumer_lag", st.kafka_lag if p["index"] == 0 else 0, 0.5, consumergroup=p["service"], topic=tp)
    if "recurring" in p["service"]:
        s.c("recurring_task_generated_total", 0.2, status="success")
        s.c("recurring_task_generated_total", 0.001, 0.5, status="failure")


def _le(le):
    return str(float(le))


def exporter_series(s, kind):
    """The data tier's exporters (harness.workload_metrics._postgres/_redis/_kafka_metrics)."""
    if kind == "postgres":
        s.g("pg_up", 1)
        for db, nb, size in (("phase5", 30, 3.2e9), ("postgres", 2, 8e6)):
            s.g("pg_stat_database_numbackends", nb, 0.2, datname=db)
            s.g("pg_database_size_bytes", size, 0.001, datname=db)
            s.c("pg_stat_database_xact_commit", 120.0 if db == "phase5" else 1.0, datname=db)
            s.c("pg_stat_database_xact_rollback", 0.5, datname=db)
        for qid, rate, mean in (("101", 80.0, 0.004), ("102", 15.0, 0.03), ("103", 2.0, 0.2)):
            s.c("pg_stat_statements_calls_total", rate, datname="phase5", queryid=qid, user="phase5")
            s.c("pg_stat_statements_seconds_total", rate * mean, datname="phase5", queryid=qid, user="phase5")
        s.g("pg_settings_max_connections", 200)
        for state, n in (("active", 8), ("idle", 20), ("idle in transaction", 1)):
            s.g("pg_stat_activity_count", n, 0.3, datname="phase5", state=state)
        s.g("pg_stat_activity_max_tx_duration", 0.4, 0.5, datname="phase5", state="active")
    elif kind == "redis":
        for name, v, j in (("redis_up", 1, 0), ("redis_memory_used_bytes", 180e6, 0.1), ("redis_memory_max_bytes", 1024e6, 0),
                           ("redis_connected_clients", 24, 0.2)):
            s.g(name, v, j)
        s.c("redis_commands_processed_total", 400.0)
        s.c("redis_keyspace_hits_total", 300.0)
        s.c("redis_keyspace_misses_total", 20.0)
    else:
        s.g("kafka_brokers", 3)
        for tp in ("task-events", "reminders", "audit-events"):
            s.g("kafka_topic_partitions", 3, topic=tp)
            for part in range(3):
                s.c("kafka_topic_partition_current_offset", 15.0, topic=tp, partition=str(part))
        for cg, topics in CONSUMER_TOPICS.items():
            for tp in topics:
                for part in range(3):
                    s.g("kafka_consumergroup_lag", 20 / 3, 0.5, consumergroup=cg, topic=tp, partition=str(part))
                    s.c("kafka_consumergroup_current_offset", 14.0, consumergroup=cg, topic=tp, partition=str(part))


def ksm_series(s, c):
    """kube-state-metrics' kept families (files/keep-lists.yaml) for every object of the cluster,
    labels as harness.workload_metrics._ksm_metrics gives them."""
    for p in c["pods"] + c["stack"]:
        ns, pod, uid = p["namespace"], p["pod"], p["uid"]
        s.g("kube_pod_info", 1, namespace=ns, pod=pod, uid=uid, node=p["node"], host_ip=f"192.168.{c['nodes'].index(p['node']) // 256}.{c['nodes'].index(p['node']) % 256}",
            pod_ip=p["ip"], created_by_kind=p["kind"], created_by_name=p["owner"], host_network="false")
        s.g("kube_pod_owner", 1, namespace=ns, pod=pod, uid=uid, owner_kind=p["kind"], owner_name=p["owner"],
            owner_is_controller="true")
        for phase in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
            s.g("kube_pod_status_phase", int(phase == "Running"), namespace=ns, pod=pod, uid=uid, phase=phase)
        for val in ("true", "false", "unknown"):
            s.g("kube_pod_status_ready", int(val == "true"), namespace=ns, pod=pod, uid=uid, condition=val)
        s.g("kube_pod_container_status_restarts_total", 0, namespace=ns, pod=pod, uid=uid, container=p["container"])
        for res, unit, q in (("cpu", "core", CPU_LIMIT), ("memory", "byte", MEM_LIMIT)):
            s.g("kube_pod_container_resource_limits", q, namespace=ns, pod=pod, uid=uid, container=p["container"],
                node=p["node"], resource=res, unit=unit)
    deployments = sorted({(p["namespace"], p["service"], p.get("replicaset")) for p in c["pods"]})
    for ns, svc, rs in deployments:
        n = sum(1 for p in c["pods"] if p["service"] == svc)
        part = {"label_app_kubernetes_io_name": svc, "label_app_kubernetes_io_part_of": "phase5"}
        if svc.endswith("-exporter"):
            part["label_app_kubernetes_io_component"] = "exporter"
        s.g("kube_deployment_spec_replicas", n, namespace=ns, deployment=svc)
        s.g("kube_deployment_status_replicas_available", n, namespace=ns, deployment=svc)
        s.g("kube_deployment_labels", 1, namespace=ns, deployment=svc, **part)
        s.g("kube_deployment_annotations", 1, namespace=ns, deployment=svc)
        s.g("kube_service_labels", 1, namespace=ns, service=svc, uid=_uuid("svc", svc), **part)
        s.g("kube_service_annotations", 1, namespace=ns, service=svc, uid=_uuid("svc", svc),
            annotation_prometheus_io_scrape="true")
        s.g("kube_replicaset_owner", 1, namespace=ns, replicaset=rs, owner_kind="Deployment", owner_name=svc,
            owner_is_controller="true")
        if svc in PHASE5_SERVICES:
            hpa = dict(namespace=ns, horizontalpodautoscaler=svc)
            s.g("kube_horizontalpodautoscaler_info", 1, **hpa, scaletargetref_api_version="apps/v1",
                scaletargetref_kind="Deployment", scaletargetref_name=svc)
            s.g("kube_horizontalpodautoscaler_spec_max_replicas", n * 2, **hpa)
            s.g("kube_horizontalpodautoscaler_status_current_replicas", n, **hpa)
            s.g("kube_horizontalpodautoscaler_status_desired_replicas", n, **hpa)
    for p in c["stack"]:
        if p["kind"] == "StatefulSet":
            s.g("kube_statefulset_labels", 1, namespace=RELEASE_NS, statefulset=p["owner"])
            s.g("kube_statefulset_annotations", 1, namespace=RELEASE_NS, statefulset=p["owner"])
    for ds in DAEMONSETS:
        s.g("kube_daemonset_status_desired_number_scheduled", len(c["nodes"]), namespace=RELEASE_NS, daemonset=ds)
        s.g("kube_daemonset_status_number_available", len(c["nodes"]), namespace=RELEASE_NS, daemonset=ds)
    s.g("kube_job_owner", 1, namespace=NAMESPACE, job_name="db-migrate", owner_kind="<none>", owner_name="<none>",
        owner_is_controller="<none>")
    for node in c["nodes"]:
        for cond in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"):
            for val in ("true", "false", "unknown"):
                s.g("kube_node_status_condition", int((val == "true") == (cond == "Ready")), node=node,
                    condition=cond, status=val)
        s.g("kube_node_spec_unschedulable", 0, node=node)


def cadvisor_series(s, pods):
    """cAdvisor's kept families for the pods of one node (the container and the pod cgroup, as
    harness.workload_metrics._cadvisor_metrics); only the Phase 5 and release namespaces are kept."""
    base = ServiceState()
    for p in pods:
        cid = f"/kubepods/burstable/pod{p['uid']}"
        image = f"ghcr.io/phase5/{p['service']}:1.0.0"
        for cont, ident, img, name in ((p["container"], f"{cid}/c1", image, "c1"), ("", cid, "", "")):
            lab = dict(namespace=p["namespace"], pod=p["pod"], container=cont, id=ident, image=img, name=name)
            s.c("container_cpu_usage_seconds_total", base.cpu_ratio * CPU_LIMIT, 0.3, cpu="total", **lab)
            s.g("container_memory_working_set_bytes", base.mem_ratio * MEM_LIMIT, 0.05, **lab)


def kubelet_series(s, pods):
    """The kubelet's kept volume stats: the claims of the stack's StatefulSets on this node
    (the Phase 5 Deployments mount none)."""
    for p in pods:
        if p["kind"] == "StatefulSet":
            claim = f"storage-{p['pod']}"
            s.g("kubelet_volume_stats_capacity_bytes", 50 * 2**30, namespace=p["namespace"], persistentvolumeclaim=claim)
            s.g("kubelet_volume_stats_available_bytes", 35 * 2**30, 0.02, namespace=p["namespace"],
                persistentvolumeclaim=claim)


def node_series(s, node, pods):
    """node-exporter's kept families of one node (filesystems, and a veth per pod)."""
    for dev, fs, mp, size in (("/dev/vda1", "ext4", "/", 200e9), ("tmpfs", "tmpfs", "/run", 4e9),
                              ("overlay", "overlay", "/var/lib/containerd", 200e9)):
        s.g("node_filesystem_size_bytes", size, device=dev, fstype=fs, mountpoint=mp)
        s.g("node_filesystem_avail_bytes", size * 0.6, 0.01, device=dev, fstype=fs, mountpoint=mp)
    for dev in ["eth0", "lo"] + [f"veth{_h(p['uid'], n=8)}" for p in pods]:
        s.c("node_network_receive_bytes_total", 5e4, 0.2, device=dev)
        s.c("node_network_transmit_bytes_total", 4e4, 0.2, device=dev)


STACK_FAMILIES = {   # monitoring-stack keep-list name prefix -> the stack pod that serves it
    "prometheus_": "p5-prometheus-0", "alertmanager_": "p5-alertmanager-0", "loki_": "p5-loki-0",
    "otelcol_": "p5-jaeger-0", "traces_": "p5-jaeger-0",
}


def stack_series(s, keep):
    """The stack's own jobs (monitoring-stack keep-list); Thanos and Promtail are off by default."""
    by_pod = {}
    for name in keep:
        pod = next((p for pre, p in STACK_FAMILIES.items() if name.startswith(pre)), None)
        if pod:
            by_pod.setdefault(pod, []).append(name)
    for i, (pod, names) in enumerate(sorted(by_pod.items())):
        s.target("monitoring-stack", f"10.97.0.{i}:9090", namespace=RELEASE_NS, service=pod.rsplit("-", 1)[0], pod=pod)
        for name in names:
            if name.endswith("_total") or name.endswith("_count"):
                s.c(name, 0.0 if "fail" in name or "error" in name or "dropped" in name or "discarded" in name else 1.0)
            elif name.endswith("_bucket"):
                continue
            else:
                s.g(name, 1e9 if "bytes" in name else 1, 0.01 if "bytes" in name else 0)


def write_series(path, pods, interval_ms, limits, keep):
    c = cluster(pods)
    with open(path, "w") as out:
        s = Series(out, interval_ms, limits)
        states = {svc: ServiceState() for svc in PHASE5_SERVICES}
        for p in c["pods"]:
            if "exporter" in p:
                s.target("phase5-exporters", f"{p['ip']}:{p['port']}", namespace=p["namespace"], service=p["service"],
                         pod=p["pod"])
                exporter_series(s, p["exporter"])
            else:
                s.target("phase5-services", f"{p['ip']}:8000", namespace=p["namespace"], service=p["service"], pod=p["pod"])
                app_series(s, p, states[p["service"]])
        s.target("kube-state-metrics", "10.97.0.5:8080")
        ksm_series(s, c)
        by_node = {}
        for p in c["pods"] + c["stack"]:
            by_node.setdefault(p["node"], []).append(p)
        for node in c["nodes"]:
            s.target("cadvisor", node, service="kubelet")
            cadvisor_series(s, by_node.get(node, []))
            s.target("kubelet", node, service="kubelet")
            kubelet_series(s, by_node.get(node, []))
            s.target("node-exporter", node, namespace=RELEASE_NS, service="node-exporter")
            node_series(s, node, by_node.get(node, []))
        stack_series(s, keep.get("monitoring-stack", []))
        s.close()
    return {"series": s.n, "nodes": len(c["nodes"]), "pods": pods}


# ----------------------------------------------------------------------------- 2./3. blocks
def generator(workdir):
    """bench-backfill built from scripts/bench-backfill with the Go module cache (offline)."""
    go = shutil.which("go")
    if not go:
        raise SystemExit("go not found: the query benchmark builds scripts/bench-backfill (make tools needs Go too)")
    exe = Path(workdir) / "bench-backfill"
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    env.setdefault("GOPROXY", "off")
    proc = subprocess.run([go, "build", "-o", str(exe), "."], cwd=GENERATOR, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"building scripts/bench-backfill failed:\n{proc.stderr}")
    return exe


def recording_rules():
    """[(file, group, record, labels, expr)] of every recording rule the chart renders by
    default, and {file: text with the recording rules only}."""
    config, files = rendered()
    rules, only = [], {}
    for name, text in sorted(files.items()):
        groups = []
        for g in (yaml.safe_load(text) or {}).get("groups") or []:
            rec = [r for r in g["rules"] if "record" in r]
            if rec:
                groups.append({**g, "rules": rec})
            rules += [(name, g["name"], r["record"], r.get("labels") or {}, r["expr"]) for r in rec]
        if groups:
            only[name] = groups
    return config, rules, only


def rule_passes(only):
    """The recording rules in passes: a rule that reads another rule's record goes in a later
    pass than that rule (the rule backfiller evaluates against the data it is given)."""
    records = {r["record"] for gs in only.values() for g in gs for r in g["rules"]}
    todo = [(f, g, r) for f, gs in only.items() for g in gs for r in g["rules"]]
    done, passes = set(), []
    while todo:
        ready = [(f, g, r) for f, g, r in todo
                 if not {x for x in records if re.search(rf"(?<![\w:]){re.escape(x)}(?![\w:])", r["expr"])
                         and x != r["record"]} - done]
        if not ready:
            raise SystemExit(f"recording rules depend on each other in a cycle: {[r['record'] for _, _, r in todo]}")
        passes.append(ready)
        todo = [t for t in todo if t not in ready]
        done |= {r["record"] for _, _, r in ready} - {r["record"] for _, _, r in todo}
    return passes


class Server:
    """bin/prometheus serving a data directory, no scraping, no rules, no compaction."""

    def __init__(self, workdir, data):
        self.workdir, self.data = Path(workdir), Path(data)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (self.workdir / "serve.yml").write_text("global:\n  scrape_interval: 15s\n")
        self.proc = Process("prometheus (bench queries)", [
            tools.require("prometheus"), f"--config.file={self.workdir / 'serve.yml'}",
            f"--storage.tsdb.path={self.data}", "--storage.tsdb.retention.time=30d",
            "--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h",
            "--no-storage.tsdb.allow-overlapping-compaction",
            f"--web.listen-address=127.0.0.1:{self.port}"], self.workdir / "prometheus.log", f"{self.url}/-/ready")

    def __enter__(self):
        self.proc.start(timeout=300)
        return self

    def __exit__(self, *exc):
        self.proc.stop()


def build(workdir, pods, span, interval, window):
    """Raw blocks, then the recorded series over the window (+5 min); returns facts for the report."""
    workdir = Path(workdir)
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    config, rules, only = recording_rules()
    cfg = yaml.safe_load(config)
    limits = {j["job_name"]: j.get("sample_limit", 0) for j in cfg["scrape_configs"]}
    keep = yaml.safe_load((paths.SUBCHARTS_DIR / "prometheus" / "files" / "keep-lists.yaml").read_text())
    interval_ms = int(interval * 1000)
    end = int(time.time() * 1000) // interval_ms * interval_ms - 60_000
    start = end - int(span * 1000)
    facts = {"pods": pods, "span": span, "interval": interval, "end": end / 1000}
    t = time.perf_counter()
    gen = generator(workdir)
    facts["t_build_generator"] = time.perf_counter() - t
    t = time.perf_counter()
    spec = workdir / "series.jsonl"
    facts.update(write_series(spec, pods, interval_ms, limits, keep))
    facts["t_series"] = time.perf_counter() - t
    t = time.perf_counter()
    with open(spec) as f:
        proc = subprocess.run([str(gen), str(data), str(start), str(end), str(interval_ms)], stdin=f,
                              capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"bench-backfill failed:\n{proc.stderr[-3000:]}")
    facts.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    facts["t_raw_blocks"] = time.perf_counter() - t
    spec.unlink()
    t = time.perf_counter()
    rstart = end // 1000 - int(window) - 300
    passes = rule_passes(only)
    for i, batch in enumerate(passes):
        files = {}
        for f, g, r in batch:
            files.setdefault((f, g["name"]), {k: v for k, v in g.items() if k != "rules"} | {"rules": []})["rules"].append(r)
        rf = workdir / f"rules-pass{i}.yaml"
        rf.write_text(yaml.safe_dump({"groups": list(files.values())}, sort_keys=False))
        out = workdir / f"rule-blocks-{i}"
        with Server(workdir, data) as srv:
            proc = subprocess.run([tools.require("promtool"), "tsdb", "create-blocks-from", "rules", f"--url={srv.url}",
                                   f"--start={rstart}", f"--end={end // 1000}", f"--output-dir={out}",
                                   f"--eval-interval={int(interval)}s", "--quiet", str(rf)],
                                  capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"promtool tsdb create-blocks-from rules failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
        for block in out.iterdir():
            if block.is_dir():
                shutil.move(str(block), data / block.name)
    facts["t_rule_blocks"] = time.perf_counter() - t
    facts["rule_passes"] = len(passes)
    facts["rules"] = rules
    facts["blocks_bytes"] = sum(f.stat().st_size for f in data.rglob("*") if f.is_file())
    return data, facts


# ----------------------------------------------------------------------------- 4. queries
def range_query(url, expr, start, end, step):
    q = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{url}/api/v1/query_range?{q}", timeout=300) as r:
            body = json.loads(r.read())
    except urllib.error.HTTPError as e:
        return time.perf_counter() - t, None, json.loads(e.read() or b"{}").get("error", str(e))
    return time.perf_counter() - t, body["data"]["result"], None


def timed(url, expr, start, end, step, runs, budget):
    """(p50 s, p95 s, runs, series returned, error): `runs` runs, fewer when their sum passes
    `budget` seconds (at least 3, or 1 when the first alone passes it: a query that slow is
    over the goal by far, and repeating it would cost the benchmark minutes)."""
    lat, n, err = [], 0, None
    for i in range(runs):
        t, res, err = range_query(url, expr, start, end, step)
        if err:
            return None, None, i, 0, err
        lat.append(t)
        n = len(res)
        if sum(lat) > budget and (i >= 2 or lat[0] > budget):
            break
    return statistics.median(lat), pct(lat, 0.95), len(lat), n, None


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def _selector(record, labels):
    if not labels:
        return record
    return record + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def first_value(url, label, match, start, end):
    """A drill-down variable ($pod, $node) as Grafana starts it: no All, the first value of its sorted
    list (label_values(match, label) with the other variables at All)."""
    q = urllib.parse.urlencode({"match[]": match, "start": start, "end": end})
    with urllib.request.urlopen(f"{url}/api/v1/label/{label}/values?{q}", timeout=300) as r:
        return sorted(json.loads(r.read())["data"])[0]


def measure(url, facts, runs, budget, window, step):
    end = facts["end"]
    start = end - window
    variables = {"pod": first_value(url, "pod", "up", start, end),
                 "node": first_value(url, "instance", "node_filesystem_size_bytes", start, end)}
    facts["pod_variable"], facts["node_variable"] = variables["pod"], variables["node"]
    # warm the page cache and Prometheus' postings once, as a dashboard already open would have
    for _, _, expr in panel_queries(variables):
        range_query(url, expr, start, end, step)
    panels = []
    for uid, title, expr in panel_queries(variables):
        p50, p95, n, series, err = timed(url, expr, start, end, step, runs, budget)
        panels.append({"dashboard": uid, "panel": title, "expr": expr, "p50": p50, "p95": p95, "runs": n,
                       "series": series, "error": err})
    rules, seen = [], set()
    for f, g, record, labels, expr in facts["rules"]:
        key = (record, tuple(sorted(labels.items())))
        if key in seen:
            continue
        seen.add(key)
        rec = timed(url, _selector(record, labels), start, end, step, runs, budget)
        raw = timed(url, expr, start, end, step, runs, budget)
        rules.append({"file": f, "group": g, "record": record, "labels": labels, "recorded": rec, "raw": raw})
    return panels, rules


def run(workdir, pods=10_000, runs=20, budget=15.0, span=7200, window=3600, interval=15, keep_data=None):
    """The whole part: build the blocks, serve them, measure. Returns the result for section()."""
    t0 = time.perf_counter()
    workdir = Path(workdir) / "queries"
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"  {pods} pods, {span / 3600:g} h at {interval} s: writing blocks ...", flush=True)
    data, facts = build(workdir, pods, span, interval, window)
    print(f"  {facts['series']} raw series, {facts['samples']} samples; querying ...", flush=True)
    t = time.perf_counter()
    with Server(workdir, data) as srv:
        facts["head_series"] = None
        panels, rules = measure(srv.url, facts, runs, budget, window, interval)
    facts["t_queries"] = time.perf_counter() - t
    facts["t_total"] = time.perf_counter() - t0
    if keep_data:
        shutil.copytree(data, keep_data, dirs_exist_ok=True)
    facts.pop("rules")
    return {"facts": facts, "panels": panels, "rules": rules, "runs": runs, "budget": budget, "window": window,
            "step": interval}


# ----------------------------------------------------------------------------- report
def _ms(x):
    return "-" if x is None else f"{x * 1000:.1f}"


def section(q, machine, trial=False):
    f = q["facts"]
    panels = q["panels"]
    ok = [p for p in panels if p["p95"] is not None]
    worst = max(ok, key=lambda p: p["p95"]) if ok else None
    over = [p for p in ok if p["p95"] * 1000 >= GOAL_MS]
    many = [p for p in ok if p["series"] > MANY_SERIES]
    errors = [p for p in panels if p["error"]]
    L = ["", "## Dashboard query latency at 10,000 pods" if f["pods"] == 10_000 else
         f"## Dashboard query latency at {f['pods']:,} pods", ""]
    if trial:
        L += ["*Trial run by the helper that wrote `scripts/bench_queries.py`, on the shared 2-core machine "
              "with other work running: absolute milliseconds are noisy; to be replaced by the one-run rewrite."
              + (f" {trial}" if isinstance(trial, str) else "") + "*", ""]
    L += [f"Backfilled, not live (`scripts/bench_queries.py` says why): the series a {f['pods']:,}-pod Phase 5 cluster "
          f"stores under the chart's default configuration ({f['nodes']} nodes, {PODS_PER_NODE} pods each; keep-lists "
          f"and relabelling as rendered), {f['span'] / 3600:g} h at the {f['interval']} s scrape interval: "
          f"{f['series']:,} raw series, {f['samples']:,} samples, written as TSDB blocks with the block writer "
          "`promtool tsdb create-blocks-from openmetrics` uses; then every recording rule of the default render "
          f"backfilled by the real `promtool tsdb create-blocks-from rules` ({f['rule_passes']} passes, dependants "
          f"last) over the queried hour + 5 min; blocks on disk {f['blocks_bytes'] / 2**30:.2f} GiB. The real "
          f"Prometheus from bin/ serves them (compaction off). Every Prometheus panel query of the four dashboards "
          f"(Grafana's macros and the All values substituted; the drill-downs $pod and $node at their first "
          f"values, `{f.get('pod_variable', '-')}` and `{f.get('node_variable', '-')}`, as Grafana starts them) as a range query over the last "
          f"{q['window'] / 3600:g} h at a {q['step']} s step (Grafana's step for that range: the datasource's "
          f"timeInterval), up to {q['runs']} runs each (fewer when a query's runs pass {q['budget']:g} s: at "
          f"least 3, or 1 when the first run alone passes it), after one warm-up pass of the panels. Goal: p95 < {GOAL_MS:g} ms for every panel query, none "
          f"returning more than {MANY_SERIES:,} series. On {machine['nproc']} cores shared with other work.", ""]
    if worst:
        L.append(f"**Slowest panel query: p95 {_ms(worst['p95'])} ms** ({worst['dashboard']} / {worst['panel']}). "
                 f"Over the goal: {len(over)} of {len(panels)}; returning more than {MANY_SERIES:,} series: "
                 f"{len(many)}; errors: {len(errors)}.")
    L += ["", "| dashboard | panel | query | p50 (ms) | p95 (ms) | runs | series | |", "|---|---|---|---|---|---|---|---|"]
    for p in panels:
        flag = []
        if p["error"]:
            flag.append(f"error: {p['error'][:80]}")
        if p["p95"] is not None and p["p95"] * 1000 >= GOAL_MS:
            flag.append("over 50 ms")
        if p["series"] > MANY_SERIES:
            flag.append("many series")
        expr = p["expr"].replace("|", "\\|").replace("\n", " ")
        if len(expr) > 110:
            expr = expr[:107] + "..."
        L.append(f"| {p['dashboard']} | {p['panel']} | `{expr}` | {_ms(p['p50'])} | {_ms(p['p95'])} | {p['runs']} "
                 f"| {p['series']} | {', '.join(flag)} |")
    L += ["", "Every recording rule of the default render: its recorded series against the raw expression it "
          "records, the same range query (same window and step). Ratio = raw p50 / recorded p50. The rules whose "
          "expression is a constant (`vector(...)`: the category fallbacks, the SLO objectives) read nothing either "
          "way; their ratio is noise, listed so that every rule is.", "",
          "| rule | labels | recorded p50 / p95 (ms) | raw p50 / p95 (ms) | raw runs | ratio | series |",
          "|---|---|---|---|---|---|---|"]
    for r in q["rules"]:
        rp50, rp95, _, rn, rerr = r["recorded"]
        wp50, wp95, wruns, wn, werr = r["raw"]
        ratio = f"{wp50 / rp50:.1f}x" if rp50 and wp50 else "-"
        labels = ", ".join(f"{k}={v}" for k, v in sorted(r["labels"].items())) or "-"
        L.append(f"| `{r['record']}` | {labels} | {_ms(rp50)} / {_ms(rp95)} | "
                 f"{_ms(wp50) if not werr else 'error'} / {_ms(wp95)} | {wruns} | {ratio} | {rn} |")
    L += ["", f"Time taken: generator build {f['t_build_generator']:.0f} s, series list {f['t_series']:.0f} s, raw "
          f"blocks {f['t_raw_blocks']:.0f} s, rule backfill {f['t_rule_blocks']:.0f} s, queries {f['t_queries']:.0f} s; "
          f"{f['t_total'] / 60:.1f} min in all. Limits: the data sits in persistent blocks, where a live Prometheus "
          "holds the last two to three hours in its in-memory head, and the recorded series in blocks of their own; "
          "OpenMetrics `_created` series are not stored; only the Phase 5 pods, the exporters and the stack's own pods "
          "exist (no other teams' pods on the nodes)."]
    return L


def rewrite_section(path, lines):
    """Replace only this section of an existing report (--only queries)."""
    text = path.read_text() if path.exists() else ""
    title = lines[1]
    m = re.search(r"\n## Dashboard query latency[^\n]*\n", text)
    if not m:
        path.write_text(text.rstrip("\n") + "\n" + "\n".join(lines) + "\n")
        return
    rest = text[m.end():]
    nxt = rest.find("\n## ")
    tail = rest[nxt:] if nxt >= 0 else "\n"
    path.write_text(text[:m.start()] + "\n" + "\n".join(lines[1:]) + "\n" + tail)
    assert title
