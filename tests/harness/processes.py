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
     that plays it and refuses (502) any address no pod or node declares. Target addresses,
     labels and relabelling are the discovered ones, unchanged.
  3. Kubelet/cAdvisor jobs: `scheme: https` -> http and the service-account
     `authorization`/`tls_config` dropped (the synthetic kubelet is plain HTTP, no token).
  4. Static targets `<rel>-alertmanager...:9093` / `<rel>-prometheus...:9090` -> the local
     processes.
  5. Global `evaluation_interval` -> `interval` (default 1s), `scrape_interval` and
     `scrape_timeout` -> `scrape_interval` (default 2s: a scrape through the pod network on a
     loaded 2-core machine must not time out, since one failed scrape marks every series of the
     target stale and restarts the `for` of the alerts that read it), so a test takes seconds,
     not minutes; per-job intervals are removed.
  6. `remote_write`/`remote_read` removed (nothing to write to).
  7. Flags: --web.listen-address=127.0.0.1:<free port>, --storage.tsdb.path=<workdir>,
     --web.external-url dropped, --rules.alert.resend-delay=<resend_delay> added (default 2s
     instead of 1m, so a restarted Alertmanager gets the firing alerts back quickly).
     The process env is the container's env as the kubelet sets it for pod <name>-0 (the
     downward API's fields from the pod the API server holds).

