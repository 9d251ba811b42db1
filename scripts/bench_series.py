"""Series stored and Prometheus memory: this chart's Prometheus configuration against
kube-prometheus-stack's, on the same cluster and the same targets, in one run (issue 27,
"Prove it" 1 and 2). Part of `make bench`; alone: `scripts/bench.py --only series`.

One local control plane (harness.stack.Stack: real API server, kwok nodes at 110 pods each) holds
the chart's objects and the synthetic Phase 5 workload; the real node_exporter and the
kube-state-metrics and kubelet/cAdvisor stand-ins serve the infrastructure targets. Two real
Prometheus processes scrape them at the same interval:

- ours: the chart's rendered prometheus.yml with the harness's swaps (harness.stack), keep-lists,
  namespace filters and limits as rendered;
- kube-prometheus-stack's (KPS): its ServiceMonitors, PodMonitors and PrometheusRules rendered
  from its chart with default values, applied to the same API server with the CRDs, and turned
  into scrape configuration by the real prometheus-operator (bin/), with the operator's own
  arguments as KPS renders them (--kubelet-service: the operator keeps the kubelet Service's
  Endpoints). The generated configuration gets the same swaps as ours (swaps.prometheus_config)
  plus the ones listed in KpsPrometheus.swaps (kps_prometheus_config, kps_objects).

Counted per Prometheus, after every target has been scraped at least twice:
- stored series per job (and kubelet path): non-stale series in the head by instant query,
  scraped and recorded (a `:` in the name) apart;
- the exporters' full output: scrape_samples_scraped (samples a target exposed before any
  metric relabelling) summed per job: (a) in the issue;
- per Phase 5 pod: infrastructure series with namespace=<the workload's> and a pod label, over
  the Phase 5 pods; per node: node-level infrastructure series (node-exporter, the kubelet and
  cAdvisor without a pod label, kube_node_*), over the nodes;
- memory: the process's RSS (/proc/<pid>/status), head series (/api/v1/status/tsdb), bytes per
  head series; at each pod count of the run (default 1,000 then 10,000, scaled up in place).

The infrastructure set compared is what both configurations scrape: the kubelet, cAdvisor,
kube-state-metrics, node-exporter. KPS's other ServiceMonitors (API server, CoreDNS, etcd,
controller-manager, scheduler, kube-proxy, its own Prometheus/Alertmanager/operator/Grafana)
have no target in this cluster and are listed as such; the Phase 5 application and exporter
jobs are ours only (KPS does not scrape annotated Services by default) and are reported apart.
"""
import copy
import json
import math
import re
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from harness import operator as op
from harness import paths, swaps, tools
from harness.manifests import Manifests
from harness.ports import free_port
from harness.process import AllOrNothing, Process
from harness.workload import PHASE5_SERVICES, Workload

KPS_RELEASE = "kps"
# The KPS Prometheus resource lives in a namespace of its own: the operator's StatefulSet and pod
# then never share the chart's namespace, whose pods the pod network routes to our processes.
KPS_PROM_NAMESPACE = "kps-operated"
PODS_PER_NODE = 110
# Pods that are not Phase 5 pods, per node (the node-exporter DaemonSet) and in all (the chart's
# Deployments/StatefulSets, the data-tier exporters, KPS's operated Prometheus), kept free.
RESERVED_PER_NODE, RESERVED = 1, 40
# KPS's app.kubernetes.io/name of a Service -> the component of the chart's pod that plays it.
STAND_INS = {"kube-state-metrics": "kube-state-metrics", "prometheus-node-exporter": "node-exporter"}
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# Prometheus flags of the operator's StatefulSet kept (storage and features); the rest are
# addresses and files of the pod, replaced by ours.
KEEP_FLAGS = ("--storage.tsdb.retention", "--storage.tsdb.wal-compression", "--storage.tsdb.no-lockfile",
              "--enable-feature", "--web.enable-lifecycle", "--storage.tsdb.max-block-duration",
              "--storage.tsdb.min-block-duration")

# The controller-manager's and scheduler's API client rate while pods are created by thousands
# (their defaults, 20 and 50 requests per second, took 9 minutes to create 4,269 pods):
# changes how fast pods appear, nothing any Prometheus scrapes.
CLIENT_QPS = 300

# Above this many Phase 5 pods the applications are not scraped (stop_app_scrapes): ten thousand
# synthetic pages a minute, all served by this one Python process, overloaded it (every target
# timed out, then the process ran out of file descriptors), and KPS does not scrape them anyway.
APPS_UP_TO = 2000

# From this many Phase 5 pods on the two Prometheuses are measured one after the other: both
# stopped while the pods are created, then each restarted from its own storage while the other
# stays stopped: at 10,000 pods the two beside each other and the stand-ins did not fit in 24 GiB
# (KPS's 8.9 GiB, ours 3.2, the harness 8.0; 56 MiB left, every query timed out). Each is still
# measured at the same pod count, on the same targets, after every one of its targets was scraped
# twice; neither shares the machine with the other.
APART_FROM = 5000

INFRA = ("kubelet", "cadvisor", "kubelet probes", "kube-state-metrics", "node-exporter")


