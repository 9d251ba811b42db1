"""E2e tier: Thanos on object storage (issue 26) with the real thanos binary (tools.versions) and
the real Prometheus on 127.0.0.1: the data outlives the replica.

One stack per module, from values/production.yaml with object storage on (thanos.objstoreSecret,
thanos.storeGateway.enabled, thanos.compactor.enabled, prometheus.thanos.sidecar.objstoreSecret).
The bucket is a directory (Thanos' FILESYSTEM objstore type): the file the rendered
--objstore.config-file names is what the Secret would hold, written here.

- Prometheus: the rendered container's arguments; swapped: --config.file -> a small
  configuration with the rendered global.external_labels (cluster, prometheus_replica
  ${POD_NAME}, expanded from the pod's env as in the pod) scraping itself every second (the
  rendered prometheus.yml discovers through the Kubernetes API, which tests/test_e2e_thanos.py's
  Stack provides; what is proved here is the bucket, not the scrape jobs);
  --storage.tsdb.path, --web.listen-address -> local; --storage.tsdb.min/max-block-duration 2h ->
  10s (the rendered ones are equal, as the sidecar requires; Prometheus cuts a block once its head
  spans 1.5 block durations, here about 20 s after its start, before the sidecar's second upload
  pass, 30 s after its first).
- the sidecar: the rendered arguments; swapped: --tsdb.path, --prometheus.url, --grpc-address,
  --http-address, --objstore.config-file -> local.
- the Store Gateway and the Compactor: the rendered StatefulSets' arguments; swapped:
  --http-address, --grpc-address, --data-dir, --objstore.config-file -> local. The Compactor runs
  once with --wait dropped (it must exit 0 on the real bucket), then as rendered (with --wait)
  long enough to read its health and metrics.
- Query: the rendered arguments; swapped: --http-address, --grpc-address; in
  --endpoint.sd-config, the Store Gateway's dnssrv+ address -> its local gRPC address, the
  sidecars' dnssrv+ address -> none (the replica and its pod are gone; the SRV lookup of a
  headless Service without pods answers nothing).

Proved: the sidecar uploads a block Prometheus cut (its thanos_shipper_* series as
harness/upstream_metrics.py documents them); after Prometheus and its sidecar are stopped and the
data directory deleted, the same samples come back through the Store Gateway and Query
(deduplicated on prometheus_replica, as Grafana reads them), Query reports its Store Gateway
connection (the series ThanosQueryStoreGatewayMissing reads); the Compactor runs over the bucket
and exits 0, runs as rendered with thanos_compact_halted 0, and the data still reads back after it.
Every process is stopped at the end, also on failure (fixture finalizers; harness.process's
atexit hook as the last resort)."""
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
import yaml

from harness import paths, tools
from harness import upstream_metrics as um
from harness.manifests import containers
from harness.podfiles import flag
from harness.polling import wait_until
from harness.ports import free_port
from harness.process import Process
from harness.render import render

pytestmark = pytest.mark.e2e

PRODUCTION = paths.PROFILES_DIR / "production.yaml"
OBJSTORE = {"thanos.objstoreSecret": "thanos-bucket", "thanos.storeGateway.enabled": True,
            "thanos.compactor.enabled": True, "prometheus.thanos.sidecar.objstoreSecret": "thanos-bucket"}
REPLICA_LABEL = "prometheus_replica"
BLOCK = "10s"   # --storage.tsdb.min/max-block-duration of this run (rendered: 2h)
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"')


def _get(url, timeout=20):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
    return body.decode() if url.endswith("/metrics") else json.loads(body)


