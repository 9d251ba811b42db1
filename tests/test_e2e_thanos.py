"""E2e tier: Thanos Query over the two Prometheus replicas of the production profile, with the
real thanos binary (tools.versions) on 127.0.0.1.

One stack per module: harness.stack.Stack renders values/production.yaml (plus the e2e values
of harness.pipeline) and runs the control plane, the workload and replica 0 of the rendered
Prometheus (pod p5-prometheus-0) with its swaps (harness.stack's docstring). This module adds:

- replica 1: the same rendered Prometheus again (the same swapped configuration file, the same
  arguments), its env as the kubelet sets it for pod p5-prometheus-1 (POD_NAME, so its
  external label prometheus_replica is p5-prometheus-1); own --storage.tsdb.path and
  --web.listen-address=127.0.0.1:<free port> (the swaps Stack makes for replica 0).
- per replica, the real `thanos sidecar` with the rendered container's arguments; swapped:
  --tsdb.path=/prometheus -> that replica's data directory (the shared volume);
  --prometheus.url=http://localhost:9090 -> http://127.0.0.1:<that replica's port> (localhost in
  the pod is the Prometheus beside it); --grpc-address and --http-address 0.0.0.0:N ->
  127.0.0.1:<free port>.
- the real `thanos query` with the rendered Deployment's arguments; swapped: --http-address and
  --grpc-address -> 127.0.0.1:<free port>; in --endpoint.sd-config, the address
  dnssrv+_grpc-thanos._tcp.<the Prometheus headless Service> -> the two sidecars' gRPC
  addresses (what that SRV lookup answers in a cluster: one record per Prometheus pod, port
  grpc-thanos). --query.replica-label and every other flag unchanged.

Proved: every Grafana panel query gives through Query the same series (label sets) as one
Prometheus alone (deduplicated: no prometheus_replica, no second copy; Query shows the replicas'
other external labels, here cluster="phase5", on the series a panel does not aggregate away, so
those are set aside before comparing), and a Query without the
replica label fails that very comparison; the dashboards' $cluster variable lists that cluster
through Query and selecting it keeps every panel's series; while replica 0 is stopped and restarted, a range
query through Query has every target at every step, never with doubled samples, where
replica 0 alone has a hole."""
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from harness import dashboards, paths, pipeline, tools
from harness import upstream_metrics as um
from harness.manifests import containers
from harness.podfiles import PodFiles, flag
from harness.ports import free_port
from harness.process import Process
from harness.stack import Stack
from harness.workload import PHASE5_SERVICES, Workload

pytestmark = pytest.mark.e2e

PRODUCTION = paths.PROFILES_DIR / "production.yaml"
REPLICA_LABEL = "prometheus_replica"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"')
# Grafana's macros for a stack with a 2 s scrape interval (the Stack's swap 5).
MACROS = {"__rate_interval": "20s", "__interval": "5s", "__range": "1m", "__range_s": "60", "__range_ms": "60000"}


def _get(url, timeout=20):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read()) if "/metrics" not in url else r.read().decode()


def query(base, expr, at=None, **extra):
    q = {"query": expr, **extra}
    if at is not None:
        q["time"] = f"{at:.3f}"
    return _get(f"{base}/api/v1/query?{urllib.parse.urlencode(q)}")["data"]["result"]


def query_range(base, expr, start, end, step=1):
    q = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(step)}
    return _get(f"{base}/api/v1/query_range?{urllib.parse.urlencode(q)}")["data"]["result"]


def _swap_flag(args, name, value):
    out, seen = [], False
    for a in args:
        if a.startswith(f"--{name}="):
            a, seen = f"--{name}={value}", True
        out.append(a)
    assert seen, f"the rendered arguments have no --{name}: {args}"
    return out


