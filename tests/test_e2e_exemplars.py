"""e2e tier, issue 28: from a latency panel to the trace, with the real binaries.

One stack (harness.stack: the rendered Prometheus with the chart's arguments and prometheus.yml,
discovery through a real API server, and the rendered Jaeger v2), one Phase 5 service (backend,
one pod) whose stand-in (harness.workload) serves its metrics as prometheus_client does in a
real service: OpenMetrics text when the scraper asks for it, with a trace-id exemplar on the
latency histogram. It proves:
- a span sent over OTLP/HTTP to the real Jaeger is found there by its trace id;
- the service's pod attaches that trace id as an exemplar to an http_request_duration_seconds
  bucket; the chart's phase5-services job scrapes it (OpenMetrics negotiated), Prometheus stores
  it (exemplar storage on, as rendered) and `/api/v1/query_exemplars` returns it for the query
  of the latency panel's exemplar target (Grafana sends that query to that API), under the label
  Grafana's Prometheus datasource links to Jaeger (exemplarTraceIdDestinations);
- the exemplar's trace id is a trace the real Jaeger returns.
"""
import json
import secrets
import time
import urllib.parse
import urllib.request

import pytest

from harness import dashboards as dash
from harness import grafana as gf
from harness import jaeger as jh
from harness import tools
from harness.render import render
from harness.stack import Stack, _get
from harness.workload import Workload

pytestmark = pytest.mark.e2e

SERVICE = "backend"
SECONDS = 0.42      # the request's latency: its exemplar sits on the le="0.5" bucket


@pytest.fixture(scope="module")
def stack(tmp_path_factory, request):
    tools.require("jaeger")
    st = Stack(tmp_path_factory.mktemp("e2e-exemplars"), jaeger=True,
               workload=Workload(services=(SERVICE,), replicas=1))
    request.addfinalizer(st.stop)
    st.start()
    return st


def _exemplar_queries():
    """The dashboards' exemplar targets with the service chosen and the other variables "All":
    what Grafana sends to /api/v1/query_exemplars."""
    out = [dash.substitute(t["expr"], {"service": SERVICE})
           for d in dash.load().values() for _, t in dash.prometheus_targets(d) if t.get("exemplar")]
    assert out, "no dashboard target asks for exemplars"
    return out


def _trace_id_label():
    """The exemplar label Grafana's Prometheus datasource opens in Jaeger (a default render: the
    e2e stack renders Grafana off, its program cannot run here)."""
    dests = gf.datasources(render())["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    return next(d["name"] for d in dests if d.get("datasourceUid") == "jaeger")


def _exemplars(stack, query, start):
    q = urllib.parse.urlencode({"query": query, "start": f"{start:.3f}", "end": f"{time.time() + 60:.3f}"})
    return _get(f"{stack.prom_url}/api/v1/query_exemplars?{q}")["data"]


def _scrape(stack, accept):
    """The backend pod's answer to a scrape with this Accept header, through the pod network."""
    target = next(t for t in stack.targets() if t["labels"].get("job") == "phase5-services"
                  and t["labels"].get("service") == SERVICE)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": stack.net.url}))
    with opener.open(urllib.request.Request(target["scrapeUrl"], headers={"Accept": accept}), timeout=10) as r:
        return r.headers["Content-Type"], r.read().decode()


def test_an_exemplar_scraped_from_a_service_opens_a_trace_jaeger_holds(stack):
    label = _trace_id_label()
    trace_id = secrets.token_hex(16)
    j = stack.jaeger
    # the request's span, sent as the service's OpenTelemetry SDK sends it
    _, body = jh.otlp_span_json(SERVICE, "GET /api/tasks", trace_id=trace_id)
    req = urllib.request.Request(j.url("http-otlp") + "/v1/traces", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200, r.status
    jh.wait_for_trace(j.url("http-query"), SERVICE, trace_id, timeout=30)

    start = time.time() - 5
    stack.workload.state[SERVICE].exemplar = (trace_id, SECONDS)
    for query in _exemplar_queries():
        seen = []

        def returned():
            seen[:] = _exemplars(stack, query, start)
            return [(s["seriesLabels"], e) for s in seen for e in s.get("exemplars") or []
                    if e["labels"].get(label) == trace_id]
        hits = stack.wait(returned, 60, what=f"query_exemplars({query}) returning {label}={trace_id}")
        series, ex = hits[0]
        assert series.get("__name__") == "http_request_duration_seconds_bucket", series
        assert series.get("service") == SERVICE and series.get("job") == "phase5-services", series
        assert float(series["le"]) == 0.5, f"the exemplar of {SECONDS}s is on bucket le={series['le']}"
        assert float(ex["value"]) == pytest.approx(SECONDS), ex
        # ... and the trace id it carries is a trace the real Jaeger returns
        trace = jh.get_trace(j.url("http-query"), ex["labels"][label])
        assert trace is not None, f"Jaeger has no trace {ex['labels'][label]}"
        assert {s["traceID"].lstrip("0") for s in trace["spans"]} == {trace_id.lstrip("0")}, trace["spans"]


def test_exemplars_travel_only_in_openmetrics(stack):
    """What made the exemplar reach Prometheus: the pod answers OpenMetrics (with the exemplar)
    to an Accept header asking for it, as the phase5-services job does, and the Prometheus text
    format (no exemplars) otherwise; the job was not narrowed to the text formats."""
    st = stack.workload.state[SERVICE]
    st.exemplar = st.exemplar or (secrets.token_hex(16), SECONDS)
    ctype, body = _scrape(stack, "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
    assert ctype.startswith("application/openmetrics-text"), ctype
    assert '# {trace_id="' in body, body[:2000]
    ctype, body = _scrape(stack, "text/plain;version=0.0.4")
    assert ctype.startswith("text/plain") and "trace_id" not in body, ctype
    job = next(j for j in stack.prom_config["scrape_configs"] if j["job_name"] == "phase5-services")
    protocols = job.get("scrape_protocols") or stack.prom_config.get("global", {}).get("scrape_protocols")
    assert protocols is None or "OpenMetricsText1.0.0" in protocols, protocols
