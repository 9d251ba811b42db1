"""The chart's RENDERED node-exporter and kube-state-metrics web config (global.web.node-exporter,
global.web.kube-state-metrics: TLS and basic auth) served for real on 127.0.0.1, and scraped by a
real Prometheus with the node-exporter and kube-state-metrics jobs the chart renders.

What a user creates is made here as the README says (harness.webstack's helpers): a throwaway CA,
one server certificate per component naming its Service (<release>-<component>.<ns>.svc, the
jobs' server_name) and 127.0.0.1, the kubernetes.io/tls Secrets, the client Secrets and the
bcrypt hash in basicAuth.users. They join the rendered objects, and harness.podfiles lays out
every volume as mounted.

Processes:
  - node-exporter: the real node_exporter (bin/, the chart's image version) with the DaemonSet's
    rendered arguments, its web config among them; hostPath mounts are this machine's /proc,
    /sys and / (as on a node).
  - kube-state-metrics: a STAND-IN. kube-state-metrics is not served by the Go module proxy
    (docs, DESIGN) and cannot run here. Its web config (`--tls-config`, one file for its
    metrics and telemetry ports, kube-state-metrics v2.20.0 pkg/app/server.go) is read by
    exporter-toolkit's web.ListenAndServe; kube-state-metrics v2.20.0 links exporter-toolkit
    v0.17.1 (its go.mod), and so does node_exporter v1.12.1. So a second real node_exporter
    serves the file the chart renders for kube-state-metrics, through the very library version
    kube-state-metrics reads it with, and Prometheus scrapes it with the rendered
    kube-state-metrics job: what is proven is the web config file and the job's client side,
    not kube-state-metrics' metrics (tests/harness/ksm.py holds those). The flag name and the
    library version are held to kube-state-metrics v2.20.0 by KSM_WEB (test_e2e_exporter_tls).

What is swapped, and nothing else (self.swaps):
  1. Every absolute path into a mount (arguments, the web config, prometheus.yml) re-rooted
     under the pod's local tree; listen addresses -> 127.0.0.1:<free port>.
  2. No API server here: prometheus.yml keeps the node-exporter and kube-state-metrics jobs;
     their endpointslice discovery becomes a static target at the local port carrying the labels
     that role gives the rendered Service's endpoint (service name, namespace, port name, node
     name). scheme, tls_config (CA, server_name) and basic_auth are the rendered ones.
  3. Extra jobs, each the rendered job with ONE thing broken (plain http, another CA, another
     server name, no credentials), scraping the same process: their `up` must be 0.
Everything started is stopped by stop(), also when start() fails.
"""
import copy
from pathlib import Path

import yaml

from . import tools
from .podfiles import PodFiles, flag
from .ports import free_port
from .process import AllOrNothing, Process
from .swaps import Swaps
from .webstack import (LocalServers, PASSWORD, USER, bcrypt_hash, local_command, prometheus_pod, reroot_args,
                       scrape_only, start_prometheus, web_user_objects)

EXPORTERS = ("node-exporter", "kube-state-metrics")
# kube-state-metrics v2.20.0 (the chart's image): the flag that takes the web config
# (docs/developer/cli-arguments.md: "--tls-config string   Path to the TLS configuration file"),
# the servers it applies to (pkg/app/server.go: metricsFlags and telemetryFlags both set
# WebConfigFile to it) and the exporter-toolkit version that reads it (go.mod).
KSM_WEB = {"version": "v2.20.0", "flag": "--tls-config", "servers": ("metrics", "telemetry"),
           "exporter_toolkit": "v0.17.1"}
# The deliberate breaks of swap 3: job suffix -> what is changed in the rendered job.
BROKEN = {
    "plain-http": lambda job, wrong_ca: job.update(scheme="http"),
    "other-ca": lambda job, wrong_ca: job["tls_config"].update(ca_file=wrong_ca),
    "other-name": lambda job, wrong_ca: job["tls_config"].update(server_name="other.monitoring.svc"),
    "no-credentials": lambda job, wrong_ca: job.pop("basic_auth"),
}


def web_values(release, password_hash, basic_auth=True):
    return {c: {"tls": {"enabled": True, "secretName": f"{release}-{c}-tls"},
                "basicAuth": {"enabled": basic_auth, "users": {USER: password_hash},
                              "clientSecret": f"{release}-{c}-client"}} for c in EXPORTERS}