class HA:
    """The two replicas, their sidecars and Query (plus what the stack started)."""

    def __init__(self, stack, workdir):
        self.stack, self.workdir = stack, workdir
        self.thanos = tools.require("thanos")
        self.procs = []
        m = stack.manifests
        self.sts = m.get("StatefulSet", "p5-prometheus")
        self.sidecar_args = next(c for c in containers(self.sts) if c["name"] == "thanos-sidecar")["args"]
        (q,) = containers(m.get("Deployment", "p5-thanos-query"))
        self.query_args = q["args"]
        self.headless = m.get("Service", "p5-prometheus-headless")
        import yaml
        ext = yaml.safe_load(m.get("ConfigMap", "p5-prometheus")["data"]["prometheus.yml"])["global"]["external_labels"]
        assert ext.get(REPLICA_LABEL) == "${POD_NAME}", ext
        # The external labels both replicas share: Query puts them on the series it returns.
        self.shared_labels = {k: v for k, v in ext.items() if k != REPLICA_LABEL}

    def start(self):
        st = self.stack
        # replica 0: the Stack's Prometheus; replica 1: the same argv, its own port and data.
        self.ports = [st.prom_port, free_port()]
        self.data = [self._flag_of(st.prometheus.argv, "storage.tsdb.path"), str(self.workdir / "prom-1-data")]
        argv = _swap_flag(st.prometheus.argv, "web.listen-address", f"127.0.0.1:{self.ports[1]}")
        argv = _swap_flag(argv, "storage.tsdb.path", self.data[1])
        pod = PodFiles(st.manifests, "prometheus", "prometheus", self.workdir / "prom-1-root")
        env = pod.env(st._api_pod("p5-prometheus-1"))
        env["POD_NAME"] = "p5-prometheus-1"   # pod.env names <sts>-0 when the API server has no pod
        self.replica1 = self._run(Process("prometheus-1", argv, self.workdir / "prometheus-1.log",
                                          f"http://127.0.0.1:{self.ports[1]}/-/ready", env=env))
        self.sidecar_grpc = []
        for i in (0, 1):
            grpc, http = free_port(), free_port()
            args = _swap_flag(self.sidecar_args, "tsdb.path", self.data[i])
            args = _swap_flag(args, "prometheus.url", f"http://127.0.0.1:{self.ports[i]}")
            args = _swap_flag(args, "grpc-address", f"127.0.0.1:{grpc}")
            args = _swap_flag(args, "http-address", f"127.0.0.1:{http}")
            self._run(Process(f"sidecar-{i}", [self.thanos] + args, self.workdir / f"sidecar-{i}.log",
                              f"http://127.0.0.1:{http}/-/ready"))
            self.sidecar_grpc.append(f"127.0.0.1:{grpc}")
        self.query_url = self.start_query(self.query_args, "query")
        return self

    def start_query(self, rendered_args, name):
        http, grpc = free_port(), free_port()
        cfg = json.loads(flag(rendered_args, "endpoint.sd-config"))
        srv = f"dnssrv+_grpc-thanos._tcp.{self.headless['metadata']['name']}."
        endpoints = []
        for e in cfg["endpoints"]:
            if e["address"].startswith(srv):
                endpoints += [{**e, "address": a} for a in self.sidecar_grpc]
            else:
                endpoints.append(e)
        assert len(endpoints) == 2, f"no endpoint of the headless Service {srv} in {cfg}"
        args = _swap_flag(rendered_args, "http-address", f"127.0.0.1:{http}")
        args = _swap_flag(args, "grpc-address", f"127.0.0.1:{grpc}")
        args = _swap_flag(args, "endpoint.sd-config", json.dumps({**cfg, "endpoints": endpoints}))
        self._run(Process(name, [self.thanos] + args, self.workdir / f"{name}.log",
                          f"http://127.0.0.1:{http}/-/ready"))
        base = f"http://127.0.0.1:{http}"
        self.stack.wait(lambda: len(self.stores(base)) == 2, 60, what=f"{name} connected to both sidecars")
        return base

    @staticmethod
    def stores(base):
        groups = _get(f"{base}/api/v1/stores")["data"] or {}
        return [s for s in groups.get("sidecar") or [] if not s.get("lastError")]

    @staticmethod
    def _flag_of(argv, name):
        return next(a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}="))

    def _run(self, proc):
        self.procs.append(proc)
        return proc.start()

    def stop(self):
        for p in reversed(self.procs):
            p.stop()


