"""The chart's RENDERED Thanos web config (global.web.thanos: TLS and basic auth through Thanos'
`--http.config`) served for real on 127.0.0.1 by the four Thanos servers the chart runs, and
scraped by a real Prometheus with the monitoring-stack-thanos job the chart renders.

What a user creates is made here as the README says (harness.webstack's helpers): a throwaway CA,
one server certificate naming the Query Service (<release>-thanos-query.<ns>.svc, what every
client verifies) and 127.0.0.1, the kubernetes.io/tls Secret, the client Secret, the bcrypt hash
in basicAuth.users, and the objstore Secret of the Store Gateway, the Compactor and the sidecar
(a FILESYSTEM bucket: a directory here). They join the rendered objects, and harness.podfiles
lays out every volume as mounted.

Processes, each the real binary of tools.versions with the rendered container's arguments:
  - Prometheus (the rendered prometheus container; its web config is off here): the scraper.
  - thanos sidecar (the rendered thanos-sidecar container of the Prometheus pod) beside it.
  - thanos query (the rendered Deployment), thanos store and thanos compact (the rendered
    StatefulSets; the Compactor as rendered, with --wait).
  - (on a test's demand) the real Jaeger with the rendered configuration (its Monitor tab reads
    Query: jaeger.spanMetrics.prometheus.thanosQuery), through harness.jaeger's localize.

What is swapped, and nothing else (self.swaps):
  1. Every absolute path into a mount (arguments, the web config, prometheus.yml) re-rooted
     under the pod's local tree; listen addresses (--http-address, --grpc-address,
     --web.listen-address) -> 127.0.0.1:<free port>; data directories (--tsdb.path,
     --data-dir, --storage.tsdb.path) -> <workdir>; the sidecar's --prometheus.url ->
     the local Prometheus (localhost in the pod).
  2. Query's --endpoint.sd-config: the sidecars' dnssrv+ address -> the local sidecar's gRPC
     address, the Store Gateway's -> its local gRPC address (what the SRV lookups answer in a
     cluster). gRPC stays plain, as rendered.
  3. No API server here: prometheus.yml keeps the monitoring-stack-thanos job; its endpointslice
     discovery becomes one static target per Thanos Service it keeps (query, store, compact, the
     Prometheus headless Service of the sidecar) carrying the labels that role gives that
     Service's endpoint (service name, namespace, pod, the Service's prometheus.io annotations),
     with the prometheus.io/port label = the local port. scheme, tls_config (CA, server_name),
     basic_auth and the relabelling are the rendered ones.
  4. Extra jobs, each the rendered job with ONE thing broken (plain http, another CA, another
     server name, no credentials; harness.exporter_tls.BROKEN), scraping the same processes
     under a job label of its own.
Everything started is stopped by stop(), also when start() fails.
"""
import copy
import json
from pathlib import Path

import yaml

from . import tools
from .exporter_tls import BROKEN
from .manifests import Manifests
from .podfiles import PodFiles, flag
from .ports import free_port
from .process import AllOrNothing, Process
from .render import render_raw
from .swaps import Swaps
from .webstack import (LocalServers, PASSWORD, USER, _secret, bcrypt_hash, issue, local_command, make_ca, pem,
                       reroot_args, scrape_only, start_prometheus)

JOB = "monitoring-stack-thanos"
# server -> (kind, object name suffix, container, the Service scraped, port name of the HTTP server)
SERVERS = {
    "sidecar": ("StatefulSet", "prometheus", "thanos-sidecar", "prometheus-headless", "http-thanos"),
    "query": ("Deployment", "thanos-query", "thanos-query", "thanos-query", "http"),
    "store": ("StatefulSet", "thanos-store", "thanos-store", "thanos-store", "http"),
    "compact": ("StatefulSet", "thanos-compact", "thanos-compact", "thanos-compact", "http"),
}
# The `helm test` pods of the Thanos components: component -> the server that answers.
TEST_PODS = {"thanos": "query", "thanos-store": "store", "thanos-compact": "compact"}


def thanos_values(release, password_hash, basic_auth=True):
    return {"tls": {"enabled": True, "secretName": f"{release}-thanos-tls"},
            "basicAuth": {"enabled": basic_auth, "users": {USER: password_hash},
                          "clientSecret": f"{release}-thanos-client"}}


