"""The chart RENDERED with TLS on Loki, Grafana and the log collector (global.web.loki,
global.web.grafana, global.web.promtail), their certificates laid out as their pods mount them,
and a real Prometheus scraping them with the monitoring-stack-<name> jobs the chart renders.

What a user creates is made here as the README says (harness.webstack's helpers): a throwaway CA
and one kubernetes.io/tls Secret per component (`<release>-<key>-tls`, the values' secretName)
whose certificate names only the Service's DNS name the clients verify, <release>-<name>.<ns>.svc
for loki, grafana and the collector that runs (alloy or promtail), and 127.0.0.1.

STAND-INS for the servers. Neither Loki nor Grafana (AGPL), Alloy (not on the Go module proxy)
nor Promtail (end of life) runs here. Each is played by a real node_exporter (bin/) serving
HTTPS with exporter-toolkit, from the key pair at the very paths the component's rendered setting
names (Loki's and Promtail's server.http_tls_config, Grafana's [server] cert_file/cert_key,
Alloy's http.tls cert_file/key_file), read from that component's pod as laid out by
harness.podfiles: a path that is not mounted, or a key that does not match its certificate,
fails the start. Loki's and Promtail's server (dskit) build their TLS with exporter-toolkit's
ConfigToTLSConfig, so for them the stand-in is the same library; Grafana and Alloy use Go's
crypto/tls as well. What is proven is the certificate chain, the names and the files as mounted,
and the clients' settings; not the components' own HTTP handlers (their keys are held to
upstream by tests/test_unit_web_tls_logs.py).

CLIENTS run for real where they can: Prometheus (bin/prometheus) with the rendered jobs and its
pod's CA files. The two other clients of Loki, the collector's push (Promtail clients[].tls_config,
Alloy's loki.write endpoint tls_config: both prometheus/common's TLS client settings) and Grafana's
Loki datasource (tlsCACert, serverName), cannot run; their rendered CA file (from THEIR pods'
layout) and server name are handed to Prometheus as extra jobs against the Loki stand-in, Go's TLS
client verifying exactly what they would.

What is swapped, and nothing else (self.swaps):
  1. Absolute paths into a mount re-rooted under the pod's local tree; listen addresses ->
     127.0.0.1:<free port>.
  2. No API server: each rendered monitoring-stack-<name> job's endpointslice discovery becomes a
     static target with the labels that role gives the rendered Service's endpoint (service
     name, namespace, the Service's prometheus.io annotations), prometheus.io/port = the local port.
  3. Extra jobs: each rendered job with ONE thing broken (plain http, another CA, another server
     name), and the collector's and Grafana's Loki client settings as jobs (above); each labels
     its series with its own job name.
Everything started is stopped by stop(), also when start() fails.
"""
import configparser
import copy
from pathlib import Path

import yaml

from . import tools
from .logs import components, parse_alloy
from .manifests import Manifests
from .podfiles import PodFiles
from .ports import free_port
from .process import AllOrNothing, Process
from .render import render_raw
from .swaps import Swaps
from .webstack import (LocalServers, _secret, issue, local_command, make_ca, pem, prometheus_pod, scrape_only,
                       start_prometheus)

KEYS = ("loki", "grafana", "promtail")
BROKEN = {
    "plain-http": lambda job, wrong_ca: job.update(scheme="http"),
    "other-ca": lambda job, wrong_ca: job["tls_config"].update(ca_file=wrong_ca),
    "other-name": lambda job, wrong_ca: job["tls_config"].update(server_name="other.monitoring.svc"),
}


def _own_job_label(job):
    """An extra job's series under its own job label (the rendered jobs all say monitoring-stack),
    so its `up` never lands on the rendered job's series."""
    job["relabel_configs"] = list(job.get("relabel_configs") or []) + [
        {"target_label": "job", "replacement": job["job_name"]}]