def metrics(base):
    """{name: [(label names, value)]} of a /metrics page."""
    out = {}
    for ln in _get(f"{base}/metrics").splitlines():
        m = SAMPLE.match(ln)
        if m and not ln.startswith("#"):
            out.setdefault(m.group(1), []).append((set(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def query_range(base, expr, start, end, step=1, **extra):
    q = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(step), **extra}
    return _get(f"{base}/api/v1/query_range?{urllib.parse.urlencode(q)}")["data"]["result"]


def swap(args, name, value):
    """The arguments with --name's value replaced (value None: the flag dropped); fails when the
    rendered arguments have no such flag (the swap would be silently void)."""
    hits = [a for a in args if a == f"--{name}" or a.startswith(f"--{name}=")]
    assert len(hits) == 1, f"the rendered arguments have {len(hits)} --{name}: {args}"
    if value is None:
        return [a for a in args if a not in hits]
    return [f"--{name}={value}" if a in hits else a for a in args]


def _documented(source, page):
    """The series harness/upstream_metrics.py documents for `source`, checked on a real /metrics page."""
    for name, labels in um.series(source).items():
        assert page.get(name), f"{source}: /metrics has no {name}"
        assert all(have == labels for have, _ in page[name]), f"{name}: labels {page[name]}, documented {sorted(labels)}"


class Bucket:
    """The rendered release with object storage, its processes on 127.0.0.1 and the bucket."""

    def __init__(self, work):
        self.work = work
        self.thanos, self.prometheus = tools.require("thanos"), tools.require("prometheus")
        self.objs = render((PRODUCTION,), set_values=OBJSTORE)
        self.procs = []
        self.bucket = work / "bucket"
        self.bucket.mkdir()
        self.objstore = work / "objstore.yml"   # the Secret's key objstore.yml, as mounted
        self.objstore.write_text(yaml.safe_dump({"type": "FILESYSTEM", "config": {"directory": str(self.bucket)}}))

    def container(self, kind, name, container=None):
        cs = containers(self.objs.get(kind, name))
        return next(c for c in cs if container in (None, c["name"]))

    def run(self, name, argv, ready, env=None, timeout=60):
        proc = Process(name, argv, self.work / f"{name}.log", ready, env=env)
        self.procs.append(proc)
        return proc.start(timeout)

    def stop(self):
        for p in reversed(self.procs):
            p.stop()

    # ---------------------------------------------------------------- the replica
    def start_replica(self):
        prom = self.container("StatefulSet", "p5-prometheus", "prometheus")
        rendered = yaml.safe_load(self.objs.get("ConfigMap", "p5-prometheus")["data"]["prometheus.yml"])
        external = rendered["global"]["external_labels"]
        assert external.get(REPLICA_LABEL) == "${POD_NAME}", external
        self.prom_port = free_port()
        cfg = self.work / "prometheus.yml"
        cfg.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "external_labels": external},
            "scrape_configs": [{"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{self.prom_port}"]}]}]}))
        self.data = self.work / "prometheus-data"
        args = prom["args"]
        assert flag(args, "storage.tsdb.min-block-duration") == flag(args, "storage.tsdb.max-block-duration"), \
            "the sidecar uploads only when Prometheus' own compaction is off (min = max block duration)"
        for name, value in (("config.file", cfg), ("storage.tsdb.path", self.data),
                            ("web.listen-address", f"127.0.0.1:{self.prom_port}"),
                            ("storage.tsdb.min-block-duration", BLOCK), ("storage.tsdb.max-block-duration", BLOCK)):
            args = swap(args, name, value)
        env = {"POD_NAME": "p5-prometheus-0"}   # the downward API's metadata.name (the container's env)
        assert [e["name"] for e in prom["env"]] == ["POD_NAME"], prom["env"]
        self.prom_url = f"http://127.0.0.1:{self.prom_port}"
        self.run("prometheus", [self.prometheus] + args, f"{self.prom_url}/-/ready", env=env)

        sidecar = self.container("StatefulSet", "p5-prometheus", "thanos-sidecar")
        grpc, http = free_port(), free_port()
        args = sidecar["args"]
        for name, value in (("tsdb.path", self.data), ("prometheus.url", self.prom_url),
                            ("grpc-address", f"127.0.0.1:{grpc}"), ("http-address", f"127.0.0.1:{http}"),
                            ("objstore.config-file", self.objstore)):
            args = swap(args, name, value)
        self.sidecar_url = f"http://127.0.0.1:{http}"
        self.run("sidecar", [self.thanos] + args, f"{self.sidecar_url}/-/ready")

    def uploaded(self):
        """The blocks in the bucket: {ulid: meta.json}."""
        return {d.name: json.loads((d / "meta.json").read_text())
                for d in self.bucket.iterdir() if (d / "meta.json").is_file()}

    # ---------------------------------------------------------------- the bucket's readers
    def start_store(self):
        c = self.container("StatefulSet", "p5-thanos-store")
        grpc, http = free_port(), free_port()
        args = c["args"]
        for name, value in (("http-address", f"127.0.0.1:{http}"), ("grpc-address", f"127.0.0.1:{grpc}"),
                            ("data-dir", self.work / "store-data"), ("objstore.config-file", self.objstore)):
            args = swap(args, name, value)
        self.store_grpc, self.store_url = f"127.0.0.1:{grpc}", f"http://127.0.0.1:{http}"
        self.run("store", [self.thanos] + args, f"{self.store_url}/-/ready")

    def start_query(self):
        (c,) = containers(self.objs.get("Deployment", "p5-thanos-query"))
        cfg = json.loads(flag(c["args"], "endpoint.sd-config"))
        store_srv = "dnssrv+_grpc._tcp." + self.objs.get("StatefulSet", "p5-thanos-store")["spec"]["serviceName"] + "."
        sidecar_srv = "dnssrv+_grpc-thanos._tcp.p5-prometheus-headless."
        endpoints, seen = [], set()
        for e in cfg["endpoints"]:
            if e["address"].startswith(store_srv):
                endpoints.append({**e, "address": self.store_grpc})
                seen.add("store")
            elif e["address"].startswith(sidecar_srv):
                seen.add("sidecar")   # no Prometheus pod left: the SRV lookup answers nothing
            else:
                endpoints.append(e)
        assert seen == {"store", "sidecar"}, f"rendered endpoints: {cfg}"
        http, grpc = free_port(), free_port()
        args = c["args"]
        for name, value in (("http-address", f"127.0.0.1:{http}"), ("grpc-address", f"127.0.0.1:{grpc}"),
                            ("endpoint.sd-config", json.dumps({**cfg, "endpoints": endpoints}))):
            args = swap(args, name, value)
        self.query_url = f"http://127.0.0.1:{http}"
        self.run("query", [self.thanos] + args, f"{self.query_url}/-/ready")

    def compact_args(self, http):
        c = self.container("StatefulSet", "p5-thanos-compact")
        args = c["args"]
        for name, value in (("http-address", f"127.0.0.1:{http}"), ("data-dir", self.work / "compact-data"),
                            ("objstore.config-file", self.objstore)):
            args = swap(args, name, value)
        return [self.thanos] + args