@pytest.fixture(scope="module")
def ha(tmp_path_factory, request):
    tools.require("thanos")
    work = tmp_path_factory.mktemp("e2e-thanos")
    st = Stack(work / "stack", values_files=[PRODUCTION], set_values=pipeline.chart_values(),
               workload=Workload(services=PHASE5_SERVICES))
    request.addfinalizer(st.stop)
    st.start()
    h = HA(st, work)
    request.addfinalizer(h.stop)
    h.start()
    # Both replicas scrape every target a few times before anything is compared.
    st.wait(lambda: len(query(h.query_url, 'up{job="monitoring-stack"}', dedup="false"))
            >= 2 * len(query(st.prom_url, 'up{job="monitoring-stack"}')) > 0, 60,
            what="both replicas' monitoring-stack targets through Query")
    time.sleep(15)
    return h


def test_query_reads_each_replica_through_its_sidecar(ha):
    stores = HA.stores(ha.query_url)
    replicas = sorted(lbl.get(REPLICA_LABEL) for s in stores for lbl in s.get("labelSets") or [])
    assert replicas == ["p5-prometheus-0", "p5-prometheus-1"], stores
    # The series ThanosQuerySidecarsMissing reads, as harness/upstream_metrics.py documents them.
    page = _get(f"{ha.query_url}/metrics")
    exposed = {}
    for ln in page.splitlines():
        m = SAMPLE.match(ln)
        if m and not ln.startswith("#"):
            exposed.setdefault(m.group(1), []).append(set(LABEL.findall(m.group(2) or "")))
    for name, labels in um.series("thanos").items():
        assert exposed.get(name), f"Query's /metrics has no {name}"
        assert all(have == labels for have in exposed[name]), \
            f"{name}: labels {exposed[name]}, documented {sorted(labels)}"
    conns = sum(float(ln.rsplit(" ", 1)[1]) for ln in page.splitlines()
                if ln.startswith("thanos_store_nodes_grpc_connections{") and 'store_type="sidecar"' in ln)
    assert conns == 2, f"Query reports {conns} sidecar connections, not 2"


def _series(result):
    return sorted(json.dumps(r["metric"], sort_keys=True) for r in result)


def without_shared(ha, result):
    """The result with the replicas' shared external labels taken off each series (where they
    are the configured value: a series of a panel that aggregates them away has none)."""
    out = []
    for r in result:
        metric = {k: v for k, v in r["metric"].items() if ha.shared_labels.get(k) != v}
        out.append({**r, "metric": metric})
    return out


def panel_differences(ha, query_url):
    """Panel queries whose series through Query are not those of replica 0 alone (at one instant),
    or whose value through Query is well above what either replica alone gives (a second copy
    added up)."""
    at = time.time() - 5
    replica1 = f"http://127.0.0.1:{ha.ports[1]}"
    out = []
    for uid, title, expr in dashboards.panel_queries(macros=MACROS):
        alone = query(ha.stack.prom_url, expr, at)
        try:
            merged = without_shared(ha, query(query_url, expr, at))
        except urllib.error.HTTPError as e:   # e.g. many-to-many matching on doubled series
            out.append(f"{uid} / {title}: fails through Query ({e.code}: {e.read()[:200]!r}), not alone\n    {expr}")
            continue
        leaked = [r["metric"] for r in merged if REPLICA_LABEL in r["metric"]]
        if leaked or _series(alone) != _series(merged):
            out.append(f"{uid} / {title}: {len(alone)} series alone, {len(merged)} through Query "
                       f"(replica label on {len(leaked)})\n    {expr}")
            continue
        # Query gives, per series, the samples of one replica or the other: compare with the
        # larger of the two. Their values differ (each scrapes at its own instants, and replica 1
        # started later, so a ratio over a window longer than its life counts fewer requests);
        # a sum over both copies is their sum.
        by_replica = [_values(alone), _values(query(replica1, expr, at))]
        for key, vm in _values(merged).items():
            va = max(values.get(key, 0.0) for values in by_replica)
            if va > 0 and vm > 1.6 * va:
                out.append(f"{uid} / {title}: {key} is {vm} through Query, "
                           f"{' and '.join(str(v.get(key)) for v in by_replica)} alone (doubled?)\n    {expr}")
    return out


