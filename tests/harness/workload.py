"""The synthetic Phase 5 workload: every metric the chart's rules and dashboards read, served
over HTTP on 127.0.0.1, with a healthy baseline and one switchable scenario per alert.

The workload is real objects in the e2e stack's API server (objects(); harness.simcluster):
- `services` Phase 5 Deployments in `namespace` (default phase5-prod), `replicas` pods each,
  behind Services annotated `prometheus.io/scrape`/`port`/`path` as docs/integration.md asks,
  each with a HorizontalPodAutoscaler; every pod serves the application metrics of the contract
  (http_requests_total, http_request_duration_seconds, task_operations_total, reminder_delivery_*,
  audit_log_*, websocket_*, database_connections_*, kafka_consumer_lag,
  recurring_task_generated_total), negotiating OpenMetrics with the scraper as prometheus_client
  does, with a trace-id exemplar on the latency histogram when ServiceState.exemplar is set;
- StatefulSets (e.g. postgres): cAdvisor and kube-state-metrics series only;
- the exporters of the data tier as Deployments + annotated Services: postgres_exporter,
  redis_exporter, kafka_exporter, upstream metric names.
kwok runs the pods; sync(snapshot) adopts them (names, nodes, IPs, readiness as the API server
holds them) and serves each on its own 127.0.0.1 port, which the pod network
(harness.podnet) routes the pod's address to.

Derived from the API server's objects, as the real programs derive them:
- kube-state-metrics' page (harness.ksm_standin: every documented family of the default
  collectors), served on the chart's kube-state-metrics pod (kube-state-metrics is not served by
  the Go module proxy: its names and labels are checked against its documented metrics,
  tests/harness/ksm.py);
- the kubelet's /metrics/cadvisor and /metrics per node for the pods placed on it
  (harness.kubelet_standin: cAdvisor's enabled families per pod cgroup, sandbox and container;
  the kubelet's own families), and the kubelet's volume stats of the claims those pods mount
  (capacity from the claim on the API server; the used share is a knob, volume_used: no volume
  exists to measure); served over HTTPS behind a kubelet's door (harness.kubelet: its serving
  certificate, TokenReview and SubjectAccessReview of every request against the API server).
Node series come from the real node_exporter (harness.stack), not from here.

Split by job: what the workload is (harness.workload_state), the metric families its pods serve
(harness.workload_metrics), their HTTP servers (harness.podserver), the alert scenarios
(harness.scenarios); this module holds the objects, the sync with the API server and the
trigger/clear of scenarios.

Counters are integrals of the current rates (value += rate * dt at every scrape), so a
scenario that changes a rate changes what `rate()` sees from then on, as in a real pod.

`Workload.trigger(alertname, service)` switches one workload into the state that alert
describes - through the API server where Kubernetes holds that state (SCENARIOS);
`Workload.clear(service)` returns it to the baseline. Scenarios on different services never
share a label set, so they can run at the same time.
"""

import copy
import threading

from . import ksm_standin
from .podserver import PodServers, expose
from .scenarios import SCENARIOS
from .workload_metrics import MetricFamilies
from .workload_state import (APP_PORT, CPU_LIMIT, EXPORTERS, HPA_MAX, MEM_LIMIT, NAMESPACE,
                             PHASE5_SERVICES, ServiceState, _Counters)


def _scrape_annotations(port):
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"}


