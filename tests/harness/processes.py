"""Run the chart's RENDERED Prometheus and Alertmanager for real, on 127.0.0.1.

The configuration is what `helm template` produced: prometheus.yml and the rule files come
from the ConfigMaps mounted into the Prometheus StatefulSet, alertmanager.yaml and the
notification templates from the Secret mounted into the Alertmanager StatefulSet, and the
credential files from the credentials Secret. Each pod's volumes are laid out as files
under <workdir>/<component>/root/<mountPath> exactly as the kubelet would mount them, and
every absolute path in the configs and arguments that points into a mount is re-rooted there.
Rules, recording rules, the routing tree, inhibitions, receivers, notification templates,
relabelling and `for` durations are used unchanged.

What is swapped, and nothing else (the list `Stack.swaps` records each one made):

Prometheus
  1. Service discovery: each `kubernetes_sd_configs` (scrape jobs and Alertmanager discovery)
     becomes `static_configs` whose targets carry the `__meta_kubernetes_*` labels the
     Kubernetes SD of that role (endpointslice, endpoints, pod, service, node) would give the
     synthetic cluster of harness.workload plus the chart's own annotated Services, filtered by
     the SD's `namespaces`. The job's `relabel_configs` run unchanged on them, so `namespace`,
     `service`, `pod`, `instance` come out as in a cluster.
  2. Target address: one relabel step appended after the job's own copies a hidden
     `__e2e_address__` label (127.0.0.1:<port of that synthetic or real endpoint>) into
     `__address__`, because pod IPs and kubelet node addresses do not exist locally.
  3. Kubelet/cAdvisor jobs: `scheme: https` -> http and the service-account
     `authorization`/`tls_config` dropped (the synthetic kubelet is plain HTTP, no token).
  4. Static targets `<rel>-alertmanager...:9093` / `<rel>-prometheus...:9090` -> the local
     processes.
  5. Global `scrape_interval`, `scrape_timeout`, `evaluation_interval` -> `interval`
     (default 1s) so a test takes seconds, not minutes; per-job intervals are removed.
  6. `remote_write`/`remote_read` removed (nothing to write to).
  7. Flags: --web.listen-address=127.0.0.1:<free port>, --storage.tsdb.path=<workdir>,
     --web.external-url dropped, --rules.alert.resend-delay=<resend_delay> added (default 2s
     instead of 1m, so a restarted Alertmanager gets the firing alerts back quickly).
     The process env is the container's env as the kubelet would set it for pod <name>-0
     (literal values; downward-API metadata.name/namespace, status.podIP=127.0.0.1), so
     e.g. the HA profile's external label prometheus_replica=$(POD_NAME) expands.

Alertmanager
  8. Credential file contents: slack-webhook-url -> the local Slack sink URL, webhook-url and
     watchdog-url -> the local webhook sink (/webhook/webhook, /webhook/watchdog); inline
     `api_url`/`url` likewise. pagerduty_configs get `url:` the local PagerDuty sink.
  9. SMTP: `smtp_smarthost`/`smarthost` -> the local aiosmtpd server, `smtp_require_tls`/
     `require_tls` -> false (the sink speaks plain SMTP; AUTH PLAIN still runs, 127.0.0.1
     being localhost for Go's net/smtp).
 10. Flags: --web.listen-address=127.0.0.1:<free port>, --cluster.listen-address= (single
     instance), --cluster.peer/--cluster.advertise-address dropped, --storage.path=<workdir>.

Jaeger (Stack(jaeger=True))
 11. Every listener (OTLP gRPC/HTTP, Zipkin, legacy receivers, query, health, metrics) ->
     127.0.0.1:<free port>, by the jaeger helper's harness.jaeger.localize; nothing else.

The synthetic cluster
 12. The Phase 5 Services, the exporters, kube-state-metrics, node-exporter and the kubelets
     are harness.workload's; the chart's own annotated Services (prometheus, alertmanager,
     jaeger when started, kube-state-metrics, node-exporter) are discovered from the render.
     Grafana, Loki and Promtail do not run, so their Services are not in the inventory.

`for` durations are shortened only through the chart's own per-alert values
(`prometheus.alerts.<Alert>.for`), passed by the caller as set_values: that is a render input,
not a swap. Everything started is stopped by Stack.stop() (process groups, SIGTERM then
SIGKILL), which the pytest fixtures call in finalizers; an atexit hook is the last resort.
"""
import atexit
import base64
import contextlib
import copy
import json
import os
import re
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
from .workload import NODES, Target, Workload, free_port

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
        self.mounts = []        # mountPaths, longest first
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        for m in self.container.get("volumeMounts") or []:
            mp = m["mountPath"]
            self.mounts.append(mp)
            dest = self.root / mp.lstrip("/")
            vol = volumes.get(m["name"])
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

    def env(self):
        """The container's env as the kubelet would set it for pod <name>-0 on 127.0.0.1
        (literal values and the downward API's name/namespace/IP fields)."""
        md = self.obj["metadata"]
        fields = {"metadata.name": f"{md['name']}-0", "metadata.namespace": md.get("namespace", ""),
                  "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1", "spec.nodeName": NODES[0]}
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
        """An absolute path inside a mount -> the local copy; other strings unchanged."""
        if isinstance(path, str) and path.startswith("/"):
            for mp in self.mounts:
                if path == mp or path.startswith(mp.rstrip("/") + "/"):
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


