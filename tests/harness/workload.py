"""The synthetic Phase 5 workload: every metric the chart's rules and dashboards read, served
over HTTP on 127.0.0.1, with a healthy baseline and one switchable scenario per alert.

The workload is real objects in the e2e stack's API server (objects(); harness.simcluster):
- `services` Phase 5 Deployments in `namespace` (default phase5-prod), `replicas` pods each,
  behind Services annotated `prometheus.io/scrape`/`port`/`path` as docs/integration.md asks,
  each with a HorizontalPodAutoscaler; every pod serves the application metrics of the contract
  (http_requests_total, http_request_duration_seconds, task_operations_total, reminder_delivery_*,
  audit_log_*, websocket_*, database_connections_*, kafka_consumer_lag,
  recurring_task_generated_total);
- StatefulSets (e.g. postgres): cAdvisor and kube-state-metrics series only;
- the exporters of the data tier as Deployments + annotated Services: postgres_exporter,
  redis_exporter, kafka_exporter, upstream metric names.
kwok runs the pods; sync(snapshot) adopts them (names, nodes, IPs, readiness as the API server
holds them) and serves each on its own 127.0.0.1 port, which the pod network
(harness.podnet) routes the pod's address to.

Derived from the API server's objects, as the real programs derive them:
- kube-state-metrics' series (kube_pod_*, kube_deployment_*, kube_replicaset_*,
  kube_statefulset_*, kube_horizontalpodautoscaler_*, kube_node_*, kube_namespace_*), served on
  the chart's kube-state-metrics pod (kube-state-metrics is not served by the Go module proxy:
  its names and labels are checked against its documented metrics, tests/harness/ksm.py);
- kubelet/cAdvisor series per node for the pods placed on it (container_cpu_usage_seconds_total,
  container_memory_working_set_bytes, ... with the pod-level container="" series).
Node series come from the real node_exporter (harness.processes), not from here.

Counters are integrals of the current rates (value += rate * dt at every scrape), so a
scenario that changes a rate changes what `rate()` sees from then on, as in a real pod.

`Workload.trigger(alertname, service)` switches one workload into the state that alert
describes - through the API server where Kubernetes holds that state (SCENARIOS);
`Workload.clear(service)` returns it to the baseline. Scenarios on different services never
share a label set, so they can run at the same time.
"""
import asyncio
import dataclasses
import socket
import threading
import time

from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from .aioloop import LoopThread

PHASE5_SERVICES = ("backend", "frontend", "notification-agent", "recurring-task-agent",
                   "audit-agent", "reminder-agent")
NAMESPACE = "phase5-prod"   # the chart scrapes namespaces matching phase5.namespaceRegex ("phase5-.*")
CONSUMER_TOPICS = {  # consumer group -> topics (the agents read the task events)
    "notification-agent": ("reminders",),
    "recurring-task-agent": ("task-events",),
    "audit-agent": ("task-events", "audit-events"),
    "reminder-agent": ("reminders",),
}
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Cumulative share of requests at or below each bucket bound (then +Inf = 1.0).
FAST_LATENCY = (0.05, 0.2, 0.45, 0.8, 0.97, 0.995, 0.999, 1.0, 1.0, 1.0, 1.0)   # p95 ~ 0.1s
SLOW_LATENCY = (0.0, 0.0, 0.0, 0.01, 0.02, 0.05, 0.1, 0.3, 0.8, 0.97, 1.0)      # p95 ~ 5s
CPU_LIMIT = 0.5           # cores per container
MEM_LIMIT = 512 * 2**20   # bytes per container
CPU_BOOST = 20.0          # HighCPUUsage scenario: CPU seconds per second, in units of the limit


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class ServiceState:
    """Knobs of one Phase 5 Deployment; the baseline is healthy."""
    replicas: int = 2
    req_rate: float = 5.0            # requests/s per pod
    error_share: float = 0.005       # share of 5xx
    latency: tuple = FAST_LATENCY
    db_active: int = 12
    db_max: int = 100
    kafka_lag: int = 20
    audit_error_rate: float = 0.0    # audit_log_errors_total per second per pod
    reminder_fail_share: float = 0.01
    cpu_ratio: float = 0.2           # of the CPU limit
    mem_ratio: float = 0.35          # of the memory limit
    restart_rate: float = 0.0        # container restarts per second (pod 0)
    failing_scrapes: int = 0         # the first N pods are Ready but their /metrics answers 503
    exports_metrics: bool = True     # False: /metrics answers 200 with none of the application series
    kind: str = "Deployment"         # or "StatefulSet" (pods <name>-0, -1, ...; no app targets)


class _Counters:
    """Counters as integrals of rates: bump(key, rate) adds rate * elapsed since last call."""

    def __init__(self):
        self._v = {}
        self._lock = threading.Lock()

    def value(self, key, rate, start=0.0):
        now = time.monotonic()
        with self._lock:
            v, t = self._v.get(key, (start, now))
            v += max(rate, 0.0) * (now - t)
            self._v[key] = (v, now)
            return v


class _Collector:
    def __init__(self, fn):
        self._fn = fn

    def collect(self):
        return self._fn()