def _values(result):
    return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in result}


def test_every_panel_query_through_query_is_deduplicated(ha):
    queries = dashboards.panel_queries(macros=MACROS)
    assert len(queries) > 20, "no Prometheus panel queries found in the chart's dashboards"
    with_data = [e for _, _, e in queries if query(ha.stack.prom_url, e)]
    assert len(with_data) > len(queries) // 2, f"only {len(with_data)} of {len(queries)} panel queries have data"
    problems = panel_differences(ha, ha.query_url)
    assert not problems, f"{len(problems)} of {len(queries)} panel queries:\n" + "\n".join(problems)


def test_the_cluster_variable_selects_the_external_label_through_query(ha):
    """Issue 28: the dashboards' $cluster variable (label_values(up, cluster)) lists, through Query,
    the cluster external label the sidecars add (prometheus.externalLabels.cluster), and every panel
    query with that cluster selected returns through Query the series it returns with All (.*).
    Prometheus alone has no cluster label on its series (external labels only leave it): the variable
    finds nothing there and Grafana keeps All, which test_e2e_pipeline proves returns data."""
    cluster = ha.shared_labels.get("cluster")
    assert cluster, f"the production profile's Prometheus has no cluster external label: {ha.shared_labels}"
    (_, _, selector, label), *_ = [q for q in dashboards.variable_queries() if q[1] == "cluster"]

    def label_values(base):
        return _get(f"{base}/api/v1/label/{label}/values?" + urllib.parse.urlencode({"match[]": selector}))["data"]
    assert label_values(ha.query_url) == [cluster], "the $cluster variable's query through Query"
    assert label_values(ha.stack.prom_url) == [], "Prometheus alone has a cluster label on its series"
    at = time.time() - 5
    every = dashboards.panel_queries(macros=MACROS)
    one = dashboards.panel_queries(variables={"cluster": cluster}, macros=MACROS)
    other = dashboards.panel_queries(variables={"cluster": "no-such-cluster"}, macros=MACROS)
    problems, with_data, filtered = [], 0, 0
    for (uid, title, e_all), (_, _, e_one), (_, _, e_other) in zip(every, one, other):
        result = query(ha.query_url, e_all, at)
        want, got = _series(result), _series(query(ha.query_url, e_one, at))
        with_data += bool(want)
        if got != want:
            problems.append(f"{uid} / {title}: {len(got)} series with cluster={cluster}, {len(want)} with All\n    {e_one}")
        # Another cluster selected: nothing left but an `or vector(0)` fallback.
        if not _fallback_only(result):
            filtered += 1
            if not _fallback_only(query(ha.query_url, e_other, at)):
                problems.append(f"{uid} / {title}: keeps data with cluster=no-such-cluster\n    {e_other}")
    assert with_data > len(every) // 2, f"only {with_data} of {len(every)} panel queries have data through Query"
    assert filtered > len(every) // 3, f"only {filtered} of {len(every)} panel queries show more than a zero fallback"
    assert not problems, f"{len(problems)} of {len(every)} panel queries:\n" + "\n".join(problems)


def _fallback_only(result):
    """Nothing, or only what `or vector(0)` adds (no labels, value 0)."""
    return all(not r["metric"] and float(r["value"][1]) == 0 for r in result)


