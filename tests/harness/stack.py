"""Run the chart's RENDERED Prometheus and Alertmanager for real, on 127.0.0.1, against a real
Kubernetes API server that holds the chart's objects and the synthetic Phase 5 workload.

The configuration is what `helm template` produced: prometheus.yml and the rule files come
from the ConfigMaps mounted into the Prometheus StatefulSet, alertmanager.yaml and the
notification templates from the Secret mounted into the Alertmanager StatefulSet, and the
credential files from the credentials Secret. Each pod's volumes are laid out as files
under <workdir>/<component>/root/<mountPath> as the kubelet would mount them (hostPath mounts
are this machine's own directories), and every absolute path in the configs and arguments
that points into a mount is re-rooted there. Rules, recording rules, service discovery roles,
relabelling, the routing tree, inhibitions, receivers, notification templates and `for`
durations are used unchanged.

The cluster (harness.controlplane, harness.simcluster): etcd, kube-apiserver,
kube-controller-manager and kube-scheduler, kwok for the nodes. The chart's objects are
applied as rendered; the workload's Deployments, StatefulSets, Services and HPAs are created
in phase5-prod; the controllers make ReplicaSets, pods and EndpointSlices; kwok runs the pods.

What is swapped, and nothing else (`Stack.swaps` records each one made):

Prometheus
  1. Discovery: each `kubernetes_sd_configs` gets `api_server` = the local API server and the
     ServiceAccount token and CA files where the kubelet mounts them. The token is a real one
     for the chart's Prometheus ServiceAccount (TokenRequest API), so the chart's ClusterRole
     is what authorizes discovery. In a pod, the in-cluster config finds the same API server
     through KUBERNETES_SERVICE_HOST and reads the same files.
  2. The network: each scrape job and the Alertmanager discovery get `proxy_url` = the pod
     network (harness.podnet), which routes a pod IP:port or node IP:10250 to the local process
     that plays it (tunnelling CONNECT for the https:// kubelet targets) and refuses (502) any
     address no pod or node declares. Target addresses, labels and relabelling are the
     discovered ones, unchanged.
  3. (none: the kubelet and cAdvisor jobs run as rendered - `scheme: https`, the ServiceAccount
     token as `authorization`, `tls_config` - against the stand-in kubelet, which serves TLS
     with a node's serving certificate and authorizes every scrape with TokenReview and
     SubjectAccessReview against the API server, as a kubelet does: harness.kubelet. The
     chart's ClusterRole (nodes/metrics) is what lets Prometheus in.)
  4. Static targets `<rel>-alertmanager...:9093` / `<rel>-prometheus...:9090` -> the local
     processes.
  5. Global `evaluation_interval` -> `interval` (default 1s), `scrape_interval` and
     `scrape_timeout` -> `scrape_interval` (default 2s: a scrape through the pod network on a
     loaded 2-core machine must not time out, since one failed scrape marks every series of the
     target stale and restarts the `for` of the alerts that read it), so a test takes seconds,
     not minutes; per-job intervals are removed.
  6. `remote_write`/`remote_read` removed (nothing to write to).
  7. Flags: --web.listen-address=127.0.0.1:<free port>, --storage.tsdb.path=<workdir>,
     --web.external-url dropped, --rules.alert.resend-delay=RESEND_DELAY added (2s instead of
     the default 1m, so a restarted Alertmanager gets the firing alerts back quickly).
     The process env is the container's env as the kubelet sets it for pod <name>-0 (the
     downward API's fields from the pod the API server holds).

Alertmanager
  8. Credential file contents: each Slack webhook file (slack-webhook-url, slack-webhook-url-<team>)
     -> the local Slack sink at /slack/<file name>, so a notification shows which webhook it
     came through; webhook-url and watchdog-url -> the local webhook sink (/webhook/webhook,
     /webhook/watchdog); inline `api_url`/`url` likewise. Slack app receivers (app_token_file,
     the token file left as the chart wrote it) get `app_url:` the sink's /slack/app.
     pagerduty_configs get `url:` the local PagerDuty sink.
  9. SMTP: `smtp_smarthost`/`smarthost` -> the local aiosmtpd server, `smtp_require_tls`/
     `require_tls` -> false (the sink speaks plain SMTP; AUTH PLAIN still runs, 127.0.0.1
     being localhost for Go's net/smtp).
 10. Flags: --web.listen-address=127.0.0.1:<free port>, --cluster.listen-address= (single
     instance), --cluster.peer/--cluster.advertise-address dropped, --storage.path=<workdir>.
 10b. Stack(replicas=True) instead: every replica of the StatefulSet runs, as one cluster. Its
     --cluster.* flags are kept; only the gossip addresses move to loopback, each to the port of
     the pod it names (swaps.alertmanager_cluster_flags): listen and advertise address ->
     127.0.0.1:<the member's gossip port>, each --cluster.peer <pod>.<headless Service>:<port> ->
     127.0.0.1:<that pod's member's port>. The pod network routes each Alertmanager pod's
     address to its own member; likewise each Prometheus replica runs with its own pod's env
     (POD_NAME: its external prometheus_replica label) behind its own pod's address.

node_exporter
 11. The real node_exporter with the DaemonSet's rendered arguments; /proc, /sys and / are this
     machine's (hostPath mounts); --web.listen-address=127.0.0.1:<free port>. Every
     node-exporter pod's address routes to it.

Jaeger (Stack(jaeger=True))
 12. Every listener (OTLP gRPC/HTTP, Zipkin, legacy receivers, query, health, metrics, the span
     metrics' exporter) -> 127.0.0.1:<free port>, by the jaeger helper's harness.jaeger.localize.
 12b. The Monitor tab's metrics backend (jaeger.spanMetrics): its rendered endpoint must be the
     release's Prometheus Service (http://<release>-prometheus:<web port>); it is pointed at the
     local Prometheus that plays that Service (replica 0). Nothing else.

Render inputs, not swaps: Grafana, Loki and the log collector are rendered off (NOT_RUN: their
programs cannot run here), Jaeger on only when started; `for` durations are shortened only
through the chart's own per-alert values (`prometheus.alerts.<Alert>.for`), passed by the
caller as set_values. Everything started is stopped by Stack.stop() (process groups, SIGTERM
then SIGKILL), which the pytest fixtures call in finalizers; an atexit hook is the last resort.
"""