def _expose(fn):
    """A collect(path) -> bytes serving fn()'s families whatever the path."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Collector(fn))
    return lambda path="/metrics": generate_latest(reg)


EXPORTERS = (("postgres", "postgres-exporter", 9187), ("redis", "redis-exporter", 9121),
             ("kafka", "kafka-exporter", 9308))
APP_PORT = 8000
HPA_MAX = 6


def _scrape_annotations(port):
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"}


class Workload:
    """The synthetic Phase 5 workload. objects() are created in the API server; sync(snapshot)
    adopts the pods kwok runs (names, nodes, readiness come from the API server) and serves
    each on its own 127.0.0.1 port; stop() at the end."""

    def __init__(self, services=PHASE5_SERVICES, namespace=NAMESPACE, replicas=2,
                 statefulsets=(), spread=False,
                 placement=None, replicas_of=None):
        self.namespace = namespace
        self.replicas = replicas
        self.spread = spread      # at most one pod of a Deployment per node (required anti-affinity)
        self.placement = dict(placement or {})   # service -> pod spec fields (nodeSelector, tolerations)
        self.state = {s: self._baseline(s, (replicas_of or {}).get(s, replicas)) for s in services}
        # StatefulSets (e.g. postgres): kube-state-metrics and cAdvisor series only, one pod each
        self.state.update({s: ServiceState(replicas=1, kind="StatefulSet") for s in statefulsets})
        self.active = {}          # service -> alertname
        self.cluster = None       # harness.simcluster.SimCluster, set by the Stack
        self.snapshot = None      # the API server's objects as last read
        self._c = _Counters()
        self._lock = threading.RLock()
        self._loop = None         # harness.aioloop.LoopThread serving the pods
        self._servers = {}        # key -> (local port, asyncio server)
        self._restarts = {}       # (namespace, pod) -> restart count reported
        self._ksm_cache = None    # (snapshot, exposition bytes)
        self._local = {}          # (namespace, pod) -> {container port: local port}
        self.scrapes = 0

    def _baseline(self, service, replicas):
        return ServiceState(replicas=replicas)

    # ---------------------------------------------------------------- objects in the API server
    def objects(self):
        """Namespace, Deployments/StatefulSets, Services (annotated as docs/integration.md asks),
        HPAs and the exporters, for the API server."""
        ns = self.namespace
        out = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}]
        for svc, st in self.state.items():
            labels = {"app.kubernetes.io/name": svc, "app.kubernetes.io/part-of": "phase5"}
            pod = {"metadata": {"labels": labels},
                   "spec": {"containers": [{
                       "name": svc, "image": f"ghcr.io/phase5/{svc}:1.0.0",
                       "ports": [{"name": "http-metrics", "containerPort": APP_PORT}],
                       "resources": {"limits": {"cpu": f"{int(CPU_LIMIT * 1000)}m", "memory": str(MEM_LIMIT)},
                                     "requests": {"cpu": f"{int(CPU_LIMIT * 200)}m", "memory": str(MEM_LIMIT // 4)}}}],
                       "terminationGracePeriodSeconds": 1}}
            if st.kind == "StatefulSet":
                out.append({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": svc, "namespace": ns},
                            "spec": {"replicas": st.replicas, "serviceName": svc,
                                     "selector": {"matchLabels": {"app.kubernetes.io/name": svc}}, "template": pod}})
                continue
            pod["spec"].update(self.placement.get(svc, {}))
            if self.spread:
                pod["spec"]["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app.kubernetes.io/name": svc}},
                     "topologyKey": "kubernetes.io/hostname"}]}}
            out.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": svc, "namespace": ns},
                        "spec": {"replicas": st.replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": svc}},
                                 "template": pod}})
            out.append(self._service(svc, labels, APP_PORT))
            out.append({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                        "metadata": {"name": svc, "namespace": ns},
                        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": svc},
                                 "minReplicas": 1, "maxReplicas": HPA_MAX}})
        for kind, svc, port in EXPORTERS:
            labels = {"app.kubernetes.io/name": svc, "app.kubernetes.io/part-of": "phase5"}
            out.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": svc, "namespace": ns},
                        "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": svc}},
                                 "template": {"metadata": {"labels": labels}, "spec": {
                                     "containers": [{"name": f"{kind}-exporter", "image": f"exporters/{svc}:latest",
                                                     "ports": [{"name": "http-metrics", "containerPort": port}]}],
                                     "terminationGracePeriodSeconds": 1}}}})
            out.append(self._service(svc, labels, port))
        return out

    def _service(self, name, labels, port):
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": self.namespace, "labels": labels,
                             "annotations": _scrape_annotations(port)},
                "spec": {"selector": {"app.kubernetes.io/name": name},
                         "ports": [{"name": "http-metrics", "port": port, "targetPort": "http-metrics"}]}}

    # ---------------------------------------------------------------- topology (from the API server)
    def pod_objects(self, service):
        snap = self.snapshot
        if snap is None:
            return []
        return snap.pods_of(self.namespace, self.state[service].kind, service)

    def pods(self, service):
        """Names of the service's live pods, oldest first (pod 0 is the one a scenario hits)."""
        return [p["metadata"]["name"] for p in self.pod_objects(service)]

    def sync(self, snapshot):
        """Adopt what the API server says: serve every Phase 5 pod (new ones get a port, gone
        ones lose theirs), report scenario restarts in pod status. Returns
        {(namespace, pod): {container port: local port}} for the pod network."""
        with self._lock:
            self.snapshot = snapshot
        self._local = self._serve_pods(snapshot)
        if self.cluster is not None:
            self._report_restarts()
        if ("ksm",) in self._servers:
            self._ksm_exposition()      # built here, in the watch thread, not in a scrape
        return self._local

    def local_ports(self):
        """{(namespace, pod): {container port: local port}} as of the last sync()."""
        return dict(self._local)

    def _serve_pods(self, snapshot):
        local = {}
        for svc, st in list(self.state.items()):
            if st.kind != "Deployment":
                continue
            for i, pod in enumerate(self.pod_objects(svc)):
                name = pod["metadata"]["name"]
                port = self._ensure_server(("app", name), _expose(lambda svc=svc, name=name: self._app_metrics(svc, name)),
                                           gate=lambda svc=svc, name=name: self._gate(svc, name))
                local[(self.namespace, name)] = {APP_PORT: port}
        for kind, svc, port in EXPORTERS:
            for pod in snapshot.pods_of(self.namespace, "Deployment", svc):
                lp = self._ensure_server((kind, pod["metadata"]["name"]), _expose(getattr(self, f"_{kind}_metrics")))
                local[(self.namespace, pod["metadata"]["name"])] = {port: lp}
        live = {("app", n) for (_, n) in local} | {(k, n) for k, s, _ in EXPORTERS for (_, n) in local}
        for key in [k for k in self._servers if k[0] in ("app", "postgres", "redis", "kafka") and k not in live]:
            self._close_server(key)
        return local

    def ksm_port(self):
        return self._ensure_server(("ksm",), self._ksm_exposition)

    def _ksm_exposition(self, path="/metrics"):
        """kube-state-metrics' answer for the current snapshot, built once per snapshot (as
        kube-state-metrics serves from its informers' cache): a scrape only copies bytes, so it
        never outlasts the e2e stack's 1 s scrape timeout."""
        snap = self.snapshot
        cached = self._ksm_cache
        if cached is None or cached[0] is not snap:
            cached = self._ksm_cache = (snap, _expose(self._ksm_metrics)())
        return cached[1]

    def kubelet_port(self, node):
        return self._ensure_server(("kubelet", node), self._kubelet(node))

    def _gate(self, svc, name):
        """None when the pod serves its metrics, else the HTTP status it answers."""
        st = self.state[svc]
        pods = self.pod_objects(svc)
        names = [p["metadata"]["name"] for p in pods]
        if name not in names:
            return "404 Not Found"
        from .simcluster import ready
        if not ready(pods[names.index(name)]):       # a pod that is not Ready fails its scrape
            return "503 Service Unavailable"
        if names.index(name) < st.failing_scrapes:   # Ready, but /metrics answers 503
            return "503 Service Unavailable"
        return None

    def _report_restarts(self):
        for svc, st in list(self.state.items()):
            pods = self.pod_objects(svc)
            if not pods or st.restart_rate <= 0:
                continue
            name = pods[0]["metadata"]["name"]
            count = int(self._c.value(("restarts", svc, name), st.restart_rate))
            if count > self._restarts.get((self.namespace, name), 0) and pods[0].get("status", {}).get("containerStatuses"):
                self.cluster.set_restart_count(self.namespace, name, count)
                self._restarts[(self.namespace, name)] = count

    # ---------------------------------------------------------------- scenarios
    def trigger(self, alertname, service=None):
        """Put `service` into the state that fires `alertname` (through the API server where
        Kubernetes holds that state). Returns the service."""
        fn = SCENARIOS[alertname]
        with self._lock:
            key = fn(self, service)
            self.active.setdefault(key, []).append(alertname)
        return key

    def clear(self, service=None):
        """Back to the healthy baseline (one service, or everything): knobs reset, and what a
        scenario changed in the API server undone (readiness, replicas, the HPA's maximum)."""
        with self._lock:
            keys = [service] if service else list(self.active)
            for k in keys:
                alerts = self.active.pop(k, [])
                if k not in self.state:
                    continue
                old = self.state[k]
                self.state[k] = self._baseline(k, old.replicas)
                self.state[k].kind = old.kind
                if self.cluster is None:
                    continue
                if "PodDown" in alerts:
                    for name in self.pods(k):
                        self.cluster.set_pod_not_ready(self.namespace, name, False)
                if "DeploymentReplicaMismatch" in alerts:
                    self.cluster.scale(self.namespace, k, old.replicas)
                if "HPAMaxedOut" in alerts:
                    self.cluster.set_hpa_max(self.namespace, k, HPA_MAX)

    # ---------------------------------------------------------------- metric families
    def _app_metrics(self, svc, pod):
        st = self.state[svc]
        if not st.exports_metrics:      # Phase5MetricsMissing: scraped fine, the series are gone
            return []
        names = self.pods(svc)
        i = names.index(pod) if pod in names else 0
        pod_key = (svc, pod)
        ok_rate = st.req_rate * (1 - st.error_share)
        err_rate = st.req_rate * st.error_share
        req = CounterMetricFamily("http_requests", "HTTP requests served.",
                                  labels=("method", "status"))
        for method, share in (("GET", 0.7), ("POST", 0.3)):
            req.add_metric((method, "200"), self._c.value((pod_key, "req", method, "200"), ok_rate * share))
            req.add_metric((method, "500"), self._c.value((pod_key, "req", method, "500"), err_rate * share))
        dur = HistogramMetricFamily("http_request_duration_seconds", "HTTP request latency.",
                                    labels=())
        cnt = self._c.value((pod_key, "dur_count"), st.req_rate)
        buckets = []
        for le, frac in zip(BUCKETS, st.latency):
            buckets.append((str(le), self._c.value((pod_key, "dur", le), st.req_rate * frac)))
        buckets.append(("+Inf", cnt))
        # keep buckets monotonic even when the latency profile changed mid-run
        mono, top = [], 0.0
        for le, v in buckets:
            top = max(top, v)
            mono.append((le, top))
        mono[-1] = ("+Inf", max(cnt, top))
        dur.add_metric((), mono, self._c.value((pod_key, "dur_sum"), st.req_rate * _mean(st.latency)))
        tasks = CounterMetricFamily("task_operations", "Task operations.", labels=("operation", "status"))
        for op in ("create", "update", "complete", "delete"):
            tasks.add_metric((op, "success"), self._c.value((pod_key, "task", op), 0.8))
            tasks.add_metric((op, "failure"), self._c.value((pod_key, "taskf", op), 0.004))
        rem = CounterMetricFamily("reminder_delivery", "Reminder deliveries.", labels=("channel", "status"))
        remf = CounterMetricFamily("reminder_delivery_failed", "Failed reminder deliveries.", labels=("channel",))
        for ch in ("email", "push", "in-app"):
            rate = 0.5
            rem.add_metric((ch, "success"), self._c.value((pod_key, "rem", ch, "ok"), rate * (1 - st.reminder_fail_share)))
            rem.add_metric((ch, "failed"), self._c.value((pod_key, "rem", ch, "failed"), rate * st.reminder_fail_share))
            remf.add_metric((ch,), self._c.value((pod_key, "remf", ch), rate * st.reminder_fail_share))
        aud = CounterMetricFamily("audit_log_writes", "Audit log writes.", labels=("operation",))
        aude = CounterMetricFamily("audit_log_errors", "Audit log write errors.", labels=("operation",))
        for op in ("create", "update", "delete"):
            aud.add_metric((op,), self._c.value((pod_key, "aud", op), 1.0))
            aude.add_metric((op,), self._c.value((pod_key, "aude", op), st.audit_error_rate / 3))
        ws = GaugeMetricFamily("websocket_connections_active", "Open WebSocket connections.")
        ws.add_metric((), 40 + i)
        wss = CounterMetricFamily("websocket_messages_sent", "WebSocket messages sent.")
        wss.add_metric((), self._c.value((pod_key, "wss"), 12.0))
        wsr = CounterMetricFamily("websocket_messages_received", "WebSocket messages received.")
        wsr.add_metric((), self._c.value((pod_key, "wsr"), 3.0))
        dba = GaugeMetricFamily("database_connections_active", "Database pool: connections in use.")
        dba.add_metric((), st.db_active)
        dbi = GaugeMetricFamily("database_connections_idle", "Database pool: idle connections.")
        dbi.add_metric((), max(st.db_max - st.db_active - 70, 0))
        dbm = GaugeMetricFamily("database_connections_max", "Database pool: maximum size.")
        dbm.add_metric((), st.db_max)
        out = [req, dur, tasks, rem, remf, aud, aude, ws, wss, wsr, dba, dbi, dbm]
        topics = CONSUMER_TOPICS.get(svc)
        if topics is None and svc not in PHASE5_SERVICES:
            topics = ("task-events",)
        if topics:
            lag = GaugeMetricFamily("kafka_consumer_lag", "Consumer lag (messages).",
                                    labels=("consumergroup", "topic"))
            for tp in topics:
                lag.add_metric((svc, tp), st.kafka_lag if i == 0 else 0)
            out.append(lag)
        if "recurring" in svc:
            rec = CounterMetricFamily("recurring_task_generated", "Recurring task instances generated.",
                                      labels=("status",))
            rec.add_metric(("success",), self._c.value((pod_key, "rec"), 0.2))
            rec.add_metric(("failure",), self._c.value((pod_key, "recf"), 0.001))
            out.append(rec)
        return out

    def _postgres_metrics(self):
        out = []
        g = GaugeMetricFamily("pg_up", "Whether the last scrape of PostgreSQL succeeded.")
        g.add_metric((), 1)
        out.append(g)
        nb = GaugeMetricFamily("pg_stat_database_numbackends", "Backends connected.", labels=("datname",))
        size = GaugeMetricFamily("pg_database_size_bytes", "Database size.", labels=("datname",))
        # postgres_exporter names these counters without the _total suffix
        com = _raw_counter("pg_stat_database_xact_commit", "Commits.")
        rb = _raw_counter("pg_stat_database_xact_rollback", "Rollbacks.")
        for db in ("phase5", "postgres"):
            nb.add_metric((db,), 30 if db == "phase5" else 2)
            size.add_metric((db,), 3.2e9 if db == "phase5" else 8e6)
            com.add_sample(com.name, {"datname": db}, self._c.value(("pg", "commit", db), 120.0))
            rb.add_sample(rb.name, {"datname": db}, self._c.value(("pg", "rollback", db), 0.5))
        calls = CounterMetricFamily("pg_stat_statements_calls", "Statement calls.",
                                    labels=("datname", "queryid", "user"))
        secs = CounterMetricFamily("pg_stat_statements_seconds", "Statement time (s).",
                                   labels=("datname", "queryid", "user"))
        for qid, rate, mean in (("101", 80.0, 0.004), ("102", 15.0, 0.03), ("103", 2.0, 0.2)):
            calls.add_metric(("phase5", qid, "phase5"), self._c.value(("pg", "calls", qid), rate))
            secs.add_metric(("phase5", qid, "phase5"), self._c.value(("pg", "secs", qid), rate * mean))
        out += [calls, secs]
        mx = GaugeMetricFamily("pg_settings_max_connections", "max_connections.")
        mx.add_metric((), 200)
        act = GaugeMetricFamily("pg_stat_activity_count", "Connections by state.", labels=("datname", "state"))
        for state, n in (("active", 8), ("idle", 20), ("idle in transaction", 1)):
            act.add_metric(("phase5", state), n)
        dur = GaugeMetricFamily("pg_stat_activity_max_tx_duration", "Longest transaction (s).",
                                labels=("datname", "state"))
        dur.add_metric(("phase5", "active"), 0.4)
        return out + [nb, size, com, rb, mx, act, dur]

    def _redis_metrics(self):
        def gauge(name, v, help_="redis_exporter"):
            g = GaugeMetricFamily(name, help_)
            g.add_metric((), v)
            return g
        cmd = CounterMetricFamily("redis_commands_processed", "Commands processed.")
        cmd.add_metric((), self._c.value(("redis", "cmd"), 400.0))
        hits = CounterMetricFamily("redis_keyspace_hits", "Keyspace hits.")
        hits.add_metric((), self._c.value(("redis", "hits"), 300.0))
        miss = CounterMetricFamily("redis_keyspace_misses", "Keyspace misses.")
        miss.add_metric((), self._c.value(("redis", "miss"), 20.0))
        return [gauge("redis_up", 1), gauge("redis_memory_used_bytes", 180e6),
                gauge("redis_memory_max_bytes", 1024e6), gauge("redis_connected_clients", 24),
                cmd, hits, miss]

    def _kafka_metrics(self):
        b = GaugeMetricFamily("kafka_brokers", "Brokers in the cluster.")
        b.add_metric((), 3)
        parts = GaugeMetricFamily("kafka_topic_partitions", "Partitions per topic.", labels=("topic",))
        off = GaugeMetricFamily("kafka_topic_partition_current_offset", "Current offset.",
                                labels=("topic", "partition"))
        lag = GaugeMetricFamily("kafka_consumergroup_lag", "Consumer group lag.",
                                labels=("consumergroup", "topic", "partition"))
        for tp in ("task-events", "reminders", "audit-events"):
            parts.add_metric((tp,), 3)
            for p in range(3):
                off.add_metric((tp, str(p)), self._c.value(("kafka", tp, p), 15.0))
        for cg, topics in CONSUMER_TOPICS.items():
            st = self.state.get(cg)
            for tp in topics:
                for p in range(3):
                    lag.add_metric((cg, tp, str(p)), (st.kafka_lag if st else 0) / 3)
        return [b, parts, off, lag]

    def _ksm_metrics(self):
        """kube-state-metrics' series (names and labels of the pinned version, see
        KSM_METRICS), derived from the API server's objects as kube-state-metrics derives them:
        a fault made through the API shows up here, and nothing here is a free-standing number."""
        snap = self.snapshot
        fam = {}

        def g(name, labels, kind="gauge"):
            if name not in fam:
                cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                fam[name] = cls(name[:-len("_total")] if kind == "counter" else name, "kube-state-metrics", labels=labels)
            return fam[name]
        if snap is None:
            return []
        for d in snap.deployments:
            ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
            st, spec = d.get("status", {}), d["spec"]
            dl = ("namespace", "deployment")
            g("kube_deployment_spec_replicas", dl).add_metric((ns, name), spec.get("replicas", 1))
            g("kube_deployment_status_replicas", dl).add_metric((ns, name), st.get("replicas", 0))
            g("kube_deployment_status_replicas_available", dl).add_metric((ns, name), st.get("availableReplicas", 0))
            g("kube_deployment_status_replicas_unavailable", dl).add_metric((ns, name), st.get("unavailableReplicas", 0))
            g("kube_deployment_status_replicas_ready", dl).add_metric((ns, name), st.get("readyReplicas", 0))
            g("kube_deployment_status_replicas_updated", dl).add_metric((ns, name), st.get("updatedReplicas", 0))
            g("kube_deployment_metadata_generation", dl).add_metric((ns, name), d["metadata"].get("generation", 0))
            g("kube_deployment_status_observed_generation", dl).add_metric((ns, name), st.get("observedGeneration", 0))
        for r in snap.replicasets:
            ns, name = r["metadata"]["namespace"], r["metadata"]["name"]
            for ref in r["metadata"].get("ownerReferences") or []:
                g("kube_replicaset_owner", ("namespace", "replicaset", "owner_kind", "owner_name", "owner_is_controller")
                  ).add_metric((ns, name, ref["kind"], ref["name"], str(bool(ref.get("controller"))).lower()), 1)
            g("kube_replicaset_spec_replicas", ("namespace", "replicaset")).add_metric((ns, name), r["spec"].get("replicas", 1))
        for t in snap.statefulsets:
            ns, name, st = t["metadata"]["namespace"], t["metadata"]["name"], t.get("status", {})
            sl = ("namespace", "statefulset")
            g("kube_statefulset_replicas", sl).add_metric((ns, name), t["spec"].get("replicas", 1))
            g("kube_statefulset_status_replicas_ready", sl).add_metric((ns, name), st.get("readyReplicas", 0))
            g("kube_statefulset_status_replicas_available", sl).add_metric((ns, name), st.get("availableReplicas", 0))
        for h in snap.hpas:
            ns, name, spec, st = h["metadata"]["namespace"], h["metadata"]["name"], h["spec"], h.get("status", {})
            ref = spec["scaleTargetRef"]
            g("kube_horizontalpodautoscaler_info", ("namespace", "horizontalpodautoscaler", "scaletargetref_api_version",
                                                      "scaletargetref_kind", "scaletargetref_name")
              ).add_metric((ns, name, ref.get("apiVersion", ""), ref["kind"], ref["name"]), 1)
            hl = ("namespace", "horizontalpodautoscaler")
            # status.currentReplicas as the HPA controller wrote it (it cannot read metrics here,
            # but it still reports the scale target's replicas); before its first pass, none.
            cur = st.get("currentReplicas")
            g("kube_horizontalpodautoscaler_spec_max_replicas", hl).add_metric((ns, name), spec["maxReplicas"])
            g("kube_horizontalpodautoscaler_spec_min_replicas", hl).add_metric((ns, name), spec.get("minReplicas", 1))
            if cur is not None:
                g("kube_horizontalpodautoscaler_status_current_replicas", hl).add_metric((ns, name), cur)
                g("kube_horizontalpodautoscaler_status_desired_replicas", hl).add_metric((ns, name), st.get("desiredReplicas", cur))
        for p in snap.pods:
            md, spec, st = p["metadata"], p["spec"], p.get("status", {})
            ns, pod, uid, node = md["namespace"], md["name"], md["uid"], spec.get("nodeName", "")
            refs = [r for r in md.get("ownerReferences") or [] if r.get("controller")]
            kind, owner = (refs[0]["kind"], refs[0]["name"]) if refs else ("<none>", "<none>")
            g("kube_pod_info", ("namespace", "pod", "uid", "node", "host_ip", "pod_ip", "created_by_kind",
                                "created_by_name", "priority_class", "host_network")
              ).add_metric((ns, pod, uid, node, st.get("hostIP", ""), st.get("podIP", ""), kind, owner,
                            spec.get("priorityClassName", ""), str(bool(spec.get("hostNetwork"))).lower()), 1)
            g("kube_pod_owner", ("namespace", "pod", "uid", "owner_kind", "owner_name", "owner_is_controller")
              ).add_metric((ns, pod, uid, kind, owner, "true" if refs else "<none>"), 1)
            g("kube_pod_labels", ("namespace", "pod", "uid", "label_app_kubernetes_io_name")
              ).add_metric((ns, pod, uid, (md.get("labels") or {}).get("app.kubernetes.io/name", "")), 1)
            for phase in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
                g("kube_pod_status_phase", ("namespace", "pod", "uid", "phase")).add_metric(
                    (ns, pod, uid, phase), 1 if st.get("phase") == phase else 0)
            for c in st.get("conditions") or []:
                if c["type"] == "Ready":   # kube-state-metrics: one series per value of the Ready condition
                    for val in ("true", "false", "unknown"):
                        g("kube_pod_status_ready", ("namespace", "pod", "uid", "condition")).add_metric(
                            (ns, pod, uid, val), 1 if c["status"].lower() == val else 0)
            cl = ("namespace", "pod", "uid", "container")
            for cs in st.get("containerStatuses") or []:
                c = cs["name"]
                running, waiting = "running" in (cs.get("state") or {}), (cs.get("state") or {}).get("waiting")
                spec_image = next((x.get("image", "") for x in spec.get("containers") or [] if x["name"] == c), "")
                g("kube_pod_container_info", cl + ("image_spec", "image", "image_id", "container_id")).add_metric(
                    (ns, pod, uid, c, spec_image, cs.get("image", ""), cs.get("imageID", ""), cs.get("containerID", "")), 1)
                g("kube_pod_container_status_ready", cl).add_metric((ns, pod, uid, c), 1 if cs.get("ready") else 0)
                g("kube_pod_container_status_running", cl).add_metric((ns, pod, uid, c), 1 if running else 0)
                g("kube_pod_container_status_waiting", cl).add_metric((ns, pod, uid, c), 1 if waiting else 0)
                if waiting:
                    g("kube_pod_container_status_waiting_reason", cl + ("reason",)).add_metric(
                        (ns, pod, uid, c, waiting.get("reason", "")), 1)
                g("kube_pod_container_status_restarts_total", cl, "counter").add_metric(
                    (ns, pod, uid, c), cs.get("restartCount", 0))
            rl = cl + ("node", "resource", "unit")
            for c in spec.get("containers") or []:
                res = c.get("resources") or {}
                for which in ("limits", "requests"):
                    for rname, q in (res.get(which) or {}).items():
                        unit = {"cpu": "core", "memory": "byte"}.get(rname, "integer")
                        g(f"kube_pod_container_resource_{which}", rl).add_metric(
                            (ns, pod, uid, c["name"], node, rname, unit), quantity(q))
        for n in snap.nodes:
            name, st = n["metadata"]["name"], n.get("status", {})
            info = st.get("nodeInfo") or {}
            g("kube_node_info", ("node", "kernel_version", "os_image", "container_runtime_version", "kubelet_version",
                                 "kubeproxy_version", "pod_cidr", "provider_id", "system_uuid", "internal_ip")
              ).add_metric((name, info.get("kernelVersion", ""), info.get("osImage", ""),
                            info.get("containerRuntimeVersion", ""), info.get("kubeletVersion", ""),
                            info.get("kubeProxyVersion", ""), n["spec"].get("podCIDR", ""),
                            n["spec"].get("providerID", ""), info.get("systemUUID", ""), snap.node_ip(name)), 1)
            for c in st.get("conditions") or []:
                for val in ("true", "false", "unknown"):
                    g("kube_node_status_condition", ("node", "condition", "status")).add_metric(
                        (name, c["type"], val), 1 if c["status"].lower() == val else 0)
            for rname, q in (st.get("allocatable") or {}).items():
                unit = {"cpu": "core", "memory": "byte", "ephemeral-storage": "byte"}.get(rname, "integer")
                g("kube_node_status_allocatable", ("node", "resource", "unit")).add_metric(
                    (name, rname.replace("-", "_"), unit), quantity(q))
            g("kube_node_spec_unschedulable", ("node",)).add_metric((name,), 1 if n["spec"].get("unschedulable") else 0)
        for n in snap.namespaces:
            g("kube_namespace_status_phase", ("namespace", "phase")).add_metric(
                (n["metadata"]["name"], n.get("status", {}).get("phase", "Active")), 1)
        return list(fam.values())

    def _kubelet(self, node):
        cad = _expose(lambda: self._cadvisor_metrics(node))
        own = _expose(lambda: self._kubelet_metrics(node))
        return lambda path="/metrics": cad() if "cadvisor" in path else own()

    def _node_pods(self, node):
        """(service, index, pod object) of the Phase 5 pods the API server placed on `node`."""
        out = []
        for svc in list(self.state):
            for i, p in enumerate(self.pod_objects(svc)):
                if p["spec"].get("nodeName") == node and p.get("status", {}).get("phase") == "Running":
                    out.append((svc, i, p))
        return out

    def _kubelet_metrics(self, node):
        snap = self.snapshot
        pods = GaugeMetricFamily("kubelet_running_pods", "Pods running on the node.")
        pods.add_metric((), sum(1 for p in (snap.pods if snap else [])
                                if p["spec"].get("nodeName") == node and p.get("status", {}).get("phase") == "Running"))
        up = GaugeMetricFamily("kubelet_node_name", "The node's name.", labels=("node",))
        up.add_metric((node,), 1)
        return [pods, up]

    def _cadvisor_metrics(self, node):
        lab = ("namespace", "pod", "container", "id", "image", "name")
        cpu = CounterMetricFamily("container_cpu_usage_seconds", "CPU seconds.", labels=lab + ("cpu",))
        ws = GaugeMetricFamily("container_memory_working_set_bytes", "Working set.", labels=lab)
        usage = GaugeMetricFamily("container_memory_usage_bytes", "Memory usage.", labels=lab)
        rss = GaugeMetricFamily("container_memory_rss", "RSS.", labels=lab)
        rx = CounterMetricFamily("container_network_receive_bytes", "Bytes received.",
                                 labels=("namespace", "pod", "interface", "id", "name"))
        tx = CounterMetricFamily("container_network_transmit_bytes", "Bytes sent.",
                                 labels=("namespace", "pod", "interface", "id", "name"))
        base = ServiceState()
        for svc, i, p in self._node_pods(node):
            st = self.state[svc]
            ns, pod, uid = p["metadata"]["namespace"], p["metadata"]["name"], p["metadata"]["uid"]
            cid = f"/kubepods/burstable/pod{uid}"
            # a scenario heats pod 0 only (the "hot pod"); its siblings stay at the baseline
            c_rate = (st.cpu_ratio if i == 0 else base.cpu_ratio) * CPU_LIMIT
            m = (st.mem_ratio if i == 0 else base.mem_ratio) * MEM_LIMIT
            c = p["spec"]["containers"][0]
            # the container, and the pod-level cgroup (container="") real cAdvisor also exposes
            for cont, ident, image, name in ((c["name"], f"{cid}/c1", c["image"], "c1"), ("", cid, "", "")):
                cpu.add_metric((ns, pod, cont, ident, image, name, "total"), self._c.value(("cad", pod, cont), c_rate))
                ws.add_metric((ns, pod, cont, ident, image, name), m)
                usage.add_metric((ns, pod, cont, ident, image, name), m * 1.3)
                rss.add_metric((ns, pod, cont, ident, image, name), m * 0.8)
            rx.add_metric((ns, pod, "eth0", cid, ""), self._c.value(("cad", pod, "rx"), 5e4))
            tx.add_metric((ns, pod, "eth0", cid, ""), self._c.value(("cad", pod, "tx"), 4e4))
        return [cpu, ws, usage, rss, rx, tx]

    # ---------------------------------------------------------------- serving
    def start(self):
        """Start the event loop that serves the pods (one 127.0.0.1 port per pod); returns self."""
        self._loop = LoopThread("workload").start()
        return self

    def _ensure_server(self, key, collect, gate=None):
        with self._lock:
            if key in self._servers:
                return self._servers[key][0]
            port = free_port()

            async def handle(reader, writer):
                try:
                    while True:
                        line = await reader.readline()
                        if not line:
                            break
                        path = line.split(b" ")[1].decode() if b" " in line else "/"
                        close = False
                        while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
                            close = close or h.lower().startswith(b"connection:") and b"close" in h.lower()
                        refused = gate() if gate else None
                        if refused:
                            body, status = b"pod not ready\n", refused
                        elif path.split("?")[0] in ("/", "/-/healthy", "/healthz"):
                            body, status = b"ok\n", "200 OK"
                        else:
                            body = await asyncio.get_running_loop().run_in_executor(None, collect, path)
                            status = "200 OK"
                            self.scrapes += 1
                        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n"
                                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                        await writer.drain()
                        if close:       # the pod network asks for one request per connection
                            break
                except (ConnectionError, asyncio.IncompleteReadError):
                    pass
                finally:
                    writer.close()

            self._servers[key] = (port, self._loop.call(asyncio.start_server(handle, "127.0.0.1", port, reuse_address=True)))
            return port

    def _close_server(self, key):
        with self._lock:
            _, server = self._servers.pop(key)
        self._loop.loop.call_soon_threadsafe(server.close)

    def stop(self):
        if self._loop:
            self._loop.stop([srv for _, srv in self._servers.values()])
            self._loop = None
            self._servers = {}