def test_without_the_replica_label_the_comparison_fails(ha):
    """The same Query without --query.replica-label (the break): the comparison above catches it."""
    args = [a for a in ha.query_args if not a.startswith("--query.replica-label=")]
    assert len(args) == len(ha.query_args) - 1
    base = ha.start_query(args, "query-without-replica-label")
    problems = panel_differences(ha, base)
    assert len(problems) > 5, problems
    # Panels that aggregate the replica label away show the second copy only in their values.
    assert any("(doubled?)" in p for p in problems), problems


# Replica 0's stop: longer than the 10 s count_over_time window, so that replica 0 alone has an
# empty window (at the moment it restarts) which Query must fill from replica 1.
STOP = 12


def test_a_replica_restart_leaves_no_gap_and_no_doubled_samples(ha):
    """count_over_time over 10 s counts the samples of each target: 5 at the 2 s scrape interval,
    from one replica at a time when deduplicated (10 when both are added up). Both replicas have
    scraped for more than 10 s (the fixture); replica 0 stops for STOP s and comes back; through
    Query, read once Query reads replica 0 again, every target has samples at every step - both
    replicas before the stop, replica 1 through it, both again after the restart - never doubled;
    replica 0 alone has none in the window ending at its restart."""
    st = ha.stack
    expr = 'count_over_time(up{job="monitoring-stack"}[10s])'
    targets = {json.dumps(r["metric"], sort_keys=True) for r in query(st.prom_url, 'up{job="monitoring-stack"}')}
    assert targets
    start = time.time()
    time.sleep(4)       # steps where both replicas' samples are in the window
    st.prometheus.stop()
    stopped = time.time()
    time.sleep(STOP)
    resumed = time.time()
    st.prometheus.start()
    # Query reads replica 0 again only once its sidecar is ready again (the sidecar re-reads
    # Prometheus' external labels every 30 s; until then Query leaves that store out and answers
    # from replica 1 alone): wait until Query returns replica 0's samples scraped after the
    # restart, so that the range below has steps where Query merges both replicas again.
    st.wait(lambda: len(HA.stores(ha.query_url)) == 2 and query(
                ha.query_url, f'timestamp(up{{job="monitoring-stack", {REPLICA_LABEL}="p5-prometheus-0"}}) > {resumed:.3f}',
                dedup="false"),
            90, interval=0.5, what="Query reading replica 0's samples scraped after its restart")
    end = time.time() - 2
    series = without_shared(ha, query_range(ha.query_url, expr, start, end))
    got = {json.dumps({k: v for k, v in r["metric"].items()}, sort_keys=True): r["values"] for r in series}
    leaked = [k for k in got if REPLICA_LABEL in k]
    assert not leaked, leaked
    # count_over_time drops __name__: compare on the target labels.
    want = {json.dumps({k: v for k, v in json.loads(t).items() if k != "__name__"}, sort_keys=True) for t in targets}
    assert set(got) == want, f"series through Query {sorted(got)} vs targets {sorted(want)}"
    steps = int(end - start) + 1
    problems = []
    for k, values in got.items():
        if len(values) < steps:
            present = {round(float(t)) for t, _ in values}
            missing = [round(start + i) for i in range(steps) if round(start + i) not in present]
            problems.append(f"{k}: no sample at {len(missing)} steps (stopped {stopped:.0f}..{resumed:.0f}): {missing[:10]}")
        high = [(t, v) for t, v in values if float(v) > 7]
        if high:
            problems.append(f"{k}: {len(high)} steps count more than 7 samples in 10 s (doubled): {high[:5]}")
    assert not problems, "\n".join(problems)
    # Replica 0 alone has the hole Query filled.
    alone = query(st.prom_url, expr, resumed)
    assert not alone, f"replica 0 alone has samples in the 10 s before its restart ({STOP} s after its stop): {alone[:3]}"