# ----------------------------------------------------------------------------- pure pieces
def pods_per_node():
    """Phase 5 pods one simulated node holds: 110 pods, or fewer where their CPU requests fill
    its allocatable CPU first (8 cores at 100m per pod: 80), less the DaemonSet's pod."""
    from harness.controlplane import NODE_CAPACITY
    from harness.manifests import quantity
    from harness.workload_state import CPU_LIMIT
    by_cpu = int(quantity(NODE_CAPACITY["cpu"]) / (int(CPU_LIMIT * 200) / 1000))
    return min(PODS_PER_NODE, by_cpu) - RESERVED_PER_NODE


def nodes_for(pods):
    """Simulated nodes that hold `pods` Phase 5 pods with room for the chart's own pods."""
    return max(3, math.ceil((pods + RESERVED) / pods_per_node()))


def category(job, metrics_path=""):
    """Which exporter a series came from, by its job label (and metrics_path, KPS's kubelet
    ServiceMonitor puts three paths under job="kubelet")."""
    job, path = job or "", metrics_path or ""
    if path.endswith("/cadvisor") or job == "cadvisor":
        return "cadvisor"
    if path.endswith("/probes"):
        return "kubelet probes"
    if path.endswith("/resource"):
        return "kubelet resource"
    if job == "kubelet":
        return "kubelet"
    if job == "kube-state-metrics":
        return "kube-state-metrics"
    if job in ("node-exporter", "prometheus-node-exporter"):
        return "node-exporter"
    if job.startswith("phase5-"):
        return "Phase 5 " + job.removeprefix("phase5-")
    if job == "monitoring-stack" or any(k in job for k in ("prometheus", "alertmanager", "operator", "grafana")):
        return "monitoring stack"
    if not job:
        return "recorded (no job label)"
    return job


def render_kps(chart, namespace="monitoring", release=KPS_RELEASE):
    """kube-prometheus-stack's defaults, rendered by the same helm."""
    out = subprocess.run([tools.require("helm"), "template", release, str(chart), "-n", namespace,
                          "--kube-version", paths.KUBE_MAX], check=True, capture_output=True, text=True).stdout
    return Manifests([d for d in yaml.safe_load_all(out) if d])


def _ns(obj, namespace):
    obj = copy.deepcopy(obj)
    obj["metadata"]["namespace"] = obj["metadata"].get("namespace") or namespace
    return obj


def kps_objects(kps, ours, namespace, swaps_made, prom_namespace=KPS_PROM_NAMESPACE):
    """What of KPS's render goes into the API server: every ServiceMonitor, PodMonitor, Probe,
    ScrapeConfig and PrometheusRule as rendered; its Prometheus resource (moved to
    `prom_namespace`) with the ServiceAccount, ClusterRole and binding it runs as; the Services its
    ServiceMonitors select, as rendered, except that the kube-state-metrics and node-exporter
    Services select the chart's pods of the same program (the stand-in, the real node_exporter)
    on their container port: the same targets for both Prometheuses."""
    out = []
    for kind in ("ServiceMonitor", "PodMonitor", "Probe", "ScrapeConfig", "PrometheusRule"):
        out += [_ns(o, namespace) for o in kps.of_kind(kind)]
    proms = kps.of_kind("Prometheus")
    if len(proms) != 1:
        raise ValueError(f"kube-prometheus-stack rendered {len(proms)} Prometheus resources, not 1")
    prom = _ns(proms[0], namespace)
    prom["metadata"]["namespace"] = prom_namespace
    out.append(prom)
    swaps_made.add(f"kps: the Prometheus resource in namespace {prom_namespace} (its pod must not share the chart's "
                   f"namespace, whose pods the pod network routes to our processes); its spec as rendered")
    sa = prom["spec"].get("serviceAccountName")
    for o in kps.of_kind("ServiceAccount"):
        if o["metadata"]["name"] == sa:
            out.append(_ns(o, namespace))
            moved = _ns(o, namespace)
            moved["metadata"]["namespace"] = prom_namespace      # for the operator's StatefulSet
            out.append(moved)
    for b in kps.of_kind("ClusterRoleBinding"):
        if any(s.get("kind") == "ServiceAccount" and s.get("name") == sa for s in b.get("subjects") or []):
            out.append(copy.deepcopy(b))
            role = b["roleRef"]["name"]
            out += [copy.deepcopy(r) for r in kps.of_kind("ClusterRole") if r["metadata"]["name"] == role]
    for svc in kps.of_kind("Service"):
        svc = _ns(svc, namespace)
        name = (svc["metadata"].get("labels") or {}).get("app.kubernetes.io/name")
        if name in STAND_INS:
            pod = _our_pod(ours, STAND_INS[name])
            svc["spec"]["selector"] = dict(pod["selector"])
            for p in svc["spec"]["ports"]:
                p["targetPort"] = pod["port"]
            swaps_made.add(f"kps: Service {svc['metadata']['name']} selects the chart's {STAND_INS[name]} pods "
                           f"({pod['selector']}) on container port {pod['port']} (the same program for both "
                           f"Prometheuses; its port name, which the ServiceMonitor names, unchanged)")
        out.append(svc)
    return out