# ---------------------------------------------------------------------------- service discovery
def _san(name):
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _meta_map(prefix, mapping):
    out = {}
    for k, v in (mapping or {}).items():
        out[f"{prefix}_{_san(k)}"] = str(v)
        out[f"{prefix.replace('_label', '_labelpresent').replace('_annotation', '_annotationpresent')}_{_san(k)}"] = "true"
    return out


def sd_labels(role, t, port_number, idx=0):
    """The __meta_kubernetes_* labels the Kubernetes SD `role` gives target `t`."""
    pod_ip = f"10.1.{idx // 250}.{idx % 250 + 1}"
    node_ip = f"10.0.0.{NODES.index(t.node) + 1 if t.node in NODES else 1}"
    m = {}
    if role == "node":
        m.update({"__address__": f"{node_ip}:10250",
                  "__meta_kubernetes_node_name": t.node,
                  "__meta_kubernetes_node_address_InternalIP": node_ip,
                  "__meta_kubernetes_node_address_Hostname": t.node,
                  "__meta_kubernetes_node_provider_id": f"kind://docker/phase5/{t.node}"})
        m.update(_meta_map("__meta_kubernetes_node_label", {"kubernetes.io/hostname": t.node,
                                                             "kubernetes.io/os": "linux"}))
        return m
    pod = {"__meta_kubernetes_pod_name": t.pod, "__meta_kubernetes_pod_ip": pod_ip,
           "__meta_kubernetes_pod_node_name": t.node, "__meta_kubernetes_pod_host_ip": node_ip,
           "__meta_kubernetes_pod_ready": "true", "__meta_kubernetes_pod_phase": "Running",
           "__meta_kubernetes_pod_uid": f"uid-{t.pod}",
           "__meta_kubernetes_pod_container_name": t.container,
           "__meta_kubernetes_pod_container_init": "false",
           "__meta_kubernetes_pod_container_port_name": t.port_name,
           "__meta_kubernetes_pod_container_port_number": str(port_number),
           "__meta_kubernetes_pod_container_port_protocol": "TCP",
           "__meta_kubernetes_pod_controller_kind": "ReplicaSet" if t.kind == "app" else "StatefulSet",
           "__meta_kubernetes_pod_controller_name": t.pod.rsplit("-", 1)[0]}
    pod.update(_meta_map("__meta_kubernetes_pod_label", t.pod_labels))
    pod.update(_meta_map("__meta_kubernetes_pod_annotation", getattr(t, "pod_annotations", {}) or {}))
    svc = {"__meta_kubernetes_namespace": t.namespace, "__meta_kubernetes_service_name": t.service}
    svc.update(_meta_map("__meta_kubernetes_service_label", t.service_labels))
    svc.update(_meta_map("__meta_kubernetes_service_annotation", t.annotations))
    if role == "pod":
        m.update(pod)
        m["__meta_kubernetes_namespace"] = t.namespace
        m["__address__"] = f"{pod_ip}:{port_number}"
    elif role == "service":
        m.update(svc)
        m.update({"__address__": f"{t.service}.{t.namespace}.svc:{port_number}",
                  "__meta_kubernetes_service_port_name": t.port_name,
                  "__meta_kubernetes_service_port_number": str(port_number),
                  "__meta_kubernetes_service_port_protocol": "TCP",
                  "__meta_kubernetes_service_cluster_ip": "10.96.0.10",
                  "__meta_kubernetes_service_type": "ClusterIP"})
    elif role == "endpointslice":
        m.update(svc)
        m.update(pod)
        m.update({"__address__": f"{pod_ip}:{port_number}",
                  "__meta_kubernetes_endpointslice_name": f"{t.service}-abcde",
                  "__meta_kubernetes_endpointslice_address_type": "IPv4",
                  "__meta_kubernetes_endpointslice_address_target_kind": "Pod",
                  "__meta_kubernetes_endpointslice_address_target_name": t.pod,
                  "__meta_kubernetes_endpointslice_endpoint_conditions_ready": "true",
                  "__meta_kubernetes_endpointslice_endpoint_conditions_serving": "true",
                  "__meta_kubernetes_endpointslice_endpoint_conditions_terminating": "false",
                  "__meta_kubernetes_endpointslice_endpoint_node_name": t.node,
                  "__meta_kubernetes_endpointslice_port": str(port_number),
                  "__meta_kubernetes_endpointslice_port_name": t.port_name,
                  "__meta_kubernetes_endpointslice_port_protocol": "TCP"})
        m.update(_meta_map("__meta_kubernetes_endpointslice_label",
                           {"kubernetes.io/service-name": t.service,
                            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}))
    elif role == "endpoints":
        m.update(svc)
        m.update(pod)
        m.update({"__address__": f"{pod_ip}:{port_number}",
                  "__meta_kubernetes_endpoints_name": t.service,
                  "__meta_kubernetes_endpoint_ready": "true",
                  "__meta_kubernetes_endpoint_node_name": t.node,
                  "__meta_kubernetes_endpoint_port_name": t.port_name,
                  "__meta_kubernetes_endpoint_port_protocol": "TCP",
                  "__meta_kubernetes_endpoint_address_target_kind": "Pod",
                  "__meta_kubernetes_endpoint_address_target_name": t.pod})
    else:
        raise ValueError(f"kubernetes_sd role {role!r} is not emulated")
    return m


