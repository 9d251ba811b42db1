"""A synthetic Phase 5 workload: every metric the chart's rules and dashboards read, served
over HTTP on 127.0.0.1, with a healthy baseline and one switchable scenario per alert.

What it models (an imaginary cluster, not a real one):
- `services` Phase 5 Deployments in `namespace` (default: backend, frontend and four agents in
  `phase5`), `replicas` pods each, every pod a scrape target serving the application metrics
  of the contract (http_requests_total, http_request_duration_seconds, task_operations_total,
  reminder_delivery_*, audit_log_*, websocket_*, database_connections_*, kafka_consumer_lag,
  recurring_task_generated_total) behind a Service annotated `prometheus.io/scrape`;
- the exporters of the data tier: postgres_exporter (`postgresql`), redis_exporter (`redis`),
  kafka_exporter (`kafka`), one target each, upstream metric names;
- kube-state-metrics-shaped series (pods, containers, Deployments, ReplicaSets, HPAs) and
  node-exporter-shaped series, served on the targets the chart's own kube-state-metrics and
  node-exporter Services map to;
- kubelet/cAdvisor-shaped series per node (container_cpu_usage_seconds_total,
  container_memory_working_set_bytes, ... including the pod-level cgroup series with
  container="" that real cAdvisor exposes).

Counters are integrals of the current rates (value += rate * dt at every scrape), so a
scenario that changes a rate changes what `rate()` sees from then on, as in a real pod.

`Workload.trigger(alertname, service)` switches one Deployment (or node mount point) into the
state that alert describes; `Workload.clear(service)` returns it to the baseline. Scenarios on
different services never share a label set, so they can run at the same time.

Each target is its own listening socket (one asyncio loop in a daemon thread serves them all),
so Prometheus sees distinct `instance`s exactly as with real pods.
"""
import asyncio
import dataclasses
import socket
import threading
import time
from typing import Callable

from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

PHASE5_SERVICES = ("backend", "frontend", "notification-agent", "recurring-task-agent",
                   "audit-agent", "reminder-agent")
NAMESPACE = "phase5-prod"   # the chart scrapes namespaces matching phase5.namespaceRegex ("phase5-.*")
NODES = ("node-a", "node-b")
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
DISK_SIZE = 100 * 2**30
CPU_BOOST = 10.0          # HighCPUUsage scenario: CPU seconds per second, in units of the limit


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
    down_pods: int = 0               # the first N pods are not ready and fail their scrape
    failing_scrapes: int = 0         # the first N pods are Ready but their /metrics answers 503
    exports_metrics: bool = True     # False: /metrics answers 200 with none of the application series
    kind: str = "Deployment"         # or "StatefulSet" (pods <name>-0, -1, ...; no app targets)
    available_replicas: int | None = None   # None: = ready pods
    hpa_current: int | None = None   # None: = replicas
    hpa_max: int = 6


@dataclasses.dataclass
class Target:
    """One scrape endpoint as Kubernetes service discovery would see it."""
    kind: str                 # app | postgres | redis | kafka | ksm | node-exporter | kubelet | <component>
    namespace: str
    service: str              # Kubernetes Service name ("" for kubelet)
    pod: str = ""
    container: str = ""
    node: str = ""
    port_name: str = "http-metrics"
    port: int = 0             # the local port serving it
    path: str = "/metrics"
    annotations: dict = dataclasses.field(default_factory=dict)
    service_labels: dict = dataclasses.field(default_factory=dict)
    pod_labels: dict = dataclasses.field(default_factory=dict)
    collect: Callable | None = None    # () -> bytes; None: served elsewhere (a real process)

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"


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