class ThanosTLSStack(LocalServers, AllOrNothing):
    def __init__(self, workdir, release="p5", namespace="monitoring"):
        self.workdir = Path(workdir)
        self.release, self.namespace = release, namespace
        self.swaps = Swaps()
        self.procs = {}
        self.pods = {}
        self.ports = {}
        self.grpc = {}

    # ------------------------------------------------------------------ lifecycle
    def _start(self):
        self._make_user_objects()
        self.ports = {c: free_port() for c in (*SERVERS, "prometheus")}
        self.grpc = {c: free_port() for c in ("sidecar", "query", "store")}
        self._start_prometheus()
        for server in ("sidecar", "store", "compact", "query"):
            self._start_thanos(server)

    # ------------------------------------------------------------------ setup
    def _make_user_objects(self):
        rel, ns = self.release, self.namespace
        self.values = {"global.web.thanos": thanos_values(rel, bcrypt_hash(PASSWORD)),
                       "thanos.enabled": True, "thanos.objstoreSecret": f"{rel}-objstore",
                       "thanos.storeGateway.enabled": True, "thanos.compactor.enabled": True,
                       "prometheus.thanos.sidecar.enabled": True,
                       "prometheus.thanos.sidecar.objstoreSecret": f"{rel}-objstore",
                       "grafana.enabled": False, "loki.enabled": False, "promtail.enabled": False,
                       # Jaeger's Monitor tab reads Query (test_e2e_thanos_webauth runs it on demand).
                       "jaeger.enabled": True, "jaeger.spanMetrics.prometheus.thanosQuery": True,
                       "alertmanager.enabled": False,
                       "prometheus.alerting.inCluster.enabled": False}
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ca = make_ca("phase5 test CA")
        self.ca_file, self.wrong_ca_file = self.workdir / "ca.crt", self.workdir / "wrong-ca.crt"
        self.ca_file.write_bytes(pem(self.ca[1]))
        self.wrong_ca_file.write_bytes(pem(make_ca("another CA")[1]))
        docs, _ = render_raw((), self.values, release=rel, namespace=ns)
        svc = f"{rel}-thanos-query"
        crt, key = issue(self.ca, [f"{svc}.{ns}.svc", svc, f"{svc}.{ns}"])
        self.bucket = self.workdir / "bucket"
        self.bucket.mkdir(parents=True, exist_ok=True)
        objstore = yaml.safe_dump({"type": "FILESYSTEM", "config": {"directory": str(self.bucket)}})
        user = [_secret(f"{rel}-thanos-tls", ns, {"tls.crt": crt, "tls.key": key, "ca.crt": pem(self.ca[1])},
                        "kubernetes.io/tls"),
                _secret(f"{rel}-thanos-client", ns, {"username": USER, "password": PASSWORD}),
                _secret(f"{rel}-objstore", ns, {"objstore.yml": objstore})]
        self.manifests = Manifests(docs + user)

    def _pod(self, server):
        kind, name, container, _, _ = SERVERS[server]
        obj = self.manifests.get(kind, f"{self.release}-{name}")
        pod = PodFiles(self.manifests, None, container, self.workdir / server / "root", obj=obj)
        self.pods[server] = pod
        return pod

    def _localize(self, pod, args, drop):
        self.swaps.add("every absolute path into a mount (arguments, web config, prometheus.yml) re-rooted")
        return reroot_args(pod, args, drop, ("--http.config", "--web.config.file"))

    def _ready(self, server):
        client = self.client(server)
        return lambda: client.request("/-/healthy")[0] == 200

    def _start_thanos(self, server):
        pod = self._pod(server)
        local = f"127.0.0.1:{self.ports[server]}"
        drop = ["http-address", "grpc-address", "data-dir", "tsdb.path", "prometheus.url", "endpoint.sd-config"]
        args = self._localize(pod, pod.args, drop) + [f"--http-address={local}"]
        if server in self.grpc:
            args.append(f"--grpc-address=127.0.0.1:{self.grpc[server]}")
        data = self.workdir / server / "data"
        data.mkdir(parents=True, exist_ok=True)
        if server == "sidecar":
            args += [f"--tsdb.path={self.workdir / 'prometheus' / 'data'}",
                     f"--prometheus.url=http://127.0.0.1:{self.ports['prometheus']}"]
        elif server in ("store", "compact"):
            args.append(f"--data-dir={data}")
        else:
            rendered = json.loads(flag(pod.args, "endpoint.sd-config"))
            swapped = []
            for e in rendered["endpoints"]:
                addr = e["address"]
                if addr.startswith(f"dnssrv+_grpc-thanos._tcp.{self.release}-prometheus-headless."):
                    addr = f"127.0.0.1:{self.grpc['sidecar']}"
                elif addr.startswith(f"dnssrv+_grpc._tcp.{self.release}-thanos-store-headless."):
                    addr = f"127.0.0.1:{self.grpc['store']}"
                swapped.append({**e, "address": addr})
            args.append(f"--endpoint.sd-config={json.dumps({'endpoints': swapped})}")
            self.swaps.add("thanos query: --endpoint.sd-config's dnssrv+ addresses -> the local sidecar's and "
                           "Store Gateway's gRPC addresses")
        self.swaps.add("thanos: --http-address/--grpc-address -> 127.0.0.1:<port>; --data-dir/--tsdb.path -> "
                       "<workdir>; the sidecar's --prometheus.url -> the local Prometheus")
        self.procs[server] = Process(f"thanos-{server}", [tools.require("thanos")] + args,
                                     self.workdir / server / f"{server}.log", self._ready(server)).start()

    def _static(self, job):
        targets = []
        for server, (_, _, _, svc_suffix, port_name) in SERVERS.items():
            svc = self.manifests.get("Service", f"{self.release}-{svc_suffix}")
            labels = {"__meta_kubernetes_namespace": self.namespace,
                      "__meta_kubernetes_service_name": svc["metadata"]["name"],
                      "__meta_kubernetes_pod_name": f"{self.release}-{SERVERS[server][1]}-0",
                      "__meta_kubernetes_endpointslice_port_name": port_name}
            for k, v in (svc["metadata"].get("annotations") or {}).items():
                safe = "".join(ch if ch.isalnum() else "_" for ch in k)
                labels[f"__meta_kubernetes_service_annotation_{safe}"] = str(v)
            labels["__meta_kubernetes_service_annotation_prometheus_io_port"] = str(self.ports[server])
            targets.append({"targets": [f"127.0.0.1:{self.ports[server]}"], "labels": labels})
        del job["kubernetes_sd_configs"]
        job["static_configs"] = targets

    def _start_prometheus(self):
        pdir = self.workdir / "prometheus"
        pod = PodFiles(self.manifests, None, "prometheus", pdir / "root",
                       obj=self.manifests.get("StatefulSet", f"{self.release}-prometheus"))
        self.pods["prometheus"] = pod
        cfg_path = pod.local(flag(pod.args, "config.file"))
        cfg = yaml.safe_load(cfg_path.read_text())
        self.rendered_jobs = scrape_only(cfg)
        job = copy.deepcopy(self.rendered_jobs[JOB])
        self._static(job)
        jobs = [job]
        for name, brk in BROKEN.items():
            bad = copy.deepcopy(job)
            bad["job_name"] = f"{JOB}-{name}"
            brk(bad, str(self.wrong_ca_file))
            # Its own job label (the rendered one sets job=monitoring-stack): its series must not
            # collide with the rendered job's.
            for r in bad["relabel_configs"]:
                if r.get("target_label") == "job":
                    r["replacement"] = bad["job_name"]
            jobs.append(bad)
        cfg["scrape_configs"] = jobs
        self.swaps.add(f"prometheus: only the {JOB} job (endpointslice -> one static target per Thanos Service "
                       f"with its labels at the local port) and one broken copy per {sorted(BROKEN)}; no rules, "
                       "no alerting; 1s intervals")
        cfg_path.write_text(yaml.safe_dump(pod.reroot_tree(cfg), sort_keys=False))
        self.prometheus_config = cfg
        self.procs["prometheus"] = start_prometheus(pod, pdir, self.ports["prometheus"], env=pod.env())

    # ------------------------------------------------------------------ what tests read
    def targets(self):
        """{(scrape pool, service): (health, lastError)} of Prometheus' active targets."""
        got = self.prom().json("/api/v1/targets?state=active")["data"]["activeTargets"]
        return {(t["scrapePool"], t["labels"].get("service")): (t["health"], t["lastError"]) for t in got}

    def test_pod(self, component):
        """The rendered `helm test` pod's command with its mounts laid out, the Service address
        pointed at the local process: (argv, PodFiles)."""
        server = TEST_PODS[component]
        obj = self.manifests.get("Pod", f"{self.release}-test-{component}")
        pod = PodFiles(self.manifests, None, "check", self.workdir / f"test-{component}" / "root", obj=obj)
        svc = self.manifests.get("Service", f"{self.release}-{SERVERS[server][3]}")
        return local_command(pod.container["command"], svc, self.ports[server], pod), pod