_UNITS = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(q):
    """A Kubernetes quantity ("500m", "512Mi", "8") as a number."""
    q = str(q)
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if q.endswith(suffix):
            return float(q[:-len(suffix)]) * _UNITS[suffix]
    return float(q)


def _raw_counter(name, help_):
    """A counter whose samples keep `name` as is (no _total), like postgres_exporter's.
    prometheus_client would add _total to a "counter", so it is exposed as untyped."""
    from prometheus_client.metrics_core import Metric
    return Metric(name, help_, "untyped")


def _mean(profile):
    prev, m = 0.0, 0.0
    for le, frac in zip(BUCKETS, profile):
        m += (frac - prev) * le
        prev = frac
    return m + (1 - prev) * 20


# ---------------------------------------------------------------- scenarios per alert
def _svc(wl, service):
    if service not in wl.state:
        raise KeyError(f"unknown service {service!r}; the workload has {sorted(wl.state)}")
    return wl.state[service]


def _set(**knobs):
    def apply(wl, service):
        st = _svc(wl, service)
        for k, v in knobs.items():
            setattr(st, k, v(st) if callable(v) else v)
        return service
    return apply


def _api(action):
    """A scenario made through the API server (the Stack sets wl.cluster)."""
    def apply(wl, service):
        _svc(wl, service)
        if wl.cluster is None:
            raise RuntimeError(f"{action.__name__}: the workload is not in an API server (Workload.cluster unset)")
        action(wl, service)
        return service
    return apply