class Inventory:
    """Every endpoint of the imaginary cluster: (target, declared port number)."""

    def __init__(self):
        self.entries = []       # (Target, port number as Kubernetes declares it)

    def add(self, target, port_number):
        self.entries.append((target, port_number))

    def static_configs(self, sd, release_namespace):
        role = sd.get("role", "").lower()
        names = None
        ns_cfg = sd.get("namespaces") or {}
        if ns_cfg.get("names"):
            names = set(ns_cfg["names"])
        if ns_cfg.get("own_namespace"):
            names = (names or set()) | {release_namespace}
        groups, seen = [], set()
        for idx, (t, port_number) in enumerate(self.entries):
            if role == "node":
                if t.kind != "kubelet" or t.node in seen:
                    continue
                seen.add(t.node)
            elif t.kind == "kubelet":
                continue
            elif names is not None and t.namespace not in names:
                continue
            labels = sd_labels(role, t, port_number, idx)
            labels["__e2e_address__"] = t.address
            addr = labels.pop("__address__")
            groups.append({"targets": [addr], "labels": labels})
        return groups


ADDRESS_OVERRIDE = {"source_labels": ["__e2e_address__"], "regex": "(.+)",
                    "target_label": "__address__", "replacement": "$1", "action": "replace"}


# ---------------------------------------------------------------------------- the stack
def _get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _post(url, data, timeout=10):
    req = urllib.request.Request(url, data=json.dumps(data).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = r.read()
        return json.loads(body) if body else None


class Stack:
    """Workload + sinks + the rendered Alertmanager + the rendered Prometheus.

    Use: `stack = Stack(tmp_dir, set_values={...}).start()` ... `stack.stop()`.
    """

    def __init__(self, workdir, values_files=(), set_values=None, *, release="p5",
                 namespace="monitoring", workload=None, interval="1s", resend_delay="2s",
                 manifests=None, extra_inventory=(), jaeger=False):
        self.workdir = Path(workdir)
        self.values_files, self.set_values = tuple(values_files), dict(set_values or {})
        self.release, self.namespace = release, namespace
        self.workload = workload or Workload(release=release, release_namespace=namespace)
        self.interval, self.resend_delay = interval, resend_delay
        self._manifests = manifests
        self.extra_inventory = list(extra_inventory)   # (Target, port) of other real processes
        self.swaps = []
        self.sinks = Sinks()
        self.prometheus = self.alertmanager = None
        self.prom_port = self.am_port = None
        self.want_jaeger = jaeger
        self.jaeger = None                     # harness.jaeger.Jaeger when running
        self._exit = contextlib.ExitStack()

    # ------------------------------------------------------------------ lifecycle
    def start(self):
        try:
            self.manifests = self._manifests or Manifests(
                render_raw(self.values_files, self.set_values, release=self.release,
                           namespace=self.namespace)[0])
            self.sinks.start()
            self.prom_port, self.am_port = free_port(), free_port()
            if self.want_jaeger:
                self._start_jaeger()
            self._add_chart_targets()
            self.workload.start()
            self._start_alertmanager()
            self._start_prometheus()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for p in (self.prometheus, self.alertmanager):
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

    # ------------------------------------------------------------------ inventory
    def _add_chart_targets(self):
        """The chart's own annotated Services become endpoints of the imaginary cluster."""
        self.inventory = Inventory()
        for t in self.workload.targets:
            port = int(t.annotations.get("prometheus.io/port", 10250 if t.kind == "kubelet" else 8000))
            self.inventory.add(t, port)
        real = {"prometheus": self.prom_port, "alertmanager": self.am_port}
        if self.jaeger and "http-metrics" in self.jaeger.ports:
            real["jaeger"] = self.jaeger.ports["http-metrics"]
        for svc in self.manifests.of_kind("Service"):
            md = svc["metadata"]
            comp = _component(svc)
            ann = md.get("annotations") or {}
            labels = md.get("labels") or {}
            for i, port in enumerate(svc["spec"].get("ports") or []):
                pname, pnum = port.get("name", ""), port["port"]
                pods = [f"{md['name']}-0"]
                if comp == "kube-state-metrics":
                    t = self.workload.add_chart_target("ksm", md.get("namespace", self.namespace), md["name"],
                                                       ann, pname, pods[0], labels)
                elif comp == "node-exporter":
                    for node in NODES:
                        t = self.workload.add_chart_target("node-exporter", md.get("namespace", self.namespace),
                                                           md["name"], ann, pname, f"{md['name']}-{node}",
                                                           labels, node=node)
                        self.inventory.add(t, pnum)
                    continue
                elif comp in real:
                    t = Target(comp, md.get("namespace", self.namespace), md["name"], pod=pods[0],
                               container=comp, node=NODES[0], port_name=pname, port=real[comp],
                               annotations=dict(ann), service_labels=dict(labels), pod_labels=dict(labels))
                else:
                    continue
                self.inventory.add(t, pnum)
        for t, pnum in self.extra_inventory:
            self.inventory.add(t, pnum)
        self._swap("the chart's grafana, loki and promtail Services are not in the synthetic cluster "
                   "(those programs do not run here)" + ("" if self.jaeger else ", nor jaeger (not started)"))

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
        self.prom_args = args
        self.prometheus = Process("prometheus", [tools.require("prometheus")] + args,
                                  pdir / "prometheus.log", f"{self.prom_url}/-/ready",
                                  env=pod.env()).start()
        if pod.env():
            self._swap(f"prometheus env: the container's env as the kubelet sets it for pod "
                       f"{pod.obj['metadata']['name']}-0 ({', '.join(sorted(pod.env()))}; pod IP 127.0.0.1)")

    def _sd_to_static(self, job, what):
        sds = job.pop("kubernetes_sd_configs", None)
        if not sds:
            return False
        groups = []
        for sd in sds:
            groups += self.inventory.static_configs(sd, self.namespace)
        job["static_configs"] = (job.get("static_configs") or []) + groups
        job["relabel_configs"] = list(job.get("relabel_configs") or []) + [dict(ADDRESS_OVERRIDE)]
        self._swap(f"prometheus {what}: kubernetes_sd_configs (role {', '.join(sorted({s.get('role', '') for s in sds}))}) "
                   f"-> static_configs with the SD's __meta_kubernetes_* labels; relabel_configs unchanged "
                   f"+ a final __address__ override to 127.0.0.1")
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
        g["scrape_interval"] = g["evaluation_interval"] = g["scrape_timeout"] = self.interval
        self._swap(f"prometheus: global scrape_interval/scrape_timeout/evaluation_interval -> {self.interval}; "
                   f"per-job intervals removed")
        for key in ("remote_write", "remote_read"):
            if cfg.pop(key, None):
                self._swap(f"prometheus: {key} removed")
        for job in cfg.get("scrape_configs") or []:
            what = f"job {job.get('job_name')}"
            job.pop("scrape_interval", None)
            job.pop("scrape_timeout", None)
            if self._sd_to_static(job, what):
                if job.get("scheme") == "https" or "tls_config" in job:
                    job["scheme"] = "http"
                    for k in ("tls_config", "authorization", "bearer_token_file", "bearer_token"):
                        job.pop(k, None)
                    self._swap(f"prometheus {what}: https + service-account token/TLS -> plain http "
                               f"(the synthetic kubelet)")
            self._map_static(job, what)
        for am in (cfg.get("alerting") or {}).get("alertmanagers") or []:
            self._sd_to_static(am, "alerting")
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