def _our_pod(ours, component):
    for kind in ("Deployment", "DaemonSet", "StatefulSet"):
        for o in ours.of_kind(kind):
            tpl = o["spec"]["template"]
            if (tpl["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == component:
                ports = [p for c in tpl["spec"]["containers"] for p in c.get("ports") or []]
                port = next(p["containerPort"] for p in ports if p.get("name") == "http-metrics")
                return {"selector": o["spec"]["selector"]["matchLabels"], "port": port}
    raise LookupError(f"the chart's render has no {component} workload")


def operator_args(kps, listen):
    """The --kubelet-* arguments of KPS's rendered operator Deployment (where it writes the
    kubelet Service's Endpoints), a 10 s kubelet sync instead of 3 min (nodes are added during
    the run), listening on `listen`."""
    for o in kps.of_kind("Deployment"):
        for c in o["spec"]["template"]["spec"]["containers"]:
            args = c.get("args") or []
            if any(a.startswith("--kubelet-service=") for a in args):
                kept = [a for a in args if a.startswith("--kubelet-") and not a.startswith("--kubelet-sync-period")]
                return kept + ["--kubelet-sync-period=10s", f"--web.listen-address={listen}"]
    raise LookupError("kube-prometheus-stack's render has no operator Deployment with --kubelet-service")


def expected_jobs(kps, namespace):
    """The scrape jobs the operator names after KPS's monitors: one per endpoint."""
    out = []
    for kind, key in (("ServiceMonitor", "endpoints"), ("PodMonitor", "podMetricsEndpoints")):
        for o in kps.of_kind(kind):
            name = f"{kind[0].lower()}{kind[1:]}/{o['metadata'].get('namespace') or namespace}/{o['metadata']['name']}"
            out += [f"{name}/{i}" for i in range(len(o["spec"].get(key) or []))]
    return out


def kps_prometheus_config(cfg, local, sa_dir, rules_dir, swaps_made, env):
    """The operator's generated prometheus.yaml as its config-reloader hands it to Prometheus
    (each `$(VAR)` replaced by the pod's env, `env`: SHARD, POD_NAME), with the swaps ours gets
    (swaps.prometheus_config: discovery through the local API server, the pod network, the same
    intervals; the kubelet jobs keep https and the token, which the stand-in kubelet authorizes) and: the ServiceAccount files at `sa_dir`, the
    rule files of the operator's rule ConfigMaps from `rules_dir`, no Alertmanager (none runs
    for KPS)."""
    used = set()

    def subst(m):
        if m.group(1) not in env:
            raise KeyError(f"the generated config reads $({m.group(1)}), which the pod's env given lacks")
        used.add(m.group(1))
        return env[m.group(1)]
    cfg = yaml.safe_load(re.sub(r"\$\((\w+)\)", subst, yaml.safe_dump(cfg, sort_keys=False)))
    if used:
        swaps_made.add("kps: the config-reloader's substitution of " + ", ".join(
            f"$({k}) -> {env[k]}" for k in sorted(used)) + " (the pod's env; one shard)")
    cfg = swaps.prometheus_config(cfg, local, swaps_made)
    if cfg.pop("alerting", None):
        swaps_made.add("kps: alerting removed (no Alertmanager runs for it; no stored series)")
    if cfg.get("rule_files"):
        cfg["rule_files"] = [f"{rules_dir}/*.yaml"]
        swaps_made.add("kps: rule_files -> the operator's generated rule ConfigMaps, written to a local directory")
    text = yaml.safe_dump(cfg, sort_keys=False)
    if SA_DIR in text:
        text = text.replace(SA_DIR, str(sa_dir))
        swaps_made.add(f"kps: {SA_DIR} -> a local directory holding a token of its Prometheus ServiceAccount "
                       f"(TokenRequest API) and the cluster CA")
    return yaml.safe_load(text)


def kps_prometheus_flags(sts_args):
    """The operator's Prometheus container arguments that shape storage (retention, WAL
    compression, features); addresses and pod files are replaced by the caller's."""
    return [a for a in sts_args if a.startswith(KEEP_FLAGS)]


# ----------------------------------------------------------------------------- running KPS
class KpsPrometheus(AllOrNothing):
    """KPS's configuration, generated by the real prometheus-operator from its rendered monitors
    on the Stack's API server, run by a second real Prometheus on the same pod network."""

    def __init__(self, stack, kps_chart, workdir, scrape_interval):
        self.stack, self.chart, self.dir = stack, Path(kps_chart), Path(workdir)
        self.scrape_interval = scrape_interval
        self.swaps = swaps.Swaps()
        self.operator = self.prometheus = None
        self.port = None
        self.no_target = []

    def _start(self):
        st, cp = self.stack, self.stack.cp
        self.kps = render_kps(self.chart, st.namespace)
        crds = sorted(op.crds_dir().glob("monitoring.coreos.com_*.yaml"))
        cp.kubectl("apply", "--server-side", "--force-conflicts", *[a for f in crds for a in ("-f", str(f))],
                   timeout=300)
        cp.kubectl("wait", "--for=condition=Established", "--timeout=120s",
                   *[f"crd/{op.load_yaml(f.read_text())['metadata']['name']}" for f in crds])
        st.cluster.ensure_namespace(KPS_PROM_NAMESPACE)
        cp.apply(kps_objects(self.kps, st.manifests, st.namespace, self.swaps))
        port = free_port()
        self.operator = Process("prometheus-operator", [op.operator_binary(), *operator_args(self.kps, f"127.0.0.1:{port}")],
                                self.dir / "prometheus-operator.log", f"http://127.0.0.1:{port}/healthz",
                                env={"KUBECONFIG": str(cp.kubeconfig)}).start(timeout=120)
        self.swaps.add("kps: prometheus-operator (bin/) runs out of cluster against the API server with KPS's "
                       "--kubelet-* arguments; --kubelet-sync-period=10s (3m default; nodes are added during the run)")
        prom = next(o for o in self.kps.of_kind("Prometheus"))
        name = prom["metadata"]["name"]
        want = expected_jobs(self.kps, st.namespace)
        last = {}

        def generated():
            """The operator's configuration once it has not changed for 10 s (every monitor it
            accepts reconciled; one it rejects is reported, not waited for)."""
            sec = self._get("secret", f"prometheus-{name}")
            if not sec or "prometheus.yaml.gz" not in (sec.get("data") or {}):
                return None
            from harness.kps import gunzip_secret
            text = gunzip_secret(sec, "prometheus.yaml.gz")
            if last.get("text") != text:
                last.update(text=text, since=time.time())
                return None
            return yaml.safe_load(text) if time.time() - last["since"] >= 10 else None
        cfg = st.wait(generated, 180, what="the operator's generated config, unchanged for 10 s")
        self.missing = [j for j in want if j not in {c["job_name"] for c in cfg.get("scrape_configs") or []}]
        self.generated = copy.deepcopy(cfg)
        rules_dir = self.dir / "rules"
        rules_dir.mkdir(parents=True, exist_ok=True)
        self.rule_files = 0
        for cm in cp.get("configmaps", "-n", KPS_PROM_NAMESPACE)["items"]:
            if cm["metadata"]["name"].startswith(f"prometheus-{name}-rulefiles-"):
                for k, v in (cm.get("data") or {}).items():
                    (rules_dir / (k if k.endswith(".yaml") else k + ".yaml")).write_text(v)
                    self.rule_files += 1
        sa_dir = self.dir / "serviceaccount"
        sa_dir.mkdir(parents=True, exist_ok=True)
        (sa_dir / "token").write_text(st.cluster.token(st.namespace, prom["spec"]["serviceAccountName"]))
        (sa_dir / "ca.crt").write_bytes(cp.pki.ca_cert.read_bytes())
        self.port = free_port()
        local = swaps.Local(cp.server, st.net.url, self.port, st.am_port, st.interval, self.scrape_interval)
        cfg = kps_prometheus_config(cfg, local, sa_dir, rules_dir, self.swaps,
                                    {"SHARD": "0", "POD_NAME": f"prometheus-{name}-0"})
        cfg_path = self.dir / "prometheus.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        sts = st.wait(lambda: self._get("statefulset", f"prometheus-{name}"), 60, what="the operator's StatefulSet")
        args = next(c.get("args") or [] for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "prometheus")
        flags = kps_prometheus_flags(args)
        self.swaps.add(f"kps prometheus flags: the operator's {', '.join(flags) or '(none)'}; "
                       f"--config.file, --storage.tsdb.path, --web.listen-address local")
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.prometheus = Process("prometheus-kps", [
            tools.require("prometheus"), f"--config.file={cfg_path}", f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{self.port}", *flags],
            self.dir / "prometheus.log", f"http://127.0.0.1:{self.port}/-/ready").start()

    def _get(self, kind, name):
        proc = self.stack.cp.kubectl("get", kind, name, "-n", KPS_PROM_NAMESPACE, "-o", "json", check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        for p in (self.prometheus, self.operator):
            if p:
                p.stop()


# ----------------------------------------------------------------------------- measuring
def _get(url, timeout=120):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _query(base, expr):
    return _get(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")["data"]["result"]


def _by_cat(base, expr):
    """{category: summed value} of `expr` aggregated by (job, metrics_path)."""
    out = {}
    for r in _query(base, expr):
        c = category(r["metric"].get("job"), r["metric"].get("metrics_path"))
        out[c] = out.get(c, 0) + float(r["value"][1])
    return out


def _by_job(base, expr):
    return {" ".join(filter(None, (r["metric"].get("job", ""), r["metric"].get("metrics_path", "")))): int(float(r["value"][1]))
            for r in _query(base, expr)}


def rss_bytes(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(base, pid, namespace, pods, nodes):
    """Series and memory of one Prometheus (see the module's docstring)."""
    scraped = '{__name__=~"[^:]+", __name__!~"ALERTS|ALERTS_FOR_STATE"}'
    m = {
        "stored": _by_cat(base, f"count by (job, metrics_path) ({scraped})"),
        "jobs": _by_job(base, f"count by (job, metrics_path) ({scraped})"),
        "full": _by_cat(base, "sum by (job, metrics_path) (scrape_samples_scraped)"),
        "targets": _by_cat(base, "count by (job, metrics_path) (up)"),
        "recorded": int(float((_query(base, 'count({__name__=~".+:.+|ALERTS|ALERTS_FOR_STATE"})')
                               or [{"value": [0, 0]}])[0]["value"][1])),
        "pod": _by_cat(base, f'count by (job, metrics_path) ({{__name__=~"[^:]+", namespace="{namespace}", pod!=""}})'),
        # node_exporter's series carry the pod of its DaemonSet in KPS (target labels), so all of
        # them; the kubelet's and cAdvisor's without a pod label; kube-state-metrics' kube_node_*.
        "node": _by_cat(base, 'count by (job, metrics_path) ({job=~"node-exporter|prometheus-node-exporter", '
                              '__name__=~"[^:]+"}) or count by (job, metrics_path) ({__name__=~"[^:]+", pod="", '
                              'job=~"kubelet|cadvisor"}) or count by (job, metrics_path) ({__name__=~"kube_node_.+"})'),
    }
    tsdb = _get(f"{base}/api/v1/status/tsdb")["data"]["headStats"]
    m.update(head=int(tsdb["numSeries"]), rss=rss_bytes(pid), pods=pods, nodes=nodes)
    return m


def _scraped_twice(base, since, interval):
    """Every active target scraped at least twice after `since` (its last scrape more than one
    interval after it) and up at its last scrape: [] when so, else what is not yet."""
    ts = _get(f"{base}/api/v1/targets?state=active")["data"]["activeTargets"]
    if not ts:
        return ["no active target"]
    from datetime import datetime

    def at(t):
        s = t["lastScrape"]
        return datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", s.replace("Z", "+00:00"))).timestamp()
    return [f"{t['labels'].get('job')} {t['scrapeUrl']}: {t['health']} {t['lastError'][:80]}" for t in ts
            if at(t) <= since + interval or t["health"] != "up"]


def settle(proms, since, interval, timeout):
    """(seconds, []) once every target of every Prometheus was scraped twice and is up (a scrape
    that fails leaves only Prometheus' own series of the target, so counting before would be
    wrong); (timeout, what is not) if that did not happen within `timeout`: measured anyway and
    reported with it."""
    t0 = time.time()
    bad = []
    while time.time() - t0 < timeout:
        bad = [b for p in proms for b in _scraped_twice(p, since, interval)]
        if not bad:
            return time.time() - t0, []
        time.sleep(2)
    return time.time() - t0, bad


def stop_app_scrapes(st):
    """The Phase 5 Services no longer ask to be scraped (prometheus.io/scrape "false", through
    the API server) and their pods get no HTTP server: above APPS_UP_TO pods. Ours then scrapes
    what KPS scrapes, the infrastructure, and the figures compare like with like; the
    applications' series per pod were measured at the sizes below."""
    for svc in PHASE5_SERVICES:
        st.cluster.patch(f"/api/v1/namespaces/{st.workload.namespace}/services/{svc}",
                         {"metadata": {"annotations": {"prometheus.io/scrape": "false"}}})
    st.workload.serve_apps = False


def scale_to(st, pods, timeout=None):
    """Scale the six Deployments to `pods` Phase 5 pods in all, adding nodes first (110 pods per
    node). Returns (seconds to add nodes, seconds until every pod runs)."""
    cp = st.cp
    t = time.time()
    if pods > APPS_UP_TO and st.workload.serve_apps:
        stop_app_scrapes(st)
    want_nodes = nodes_for(pods)
    for i in range(len(cp.nodes), want_nodes):
        cp.add_node(f"kwok-node-{i}", zone=("zone-a", "zone-b", "zone-c")[i % 3])
    cp.wait_nodes_ready(300)
    t_nodes = time.time() - t
    per = pods // len(PHASE5_SERVICES)
    for svc in PHASE5_SERVICES:
        # The workload's HPAs would hold each Deployment at their maximum (6): raised first.
        st.cluster.set_hpa_max(st.workload.namespace, svc, per)
        st.workload.state[svc].replicas = per
        st.cluster.scale(st.workload.namespace, svc, per)
    st.cluster.wait_settled({st.namespace, st.workload.namespace}, timeout=timeout or max(300, pods // 4),
                            every=max(1.0, pods / 1000))
    return t_nodes, time.time() - t - t_nodes


def run(workdir, kps_chart, sizes=(1000, 10000), scrape_interval="60s", settle_timeout=900, scale_timeout=None,
        log=print):
    """Start the Stack at sizes[0] Phase 5 pods, KPS's Prometheus beside ours, measure both; then
    scale up to each further size in place and measure again. Returns the results."""
    from harness.stack import Stack
    workdir = Path(workdir)
    first = sizes[0]
    per = first // len(PHASE5_SERVICES)
    extra = [{"name": f"kwok-node-{i}"} for i in range(3, nodes_for(first))]
    interval_s = float(scrape_interval.rstrip("s"))
    # Two pods per service at start (Stack.start waits two minutes for its pods), then scaled
    # up to the first size through the API server (scale_to).
    st = Stack(workdir / "stack", workload=Workload(services=PHASE5_SERVICES, replicas=min(per, 2)),
               interval=scrape_interval, scrape_interval=scrape_interval, extra_nodes=extra, client_qps=CLIENT_QPS)
    kps = None
    res = {"sizes": [], "interval": scrape_interval}
    t0 = time.time()
    try:
        st.start()
        scale_to(st, first, scale_timeout)
        res["stack_start"] = time.time() - t0
        log(f"  stack with {per * len(PHASE5_SERVICES)} pods on {len(st.cp.nodes)} nodes up in {res['stack_start']:.0f} s")
        kps = KpsPrometheus(st, kps_chart, workdir / "kps", scrape_interval).start()
        res["kps_start"] = time.time() - t0 - res["stack_start"]
        res["kps_version"] = kps.kps.of_kind("Prometheus")[0]["metadata"]["labels"].get("chart", "")
        res["kps_jobs"] = [j["job_name"] for j in kps.generated["scrape_configs"]]
        res["kps_rule_files"] = kps.rule_files
        res["kps_missing"] = kps.missing
        if kps.missing:
            log(f"  the operator generated no job for {kps.missing}: {kps.operator.log_tail(5)}")
        for i, pods in enumerate(sizes):
            row = {"pods": pods}
            if i:
                try:
                    if pods >= APART_FROM:   # measured apart: neither scrapes while the pods are created
                        st.prometheus.stop()
                        kps.prometheus.stop()
                    log(f"  scaling to {pods} pods ({nodes_for(pods)} nodes) ...")
                    row["add_nodes_s"], row["pods_running_s"] = scale_to(st, pods, scale_timeout)
                except Exception as e:  # noqa: BLE001 - measured and reported, not hidden
                    running = running_phase5_pods(st.cluster.refresh(), st.workload.namespace)
                    row["failed"] = f"{type(e).__name__}: {str(e)[:300]}"
                    row["running"] = running
                    row["elapsed_s"] = time.time() - t0
                    log(f"  scale-up to {pods} failed after {row['elapsed_s']:.0f} s: {running} pods running: {row['failed']}")
                    res["sizes"].append(row)
                    break
            try:
                _settle_and_measure(st, kps, row, interval_s, settle_timeout, t0, log)
            except Exception as e:  # noqa: BLE001 - the sizes measured before are kept, this one reported
                row["failed"] = f"measuring: {type(e).__name__}: {str(e)[:300]}"
                row["running"] = running_phase5_pods(st.cluster.snapshot, st.workload.namespace)
                row["elapsed_s"] = time.time() - t0
                row["rss_at_failure"] = {w: rss_bytes(p.proc.pid) if p.running() else 0
                                         for w, p in (("ours", st.prometheus), ("kps", kps.prometheus))}
                log(f"  {row['failed']} after {row['elapsed_s']:.0f} s")
                res["sizes"].append(row)
                break
            res["sizes"].append(row)
        res["swaps_ours"] = list(st.swaps)
        res["swaps_both"] = [
            f"both: the controller-manager's and scheduler's --kube-api-qps={CLIENT_QPS} (defaults 20 and 50): "
            f"thousands of pods created in minutes, not tens of minutes; nothing scraped changes"]
        res["swaps_kps"] = list(kps.swaps)
    finally:
        if kps:
            kps.stop()
        st.stop()
    res["took"] = time.time() - t0
    return res


def running_phase5_pods(snap, namespace):
    """Running pods of the Phase 5 Deployments in `snap` (None: 0)."""
    return sum(1 for p in (snap.pods if snap else []) if p["metadata"]["namespace"] == namespace
               and p.get("status", {}).get("phase") == "Running"
               and p["metadata"].get("labels", {}).get("app.kubernetes.io/name") in PHASE5_SERVICES)


def _settle_and_measure(st, kps, row, interval_s, settle_timeout, t0, log):
    """Wait for every target to be scraped twice, then count both Prometheuses into `row`; from
    APART_FROM pods on one at a time (row["apart"]): both stopped, then each started from its
    storage, settled and counted, and stopped again, while the other stays stopped."""
    proms = {"ours": (st.prometheus, st.prom_url), "kps": (kps.prometheus, kps.url)}
    row["apart"] = row["pods"] >= APART_FROM
    groups = [["ours"], ["kps"]] if row["apart"] else [["ours", "kps"]]
    for proc, _ in proms.values():
        if row["apart"]:
            proc.stop()
        elif not proc.running():        # stopped by a size measured apart before
            proc.start(timeout=600)
    row["settle_s"], row["not_up"] = 0.0, []
    for group in groups:
        if row["apart"]:
            for who in group:
                proms[who][0].start(timeout=600)     # its WAL replayed first
        since = time.time() + 3   # the pod network's routes follow the API server within a second
        time.sleep(3)
        took, bad = settle([proms[who][1] for who in group], since, interval_s, settle_timeout)
        row["settle_s"] = max(row["settle_s"], took)
        row["not_up"] += bad
        if bad:
            log(f"  {'/'.join(group)}: {len(bad)} targets not up after {took:.0f} s: {bad[:3]}")
        snap = st.cluster.snapshot
        npods, nodes = running_phase5_pods(snap, st.workload.namespace), len(snap.nodes)
        row["phase5_pods"], row["nodes"] = npods, nodes
        for who in group:
            proc, url = proms[who]
            row[who] = measure(url, proc.proc.pid, st.workload.namespace, npods, nodes)
        if row["apart"]:
            for who in group:
                proms[who][0].stop()
    row["apps_scraped"] = st.workload.serve_apps
    row["at_s"] = time.time() - t0
    log(f"  {row['phase5_pods']} pods, {row['nodes']} nodes: ours {sum(row['ours']['stored'].values())} series "
        f"(head {row['ours']['head']}), KPS {sum(row['kps']['stored'].values())} (head {row['kps']['head']}); "
        f"settled in {row['settle_s']:.0f} s{' each, one at a time' if row['apart'] else ''}")


# ----------------------------------------------------------------------------- report
def _infra(d):
    return sum(v for k, v in d.items() if k in INFRA)


def section(res, trial=False):
    """The docs/benchmarks.md section (list of lines)."""
    L = ["## Series stored and Prometheus memory: ours vs kube-prometheus-stack", ""]
    if res.get("failed"):
        return L + [f"This part failed: {res['failed']}", ""]
    if trial:
        L += ["*Trial run of one helper during development (machine shared with other work); the final "
              "figures come from one `make bench` run.*", ""]
    L += [f"One local control plane holds the chart, the synthetic Phase 5 workload and kube-prometheus-stack "
          f"({res.get('kps_version', '')})'s monitors (default values); two real Prometheus processes scrape the same "
          f"targets every {res['interval']}: ours (the rendered prometheus.yml) and KPS's (its ServiceMonitors and "
          f"PrometheusRules turned into configuration by the real prometheus-operator). Stored = non-stale series "
          f"in the head by instant query; full output = `scrape_samples_scraped`, what the targets expose before any "
          f"relabelling. Infrastructure = kubelet, cAdvisor, kube-state-metrics, node-exporter (what both scrape). "
          f"Per Phase 5 pod = infrastructure series with the workload's namespace and a pod label, over the pods; "
          f"per node = node-exporter, kubelet/cAdvisor series without a pod label and kube_node_*, over the nodes. "
          f"node_exporter is the real one; the kubelet (/metrics, /metrics/cadvisor, /metrics/probes) and "
          f"kube-state-metrics are stand-ins serving every family the pinned versions document (cAdvisor v0.60.5 as "
          f"Kubernetes v1.37 enables it, kube-state-metrics v2.20.0's default collectors; held to those documents by "
          f"tests/test_unit_standins.py), so the full output is what a real cluster of this shape would expose, less "
          f"the undocumented and alpha families the stand-ins leave out. The Phase 5 pods declare a readiness and a "
          f"liveness probe each, as a service with a health endpoint does.", ""]
    for row in res["sizes"]:
        if "ours" not in row or "kps" not in row:     # measured apart, the second can fail alone
            rss = row.get("rss_at_failure")
            L += [f"### {row['pods']} pods: not measured", "",
                  f"Failed {row['elapsed_s']:.0f} s into the run with {row['running']} Phase 5 pods running: "
                  f"{row['failed']}" + (f" (Prometheus RSS then: ours {rss['ours'] / 2**30:.1f} GiB, KPS "
                                        f"{rss['kps'] / 2**30:.1f} GiB)" if rss else ""), ""]
            continue
        o, k = row["ours"], row["kps"]
        L += [f"### {row['phase5_pods']} Phase 5 pods on {row['nodes']} nodes", ""]
        if row.get("not_up"):
            L += [f"**Not every target was up** {row['settle_s']:.0f} s after the pods ran ({len(row['not_up'])} "
                  f"not up or not scraped twice, e.g. {'; '.join(row['not_up'][:3])}): the counts below lack "
                  f"those targets' series.", ""]
        if "pods_running_s" in row:
            L += [f"Scaled up in place: nodes added in {row['add_nodes_s']:.0f} s, every pod running "
                  f"{row['pods_running_s']:.0f} s later; targets all scraped twice {row['settle_s']:.0f} s after"
                  f"{' (the slower of the two)' if row.get('apart') else ''}.", ""]
        if row.get("apart"):
            L += [f"At this size the two Prometheuses were measured one after the other (from {APART_FROM} pods on): "
                  f"both stopped while the pods were created, then ours started from its storage, its targets all scraped twice, counted and "
                  f"stopped, then KPS's the same way, each alone beside the stand-ins and the control plane (the "
                  f"two side by side and the stand-ins did not fit in this machine's memory at 10,000 pods). Same "
                  f"pods, same targets, same scrape interval; each head holds what it stored at the sizes before as "
                  f"well, as when both run.", ""]
        L += ["| exporter (job) | full output | ours stored | KPS stored | ours / KPS | ours targets | KPS targets |",
              "|---|---|---|---|---|---|---|"]
        cats = sorted(set(o["stored"]) | set(k["stored"]) | set(o["full"]) | set(k["full"]),
                      key=lambda c: (c not in INFRA, c))
        for c in cats:
            full = max(o["full"].get(c, 0), k["full"].get(c, 0))
            os_, ks = int(o["stored"].get(c, 0)), int(k["stored"].get(c, 0))
            L.append(f"| {c} | {int(full)} | {os_} | {ks} | {f'{os_ / ks:.2f}x' if ks else '-'} "
                     f"| {int(o['targets'].get(c, 0))} | {int(k['targets'].get(c, 0))} |")
        oi, ki = _infra(o["stored"]), _infra(k["stored"])
        fi = sum(max(o["full"].get(c, 0), k["full"].get(c, 0)) for c in INFRA)
        L.append(f"| **infrastructure** | {int(fi)} | **{int(oi)}** | **{int(ki)}** | **{oi / ki:.2f}x** | | |")
        rec = f"{o['recorded'] / k['recorded']:.2f}x" if k["recorded"] else "-"
        L.append(f"| recording rules and ALERTS | | {o['recorded']} | {k['recorded']} | {rec} | | |")
        ot, kt = sum(o["stored"].values()) + o["recorded"], sum(k["stored"].values()) + k["recorded"]
        L.append(f"| **everything stored** | | **{int(ot)}** | **{int(kt)}** | **{ot / kt:.2f}x** | | |")
        pp_o, pp_k = _infra(o["pod"]) / max(o["pods"], 1), _infra(k["pod"]) / max(k["pods"], 1)
        pn_o, pn_k = sum(o["node"].values()) / max(o["nodes"], 1), sum(k["node"].values()) / max(k["nodes"], 1)
        fo = _infra(o["full"])
        L += ["", "| per | ours | KPS | ours / KPS |", "|---|---|---|---|",
              f"| Phase 5 pod (infrastructure series) | {pp_o:.1f} | {pp_k:.1f} | {pp_o / pp_k:.2f}x |" if pp_k else
              f"| Phase 5 pod (infrastructure series) | {pp_o:.1f} | {pp_k:.1f} | - |",
              f"| node | {pn_o:.1f} | {pn_k:.1f} | {pn_o / pn_k:.2f}x |" if pn_k else f"| node | {pn_o:.1f} | {pn_k:.1f} | - |",
              "", "| memory | ours | KPS | ours / KPS |", "|---|---|---|---|",
              f"| RSS (MiB) | {o['rss'] / 2**20:.0f} | {k['rss'] / 2**20:.0f} | {o['rss'] / k['rss']:.2f}x |",
              f"| head series | {o['head']} | {k['head']} | {o['head'] / k['head']:.2f}x |",
              f"| RSS bytes per head series | {o['rss'] / o['head']:.0f} | {k['rss'] / k['head']:.0f} | |", ""]
        apps = sum(v for c, v in o["stored"].items() if c.startswith("Phase 5"))
        if row.get("apps_scraped", True):
            per_app = o["stored"].get("Phase 5 services", 0) / max(o["pods"], 1)
            L += [f"Ours also stores {int(apps)} series of the Phase 5 applications and data-tier exporters (kept "
                  f"whole: teams query them ad hoc; {per_app:.1f} per application pod), which KPS's defaults do not "
                  f"scrape at all; they are in ours' head and RSS. The infrastructure targets exposed {int(fi)} "
                  f"samples per scrape in all (ours saw {int(fo)}).", ""]
        else:
            L += [f"At this size the Phase 5 applications were not scraped (above {APPS_UP_TO} pods their Services "
                  f"stop asking, scripts/bench_series.py stop_app_scrapes: one Python process cannot serve ten "
                  f"thousand synthetic pages a minute), so both Prometheuses scrape the same targets and the memory "
                  f"rows compare like with like; ours still stores the {int(apps)} series of the data-tier exporters. "
                  f"In a cluster, ours would add the applications' series (per pod as measured at the smaller size) "
                  f"and their memory. Ours' head still holds the applications' series of the smaller size, stale "
                  f"until the next head compaction (2 h). The infrastructure targets exposed {int(fi)} samples per "
                  f"scrape in all (ours saw {int(fo)}).", ""]
    L += ["What the figures do not include, each flattering KPS's count downwards: the families the stand-ins "
          "leave out (cAdvisor's undocumented ones, the kubelet's alpha ones and its feature-gate series: KPS "
          "stores whatever a real kubelet adds, ours keeps only its keep-list); the API server, CoreDNS, etcd, "
          "controller-manager, scheduler and kube-proxy (KPS scrapes them, no target here); KPS's own Prometheus, "
          "Alertmanager, operator and Grafana (no pod of KPS runs here: the row \"monitoring stack\" is ours "
          "only).", ""]
    if res.get("kps_jobs"):
        L += ["KPS's generated scrape jobs (all of them; those without a row above had no target in this cluster: "
              "the API server's `kubernetes` Service has no endpoints on the local control plane, and CoreDNS, etcd, "
              "the controller-manager, scheduler and kube-proxy run no pods here; leaving them out flatters KPS "
              "downwards): " + ", ".join(f"`{j}`" for j in res["kps_jobs"]) + f"; {res.get('kps_rule_files', 0)} rule files.", ""]
    if res.get("kps_missing"):
        L += ["The operator generated no job for " + ", ".join(f"`{j}`" for j in res["kps_missing"])
              + " (see its log: an object it names, such as a TLS Secret KPS's hook Jobs create, is not in this "
                "cluster); a target it would have had is a KPS pod, not run here.", ""]
    L += ["Swaps made to KPS's configuration (besides the ones ours gets, harness.stack):", ""]
    L += [f"- {s}" for s in compact_swaps(res.get("swaps_kps", []))]
    L += [f"- {s}" for s in res.get("swaps_both", [])]
    L += ["", f"This part took {res['took']:.0f} s (control plane and stack {res.get('stack_start', 0):.0f} s, "
          f"KPS's operator and Prometheus {res.get('kps_start', 0):.0f} s).", ""]
    return L


def compact_swaps(items):
    """The swap list with one line per kind of per-job swap (the jobs counted)."""
    out, per_job = [], {}
    for s in items:
        m = re.match(r"prometheus job (\S+): (.*)$", s)
        if m:
            per_job.setdefault(m.group(2), []).append(m.group(1))
        else:
            out.append(s)
    out += [f"prometheus, {len(jobs)} jobs ({', '.join(f'`{j}`' for j in jobs) if len(jobs) < 6 else 'every job with discovery'}): {what}"
            for what, jobs in per_job.items()]
    return out


def rewrite_section(path, lines):
    """Replace (or append) this section of an existing report."""
    path = Path(path)
    title = lines[0]
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    head, sep, rest = text.partition("\n" + title + "\n")
    if sep:
        nxt = rest.find("\n## ")
        tail = rest[nxt:] if nxt >= 0 else "\n"
        path.write_text(head + "\n" + "\n".join(lines) + tail)
    else:
        path.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n")
