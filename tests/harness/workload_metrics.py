"""The metric families the synthetic workload's pods serve (harness.workload): the application
metrics of the contract per pod, the data tier's exporters, and the kubelet/cAdvisor pages per
node (harness.kubelet_standin; kube-state-metrics' page: harness.ksm_standin). A mixin of Workload:
it reads the workload's state (self.state, self.snapshot, self.pods(), self._c)."""
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily)
from prometheus_client.samples import Exemplar

from . import kubelet_standin
from .manifests import quantity
from .workload_state import BUCKETS, CONSUMER_TOPICS, CPU_LIMIT, MEM_LIMIT, PHASE5_SERVICES, ServiceState

# The share of a claim's capacity the synthetic kubelet reports used when no scenario set one.
DEFAULT_VOLUME_USED = 0.25
# The exemplar label holding the trace id, as the OpenTelemetry SDKs and docs/integration.md name it.
TRACE_ID_LABEL = "trace_id"


class MetricFamilies:
    """Workload's metric families, one method per program it stands in for."""

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
        if st.exemplar:
            # the request's trace id on the first bucket its latency falls in (OpenMetrics:
            # one exemplar per bucket, its value within the bucket's bounds)
            trace_id, seconds = st.exemplar
            at = next((k for k, (le, _) in enumerate(mono) if le == "+Inf" or seconds <= float(le)), len(mono) - 1)
            mono[at] = (*mono[at], Exemplar({TRACE_ID_LABEL: trace_id}, seconds))
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
        committed = GaugeMetricFamily("kafka_consumergroup_current_offset", "Current offset of a consumer group.",
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
                    committed.add_metric((cg, tp, str(p)), self._c.value(("kafka-committed", cg, tp, p), 14.0))
        return [b, parts, off, lag, committed]

    def _kubelet(self, node):
        """The node's kubelet stand-in (harness.kubelet_standin): /metrics/cadvisor, /metrics/probes
        and /metrics."""
        kubelets = self.__dict__.setdefault("_kubelets", {})
        k = kubelets.get(node) or kubelets.setdefault(node, kubelet_standin.Kubelet(node))

        def collect(path="/metrics"):
            running = self._running_on(node)
            if "cadvisor" in path:
                return k.cadvisor(running, self._container_usage(node))
            if path.rstrip("/").endswith("/probes"):
                return k.probes(running)
            return k.metrics(running, self._volume_stats(node, running))
        return collect

    def _running_on(self, node):
        snap = self.snapshot
        return [p for p in (snap.pods if snap else [])
                if p["spec"].get("nodeName") == node and p.get("status", {}).get("phase") == "Running"]

    def _node_pods(self, node):
        """(service, index, pod object) of the Phase 5 pods the API server placed on `node`."""
        out = []
        for svc in list(self.state):
            for i, p in enumerate(self.pod_objects(svc)):
                if p["spec"].get("nodeName") == node and p.get("status", {}).get("phase") == "Running":
                    out.append((svc, i, p))
        return out

    def _container_usage(self, node):
        """usage(pod, container) for the kubelet stand-in: a Phase 5 pod's first container at its
        service's CPU and memory ratios (a scenario heats pod 0 only, the "hot pod"; its siblings
        stay at the baseline); every other container (the chart's own pods, other teams') the
        stand-in's steady 10 millicores and 64 MiB."""
        base = ServiceState()
        phase5 = {p["metadata"]["uid"]: (svc, i, p) for svc, i, p in self._node_pods(node)}

        def usage(pod, container):
            hit = phase5.get(pod["metadata"]["uid"])
            if hit is None:
                return None
            svc, i, p = hit
            if container != p["spec"]["containers"][0]["name"]:
                return None
            st = self.state[svc]
            c_rate = (st.cpu_ratio if i == 0 else base.cpu_ratio) * CPU_LIMIT
            m = (st.mem_ratio if i == 0 else base.mem_ratio) * MEM_LIMIT
            return self._c.value(("cad", pod["metadata"]["name"], container), c_rate), m
        return usage

    def _volume_stats(self, node, running):
        """[(namespace, claim, capacity, available)] of the PersistentVolumeClaims mounted by the
        pods running on `node`, as the kubelet reports the volumes it mounts (names and labels:
        the "kubelet" table of harness.upstream_metrics). Stand-in behaviour: the capacity is the
        claim's status.capacity on the API server; the used share is not measured (no volume
        exists), it is the workload's knob volume_used[(namespace, claim)] (default
        DEFAULT_VOLUME_USED)."""
        snap = self.snapshot
        out, seen = [], set()
        for p in running:
            ns = p["metadata"]["namespace"]
            for v in p["spec"].get("volumes") or []:
                claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
                pvc = snap.pvc(ns, claim) if claim else None
                size = ((pvc or {}).get("status", {}).get("capacity") or {}).get("storage")
                if not size or (ns, claim) in seen:
                    continue
                seen.add((ns, claim))
                total = quantity(size)
                share = self.volume_used.get((ns, claim), DEFAULT_VOLUME_USED)
                share = share() if callable(share) else share
                out.append((ns, claim, total, total * (1 - share)))
        return out


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