@pytest.fixture(scope="module")
def bucket(tmp_path_factory, request):
    tools.require("thanos")
    tools.require("prometheus")
    b = Bucket(tmp_path_factory.mktemp("e2e-thanos-objstore"))
    request.addfinalizer(b.stop)
    b.start_replica()
    # A block cut by Prometheus (10 s blocks: once its head holds more than 15 s of samples) and
    # shipped by the sidecar (at its next pass: every 30 s from its start).
    wait_until(lambda: b.uploaded(), 240, "a block in the bucket", every=0.5)
    b.metas = b.uploaded()
    b.sidecar_metrics = metrics(b.sidecar_url)
    # The earliest block: a range query over it looks back into nothing older (no other block).
    meta = min(b.metas.values(), key=lambda m: m["minTime"])
    b.span = (meta["minTime"] / 1000, (meta["maxTime"] - 1) / 1000)
    # What Prometheus itself returns for the block's time range, before the replica goes.
    b.before = query_range(b.prom_url, 'up{job="prometheus"}', *b.span)
    for p in [p for p in b.procs if p.name in ("sidecar", "prometheus")]:
        p.stop()
    shutil.rmtree(b.data)
    b.start_store()
    b.start_query()
    return b


def test_the_sidecar_uploads_what_prometheus_cut(bucket):
    meta = min(bucket.metas.values(), key=lambda m: m["minTime"])
    assert meta["thanos"]["labels"] == {"cluster": "phase5", REPLICA_LABEL: "p5-prometheus-0"}, meta["thanos"]
    assert meta["thanos"]["source"] == "sidecar" and meta["compaction"]["level"] == 1, meta
    page = bucket.sidecar_metrics
    _documented("thanos-sidecar", page)   # the series ThanosSidecarUploadFailing reads
    assert page["thanos_shipper_uploads_total"][0][1] >= 1 and page["thanos_shipper_upload_failures_total"][0][1] == 0, \
        {k: v for k, v in page.items() if k.startswith("thanos_shipper_")}