class Workload:
    """The synthetic cluster. Call start() before Prometheus scrapes it, stop() at the end."""

    def __init__(self, services=PHASE5_SERVICES, namespace=NAMESPACE, replicas=2,
                 release="p5", release_namespace="monitoring", extra_targets=(), statefulsets=()):
        self.namespace = namespace
        self.release = release
        self.release_namespace = release_namespace
        self.state = {s: self._baseline(s, replicas) for s in services}
        # StatefulSets (e.g. postgres): kube-state-metrics and cAdvisor series only, one pod each
        self.state.update({s: ServiceState(replicas=1, kind="StatefulSet") for s in statefulsets})
        self.disk = {"/": 0.55, "/var/lib/kubelet": 0.6}     # mountpoint -> free share (node-a)
        self.active = {}          # service or mountpoint -> alertname
        self._c = _Counters()
        self._lock = threading.RLock()
        self.targets = []
        self._build(extra_targets)
        self._loop = None
        self._thread = None
        self._servers = []
        self.scrapes = 0

    def _baseline(self, service, replicas):
        return ServiceState(replicas=replicas)

    # ---------------------------------------------------------------- topology
    def pods(self, service):
        st = self.state[service]
        if st.kind == "StatefulSet":
            return [f"{service}-{i}" for i in range(st.replicas)]
        return [f"{service}-7d9f8b6c5-{i:04d}x" for i in range(st.replicas)]

    def replicaset(self, service):
        return f"{service}-7d9f8b6c5"

    def node_of(self, i):
        return NODES[i % len(NODES)]

    def _build(self, extra_targets):
        ann = {"prometheus.io/scrape": "true", "prometheus.io/port": "8000",
               "prometheus.io/path": "/metrics"}
        for svc in self.state:
            if self.state[svc].kind == "StatefulSet":
                continue
            for i, pod in enumerate(self.pods(svc)):
                self.targets.append(Target(
                    "app", self.namespace, svc, pod=pod, container=svc, node=self.node_of(i),
                    port_name="http-metrics", annotations=dict(ann),
                    service_labels={"app.kubernetes.io/name": svc, "app.kubernetes.io/part-of": "phase5"},
                    pod_labels={"app.kubernetes.io/name": svc, "pod-template-hash": "7d9f8b6c5"},
                    collect=_expose(lambda svc=svc, i=i: self._app_metrics(svc, i))))
        for kind, svc, port in (("postgres", "postgres-exporter", 9187), ("redis", "redis-exporter", 9121),
                                ("kafka", "kafka-exporter", 9308)):
            a = dict(ann, **{"prometheus.io/port": str(port)})
            self.targets.append(Target(
                kind, self.namespace, svc, pod=f"{svc}-0", container=f"{kind}-exporter",
                node=NODES[0], port_name="http-metrics", annotations=a,
                service_labels={"app.kubernetes.io/name": svc},
                pod_labels={"app.kubernetes.io/name": svc},
                collect=_expose(getattr(self, f"_{kind}_metrics"))))
        for node in NODES:
            self.targets.append(Target("kubelet", "", "", node=node, port_name="https-metrics",
                                       path=f"/api/v1/nodes/{node}/proxy/metrics/cadvisor",
                                       collect=self._kubelet(node)))
        self.targets.extend(extra_targets)

    def target(self, kind, **match):
        for t in self.targets:
            if t.kind == kind and all(getattr(t, k) == v for k, v in match.items()):
                return t
        raise KeyError(f"no {kind} target matching {match}")

    def add_chart_target(self, kind, namespace, service, annotations, port_name, pod,
                         service_labels=None, node=None):
        """A Service rendered by the chart whose metrics the workload imitates
        (kind 'ksm' or 'node-exporter')."""
        node = node or NODES[0]
        fn = {"ksm": self._ksm_metrics,
              "node-exporter": lambda: self._node_metrics(node)}[kind]
        t = Target(kind, namespace, service, pod=pod, container=kind, node=node,
                   port_name=port_name, annotations=dict(annotations),
                   service_labels=dict(service_labels or {}), pod_labels=dict(service_labels or {}),
                   collect=_expose(fn))
        self.targets.append(t)
        if self._loop:
            self._serve(t)
        return t

    # ---------------------------------------------------------------- scenarios
    def trigger(self, alertname, service=None):
        """Put `service` (a Deployment, or a mount point for DiskSpaceLow) into the state
        that fires `alertname`. Returns the label value the alert will carry."""
        fn = SCENARIOS[alertname]
        with self._lock:
            key = fn(self, service)
            self.active[key] = alertname
        return key

    def clear(self, service=None):
        """Back to the healthy baseline (one service/mount point, or everything)."""
        with self._lock:
            keys = [service] if service else list(self.active)
            for k in keys:
                self.active.pop(k, None)
                if k in self.state:
                    kind = self.state[k].kind
                    self.state[k] = self._baseline(k, self.state[k].replicas)
                    self.state[k].kind = kind
                elif k in self.disk or k.startswith("/"):
                    self.disk[k] = 0.5

    # ---------------------------------------------------------------- metric families
    def _app_metrics(self, svc, i):
        st = self.state[svc]
        if not st.exports_metrics:      # Phase5MetricsMissing: scraped fine, the series are gone
            return []
        pod_key = (svc, i)
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
        ns = self.namespace
        fam = {}

        def g(name, labels):
            if name not in fam:
                fam[name] = GaugeMetricFamily(name, "kube-state-metrics", labels=labels)
            return fam[name]
        restarts = CounterMetricFamily("kube_pod_container_status_restarts",
                                       "Container restarts.", labels=("namespace", "pod", "container", "uid"))
        with self._lock:
            items = list(self.state.items())
        for svc, st in items:
            rs = self.replicaset(svc)
            pods = self.pods(svc)
            ready = st.replicas - min(st.down_pods, st.replicas)
            avail = ready if st.available_replicas is None else st.available_replicas
            if st.kind == "StatefulSet":
                sl = ("namespace", "statefulset")
                g("kube_statefulset_replicas", sl).add_metric((ns, svc), st.replicas)
                g("kube_statefulset_status_replicas_ready", sl).add_metric((ns, svc), ready)
                g("kube_statefulset_status_replicas_available", sl).add_metric((ns, svc), avail)
                owner = ("StatefulSet", svc)
            else:
                dlabels = ("namespace", "deployment")
                g("kube_deployment_spec_replicas", dlabels).add_metric((ns, svc), st.replicas)
                g("kube_deployment_status_replicas", dlabels).add_metric((ns, svc), st.replicas)
                g("kube_deployment_status_replicas_available", dlabels).add_metric((ns, svc), avail)
                g("kube_deployment_status_replicas_unavailable", dlabels).add_metric((ns, svc), st.replicas - avail)
                g("kube_deployment_status_replicas_ready", dlabels).add_metric((ns, svc), avail)
                g("kube_deployment_status_replicas_updated", dlabels).add_metric((ns, svc), st.replicas)
                g("kube_deployment_metadata_generation", dlabels).add_metric((ns, svc), 3)
                g("kube_deployment_status_observed_generation", dlabels).add_metric((ns, svc), 3)
                g("kube_replicaset_owner", ("namespace", "replicaset", "owner_kind", "owner_name", "owner_is_controller")
                  ).add_metric((ns, rs, "Deployment", svc, "true"), 1)
                g("kube_replicaset_spec_replicas", ("namespace", "replicaset")).add_metric((ns, rs), st.replicas)
                hpa = svc
                g("kube_horizontalpodautoscaler_info", ("namespace", "horizontalpodautoscaler", "scaletargetref_api_version",
                                                          "scaletargetref_kind", "scaletargetref_name")
                  ).add_metric((ns, hpa, "apps/v1", "Deployment", svc), 1)
                hl = ("namespace", "horizontalpodautoscaler")
                cur = st.replicas if st.hpa_current is None else st.hpa_current
                g("kube_horizontalpodautoscaler_spec_max_replicas", hl).add_metric((ns, hpa), st.hpa_max)
                g("kube_horizontalpodautoscaler_spec_min_replicas", hl).add_metric((ns, hpa), 1)
                g("kube_horizontalpodautoscaler_status_current_replicas", hl).add_metric((ns, hpa), cur)
                g("kube_horizontalpodautoscaler_status_desired_replicas", hl).add_metric((ns, hpa), cur)
                owner = ("ReplicaSet", rs)
            for i, pod in enumerate(pods):
                up = i >= st.down_pods
                node = self.node_of(i)
                uid = f"uid-{svc}-{i}"
                g("kube_pod_info", ("namespace", "pod", "uid", "node", "host_ip", "pod_ip", "created_by_kind",
                                    "created_by_name", "priority_class", "host_network")
                  ).add_metric((ns, pod, uid, node, "10.0.0.1", f"10.1.{i // 250}.{i % 250}", *owner, "", "false"), 1)
                g("kube_pod_owner", ("namespace", "pod", "uid", "owner_kind", "owner_name", "owner_is_controller")
                  ).add_metric((ns, pod, uid, *owner, "true"), 1)
                g("kube_pod_labels", ("namespace", "pod", "uid", "label_app_kubernetes_io_name")
                  ).add_metric((ns, pod, uid, svc), 1)
                for phase in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
                    val = 1 if (phase == "Running") else 0
                    g("kube_pod_status_phase", ("namespace", "pod", "uid", "phase")).add_metric((ns, pod, uid, phase), val)
                for cond in ("true", "false", "unknown"):
                    val = 1 if (cond == "true") == up and cond != "unknown" else 0
                    g("kube_pod_status_ready", ("namespace", "pod", "uid", "condition")).add_metric((ns, pod, uid, cond), val)
                cl = ("namespace", "pod", "uid", "container")
                g("kube_pod_container_info", cl + ("image", "container_id")).add_metric(
                    (ns, pod, uid, svc, f"ghcr.io/phase5/{svc}:1.0.0", f"containerd://{uid}"), 1)
                g("kube_pod_container_status_ready", cl).add_metric((ns, pod, uid, svc), 1 if up else 0)
                g("kube_pod_container_status_running", cl).add_metric((ns, pod, uid, svc), 1 if up else 0)
                g("kube_pod_container_status_waiting", cl).add_metric((ns, pod, uid, svc), 0 if up else 1)
                g("kube_pod_container_status_waiting_reason", cl + ("reason",)).add_metric(
                    (ns, pod, uid, svc, "CrashLoopBackOff"), 0 if up else 1)
                rrate = st.restart_rate if i == 0 else 0.0
                restarts.add_metric((ns, pod, uid, svc), round(self._c.value(("ksm", svc, i, "restarts"), rrate)))
                rl = cl + ("node", "resource", "unit")
                g("kube_pod_container_resource_limits", rl).add_metric((ns, pod, uid, svc, node, "cpu", "core"), CPU_LIMIT)
                g("kube_pod_container_resource_limits", rl).add_metric((ns, pod, uid, svc, node, "memory", "byte"), MEM_LIMIT)
                g("kube_pod_container_resource_requests", rl).add_metric((ns, pod, uid, svc, node, "cpu", "core"), CPU_LIMIT / 5)
                g("kube_pod_container_resource_requests", rl).add_metric((ns, pod, uid, svc, node, "memory", "byte"), MEM_LIMIT / 4)
        for node in NODES:
            g("kube_node_info", ("node", "kernel_version", "kubelet_version", "os_image")
              ).add_metric((node, "6.12.0", "v1.35.0", "Debian GNU/Linux 13"), 1)
            g("kube_node_status_condition", ("node", "condition", "status")).add_metric((node, "Ready", "true"), 1)
            g("kube_node_status_allocatable", ("node", "resource", "unit")).add_metric((node, "cpu", "core"), 8)
        g("kube_namespace_status_phase", ("namespace", "phase")).add_metric((ns, "Active"), 1)
        return list(fam.values()) + [restarts]

    def _node_metrics(self, node=NODES[0]):
        avail = GaugeMetricFamily("node_filesystem_avail_bytes", "Filesystem space available.",
                                  labels=("device", "fstype", "mountpoint"))
        free = GaugeMetricFamily("node_filesystem_free_bytes", "Filesystem free space.",
                                 labels=("device", "fstype", "mountpoint"))
        size = GaugeMetricFamily("node_filesystem_size_bytes", "Filesystem size.",
                                 labels=("device", "fstype", "mountpoint"))
        ro = GaugeMetricFamily("node_filesystem_readonly", "Filesystem read-only.",
                               labels=("device", "fstype", "mountpoint"))
        with self._lock:   # scenarios change node-a's mount points only
            disk = dict(self.disk) if node == NODES[0] else {"/": 0.5, "/var/lib/kubelet": 0.5}
        for i, (mp, share) in enumerate(sorted(disk.items())):
            lab = (f"/dev/nvme0n1p{i + 1}", "ext4", mp)
            avail.add_metric(lab, DISK_SIZE * share)
            free.add_metric(lab, DISK_SIZE * share + 2**30)
            size.add_metric(lab, DISK_SIZE)
            ro.add_metric(lab, 0)
        tmpfs = ("tmpfs", "tmpfs", "/run")
        avail.add_metric(tmpfs, 0)     # a full tmpfs must not count as a low disk
        free.add_metric(tmpfs, 0)
        size.add_metric(tmpfs, 2**20)
        ro.add_metric(tmpfs, 0)
        cpu = CounterMetricFamily("node_cpu_seconds", "CPU seconds per mode.", labels=("cpu", "mode"))
        for c in range(4):
            for mode, rate in (("idle", 0.7), ("user", 0.2), ("system", 0.08), ("iowait", 0.02)):
                cpu.add_metric((str(c), mode), self._c.value(("node", c, mode), rate))
        mem_t = GaugeMetricFamily("node_memory_MemTotal_bytes", "Memory total.")
        mem_t.add_metric((), 32 * 2**30)
        mem_a = GaugeMetricFamily("node_memory_MemAvailable_bytes", "Memory available.")
        mem_a.add_metric((), 20 * 2**30)
        load = GaugeMetricFamily("node_load1", "1m load average.")
        load.add_metric((), 1.2)
        rx = CounterMetricFamily("node_network_receive_bytes", "Bytes received.", labels=("device",))
        tx = CounterMetricFamily("node_network_transmit_bytes", "Bytes sent.", labels=("device",))
        for dev in ("eth0", "lo"):
            rx.add_metric((dev,), self._c.value(("node", "rx", dev), 2e6))
            tx.add_metric((dev,), self._c.value(("node", "tx", dev), 1e6))
        dr = CounterMetricFamily("node_disk_read_bytes", "Disk bytes read.", labels=("device",))
        dw = CounterMetricFamily("node_disk_written_bytes", "Disk bytes written.", labels=("device",))
        dr.add_metric(("nvme0n1",), self._c.value(("node", "dr"), 5e5))
        dw.add_metric(("nvme0n1",), self._c.value(("node", "dw"), 1e6))
        return [avail, free, size, ro, cpu, mem_t, mem_a, load, rx, tx, dr, dw]

    def _kubelet(self, node):
        cad = _expose(lambda: self._cadvisor_metrics(node))
        own = _expose(lambda: self._kubelet_metrics(node))
        return lambda path="/metrics": cad() if "cadvisor" in path else own()

    def _kubelet_metrics(self, node):
        pods = GaugeMetricFamily("kubelet_running_pods", "Pods running on the node.")
        pods.add_metric((), sum(1 for s in self.state for i, _ in enumerate(self.pods(s))
                                if self.node_of(i) == node))
        up = GaugeMetricFamily("kubelet_node_name", "The node's name.", labels=("node",))
        up.add_metric((node,), 1)
        return [pods, up]

    def _cadvisor_metrics(self, node):
        ns = self.namespace
        lab = ("namespace", "pod", "container", "id", "image", "name")
        cpu = CounterMetricFamily("container_cpu_usage_seconds", "CPU seconds.", labels=lab + ("cpu",))
        ws = GaugeMetricFamily("container_memory_working_set_bytes", "Working set.", labels=lab)
        usage = GaugeMetricFamily("container_memory_usage_bytes", "Memory usage.", labels=lab)
        rss = GaugeMetricFamily("container_memory_rss", "RSS.", labels=lab)
        rx = CounterMetricFamily("container_network_receive_bytes", "Bytes received.",
                                 labels=("namespace", "pod", "interface", "id", "name"))
        tx = CounterMetricFamily("container_network_transmit_bytes", "Bytes sent.",
                                 labels=("namespace", "pod", "interface", "id", "name"))
        with self._lock:
            items = list(self.state.items())
        for svc, st in items:
            for i, pod in enumerate(self.pods(svc)):
                if self.node_of(i) != node:
                    continue
                cid = f"/kubepods/burstable/pod{svc}-{i}"
                # a scenario heats pod 0 only (the "hot pod"); its siblings stay at the baseline
                base = ServiceState()
                c_rate = (st.cpu_ratio if i == 0 else base.cpu_ratio) * CPU_LIMIT
                m = (st.mem_ratio if i == 0 else base.mem_ratio) * MEM_LIMIT
                # the container, and the pod-level cgroup (container="") real cAdvisor also exposes
                for cont, ident, image, name in ((svc, f"{cid}/c1", f"ghcr.io/phase5/{svc}:1.0.0", "c1"),
                                                 ("", cid, "", "")):
                    cpu.add_metric((ns, pod, cont, ident, image, name, "total"),
                                   self._c.value(("cad", svc, i, cont), c_rate))
                    ws.add_metric((ns, pod, cont, ident, image, name), m)
                    usage.add_metric((ns, pod, cont, ident, image, name), m * 1.3)
                    rss.add_metric((ns, pod, cont, ident, image, name), m * 0.8)
                rx.add_metric((ns, pod, "eth0", cid, ""), self._c.value(("cad", svc, i, "rx"), 5e4))
                tx.add_metric((ns, pod, "eth0", cid, ""), self._c.value(("cad", svc, i, "tx"), 4e4))
        return [cpu, ws, usage, rss, rx, tx]

    # ---------------------------------------------------------------- serving
    def start(self):
        """Listen on 127.0.0.1 (one port per target); returns self."""
        ready = threading.Event()

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            ready.set()
            self._loop.run_forever()
        self._thread = threading.Thread(target=run, name="workload", daemon=True)
        self._thread.start()
        ready.wait()
        for t in self.targets:
            if t.collect is not None:
                self._serve(t)
        return self

    def _serve(self, t):
        if not t.port:
            t.port = free_port()

        async def handle(reader, writer, t=t):
            try:
                while True:
                    line = await reader.readline()
                    if not line:
                        break
                    path = line.split(b" ")[1].decode() if b" " in line else "/"
                    while await reader.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    st = self.state.get(t.service) if t.kind == "app" else None
                    idx = self.pods(t.service).index(t.pod) if st else 0
                    if st and (idx < st.down_pods or idx < st.failing_scrapes):
                        body, status = b"pod not ready\n", "503 Service Unavailable"
                    elif path.split("?")[0] in ("/", "/-/healthy", "/healthz"):
                        body, status = b"ok\n", "200 OK"
                    else:
                        body = await asyncio.get_running_loop().run_in_executor(None, t.collect, path)
                        status = "200 OK"
                        self.scrapes += 1
                    writer.write(f"HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n"
                                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                    await writer.drain()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        fut = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(handle, "127.0.0.1", t.port, reuse_address=True), self._loop)
        self._servers.append(fut.result(timeout=10))

    def stop(self):
        if not self._loop:
            return

        async def close():
            for s in self._servers:
                s.close()
            for s in self._servers:
                await s.wait_closed()
        try:
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        except Exception:
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop = None
        self._servers = []


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