class Workload(MetricFamilies):
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
        self._http = PodServers()  # the pods' (and nodes') 127.0.0.1 servers
        self._restarts = {}       # (namespace, pod) -> restart count reported
        self._ksm_cache = None    # (snapshot, exposition bytes)
        self._ksm_objects = {}    # harness.ksm_standin's lines per unchanged object
        self._ksm_lock = threading.Lock()
        self._local = {}          # (namespace, pod) -> {container port: local port}
        # kube-state-metrics' --metric-labels-allowlist / --metric-annotations-allowlist as the chart
        # renders them (harness.ksm.allowlists; the Stack sets them): which labels and annotations
        # of the objects its kube_*_labels / kube_*_annotations series carry
        self.ksm_allowlists = {"labels": {}, "annotations": {}}
        # (namespace, claim) -> used share of its capacity (a number, or a callable read at each
        # scrape) the synthetic kubelet reports (workload_metrics._volume_stats)
        self.volume_used = {}
        self._ksm_stopped = None  # the kube-state-metrics stand-in's port once stop_ksm() ran
        # harness.kubelet.KubeletDoor: the stand-in kubelets' TLS and authn/authz (the Stack sets it)
        self.kubelet_door = None
        # False: the Phase 5 Deployments' pods get no HTTP server (a benchmark whose Services no
        # longer ask to be scraped, at a size where ten thousand servers would not fit)
        self.serve_apps = True

    def _baseline(self, service, replicas):
        return ServiceState(replicas=replicas)

    # ---------------------------------------------------------------- objects in the API server
    def objects(self):
        """Namespace, Deployments/StatefulSets, Services (annotated as docs/integration.md asks),
        HPAs and the exporters, for the API server."""
        out = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}]
        for svc, st in self.state.items():
            out += self._service_objects(svc, st)
        for kind, svc, port in EXPORTERS:
            labels = {"app.kubernetes.io/name": svc, "app.kubernetes.io/part-of": "phase5"}
            out.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": svc, "namespace": self.namespace},
                        "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": svc}},
                                 "template": {"metadata": {"labels": labels}, "spec": {
                                     "containers": [{"name": f"{kind}-exporter", "image": f"exporters/{svc}:latest",
                                                     "ports": [{"name": "http-metrics", "containerPort": port}]}],
                                     "terminationGracePeriodSeconds": 1}}}})
            out.append(self._service(svc, labels, port))
        # A suspended Job (no pods): kube-state-metrics' kube_job_owner, which the workload rule
        # reads to name a CronJob's pods after the CronJob, has a series to be checked against
        # its documented labels.
        out.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "db-migrate", "namespace": self.namespace},
                    "spec": {"suspend": True, "template": {"spec": {
                        "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "migrate", "image": "ghcr.io/phase5/backend:1.0.0"}]}}}})
        return out

    def add_service(self, name, service_labels=None, replicas=1):
        """A new Phase 5 Deployment + Service (+ HPA) while the stack runs, served like the
        others once its pods exist: returns its objects, for the caller to create through the
        API server. `service_labels` are added to the Service's (e.g. the team label)."""
        with self._lock:
            self.state[name] = self._baseline(name, replicas)
        objs = self._service_objects(name, self.state[name])
        for o in objs:
            if o["kind"] == "Service":
                o["metadata"]["labels"].update(service_labels or {})
        return objs

    def _service_objects(self, svc, st):
        """The Deployment (or StatefulSet), Service and HPA of one Phase 5 service; the Service
        carries app.kubernetes.io/part-of: phase5 (the chart's default selector)."""
        ns = self.namespace
        labels = {"app.kubernetes.io/name": svc, "app.kubernetes.io/part-of": "phase5"}
        out = []
        pod = {"metadata": {"labels": labels},
               "spec": {"containers": [{
                   "name": svc, "image": f"ghcr.io/phase5/{svc}:1.0.0",
                   "ports": [{"name": "http-metrics", "containerPort": APP_PORT}],
                   # As a Phase 5 service would declare them on its health endpoint:
                   # the kubelet stand-in's /metrics/probes counts one worker per probe.
                   "readinessProbe": {"httpGet": {"path": "/health", "port": "http-metrics"}, "periodSeconds": 10},
                   "livenessProbe": {"httpGet": {"path": "/health", "port": "http-metrics"}, "periodSeconds": 20},
                   "resources": {"limits": {"cpu": f"{int(CPU_LIMIT * 1000)}m", "memory": str(MEM_LIMIT)},
                                 "requests": {"cpu": f"{int(CPU_LIMIT * 200)}m", "memory": str(MEM_LIMIT // 4)}}}],
                   "terminationGracePeriodSeconds": 1}}
        if st.kind == "StatefulSet":
            out.append({"apiVersion": "apps/v1", "kind": "StatefulSet",
                        "metadata": {"name": svc, "namespace": ns, "labels": dict(labels)},
                        "spec": {"replicas": st.replicas, "serviceName": svc,
                                 "selector": {"matchLabels": {"app.kubernetes.io/name": svc}}, "template": pod}})
            return out
        pod["spec"].update(copy.deepcopy(self.placement.get(svc, {})))
        if self.spread:   # beside the placement's own affinity (e.g. a node affinity)
            pod["spec"].setdefault("affinity", {})["podAntiAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app.kubernetes.io/name": svc}},
                 "topologyKey": "kubernetes.io/hostname"}]}
        out.append({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": svc, "namespace": ns, "labels": dict(labels)},
                    "spec": {"replicas": st.replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": svc}},
                             "template": pod}})
        out.append(self._service(svc, labels, APP_PORT))
        out.append({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": svc, "namespace": ns},
                    "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": svc},
                             "minReplicas": 1, "maxReplicas": HPA_MAX}})
        return out

    def _service(self, name, labels, port):
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": self.namespace, "labels": dict(labels),
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
        if ("ksm",) in self._http:
            self._ksm_exposition()      # built here, in the watch thread, not in a scrape
        return self._local

    def local_ports(self):
        """{(namespace, pod): {container port: local port}} as of the last sync()."""
        return dict(self._local)

    def _serve_pods(self, snapshot):
        local = {}
        for svc, st in list(self.state.items()):
            if st.kind != "Deployment" or not self.serve_apps:
                continue
            for i, pod in enumerate(self.pod_objects(svc)):
                name = pod["metadata"]["name"]
                # OpenMetrics when the scraper asks (Prometheus does): the latency exemplars
                port = self._http.ensure(("app", name), expose(lambda svc=svc, name=name: self._app_metrics(svc, name),
                                                               openmetrics=True),
                                           gate=lambda svc=svc, name=name: self._gate(svc, name))
                local[(self.namespace, name)] = {APP_PORT: port}
        for kind, svc, port in EXPORTERS:
            for pod in snapshot.pods_of(self.namespace, "Deployment", svc):
                lp = self._http.ensure((kind, pod["metadata"]["name"]), expose(getattr(self, f"_{kind}_metrics")))
                local[(self.namespace, pod["metadata"]["name"])] = {port: lp}
        live = {("app", n) for (_, n) in local} | {(k, n) for k, s, _ in EXPORTERS for (_, n) in local}
        for key in [k for k in self._http.keys() if k[0] in ("app", "postgres", "redis", "kafka") and k not in live]:
            self._http.close(key)
        return local

    def ksm_port(self):
        if self._ksm_stopped is not None:      # stopped: the address answers nothing
            return self._ksm_stopped
        return self._http.ensure(("ksm",), self._ksm_exposition)

    def stop_ksm(self):
        """Stop the kube-state-metrics stand-in as its process would stop: its port closes and a
        scrape of the pod's address is refused (the pod stays in the API server, as a crashed
        container's pod does until its probes fail)."""
        self._ksm_stopped = self.ksm_port()
        self._http.close(("ksm",))

    def _ksm_exposition(self, path="/metrics"):
        """kube-state-metrics' answer for the current snapshot, built once per snapshot (as
        kube-state-metrics serves from its informers' cache): a scrape only copies bytes, so it
        never outlasts the e2e stack's 1 s scrape timeout."""
        snap = self.snapshot
        with self._ksm_lock:
            cached = self._ksm_cache
            if cached is None or cached[0] is not snap:
                body = ksm_standin.exposition(snap, self.ksm_allowlists, self._ksm_objects) if snap else b""
                cached = self._ksm_cache = (snap, body)
        return cached[1]

    def kubelet_port(self, node, ip):
        """The local port of `node`'s stand-in kubelet (InternalIP `ip`): HTTPS with the node's
        serving certificate, each request authenticated and authorized against the API server as
        a kubelet does (harness.kubelet, the door the Stack sets as kubelet_door)."""
        door = self.kubelet_door
        if door is None:
            raise RuntimeError("the stand-in kubelet needs its door (harness.kubelet.KubeletDoor): Stack sets it")
        return self._http.ensure(("kubelet", node), self._kubelet(node),
                                 tls=door.server_context(node, ip), auth=door.gate(node))

    def rotate_kubelet_certificate(self, node, ip, serving):
        """`node`'s stand-in kubelet serves a new certificate (harness.kubelet SELF_SIGNED or
        CLUSTER_CA) and drops its open connections, as a kubelet restarted with it would."""
        self.kubelet_door.rotate(node, ip, serving)
        self._http.drop_connections(("kubelet", node))

    def _gate(self, svc, name):
        """None when the pod serves its metrics, else the HTTP status it answers."""
        st = self.state[svc]
        pods = self.pod_objects(svc)
        i = next((i for i, p in enumerate(pods) if p["metadata"]["name"] == name), None)
        if i is None:
            return "404 Not Found"
        from .simcluster import ready
        if not ready(pods[i]):                       # a pod that is not Ready fails its scrape
            return "503 Service Unavailable"
        if i < st.failing_scrapes:                   # Ready, but /metrics answers 503
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

    # ---------------------------------------------------------------- serving
    def start(self):
        """Start the event loop that serves the pods (one 127.0.0.1 port per pod); returns self."""
        self._http.start()
        return self

    def stop(self):
        self._http.stop()