import contextlib
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from . import swaps, tools
from .manifests import Manifests, component
from .podfiles import PodFiles, find_workload, flag
from .polling import wait_until
from .ports import free_port, free_port_tcp_udp
from .process import Process
from .render import render_raw
from .sinks import Sinks
from .swaps import Swaps
from .workload import Workload


def _get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


# Components whose programs cannot run here (AGPL or not served by the module proxy): the e2e
# stack renders the chart without them, a render input (Stack.set_values), not a swap.
# Prometheus resends firing alerts this often (its default is 1m), so a restarted Alertmanager
# gets them back quickly.
RESEND_DELAY = "2s"
NOT_RUN = {"grafana.enabled": False, "loki.enabled": False, "promtail.enabled": False}


def start_alertmanager(manifests, am_dir, sinks, swaps_made, port, cluster=None):
    """The rendered Alertmanager (its StatefulSet's pod, mounts laid out under am_dir/root) started
    on 127.0.0.1:port with swaps 8-10: receivers pointed at `sinks`. Returns (Process, config).
    The caller stops the Process (also on failure).

    `cluster` (a ClusterMember): run it as that member of a gossiping cluster on loopback
    instead of as a single instance: the rendered --cluster.* flags are kept, their addresses
    moved to loopback (swaps.alertmanager_cluster_flags, swap 10b)."""
    pod = PodFiles(manifests, "alertmanager", "alertmanager", am_dir / "root")
    cfg_path = pod.local(flag(pod.args, "config.file"))
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg = swaps.alertmanager_config(cfg, pod, sinks, swaps_made)
    cfg = pod.reroot_tree(cfg)
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    args, data = [], am_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    rendered = pod.args
    if cluster is not None:
        rendered = swaps.alertmanager_cluster_flags(rendered, manifests, pod.obj, cluster, swaps_made)
    for a in rendered:
        name = a.split("=", 1)[0].lstrip("-")
        if name in ("web.listen-address", "storage.path") or (cluster is None and name.startswith("cluster.")):
            continue
        if name == "config.file":
            a = f"--config.file={cfg_path}"
        args.append(a)
    args += [f"--web.listen-address=127.0.0.1:{port}", f"--storage.path={data}"]
    if cluster is None:
        args.append("--cluster.listen-address=")
        swaps_made.add("alertmanager flags: --web.listen-address=127.0.0.1:<port>, --cluster.listen-address= "
                       "(single instance; peers/advertise dropped), --storage.path=<tmp>")
    else:
        swaps_made.add("alertmanager flags: --web.listen-address=127.0.0.1:<port>, --storage.path=<tmp>")
    name = pod.obj["metadata"]["name"] + (f"-{cluster.ordinal}" if cluster is not None else "")
    proc = Process(name if cluster is not None else "alertmanager", [tools.require("alertmanager")] + args,
                   am_dir / "alertmanager.log", f"http://127.0.0.1:{port}/-/ready",
                   env=pod.env(None if cluster is None else {"metadata": {"name": name}}))
    return proc.start(), cfg