def _not_ready(wl, service):
    """The first pod fails its readiness probe (kwok's pod-not-ready stage)."""
    wl.cluster.set_pod_not_ready(wl.namespace, wl.pods(service)[0])


def _beyond_nodes(wl, service):
    """Scale the Deployment beyond what the nodes hold: at most one of its pods fits on a node
    (required anti-affinity), and it gets one replica more than there are schedulable nodes."""
    if not wl.spread:
        raise RuntimeError("DeploymentReplicaMismatch needs Workload(spread=True) (one pod per node)")
    nodes = [n for n in wl.snapshot.nodes if not n["spec"].get("unschedulable")
             and not any(t.get("effect") == "NoSchedule" for t in n["spec"].get("taints") or [])]
    wl.cluster.scale(wl.namespace, service, len(nodes) + 1)


def _hpa_at_max(wl, service):
    """The HPA's maximum lowered to the replicas it runs: it can scale no further."""
    wl.cluster.set_hpa_max(wl.namespace, service, wl.state[service].replicas)


SCENARIOS = {
    "HighErrorRate": _set(error_share=0.9),
    "HighResponseTime": _set(latency=SLOW_LATENCY),
    "PodDown": _api(_not_ready),
    "Phase5TargetDown": _set(failing_scrapes=1),
    "Phase5MetricsMissing": _set(exports_metrics=False),
    # Time compression: Prometheus divides a 5m rate by 300 s even when the series is younger,
    # so a pod at 100 % of its limit reads 80 % only after 4 minutes of data. The synthetic
    # cAdvisor counts CPU seconds CPU_BOOST x the limit instead: the ratio crosses 0.8 within
    # ~15 s of the trigger (the threshold maths itself is proven by the promtool rule tests).
    "HighCPUUsage": _set(cpu_ratio=CPU_BOOST),
    "HighMemoryUsage": _set(mem_ratio=0.95),
    "DatabaseConnectionPoolExhausted": _set(db_active=97),
    "KafkaConsumerLag": _set(kafka_lag=25000),
    "PodRestartingTooOften": _set(restart_rate=0.5),
    "DeploymentReplicaMismatch": _api(_beyond_nodes),
    "HPAMaxedOut": _api(_hpa_at_max),
    "AuditLogFailures": _set(audit_error_rate=0.6),
    "ReminderDeliveryFailures": _set(reminder_fail_share=0.9),
}
"""Alert name -> how to make it true on one service. PodDown, DeploymentReplicaMismatch and
HPAMaxedOut go through the API server (readiness, replicas, the HPA's maximum) and reach the
rules only through the kube-state-metrics series derived from its objects; PodRestartingTooOften
sets a restart rate that sync() reports in the pod's status. DiskSpaceLow reads the real
node_exporter (harness.processes), not the workload."""