class ExporterTLSStack(LocalServers, AllOrNothing):
    def __init__(self, workdir, release="p5", namespace="monitoring"):
        self.workdir = Path(workdir)
        self.release, self.namespace = release, namespace
        self.swaps = Swaps()
        self.procs = {}
        self.ports = {}

    # ------------------------------------------------------------------ lifecycle
    def _start(self):
        self._make_user_objects()
        self.ports = {c: free_port() for c in (*EXPORTERS, "prometheus")}
        for c in EXPORTERS:
            self._start_exporter(c)
        self._start_prometheus()

    # ------------------------------------------------------------------ setup
    def _make_user_objects(self):
        self.values = {"global.web": web_values(self.release, bcrypt_hash(PASSWORD)),
                       "grafana.enabled": False, "loki.enabled": False, "promtail.enabled": False,
                       "jaeger.enabled": False, "alertmanager.enabled": False,
                       "prometheus.alerting.inCluster.enabled": False}
        self.ca, self.ca_file, self.wrong_ca_file, self.manifests = web_user_objects(
            self.workdir, self.values, EXPORTERS, self.release, self.namespace)

    def _rerooted_args(self, pod, args, drop):
        return reroot_args(pod, args, drop, ("--web.config.file", KSM_WEB["flag"]))

    def _ready(self, component):
        client = self.client(component)
        return lambda: client.request("/metrics")[0] == 200

    def _start_exporter(self, c):
        cdir = self.workdir / c
        container = "node-exporter" if c == "node-exporter" else "kube-state-metrics"
        pod = PodFiles(self.manifests, c, container, cdir / "root")
        self.pods = getattr(self, "pods", {})
        self.pods[c] = pod
        listen = f"--web.listen-address=127.0.0.1:{self.ports[c]}"
        if c == "node-exporter":
            args = self._rerooted_args(pod, pod.args, ("web.listen-address",)) + [listen]
            self.swaps.add("node_exporter: the DaemonSet's arguments re-rooted (hostPath = this machine's "
                           "/proc, /sys, /), --web.listen-address=127.0.0.1:<port>")
        else:
            rendered = flag(pod.args, KSM_WEB["flag"].lstrip("-"))
            if rendered is None:
                raise LookupError(f"kube-state-metrics: no {KSM_WEB['flag']}= in the rendered args {pod.args}")
            web_cfg = pod.local(rendered)
            self._rerooted_args(pod, [f"{KSM_WEB['flag']}={rendered}"], ())
            args = [f"--web.config.file={web_cfg}", listen]
            self.swaps.add("kube-state-metrics: STAND-IN, a real node_exporter serving the rendered --tls-config "
                           "file (exporter-toolkit v0.17.1, as kube-state-metrics v2.20.0)")
        self.procs[c] = Process(c, [tools.require("node_exporter")] + args, cdir / f"{c}.log",
                                self._ready(c)).start()

    def _static(self, job, c):
        svc = self.manifests.get("Service", f"{self.release}-{c}")
        labels = {"__meta_kubernetes_namespace": self.namespace,
                  "__meta_kubernetes_service_name": svc["metadata"]["name"],
                  "__meta_kubernetes_endpointslice_port_name": "http-metrics",
                  "__meta_kubernetes_endpointslice_endpoint_node_name": "node-1"}
        del job["kubernetes_sd_configs"]
        job["static_configs"] = [{"targets": [f"127.0.0.1:{self.ports[c]}"], "labels": labels}]

    def _start_prometheus(self):
        pdir = self.workdir / "prometheus"
        pod, cfg_path, cfg = prometheus_pod(self.manifests, pdir / "root")
        self.prom_pod = pod
        self.rendered_jobs = scrape_only(cfg)
        jobs = []
        for c in EXPORTERS:
            job = copy.deepcopy(self.rendered_jobs[c])
            self._static(job, c)
            jobs.append(job)
            for name, brk in BROKEN.items():
                bad = copy.deepcopy(job)
                bad["job_name"] = f"{c}-{name}"
                brk(bad, str(self.wrong_ca_file))
                jobs.append(bad)
        cfg["scrape_configs"] = jobs
        self.swaps.add("prometheus: only the node-exporter and kube-state-metrics jobs (endpointslice -> a static "
                       "target with the Service's labels at the local port) and one broken copy of each per "
                       f"{sorted(BROKEN)}; no rules, no alerting; 1s intervals")
        cfg_path.write_text(yaml.safe_dump(pod.reroot_tree(cfg), sort_keys=False))
        self.prometheus_config = cfg
        self.procs["prometheus"] = start_prometheus(pod, pdir, self.ports["prometheus"])

    # ------------------------------------------------------------------ what tests read
    def test_pod(self, component):
        """The rendered `helm test` pod's command with its mounts laid out, the Service address
        pointed at the local process: (argv, PodFiles)."""
        obj = self.manifests.get("Pod", f"{self.release}-test-{component}")
        pod = PodFiles(self.manifests, component, "check", self.workdir / f"test-{component}" / "root", obj=obj)
        svc = self.manifests.get("Service", f"{self.release}-{component}")
        return local_command(pod.container["command"], svc, self.ports[component], pod), pod