class LogsTLSStack(LocalServers, AllOrNothing):
    def __init__(self, workdir, collector="alloy", release="p5", namespace="monitoring"):
        self.workdir = Path(workdir)
        self.collector, self.release, self.namespace = collector, release, namespace
        self.swaps = Swaps()
        self.procs, self.ports, self.pods, self.server_files = {}, {}, {}, {}
        # Job name (monitoring-stack-<name>) -> the server the target is.
        self.names = {"loki": "loki", "grafana": "grafana", collector: "promtail"}

    # ------------------------------------------------------------------ lifecycle
    def _start(self):
        self._make_user_objects()
        self.ports = {n: free_port() for n in (*self.names, "prometheus")}
        for name, key in self.names.items():
            self._start_server(name, key)
        self._start_prometheus()

    # ------------------------------------------------------------------ setup
    def _make_user_objects(self):
        self.values = {"global.web": {k: {"tls": {"enabled": True, "secretName": f"{self.release}-{k}-tls"}}
                                      for k in KEYS},
                       "promtail.collector": self.collector, "jaeger.enabled": False,
                       "prometheus.alerting.inCluster.enabled": False}
        self.workdir.mkdir(parents=True, exist_ok=True)
        ca = make_ca("phase5 test CA")
        self.ca_file, self.wrong_ca_file = self.workdir / "ca.crt", self.workdir / "wrong-ca.crt"
        self.ca_file.write_bytes(pem(ca[1]))
        self.wrong_ca_file.write_bytes(pem(make_ca("another CA")[1]))
        docs, _ = render_raw((), self.values, release=self.release, namespace=self.namespace)
        user = []
        for name, key in self.names.items():
            svc = f"{self.release}-{name}"
            # Only the name the README asks the certificate to hold (and 127.0.0.1, for this
            # module's own requests): a client verifying any other name fails.
            crt, k = issue(ca, [f"{svc}.{self.namespace}.svc"])
            user.append(_secret(f"{self.release}-{key}-tls", self.namespace,
                                {"tls.crt": crt, "tls.key": k, "ca.crt": pem(ca[1])}, "kubernetes.io/tls"))
        self.manifests = Manifests(docs + user)

    def _pod(self, name, root):
        m, rel = self.manifests, self.release
        if name == "loki":
            return PodFiles(m, "loki", "loki", root, obj=m.get("StatefulSet", f"{rel}-loki"))
        if name == "grafana":
            return PodFiles(m, "grafana", "grafana", root, obj=m.get("Deployment", f"{rel}-grafana"))
        return PodFiles(m, name, name, root, obj=m.get("DaemonSet", f"{rel}-{name}"))

    def rendered_server_tls(self, name):
        """(cert path, key path, minimum version) the component's own rendered setting names."""
        rel = self.release
        if name == "loki":
            s = yaml.safe_load(self.manifests.get("ConfigMap", f"{rel}-loki")["data"]["loki.yaml"])["server"]
            return s["http_tls_config"]["cert_file"], s["http_tls_config"]["key_file"], s["tls_min_version"]
        if name == "grafana":
            ini = configparser.ConfigParser(interpolation=None)
            ini.read_string(self.manifests.get("ConfigMap", f"{rel}-grafana")["data"]["grafana.ini"])
            assert ini["server"]["protocol"] == "https", dict(ini["server"])
            return ini["server"]["cert_file"], ini["server"]["cert_key"], "TLS12 (Grafana's default)"
        data = self.manifests.get("ConfigMap", f"{rel}-{name}")["data"]
        if name == "alloy":
            (http,) = [b for b in parse_alloy(data["config.alloy"]).blocks if b.name == "http"]
            tls = http.child("tls").attrs
            return tls["cert_file"], tls["key_file"], tls["min_version"]
        s = yaml.safe_load(data["promtail.yaml"])["server"]
        return s["http_tls_config"]["cert_file"], s["http_tls_config"]["key_file"], s["tls_min_version"]

    def _start_server(self, name, key):
        sdir = self.workdir / name
        pod = self._pod(name, sdir / "root")
        self.pods[name] = pod
        cert, keyfile, _ = self.rendered_server_tls(name)
        local_cert, local_key = pod.local(cert), pod.local(keyfile)
        for rendered, local in ((cert, local_cert), (keyfile, local_key)):
            if not local.is_file():
                raise FileNotFoundError(f"{name}: its config reads {rendered}, which its pod does not mount")
        self.server_files[name] = (local_cert, local_key)
        web = sdir / "web-config.yml"
        web.write_text(yaml.safe_dump({"tls_server_config": {"cert_file": str(local_cert), "key_file": str(local_key),
                                                             "min_version": "TLS12"}}))
        self.swaps.add(f"{name}: STAND-IN, a real node_exporter serving HTTPS from the key pair at the paths its "
                       "rendered config names, as its pod mounts them")
        argv = [tools.require("node_exporter"), f"--web.config.file={web}",
                f"--web.listen-address=127.0.0.1:{self.ports[name]}", "--collector.disable-defaults"]
        client = self.client(name)
        self.procs[name] = Process(name, argv, sdir / f"{name}.log",
                                   lambda: client.request("/metrics", auth=None)[0] == 200).start()

    def _static(self, job, name):
        svc = self.manifests.get("Service", f"{self.release}-{name}")
        ann = svc["metadata"].get("annotations") or {}
        labels = {"__meta_kubernetes_namespace": self.namespace,
                  "__meta_kubernetes_service_name": svc["metadata"]["name"],
                  "__meta_kubernetes_pod_name": f"{svc['metadata']['name']}-0",
                  "__meta_kubernetes_endpointslice_port_name": svc["spec"]["ports"][0]["name"]}
        for k, v in ann.items():
            if k.startswith("prometheus.io/"):
                labels["__meta_kubernetes_service_annotation_prometheus_io_" + k.split("/", 1)[1]] = v
        labels["__meta_kubernetes_service_annotation_prometheus_io_port"] = str(self.ports[name])
        del job["kubernetes_sd_configs"]
        job["static_configs"] = [{"targets": [f"127.0.0.1:{self.ports[name]}"], "labels": labels}]

    def loki_clients(self):
        """{client: (CA file as its pod mounts it, locally; server_name)} of Loki's two other clients."""
        rel = self.release
        out = {}
        data = self.manifests.get("ConfigMap", f"{rel}-{self.collector}")["data"]
        if self.collector == "alloy":
            ep = components(parse_alloy(data["config.alloy"]))[("loki.write", "default")].child("endpoint")
            url, tc = ep.attrs["url"], ep.child("tls_config").attrs
        else:
            c = yaml.safe_load(data["promtail.yaml"])["clients"][0]
            url, tc = c["url"], c["tls_config"]
        cpod = self.pods[self.collector]
        out["collector-push"] = (url, str(cpod.local(tc["ca_file"])), tc["server_name"])
        gpod = self.pods["grafana"]
        ds = yaml.safe_load(self.manifests.get("ConfigMap", f"{rel}-grafana")["data"]["datasources.yaml"])
        loki = next(d for d in ds["datasources"] if d["uid"] == "loki")
        ca = loki["secureJsonData"]["tlsCACert"]
        assert ca.startswith("$__file{") and ca.endswith("}"), ca
        assert loki["jsonData"]["tlsAuthWithCACert"] is True, loki["jsonData"]
        out["grafana-datasource"] = (loki["url"], str(gpod.local(ca[len("$__file{"):-1])), loki["jsonData"]["serverName"])
        return out

    def _start_prometheus(self):
        pdir = self.workdir / "prometheus"
        pod, cfg_path, cfg = prometheus_pod(self.manifests, pdir / "root")
        self.prom_pod = pod
        self.rendered_jobs = scrape_only(cfg)
        jobs = []
        for name in self.names:
            job = copy.deepcopy(self.rendered_jobs[f"monitoring-stack-{name}"])
            job.pop("metric_relabel_configs", None)     # the stand-in serves none of the kept series
            self._static(job, name)
            jobs.append(job)
            for brk_name, brk in BROKEN.items():
                bad = copy.deepcopy(job)
                bad["job_name"] = f"{job['job_name']}-{brk_name}"
                brk(bad, str(self.wrong_ca_file))
                _own_job_label(bad)
                jobs.append(bad)
        cfg["scrape_configs"] = [pod.reroot_tree(j) for j in jobs]
        # Loki's other clients, with the CA file of their own pods (absolute local paths).
        loki_job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "monitoring-stack-loki")
        for client, (url, ca, server_name) in self.loki_clients().items():
            j = copy.deepcopy(loki_job)
            j["job_name"] = client
            j["scheme"] = url.split("://", 1)[0]
            j["tls_config"] = {"ca_file": ca, "server_name": server_name}
            _own_job_label(j)
            cfg["scrape_configs"].append(j)
        self.swaps.add("prometheus: only the monitoring-stack-<name> jobs of Loki, Grafana and the collector "
                       "(endpointslice -> a static target with the Service's labels, prometheus.io/port = the "
                       f"local port, no keep-list), one broken copy of each per {sorted(BROKEN)}, and the "
                       "collector's and Grafana's Loki client settings as jobs; no rules, no alerting; 1s")
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        self.prometheus_config = cfg
        self.procs["prometheus"] = start_prometheus(pod, pdir, self.ports["prometheus"])

    # ------------------------------------------------------------------ what tests read
    def test_pod(self, name):
        """The rendered `helm test` pod's command, the Service address pointed at the process."""
        cmd = self.manifests.get("Pod", f"{self.release}-test-{name}")["spec"]["containers"][0]["command"]
        svc = self.manifests.get("Service", f"{self.release}-{name}")
        return local_command(cmd, svc, self.ports[name])