Alertmanager
  8. Credential file contents: slack-webhook-url -> the local Slack sink URL, webhook-url and
     watchdog-url -> the local webhook sink (/webhook/webhook, /webhook/watchdog); inline
     `api_url`/`url` likewise. pagerduty_configs get `url:` the local PagerDuty sink.
  9. SMTP: `smtp_smarthost`/`smarthost` -> the local aiosmtpd server, `smtp_require_tls`/
     `require_tls` -> false (the sink speaks plain SMTP; AUTH PLAIN still runs, 127.0.0.1
     being localhost for Go's net/smtp).
 10. Flags: --web.listen-address=127.0.0.1:<free port>, --cluster.listen-address= (single
     instance), --cluster.peer/--cluster.advertise-address dropped, --storage.path=<workdir>.

node_exporter
 11. The real node_exporter with the DaemonSet's rendered arguments; /proc, /sys and / are this
     machine's (hostPath mounts); --web.listen-address=127.0.0.1:<free port>. Every
     node-exporter pod's address routes to it.

Jaeger (Stack(jaeger=True))
 12. Every listener (OTLP gRPC/HTTP, Zipkin, legacy receivers, query, health, metrics) ->
     127.0.0.1:<free port>, by the jaeger helper's harness.jaeger.localize; nothing else.

Render inputs, not swaps: Grafana, Loki and the log collector are rendered off (NOT_RUN: their
programs cannot run here), Jaeger on only when started; `for` durations are shortened only
through the chart's own per-alert values (`prometheus.alerts.<Alert>.for`), passed by the
caller as set_values. Everything started is stopped by Stack.stop() (process groups, SIGTERM
then SIGKILL), which the pytest fixtures call in finalizers; an atexit hook is the last resort.
"""
import atexit
import base64
import contextlib
import copy
import json
import os
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from . import tools
from .manifests import Manifests, pod_spec
from .render import render_raw
from .sinks import Sinks
from .workload import Workload, free_port

_LIVE = set()


@atexit.register
def _kill_leftovers():
    for p in list(_LIVE):
        p.stop(timeout=3)


# ---------------------------------------------------------------------------- processes
class Process:
    """A program in its own process group, logging to a file, with a readiness URL (or a
    callable that returns True once ready)."""

    def __init__(self, name, argv, log_path, ready_url, cwd=None, env=None):
        self.name, self.argv, self.log_path, self.ready_url = name, list(argv), Path(log_path), ready_url
        self.cwd = cwd
        self.env = None if env is None else {**os.environ, **env}
        self.proc = None

    def start(self, timeout=60):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        log.write(f"\n--- start {time.strftime('%H:%M:%S')}: {shlex.join(self.argv)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.cwd,
                                     env=self.env)
        log.close()
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if callable(self.ready_url):  # a check of its own (TLS, a client certificate)
                    if self.ready_url():
                        return self
                else:
                    with urllib.request.urlopen(self.ready_url, timeout=2) as r:
                        if r.status == 200:
                            return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} not ready at {self.ready_url} after {timeout}s:\n{self.log_tail()}")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=20, sig=signal.SIGTERM):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        _LIVE.discard(self)
        self.proc = None

    def restart(self, timeout=60):
        self.stop()
        return self.start(timeout)

    def log_tail(self, n=40):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


# ---------------------------------------------------------------------------- rendered pods
def _component(obj):
    return (obj["metadata"].get("labels") or {}).get("app.kubernetes.io/name", "")


def find_workload(manifests, component):
    for kind in ("StatefulSet", "Deployment", "DaemonSet"):
        for obj in manifests.of_kind(kind):
            if _component(obj) == component:
                return obj
    raise LookupError(f"the render has no StatefulSet/Deployment of component {component!r}; "
                      f"workloads: {[o['kind'] + '/' + o['metadata']['name'] for o in manifests.workloads()]}")


def _volume_files(manifests, volume):
    """{relative path: bytes} a configMap/secret/projected volume would show, or None."""
    def from_source(kind, name, items):
        obj = manifests.get(kind, name)
        files = {}
        for k, v in (obj.get("data") or {}).items():
            files[k] = base64.b64decode(v) if kind == "Secret" else str(v).encode()
        for k, v in (obj.get("binaryData") or {}).items():
            files[k] = base64.b64decode(v)
        for k, v in (obj.get("stringData") or {}).items():
            files[k] = str(v).encode()
        if items:
            files = {it.get("path", it["key"]): files[it["key"]] for it in items}
        return files
    if "configMap" in volume:
        return from_source("ConfigMap", volume["configMap"]["name"], volume["configMap"].get("items"))
    if "secret" in volume:
        return from_source("Secret", volume["secret"]["secretName"], volume["secret"].get("items"))
    if "projected" in volume:
        files = {}
        for src in volume["projected"].get("sources", []):
            if "configMap" in src:
                files.update(from_source("ConfigMap", src["configMap"]["name"], src["configMap"].get("items")))
            elif "secret" in src:
                files.update(from_source("Secret", src["secret"]["name"], src["secret"].get("items")))
        return files
    return None


class PodFiles:
    """A rendered pod's container, its mounts laid out under `root`."""

    def __init__(self, manifests, component, container, root):
        self.obj = find_workload(manifests, component)
        spec = pod_spec(self.obj)
        cont = [c for c in spec["containers"] if c["name"] == container]
        if not cont:
            raise LookupError(f"{self.obj['kind']}/{self.obj['metadata']['name']}: no container {container!r}")
        self.container = cont[0]
        self.root = Path(root)
        self.spec = spec
        self.mounts = []        # mountPaths, longest first
        self.host_paths = {}    # mountPath -> hostPath: the node's own directory (this machine's)
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        for m in self.container.get("volumeMounts") or []:
            mp = m["mountPath"]
            self.mounts.append(mp)
            dest = self.root / mp.lstrip("/")
            vol = volumes.get(m["name"])
            if vol and "hostPath" in vol:
                self.host_paths[mp] = vol["hostPath"]["path"]
                continue
            files = _volume_files(manifests, vol) if vol else None
            if files is None:       # emptyDir, PVC (volumeClaimTemplate): an empty directory
                dest.mkdir(parents=True, exist_ok=True)
                continue
            if m.get("subPath"):
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(files[m["subPath"]])
                continue
            dest.mkdir(parents=True, exist_ok=True)
            for rel, data in files.items():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                (dest / rel).write_bytes(data)
        self.mounts.sort(key=len, reverse=True)

    @property
    def args(self):
        return list(self.container.get("args") or [])

    def automount_service_account(self, token, ca_pem, namespace):
        """Lay out the ServiceAccount token, CA and namespace where the kubelet mounts them
        (/var/run/secrets/kubernetes.io/serviceaccount), unless the pod opts out. Returns the
        local directory, or None when the pod does not mount a token."""
        if self.spec.get("automountServiceAccountToken") is False:
            return None
        sa = "/var/run/secrets/kubernetes.io/serviceaccount"
        d = self.root / sa.lstrip("/")
        d.mkdir(parents=True, exist_ok=True)
        (d / "token").write_text(token)
        (d / "ca.crt").write_bytes(ca_pem)
        (d / "namespace").write_text(namespace)
        self.mounts.append(sa)
        self.mounts.sort(key=len, reverse=True)
        return d

    def env(self, pod=None):
        """The container's env as the kubelet sets it for pod <name>-0 (literal values and the
        downward API's fields, from `pod` as the API server holds it when given)."""
        md = self.obj["metadata"]
        st, spec = (pod or {}).get("status", {}), (pod or {}).get("spec", {})
        fields = {"metadata.name": f"{md['name']}-0", "metadata.namespace": md.get("namespace", ""),
                  "status.podIP": st.get("podIP", "127.0.0.1"), "status.hostIP": st.get("hostIP", "127.0.0.1"),
                  "spec.nodeName": spec.get("nodeName", "")}
        out = {}
        for e in self.container.get("env") or []:
            if "value" in e:
                out[e["name"]] = str(e["value"])
            elif (e.get("valueFrom") or {}).get("fieldRef"):
                path = e["valueFrom"]["fieldRef"]["fieldPath"]
                if path in fields:
                    out[e["name"]] = fields[path]
        return out

    def reroot(self, path):
        """An absolute path inside a mount -> the local copy (a hostPath mount -> this machine's
        own directory, as on a node); other strings unchanged."""
        if isinstance(path, str) and path.startswith("/"):
            for mp in self.mounts:
                if path == mp or path.startswith(mp.rstrip("/") + "/"):
                    if mp in self.host_paths:
                        rest = path[len(mp):].lstrip("/")
                        return str(Path(self.host_paths[mp]) / rest) if rest else self.host_paths[mp]
                    return str(self.root / path.lstrip("/"))
        return path

    def reroot_tree(self, node):
        if isinstance(node, dict):
            return {k: self.reroot_tree(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.reroot_tree(v) for v in node]
        return self.reroot(node)

    def local(self, path):
        return Path(self.reroot(path))


def _flag(args, name):
    for a in args:
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return None


# ---------------------------------------------------------------------------- the stack
def _get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


# Components whose programs cannot run here (AGPL or not served by the module proxy): the e2e
# stack renders the chart without them, a render input (Stack.render_inputs), not a swap.
NOT_RUN = {"grafana.enabled": False, "loki.enabled": False, "promtail.enabled": False}


class Stack:
    """A local control plane with the chart and the workload as objects + sinks + node_exporter
    + the rendered Alertmanager + the rendered Prometheus, which discovers its targets through
    the API server as the chart's ServiceAccount.

    Use: `stack = Stack(tmp_dir, set_values={...}).start()` ... `stack.stop()`.
    """

    def __init__(self, workdir, values_files=(), set_values=None, *, release="p5",
                 namespace="monitoring", workload=None, interval="1s", scrape_interval="2s", resend_delay="2s",
                 jaeger=False, extra_nodes=(), manifests=None, extra_objects=()):
        self.workdir = Path(workdir)
        self.values_files = tuple(values_files)
        self.set_values = {**NOT_RUN, "jaeger.enabled": bool(jaeger), **dict(set_values or {})}
        self.release, self.namespace = release, namespace
        self.workload = workload or Workload()
        self.interval, self.resend_delay = interval, resend_delay
        self.scrape_interval = scrape_interval
        self.swaps = []
        self.sinks = Sinks()
        self.prometheus = self.alertmanager = self.node_exporter = None
        self.prom_port = self.am_port = self.node_exporter_port = None
        self.want_jaeger = jaeger
        self.extra_nodes = list(extra_nodes)   # [{"name", "labels", "taints"}] beside the three
        self._manifests = manifests            # a render made elsewhere (operator mode's e2e)
        self.extra_objects = list(extra_objects)   # applied after the chart (operator mode's e2e)
        self.jaeger = None                     # harness.jaeger.Jaeger when running
        self.cp = self.cluster = self.net = None
        self.route_conflicts = []
        self._exit = contextlib.ExitStack()

    # ------------------------------------------------------------------ lifecycle
    def start(self):
        from .controlplane import ControlPlane
        from .podnet import PodNetwork
        from .simcluster import SimCluster
        try:
            self.manifests = self._manifests or Manifests(render_raw(
                self.values_files, self.set_values, release=self.release, namespace=self.namespace)[0])
            self.sinks.start()
            self.prom_port, self.am_port = free_port(), free_port()
            self.cp = self._exit.enter_context(ControlPlane(self.workdir / "cluster").start())
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
        for p in (self.prometheus, self.alertmanager, self.node_exporter):
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

    # ------------------------------------------------------------------ the pod network
    def _sync(self, snap):
        """Routes of the pod network from the API server's pods and nodes: a Phase 5 pod's
        declared port -> the workload's server for that pod; the chart's pods -> the real
        processes (Prometheus, Alertmanager, Jaeger, node_exporter) or the workload's
        kube-state-metrics; a node's InternalIP:10250 -> its synthetic kubelet."""
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
                add(ip, port, self.workload.kubelet_port(node["metadata"]["name"]), f"node {node['metadata']['name']}")
        self.route_conflicts = conflicts
        self.net.set_routes(routes)

    def _chart_pod_ports(self, pod):
        """{container port: local port} for one of the chart's pods."""
        md = pod["metadata"]
        if md["namespace"] != self.namespace:
            return {}
        comp = (md.get("labels") or {}).get("app.kubernetes.io/name", "")
        ports = {}
        for c in pod["spec"].get("containers") or []:
            listen = _flag(c.get("args") or [], "web.listen-address")
            declared = {p.get("name", ""): p["containerPort"] for p in c.get("ports") or []}
            if comp in ("prometheus", "alertmanager") and listen:
                n = int(listen.rsplit(":", 1)[1])
                if n in declared.values():
                    ports[n] = self.prom_port if comp == "prometheus" else self.am_port
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

    def _swap(self, what):
        if what not in self.swaps:
            self.swaps.append(what)

    # ------------------------------------------------------------------ jaeger
    def _start_jaeger(self):
        """The rendered Jaeger v2 config, run by harness.jaeger (the jaeger helper's module:
        every listener moved to 127.0.0.1:<free port>, nothing else changed)."""
        from . import jaeger as jh
        cfg = jh.rendered_config(self.manifests, f"{self.release}-jaeger")
        jdir = self.workdir / "jaeger"
        jdir.mkdir(parents=True, exist_ok=True)
        self.jaeger = self._exit.enter_context(jh.run_jaeger(tools.require("jaeger"), cfg, jdir))
        self._swap("jaeger: every listener (receivers, query, health, metrics) -> 127.0.0.1:<free port> "
                   "(harness.jaeger.localize)")

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
        am_dir = self.workdir / "alertmanager"
        pod = PodFiles(self.manifests, "alertmanager", "alertmanager", am_dir / "root")
        cfg_path = pod.local(_flag(pod.args, "config.file"))
        cfg = yaml.safe_load(cfg_path.read_text())
        cfg = self._rewrite_am(cfg, pod)
        cfg = pod.reroot_tree(cfg)
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        self.am_config = cfg
        args, data = [], am_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        for a in pod.args:
            name = a.split("=", 1)[0].lstrip("-")
            if name in ("web.listen-address", "storage.path") or name.startswith("cluster."):
                continue
            if name == "config.file":
                a = f"--config.file={cfg_path}"
            args.append(a)
        args += [f"--web.listen-address=127.0.0.1:{self.am_port}", "--cluster.listen-address=",
                 f"--storage.path={data}"]
        self._swap("alertmanager flags: --web.listen-address=127.0.0.1:<port>, --cluster.listen-address= "
                   "(single instance; peers/advertise dropped), --storage.path=<tmp>")
        self.alertmanager = Process("alertmanager", [tools.require("alertmanager")] + args,
                                    am_dir / "alertmanager.log", f"{self.am_url}/-/ready",
                                    env=pod.env()).start()

    def _secret_file(self, pod, path, content, what):
        local = pod.local(path)
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(content)
        self._swap(what)

    def _rewrite_am(self, cfg, pod):
        cfg = copy.deepcopy(cfg)
        g = cfg.setdefault("global", {})
        s = self.sinks
        if "slack_api_url_file" in g:
            self._secret_file(pod, g["slack_api_url_file"], s.http_url("slack", "global"),
                              "alertmanager: the slack-webhook-url credential file holds the local Slack sink URL")
        if "slack_api_url" in g:
            g["slack_api_url"] = s.http_url("slack", "global")
            self._swap("alertmanager: global slack_api_url -> the local Slack sink")
        if "smtp_smarthost" in g:
            g["smtp_smarthost"] = s.smtp_address
            g["smtp_require_tls"] = False
            self._swap("alertmanager: smtp_smarthost -> local aiosmtpd, smtp_require_tls -> false")
        for r in cfg.get("receivers") or []:
            name = r["name"]
            for c in r.get("slack_configs") or []:
                if "api_url_file" in c:
                    self._secret_file(pod, c["api_url_file"], s.http_url("slack", name),
                                      f"alertmanager: receiver {name} slack api_url_file holds the Slack sink URL")
                if "api_url" in c:
                    c["api_url"] = s.http_url("slack", name)
                    self._swap(f"alertmanager: receiver {name} slack api_url -> the Slack sink")
            for c in r.get("email_configs") or []:
                if "smarthost" in c:
                    c["smarthost"] = s.smtp_address
                    self._swap(f"alertmanager: receiver {name} email smarthost -> local aiosmtpd")
                if "require_tls" in c:
                    c["require_tls"] = False
            for c in r.get("pagerduty_configs") or []:
                c["url"] = s.http_url("pagerduty") + f"?receiver={urllib.parse.quote(name)}"
                self._swap("alertmanager: pagerduty_configs url -> the local PagerDuty sink")
            for c in r.get("webhook_configs") or []:
                key = Path(c.get("url_file", "")).name.replace("-url", "") or name
                url = s.http_url("webhook", key)
                if "url_file" in c:
                    self._secret_file(pod, c["url_file"], url,
                                      f"alertmanager: webhook credential file {Path(c['url_file']).name} "
                                      f"holds the local webhook sink URL /webhook/{key}")
                if "url" in c:
                    c["url"] = url
                    self._swap(f"alertmanager: receiver {name} webhook url -> /webhook/{key}")
            for kind in set(r) - {"name", "slack_configs", "email_configs", "pagerduty_configs", "webhook_configs"}:
                self._swap(f"alertmanager: receiver {name} {kind} NOT redirected (no local sink for it)")
        return cfg

    # ------------------------------------------------------------------ prometheus
    def _start_prometheus(self):
        pdir = self.workdir / "prometheus"
        pod = PodFiles(self.manifests, "prometheus", "prometheus", pdir / "root")
        sa = pod.spec.get("serviceAccountName", "default")
        self.prom_sa_dir = pod.automount_service_account(
            self.cluster.token(self.namespace, sa), self.cp.pki.ca_cert.read_bytes(), self.namespace)
        self._swap(f"prometheus: the ServiceAccount token of {sa} (TokenRequest API) and the cluster CA laid out "
                   f"where the kubelet mounts them")
        cfg_path = pod.local(_flag(pod.args, "config.file"))
        cfg = yaml.safe_load(cfg_path.read_text())
        cfg = pod.reroot_tree(self._rewrite_prom(cfg))
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        self.prom_config = cfg
        self.rule_files = [p for pattern in cfg.get("rule_files") or []
                           for p in sorted(Path("/").glob(pattern.lstrip("/")))]
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
        args += [f"--web.listen-address=127.0.0.1:{self.prom_port}", f"--storage.tsdb.path={data}",
                 f"--rules.alert.resend-delay={self.resend_delay}"]
        self._swap(f"prometheus flags: --web.listen-address=127.0.0.1:<port>, --storage.tsdb.path=<tmp>, "
                   f"--rules.alert.resend-delay={self.resend_delay} (default 1m), --web.external-url dropped")
        api_pod = self._api_pod(f"{pod.obj['metadata']['name']}-0")
        self.prometheus = Process("prometheus", [tools.require("prometheus")] + args,
                                  pdir / "prometheus.log", f"{self.prom_url}/-/ready",
                                  env=pod.env(api_pod)).start()
        if pod.env():
            self._swap(f"prometheus env: the container's env as the kubelet sets it for pod "
                       f"{pod.obj['metadata']['name']}-0 ({', '.join(sorted(pod.env()))})")

    def _api_pod(self, name):
        for p in self.cluster.snapshot.pods:
            if p["metadata"]["namespace"] == self.namespace and p["metadata"]["name"] == name:
                return p
        return None

    def _through_api(self, job, what):
        """Discovery through the local API server as the chart's Prometheus ServiceAccount, and
        the job's connections through the pod network. Returns False for a job without
        Kubernetes discovery."""
        sds = job.get("kubernetes_sd_configs")
        if not sds:
            return False
        sa = "/var/run/secrets/kubernetes.io/serviceaccount"
        for sd in sds:
            # In a pod, Prometheus finds the API server through KUBERNETES_SERVICE_HOST and reads
            # the mounted token and CA; here the same files, at the local API server.
            sd["api_server"] = self.cp.server
            sd["authorization"] = {"credentials_file": f"{sa}/token"}
            sd["tls_config"] = {"ca_file": f"{sa}/ca.crt"}
        job["proxy_url"] = self.net.url
        self._swap(f"prometheus {what}: kubernetes_sd_configs get api_server (the local API server) and the mounted "
                   f"ServiceAccount token and CA (in-cluster config reads the same); proxy_url = the pod network")
        return True

    def _map_static(self, job, what):
        for sc in job.get("static_configs") or []:
            new = []
            for tgt in sc.get("targets") or []:
                host, _, port = str(tgt).rpartition(":")
                if port == "9093" and "alertmanager" in host:
                    new.append(f"127.0.0.1:{self.am_port}")
                    self._swap(f"prometheus {what}: static target {tgt} -> the local Alertmanager")
                elif port == "9090" and ("prometheus" in host or host in ("localhost", "127.0.0.1")):
                    new.append(f"127.0.0.1:{self.prom_port}")
                    self._swap(f"prometheus {what}: static target {tgt} -> the local Prometheus")
                else:
                    new.append(tgt)
            sc["targets"] = new

    def _rewrite_prom(self, cfg):
        cfg = copy.deepcopy(cfg)
        g = cfg.setdefault("global", {})
        g["evaluation_interval"] = self.interval
        g["scrape_interval"] = g["scrape_timeout"] = self.scrape_interval
        self._swap(f"prometheus: global evaluation_interval -> {self.interval}, scrape_interval/scrape_timeout -> "
                   f"{self.scrape_interval}; per-job intervals removed")
        for key in ("remote_write", "remote_read"):
            if cfg.pop(key, None):
                self._swap(f"prometheus: {key} removed")
        for job in cfg.get("scrape_configs") or []:
            what = f"job {job.get('job_name')}"
            job.pop("scrape_interval", None)
            job.pop("scrape_timeout", None)
            if self._through_api(job, what):
                if job.get("scheme") == "https" or "tls_config" in job:
                    job["scheme"] = "http"
                    for k in ("tls_config", "authorization", "bearer_token_file", "bearer_token"):
                        job.pop(k, None)
                    self._swap(f"prometheus {what}: https + service-account token/TLS -> plain http "
                               f"(the synthetic kubelet)")
            self._map_static(job, what)
        for am in (cfg.get("alerting") or {}).get("alertmanagers") or []:
            self._through_api(am, "alerting")
            self._map_static(am, "alerting")
        return cfg

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

    def am_alerts(self, **filters):
        q = urllib.parse.urlencode({"active": "true", "silenced": "true", "inhibited": "true",
                                    "unprocessed": "true", **filters})
        return _get(f"{self.am_url}/api/v2/alerts?{q}")

    def wait(self, predicate, timeout, interval=1.0, what="condition"):
        """Poll predicate() until truthy; return its value, or raise TimeoutError naming `what`."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
            except (urllib.error.URLError, ConnectionError, OSError):
                last = None
            if last:
                return last
            time.sleep(interval)
        raise TimeoutError(f"{what}: not true after {timeout}s")
