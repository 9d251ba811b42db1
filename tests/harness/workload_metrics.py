"""The metric families the synthetic workload's pods serve (harness.workload): the application
metrics of the contract per pod, the data tier's exporters, kube-state-metrics' series derived
from the API server's objects, and the kubelet/cAdvisor series per node. A mixin of Workload:
it reads the workload's state (self.state, self.snapshot, self.pods(), self._c)."""
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily)
from prometheus_client.samples import Exemplar

from . import ksm
from .manifests import quantity
from .podserver import expose
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
        allow = getattr(self, "ksm_allowlists", None) or {"labels": {}, "annotations": {}}

        def meta(resource, ident, md, extra=()):
            """kube_<resource>_labels / _annotations of one object: the keys the chart's
            allowlists (the rendered --metric-*-allowlist arguments) allow, as label_* /
            annotation_* (empty when the object lacks one: Prometheus drops an empty label)."""
            singular = {"pods": "pod", "services": "service", "deployments": "deployment",
                        "statefulsets": "statefulset"}[resource]
            for kind, prefix, field in (("labels", "label_", "labels"), ("annotations", "annotation_", "annotations")):
                keys = allow[kind].get(resource, [])
                names = ident + tuple(extra) + tuple(prefix + ksm.sanitize(k) for k in keys)
                values = tuple(md["namespace"] if n == "namespace" else md["name"] if n == singular else
                               md.get("uid", "") for n in ident + tuple(extra))
                values += tuple((md.get(field) or {}).get(k, "") for k in keys)
                g(f"kube_{singular}_{kind}", names).add_metric(values, 1)
        for svc in snap.services:
            meta("services", ("namespace", "service"), svc["metadata"], extra=("uid",))
        for d in snap.deployments:
            meta("deployments", ("namespace", "deployment"), d["metadata"])
        for t in snap.statefulsets:
            meta("statefulsets", ("namespace", "statefulset"), t["metadata"])
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
        for j in snap.jobs:
            ns, name = j["metadata"]["namespace"], j["metadata"]["name"]
            refs = j["metadata"].get("ownerReferences") or [{"kind": "<none>", "name": "<none>", "controller": "<none>"}]
            for ref in refs:
                ctl = ref.get("controller")
                g("kube_job_owner", ("namespace", "job_name", "owner_kind", "owner_name", "owner_is_controller")
                  ).add_metric((ns, name, ref["kind"], ref["name"], ctl if ctl == "<none>" else str(bool(ctl)).lower()), 1)
        for t in snap.statefulsets:
            ns, name, st = t["metadata"]["namespace"], t["metadata"]["name"], t.get("status", {})
            sl = ("namespace", "statefulset")
            g("kube_statefulset_replicas", sl).add_metric((ns, name), t["spec"].get("replicas", 1))
            g("kube_statefulset_status_replicas_ready", sl).add_metric((ns, name), st.get("readyReplicas", 0))
            g("kube_statefulset_status_replicas_available", sl).add_metric((ns, name), st.get("availableReplicas", 0))
        for d in snap.daemonsets:
            ns, name, st = d["metadata"]["namespace"], d["metadata"]["name"], d.get("status", {})
            dl = ("namespace", "daemonset")
            g("kube_daemonset_status_desired_number_scheduled", dl).add_metric((ns, name), st.get("desiredNumberScheduled", 0))
            g("kube_daemonset_status_number_available", dl).add_metric((ns, name), st.get("numberAvailable", 0))
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
            keys = allow["labels"].get("pods", [])
            g("kube_pod_labels", ("namespace", "pod", "uid") + tuple("label_" + ksm.sanitize(k) for k in keys)
              ).add_metric((ns, pod, uid) + tuple((md.get("labels") or {}).get(k, "") for k in keys), 1)
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
        cad = expose(lambda: self._cadvisor_metrics(node))
        own = expose(lambda: self._kubelet_metrics(node))
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
        return [pods, up] + self._volume_stats(node)

    def _volume_stats(self, node):
        """kubelet_volume_stats_capacity_bytes / _available_bytes (names and labels: the "kubelet"
        table of harness.upstream_metrics; the kubelet's other volume series are not read) of the
        PersistentVolumeClaims mounted by the pods running on `node`, as the kubelet reports the
        volumes it mounts. Stand-in behaviour: the capacity is the claim's status.capacity on the
        API server; the used share is not measured (no volume exists), it is the workload's knob
        volume_used[(namespace, claim)] (default DEFAULT_VOLUME_USED)."""
        snap = self.snapshot
        lab = ("namespace", "persistentvolumeclaim")
        cap = GaugeMetricFamily("kubelet_volume_stats_capacity_bytes", "Capacity of the volume in bytes.", labels=lab)
        avail = GaugeMetricFamily("kubelet_volume_stats_available_bytes", "Available bytes of the volume.", labels=lab)
        seen = set()
        for p in (snap.pods if snap else []):
            if p["spec"].get("nodeName") != node or p.get("status", {}).get("phase") != "Running":
                continue
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
                cap.add_metric((ns, claim), total)
                avail.add_metric((ns, claim), total * (1 - share))
        return [cap, avail]

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
        # Every other running pod of the node (the chart's own, other teams'), as real cAdvisor
        # reports every container of its node: a steady 10 millicores and 64 MiB each.
        mine = {p["metadata"]["uid"] for _, _, p in self._node_pods(node)}
        for p in (self.snapshot.pods if self.snapshot else []):
            if (p["spec"].get("nodeName") != node or p.get("status", {}).get("phase") != "Running"
                    or p["metadata"]["uid"] in mine):
                continue
            ns, pod, uid = p["metadata"]["namespace"], p["metadata"]["name"], p["metadata"]["uid"]
            cid = f"/kubepods/burstable/pod{uid}"
            for c in p["spec"]["containers"]:
                ident = f"{cid}/{c['name']}"
                cpu.add_metric((ns, pod, c["name"], ident, c.get("image", ""), c["name"], "total"),
                               self._c.value(("cad", pod, c["name"]), 0.01))
                ws.add_metric((ns, pod, c["name"], ident, c.get("image", ""), c["name"]), 64 * 2**20)
        return [cpu, ws, usage, rss, rx, tx]


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