def _disk(wl, mountpoint):
    mountpoint = mountpoint or "/var/lib/kubelet"
    wl.disk[mountpoint] = 0.04
    return mountpoint


SCENARIOS = {
    "HighErrorRate": _set(error_share=0.9),
    "HighResponseTime": _set(latency=SLOW_LATENCY),
    "PodDown": _set(down_pods=1, available_replicas=lambda st: st.replicas),
    "Phase5TargetDown": _set(failing_scrapes=1),
    "Phase5MetricsMissing": _set(exports_metrics=False),
    # Time compression: Prometheus divides a 5m rate by 300 s even when the series is younger,
    # so a pod at 100 % of its limit reads 80 % only after 4 minutes of data. The synthetic
    # cAdvisor counts CPU seconds CPU_BOOST x the limit instead: the ratio crosses 0.8 within
    # ~25 s of the trigger (the threshold maths itself is proven by the promtool rule tests).
    "HighCPUUsage": _set(cpu_ratio=CPU_BOOST),
    "HighMemoryUsage": _set(mem_ratio=0.95),
    "DatabaseConnectionPoolExhausted": _set(db_active=97),
    "KafkaConsumerLag": _set(kafka_lag=25000),
    "DiskSpaceLow": _disk,
    "PodRestartingTooOften": _set(restart_rate=0.5),
    "DeploymentReplicaMismatch": _set(available_replicas=lambda st: st.replicas - 1),
    "HPAMaxedOut": _set(hpa_current=lambda st: st.hpa_max, hpa_max=lambda st: st.hpa_max),
    "AuditLogFailures": _set(audit_error_rate=0.6),
    "ReminderDeliveryFailures": _set(reminder_fail_share=0.9),
}
"""Alert name -> how to make it true on one service. PodDown keeps the Deployment's
available count (so DeploymentReplicaMismatch, which inhibits it, stays quiet)."""


if __name__ == "__main__":   # a quick look: cd tests && python -m harness.workload
    wl = Workload().start()
    for t in wl.targets:
        print(f"{t.kind:10s} {t.namespace or '-':12s} {t.service or '-':22s} {t.pod or t.node:34s} http://{t.address}{t.path}")
    try:
        time.sleep(3600)
    finally:
        wl.stop()
