"""Unit tier, issue 28: exemplars, from the service's histogram to the latency panel.

- Prometheus stores exemplars: `--enable-feature=exemplar-storage` and `storage.exemplars.
  max_exemplars` sized from prometheus.exemplars.maxExemplars, in every profile; off leaves both
  out; the schema refuses a size that is not a positive integer.
- The Phase 5 scrape jobs accept OpenMetrics, the only text exposition that carries exemplars:
  their effective `scrape_protocols` (the job's, else the global one, else Prometheus 3's default,
  which lists OpenMetricsText1.0.0 first; PrometheusProto first with native histograms, which
  carries exemplars too) include OpenMetricsText1.0.0.
- Every latency panel (a panel showing histogram_quantile of a histogram's `_bucket` series,
  directly or through a recording rule) shows exemplars: it has a target with `"exemplar": true`, and every such target
  reads the raw `_bucket` series (recorded series carry no exemplars, so an exemplar target on a
  recording rule would show none).
- The Grafana label that opens the trace is the one docs/integration.md tells services to use.
test_e2e_exemplars.py proves the same path with the real Prometheus and Jaeger.
"""
import pytest
import yaml

from harness import dashboards as dash
from harness import grafana as gf
from harness import params, paths
from harness.manifests import containers
from harness.promql import metric_names
from harness.render import render, render_error
from test_unit_grafana import _recording_rules

pytestmark = pytest.mark.unit

STS = "p5-prometheus"
FEATURE = "--enable-feature=exemplar-storage"
# Prometheus 3's default scrape_protocols (configuration docs, <scrape_config>; config.go
# DefaultScrapeProtocols / DefaultProtoFirstScrapeProtocols of the pinned v3.16.0).
DEFAULT_PROTOCOLS = ["OpenMetricsText1.0.0", "OpenMetricsText0.0.1", "PrometheusText1.0.0", "PrometheusText0.0.4"]
PROTO_FIRST_PROTOCOLS = ["PrometheusProto"] + DEFAULT_PROTOCOLS
PHASE5_JOBS = ("phase5-services", "phase5-exporters")


def _prometheus(values=(), set_values=None):
    objs = render(values, set_values)
    sts = objs.get("StatefulSet", STS)
    args = next(c for c in containers(sts) if c["name"] == "prometheus")["args"]
    config = yaml.safe_load(objs.get("ConfigMap", STS)["data"]["prometheus.yml"])
    return args, config


def _features(args):
    return [f for a in args if a.startswith("--enable-feature=") for f in a.split("=", 1)[1].split(",")]


@pytest.mark.parametrize("values", params.profiles())
def test_exemplar_storage_is_on_in_every_profile(values):
    args, config = _prometheus(values)
    assert "exemplar-storage" in _features(args), f"{values}: exemplar storage off; args={args}"
    assert config.get("storage", {}).get("exemplars", {}).get("max_exemplars", 0) > 0, \
        f"{values}: no storage.exemplars.max_exemplars in prometheus.yml: {config.get('storage')}"


def test_exemplar_storage_is_sized_from_values():
    args, config = _prometheus()
    assert config["storage"]["exemplars"]["max_exemplars"] == 100000, config["storage"]
    assert args.count(FEATURE) == 1, args
    _, config = _prometheus(set_values={"prometheus.exemplars.maxExemplars": 250000})
    assert config["storage"]["exemplars"]["max_exemplars"] == 250000, config["storage"]


def test_exemplar_storage_can_be_switched_off():
    args, config = _prometheus(set_values={"prometheus.exemplars.enabled": False})
    assert "exemplar-storage" not in _features(args), args
    assert "exemplars" not in (config.get("storage") or {}), config.get("storage")


@pytest.mark.parametrize("bad", [0, -5, 1.5, "lots"])
def test_bad_exemplar_size_fails_naming_the_value(bad):
    err = render_error(set_values={"prometheus.exemplars.maxExemplars": bad})
    assert "maxExemplars" in err, err


def _protocols(config, job):
    if job.get("scrape_protocols"):
        return job["scrape_protocols"]
    glob = config.get("global") or {}
    if glob.get("scrape_protocols"):
        return glob["scrape_protocols"]
    native = job.get("scrape_native_histograms", glob.get("scrape_native_histograms", False))
    return PROTO_FIRST_PROTOCOLS if native else DEFAULT_PROTOCOLS


@pytest.mark.parametrize("values", params.profiles())
def test_phase5_jobs_accept_openmetrics(values):
    _, config = _prometheus(values)
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    for name in PHASE5_JOBS:
        protocols = _protocols(config, jobs[name])
        assert "OpenMetricsText1.0.0" in protocols, \
            f"{values}: job {name} scrapes with {protocols}: no OpenMetrics, so no exemplars"


def _buckets(expr, records, depth=0):
    """The `_bucket` series whose quantiles (histogram_quantile) an expression shows, directly or
    through recording rules (an SLO ratio of one bucket is no latency line)."""
    out = set()
    for name in metric_names(expr):
        if name.endswith("_bucket"):
            if "histogram_quantile" in expr:
                out.add(name)
        elif name in records and depth < 5:
            for e in records[name]:
                out |= _buckets(e, records, depth + 1)
    return out


def test_every_latency_panel_shows_exemplars_from_the_raw_buckets():
    records = _recording_rules(render())
    latency = 0
    for uid, d in dash.load().items():
        by_panel = {}
        for p, t in dash.prometheus_targets(d):
            by_panel.setdefault(p["title"], []).append(t)
        for title, targets in by_panel.items():
            histograms = set().union(*(_buckets(dash.substitute(t["expr"]), records) for t in targets))
            exemplar = [t for t in targets if t.get("exemplar")]
            for t in exemplar:
                raw = {n for n in metric_names(dash.substitute(t["expr"])) if n.endswith("_bucket")}
                assert raw, (f"{uid}/{title} target {t['refId']}: exemplar on {t['expr']!r}, which reads no raw "
                             f"_bucket series (recorded series carry no exemplars)")
            if not histograms:
                continue
            latency += 1
            shown = set().union(*(set(metric_names(dash.substitute(t["expr"]))) for t in exemplar)) if exemplar else set()
            assert histograms <= shown, (f"{uid}/{title} shows quantiles of {sorted(histograms)} but no target asks "
                                         f"for their exemplars (\"exemplar\": true on a target reading the _bucket "
                                         f"series); exemplar targets read {sorted(shown)}")
    assert latency, "no latency panel found: the check above checked nothing"


def test_grafana_opens_the_trace_of_the_label_services_are_told_to_use():
    dests = gf.datasources(render())["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    label = next(d["name"] for d in dests if d.get("datasourceUid") == "jaeger")
    doc = (paths.ROOT / "docs" / "integration.md").read_text()
    assert f"{{{label}=" in doc or f"`{label}`" in doc, f"docs/integration.md does not name the exemplar label {label}"
    assert "exemplar-storage" in doc and "openmetrics" in doc.lower(), \
        "docs/integration.md does not say how to expose exemplars (OpenMetrics) nor that Prometheus stores them"