class Stack:
    """A local control plane with the chart and the workload as objects + sinks + node_exporter
    + the rendered Alertmanager + the rendered Prometheus, which discovers its targets through
    the API server as the chart's ServiceAccount.

    Use: `stack = Stack(tmp_dir, set_values={...}).start()` ... `stack.stop()`.
    """

    def __init__(self, workdir, values_files=(), set_values=None, *, release="p5",
                 namespace="monitoring", workload=None, interval="1s", scrape_interval="2s",
                 jaeger=False, extra_nodes=(), manifests=None, extra_objects=(), replicas=False,
                 kubelet_serving="self-signed", client_qps=None):
        self.workdir = Path(workdir)
        self.values_files = tuple(values_files)
        self.set_values = {**NOT_RUN, "jaeger.enabled": bool(jaeger), **dict(set_values or {})}
        self.release, self.namespace = release, namespace
        self.workload = workload or Workload()
        self.interval = interval
        self.scrape_interval = scrape_interval
        self.swaps = Swaps()
        self.sinks = Sinks()
        self.prometheus = self.alertmanager = self.node_exporter = None
        self.prom_port = self.am_port = self.node_exporter_port = None
        # replicas=True: every replica the StatefulSets render runs, each behind its own pod's
        # address, the Alertmanagers as one gossiping cluster (swap 10b); self.prometheus and
        # self.alertmanager are then replica 0, the lists hold them all (ordinal order).
        self.replicas = replicas
        self.prometheuses, self.alertmanagers = [], []
        self.replica_ports = {}                # (component, ordinal) -> 127.0.0.1 port
        self.gossip_ports = []                 # Alertmanager member i's gossip port (TCP and UDP)
        self.want_jaeger = jaeger
        self.extra_nodes = list(extra_nodes)   # [{"name", "labels", "taints"}] beside the three
        self._manifests = manifests            # a render made elsewhere (operator mode's e2e)
        self.extra_objects = list(extra_objects)   # applied after the chart (operator mode's e2e)
        self.jaeger = None                     # harness.jaeger.Jaeger when running
        # The stand-in kubelets' serving certificates (harness.kubelet): "self-signed" (a kubelet's
        # default) or "cluster-ca" (serverTLSBootstrap: signed by the cluster CA through a CSR)
        self.kubelet_serving = kubelet_serving
        self.client_qps = client_qps           # harness.controlplane.ControlPlane(client_qps=)
        self.kubelet_door = None
        self.cp = self.cluster = self.net = None
        self.route_conflicts = []
        self._exit = contextlib.ExitStack()

    # ------------------------------------------------------------------ lifecycle
    def start(self):
        from .controlplane import ControlPlane
        from .kubelet import KubeletDoor
        from .podnet import PodNetwork
        from .simcluster import SimCluster
        try:
            self.manifests = self._manifests or Manifests(render_raw(
                self.values_files, self.set_values, release=self.release, namespace=self.namespace)[0])
            self.sinks.start()
            self.prom_port, self.am_port = free_port(), free_port()
            self.cp = self._exit.enter_context(ControlPlane(self.workdir / "cluster", client_qps=self.client_qps).start())
            self.cluster = SimCluster(self.cp)
            for n in self.extra_nodes:
                self.cp.add_node(n["name"], labels=n.get("labels"), taints=n.get("taints"))
            if self.extra_nodes:
                self.cp.wait_nodes_ready()
            self._exit.callback(self.cluster.stop)
            if self.want_jaeger:
                self._start_jaeger()
            self._start_node_exporter()
            self.workload.start()
            self.workload.cluster = self.cluster
            self.kubelet_door = self.workload.kubelet_door = KubeletDoor(
                self.cp, self.kubelet_serving, self.workdir / "kubelets")
            self.workload.ksm_allowlists = self._ksm_allowlists()
            self.cluster.install(self.manifests, self.namespace)
            if self.extra_objects:
                self.cp.apply(self.extra_objects)
            self.cp.apply(self.workload.objects())
            self.cluster.wait_settled({self.namespace, self.workload.namespace})
            self.net = PodNetwork().start()
            self._exit.callback(self.net.stop)
            self._sync(self.cluster.refresh())
            self.cluster.on_refresh(self._sync)
            self.cluster.watch()
            self._start_alertmanager()
            self._start_prometheus()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for p in (*self.prometheuses, *self.alertmanagers, self.prometheus, self.alertmanager, self.node_exporter):
            if p:
                p.stop()
        self._exit.close()
        self.workload.stop()
        self.sinks.stop()

    @property
    def prom_url(self):
        return f"http://127.0.0.1:{self.prom_port}"

    @property
    def am_url(self):
        return f"http://127.0.0.1:{self.am_port}"

    def port_of(self, comp, ordinal=0):
        """The 127.0.0.1 port the pod `ordinal` of the Prometheus/Alertmanager StatefulSet is served
        on: replica 0's (prom_port/am_port) for every pod unless the Stack runs every replica."""
        if not self.replicas or ordinal == 0:
            return self.prom_port if comp == "prometheus" else self.am_port
        return self.replica_ports.setdefault((comp, ordinal), free_port())

    # ------------------------------------------------------------------ the pod network
    def _sync(self, snap):
        """Routes of the pod network from the API server's pods and nodes: a Phase 5 pod's
        declared port -> the workload's server for that pod; the chart's pods -> the real
        processes (Prometheus, Alertmanager, Jaeger, node_exporter) or the workload's
        kube-state-metrics; a node's InternalIP:10250 -> its stand-in kubelet (HTTPS)."""
        try:
            self.workload.sync(snap)
        finally:      # the routes follow the API server even when the workload's sync failed
            self._route(snap)

    def _route(self, snap):
        local = self.workload.local_ports()
        routes, conflicts = {}, []

        def add(ip, port, lp, who):
            if (ip, port) in routes and routes[(ip, port)] != lp:
                conflicts.append(f"{ip}:{port} is declared by two pods served apart ({who})")
            routes[(ip, port)] = lp
        for pod in snap.pods:
            md, st = pod["metadata"], pod.get("status", {})
            ip = st.get("podIP")
            if not ip or md.get("deletionTimestamp"):
                continue
            mine = local.get((md["namespace"], md["name"])) or self._chart_pod_ports(pod)
            for c in pod["spec"].get("containers") or []:
                for cp in c.get("ports") or []:
                    n = cp["containerPort"]
                    if n in mine:
                        add(ip, n, mine[n], f"{md['namespace']}/{md['name']}")
        for node in snap.nodes:
            ip = snap.node_ip(node["metadata"]["name"])
            port = (node.get("status", {}).get("daemonEndpoints") or {}).get("kubeletEndpoint", {}).get("Port")
            if ip and port:
                add(ip, port, self.workload.kubelet_port(node["metadata"]["name"], ip), f"node {node['metadata']['name']}")
        self.route_conflicts = conflicts
        self.net.set_routes(routes)

    def _chart_pod_ports(self, pod):
        """{container port: local port} for one of the chart's pods."""
        md = pod["metadata"]
        if md["namespace"] != self.namespace:
            return {}
        comp = component(pod)
        ports = {}
        for c in pod["spec"].get("containers") or []:
            listen = flag(c.get("args") or [], "web.listen-address")
            declared = {p.get("name", ""): p["containerPort"] for p in c.get("ports") or []}
            if comp in ("prometheus", "alertmanager") and listen:
                n = int(listen.rsplit(":", 1)[1])
                if n in declared.values():
                    ports[n] = self.port_of(comp, int(md["name"].rsplit("-", 1)[-1]))
            elif comp == "node-exporter" and self.node_exporter_port:
                for n in declared.values():
                    ports[n] = self.node_exporter_port
            elif comp == "kube-state-metrics" and "http-metrics" in declared:
                ports[declared["http-metrics"]] = self.workload.ksm_port()
            elif comp == "jaeger" and self.jaeger:
                for name, n in declared.items():
                    if name in self.jaeger.ports:
                        ports[n] = self.jaeger.ports[name]
        return ports

    def _ksm_allowlists(self):
        """The allowlists of the rendered kube-state-metrics Deployment's arguments (render input
        of its stand-in, harness.ksm): none when kube-state-metrics is off."""
        from . import ksm
        for o in self.manifests.of_kind("Deployment"):
            if component(o) == "kube-state-metrics":
                return ksm.allowlists([a for c in o["spec"]["template"]["spec"]["containers"] for a in c.get("args") or []])
        return {"labels": {}, "annotations": {}}

    def _swap(self, what):
        self.swaps.add(what)

    # ------------------------------------------------------------------ jaeger
    def _start_jaeger(self):
        """The rendered Jaeger v2 config, run by harness.jaeger (the jaeger helper's module:
        every listener moved to 127.0.0.1:<free port>, nothing else changed)."""
        from . import jaeger as jh
        cfg = jh.rendered_config(self.manifests, f"{self.release}-jaeger")
        jdir = self.workdir / "jaeger"
        jdir.mkdir(parents=True, exist_ok=True)
        backend = None
        for name, url in jh.metric_backend_urls(cfg).items():
            svc = self.manifests.get("Service", f"{self.release}-prometheus")
            web = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "http-web")
            want = f"http://{svc['metadata']['name']}:{web}"
            if url != want:
                raise AssertionError(f"jaeger metric backend {name}: {url}, not the release's Prometheus Service {want}")
            backend = f"http://127.0.0.1:{self.prom_port}"
            self._swap(f"jaeger: the metrics backend {url} (the Prometheus Service) -> the local Prometheus")
        self.jaeger = self._exit.enter_context(jh.run_jaeger(tools.require("jaeger"), cfg, jdir,
                                                             metrics_backend=backend))
        self._swap("jaeger: every listener (receivers, query, health, metrics, span metrics) -> "
                   "127.0.0.1:<free port> (harness.jaeger.localize)")

    # ------------------------------------------------------------------ node_exporter
    def _start_node_exporter(self):
        """The real node_exporter with the DaemonSet's rendered arguments: its hostPath mounts
        (/proc, /sys, /) are this machine's own directories, as on a node; only the listen
        address moves to 127.0.0.1:<free port>. Every node-exporter pod routes to it."""
        try:
            pod = PodFiles(self.manifests, "node-exporter", "node-exporter", self.workdir / "node-exporter" / "root")
        except LookupError:
            return          # node-exporter.enabled=false
        self.node_exporter_port = free_port()
        args = []
        for a in pod.args:
            name, _, value = a.partition("=")
            if name == "--web.listen-address":
                continue
            args.append(f"{name}={pod.reroot(value)}" if value else a)
        args.append(f"--web.listen-address=127.0.0.1:{self.node_exporter_port}")
        self._swap("node_exporter: the DaemonSet's arguments, hostPath mounts = this machine's /proc, /sys, /; "
                   "--web.listen-address=127.0.0.1:<port>")
        self.node_exporter = Process("node_exporter", [tools.require("node_exporter")] + args,
                                     self.workdir / "node-exporter" / "node_exporter.log",
                                     f"http://127.0.0.1:{self.node_exporter_port}/metrics").start()

    # ------------------------------------------------------------------ alertmanager
    def _start_alertmanager(self):
        if not self.replicas:
            self.alertmanager, self.am_config = start_alertmanager(
                self.manifests, self.workdir / "alertmanager", self.sinks, self.swaps, self.am_port)
            self.alertmanagers = [self.alertmanager]
            return
        n = int(find_workload(self.manifests, "alertmanager")["spec"].get("replicas", 1))
        self.gossip_ports = [free_port_tcp_udp() for _ in range(n)]
        for i in range(n):
            proc, self.am_config = start_alertmanager(
                self.manifests, self.workdir / f"alertmanager-{i}", self.sinks, self.swaps,
                self.port_of("alertmanager", i), cluster=swaps.ClusterMember(i, self.gossip_ports))
            self.alertmanagers.append(proc)
        self.alertmanager = self.alertmanagers[0]

    # ------------------------------------------------------------------ prometheus
    def _start_prometheus(self):
        n = int(find_workload(self.manifests, "prometheus")["spec"].get("replicas", 1)) if self.replicas else 1
        for i in range(n):
            self.prometheuses.append(self._start_prometheus_replica(i))
        self.prometheus = self.prometheuses[0]

    def _start_prometheus_replica(self, ordinal):
        port = self.port_of("prometheus", ordinal)
        pdir = self.workdir / ("prometheus" if ordinal == 0 else f"prometheus-{ordinal}")
        pod = PodFiles(self.manifests, "prometheus", "prometheus", pdir / "root")
        sa = pod.spec.get("serviceAccountName", "default")
        token = self.cluster.token(self.namespace, sa)
        pod.automount_service_account(token, self.cp.pki.ca_cert.read_bytes(), self.namespace)
        self._swap(f"prometheus: the ServiceAccount token of {sa} (TokenRequest API) and the cluster CA laid out "
                   f"where the kubelet mounts them")
        if ordinal == 0:
            self.kubelet_door.warm(token, self.cp.nodes)
        cfg_path = pod.local(flag(pod.args, "config.file"))
        cfg = yaml.safe_load(cfg_path.read_text())
        local = swaps.Local(self.cp.server, self.net.url, port, self.am_port, self.interval,
                            self.scrape_interval)
        cfg = pod.reroot_tree(swaps.prometheus_config(cfg, local, self.swaps))
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        if ordinal:
            return self._run_prometheus(pod, pdir, cfg_path, port, ordinal)
        self.prom_config = cfg
        self.rule_files = [p for pattern in cfg.get("rule_files") or []
                           for p in sorted(Path("/").glob(pattern.lstrip("/")))]
        return self._run_prometheus(pod, pdir, cfg_path, port, ordinal)

    def _run_prometheus(self, pod, pdir, cfg_path, port, ordinal):
        data = pdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        args = []
        for a in pod.args:
            name = a.split("=", 1)[0].lstrip("-")
            if name in ("web.listen-address", "storage.tsdb.path", "web.external-url"):
                continue
            if name == "config.file":
                a = f"--config.file={cfg_path}"
            args.append(a)
        args += [f"--web.listen-address=127.0.0.1:{port}", f"--storage.tsdb.path={data}",
                 f"--rules.alert.resend-delay={RESEND_DELAY}"]
        self._swap(f"prometheus flags: --web.listen-address=127.0.0.1:<port>, --storage.tsdb.path=<tmp>, "
                   f"--rules.alert.resend-delay={RESEND_DELAY} (default 1m), --web.external-url dropped")
        name = f"{pod.obj['metadata']['name']}-{ordinal}"
        api_pod = self._api_pod(name) or {"metadata": {"name": name}}
        proc = Process(name if ordinal else "prometheus", [tools.require("prometheus")] + args,
                       pdir / "prometheus.log", f"http://127.0.0.1:{port}/-/ready",
                       env=pod.env(api_pod)).start()
        if pod.env():
            self._swap(f"prometheus env: the container's env as the kubelet sets it for its pod "
                       f"({pod.obj['metadata']['name']}-<ordinal>: {', '.join(sorted(pod.env()))})")
        return proc

    def _api_pod(self, name):
        for p in self.cluster.snapshot.pods:
            if p["metadata"]["namespace"] == self.namespace and p["metadata"]["name"] == name:
                return p
        return None

    # ------------------------------------------------------------------ APIs
    def query(self, expr, at=None):
        q = {"query": expr}
        if at:
            q["time"] = str(at)
        r = _get(f"{self.prom_url}/api/v1/query?{urllib.parse.urlencode(q)}")
        return r["data"]["result"]

    def prom_alerts(self, state=None):
        alerts = _get(f"{self.prom_url}/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if state is None or a["state"] == state]

    def rules(self):
        return _get(f"{self.prom_url}/api/v1/rules")["data"]["groups"]

    def targets(self):
        return _get(f"{self.prom_url}/api/v1/targets")["data"]["activeTargets"]

    def scrape(self, target, headers=None, timeout=10):
        """What `target` (an entry of targets()) answers, fetched as the running Prometheus
        fetches it: through the pod network (CONNECT for https), with its job's tls_config and
        authorization credentials file. Returns the body as text."""
        import ssl
        job = next(j for j in self.prom_config["scrape_configs"] if j["job_name"] == target["scrapePool"])
        tls = job.get("tls_config") or {}
        ctx = ssl.create_default_context(cafile=tls.get("ca_file"))
        if tls.get("insecure_skip_verify"):
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": self.net.url, "https": self.net.url}),
                                             urllib.request.HTTPSHandler(context=ctx))
        headers = dict(headers or {})
        auth = job.get("authorization") or {}
        if auth.get("credentials_file"):
            headers["Authorization"] = f"{auth.get('type', 'Bearer')} {Path(auth['credentials_file']).read_text().strip()}"
        with opener.open(urllib.request.Request(target["scrapeUrl"], headers=headers), timeout=timeout) as r:
            return r.read().decode()

    def am_alerts(self, **filters):
        q = urllib.parse.urlencode({"active": "true", "silenced": "true", "inhibited": "true",
                                    "unprocessed": "true", **filters})
        return _get(f"{self.am_url}/api/v2/alerts?{q}")

    def wait(self, predicate, timeout, interval=1.0, what="condition"):
        """Poll predicate() until truthy; return its value, or raise TimeoutError naming `what`.
        A refused or failed connection counts as "not yet"; any other error ends the wait."""
        return wait_until(predicate, timeout, what, every=interval,
                          retry=(urllib.error.URLError, ConnectionError, OSError))