def test_the_data_outlives_the_replica(bucket):
    """Prometheus and its sidecar are gone and the data directory deleted: Query, through the
    Store Gateway, returns the very samples Prometheus returned for the uploaded block."""
    assert not bucket.data.exists()
    assert bucket.before and bucket.before[0]["values"], f"Prometheus had no samples in the block's range: {bucket.before}"

    def back():
        return query_range(bucket.query_url, 'up{job="prometheus"}', *bucket.span, dedup="true")
    after = wait_until(back, 90, "the block's samples through the Store Gateway and Query", every=2)
    (series,) = after
    assert REPLICA_LABEL not in series["metric"] and series["metric"].get("cluster") == "phase5", series["metric"]
    (prom,) = bucket.before
    assert series["values"] == prom["values"], (
        f"Query returned {len(series['values'])} samples, Prometheus had {len(prom['values'])}: "
        f"{series['values'][:3]} vs {prom['values'][:3]}")


def test_query_reports_its_store_gateway_connection(bucket):
    """The series ThanosQueryStoreGatewayMissing reads, on the real Query."""
    def conns():
        page = metrics(bucket.query_url)
        return [(lb, v) for lb, v in page.get("thanos_store_nodes_grpc_connections", [])] and page
    page = wait_until(conns, 60, "Query's store connections", every=1)
    _documented("thanos", page)
    stores = _get(f"{bucket.query_url}/api/v1/stores")["data"]
    assert [s["name"] for s in stores.get("store") or [] if not s.get("lastError")] == [bucket.store_grpc], stores
    text = _get(f"{bucket.query_url}/metrics")
    store_conns = [ln for ln in text.splitlines()
                   if ln.startswith("thanos_store_nodes_grpc_connections{") and 'store_type="store"' in ln]
    assert store_conns and sum(float(ln.rsplit(" ", 1)[1]) for ln in store_conns) == 1, store_conns


def test_the_compactor_runs_over_the_bucket_and_exits(bucket):
    """The rendered Compactor without --wait: one pass over the real bucket, exit status 0.
    subprocess.run kills it when the pass overruns (nothing is left running)."""
    argv = swap(bucket.compact_args(free_port()), "wait", None)
    log = bucket.work / "compact-once.log"
    with log.open("wb") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=180)
    text = log.read_text(errors="replace")
    assert done.returncode == 0, f"thanos compact (no --wait) exited with {done.returncode}:\n{text[-3000:]}"
    assert "halt" not in text.lower(), text[-3000:]
    assert "compaction iterations done" in text or "start of compactions" in text, text[-3000:]


def test_the_compactor_as_rendered_is_healthy_and_not_halted(bucket):
    """With --wait, as the StatefulSet runs it: ready on its probe path, thanos_compact_halted
    (ThanosCompactHalted) documented and 0, and at least one iteration done."""
    http = free_port()
    url = f"http://127.0.0.1:{http}"
    proc = bucket.run("compact", bucket.compact_args(http), f"{url}/-/ready")
    try:
        def iterated():
            page = metrics(url)
            return page if page.get("thanos_compact_iterations_total", [(None, 0)])[0][1] >= 1 else None
        page = wait_until(iterated, 90, "a compactor iteration", every=1)
        _documented("thanos-compact", page)
        assert page["thanos_compact_halted"][0][1] == 0, page["thanos_compact_halted"]
        with urllib.request.urlopen(f"{url}/-/healthy", timeout=5) as r:
            assert r.status == 200
    finally:
        proc.stop()


def test_the_data_still_reads_back_after_compaction(bucket):
    after = query_range(bucket.query_url, 'up{job="prometheus"}', *bucket.span, dedup="true")
    assert [s["values"] for s in after] == [s["values"] for s in bucket.before], after
