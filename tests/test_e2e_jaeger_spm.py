"""e2e tier: Jaeger's service performance monitoring (the Monitor tab, jaeger.spanMetrics, issue
28) with the real binaries. Spans sent over OTLP to the real Jaeger (the rendered configuration:
the spanmetrics connector in its pipeline, the Prometheus exporter on http-spm) become span-metric
series that the real Prometheus scrapes as rendered (the monitoring-stack job discovers
<release>-jaeger-headless through the API server and keeps what its keep-list holds), and Jaeger's
metrics API, the one the Monitor tab calls (/api/metrics/calls, /latencies, /errors), answers for
that service from that Prometheus.

One stack per module (harness.stack.Stack, jaeger=True; what is swapped: its docstring, 12 and
12b). Render inputs, through the chart's own values: a 1 s flush interval (default 15 s) so the
test takes seconds, one dimension and three buckets, so that both are seen to follow the values.
"""
import math
import time

import pytest

from harness import jaeger as jh
from harness import tools
from harness.stack import Stack

pytestmark = pytest.mark.e2e

SERVICE = "phase5-backend"
OPERATION = "GET /api/tasks"
DIMENSION = "http.request.method"          # the span attribute ...
DIMENSION_LABEL = "http_request_method"    # ... and the label Prometheus stores
BUCKETS = ["5ms", "50ms", "500ms"]
CALLS = "traces_span_metrics_calls_total"
LATENCY = "traces_span_metrics_duration_milliseconds_bucket"
VALUES = {"jaeger.spanMetrics.flushInterval": "1s", "jaeger.spanMetrics.dimensions": [DIMENSION],
          "jaeger.spanMetrics.histogramBuckets": BUCKETS}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, request):
    tools.require("jaeger")
    st = Stack(tmp_path_factory.mktemp("e2e-spm"), set_values=VALUES, jaeger=True)
    request.addfinalizer(st.stop)
    st.start()
    return st


def _send(stack, count, errors=0):
    return jh.send_otlp_traces(stack.jaeger.url("http-otlp"), SERVICE, count, OPERATION,
                               attributes={DIMENSION: "GET"}, errors=errors)


def _calls_in_prometheus(stack):
    return sum(float(s["value"][1]) for s in stack.query(f'{CALLS}{{service_name="{SERVICE}"}}'))


@pytest.fixture(scope="module")
def traffic(stack):
    """Two rounds of spans (20, of them 5 failed; then 20 more, 5 failed), each seen in Prometheus
    before the next, so the counters have increased between two scrapes (what rate() needs)."""
    _send(stack, 20, errors=5)
    first = stack.wait(lambda: _calls_in_prometheus(stack) >= 20 and _calls_in_prometheus(stack), 60,
                       what=f"{CALLS} of {SERVICE} in Prometheus")
    _send(stack, 20, errors=5)
    stack.wait(lambda: _calls_in_prometheus(stack) >= first + 20, 60, what=f"{CALLS} of {SERVICE} increasing")
    return stack


def test_span_metrics_target_is_scraped_by_the_monitoring_stack_job(traffic):
    svc = f"{traffic.release}-jaeger-headless"
    targets = [t for t in traffic.targets() if t["labels"].get("service") == svc]
    assert targets, f"no target of Service {svc}; targets: {sorted({t['labels'].get('service') for t in traffic.targets()})}"
    for t in targets:
        assert t["labels"]["job"] == "monitoring-stack", t["labels"]
        assert t["health"] == "up", f"{t['scrapeUrl']}: {t['lastError']}"
        assert t["scrapeUrl"].endswith(":8889/metrics"), t["scrapeUrl"]


def test_spans_become_span_metric_series_in_prometheus(traffic):
    """The two series the Monitor tab reads, with its labels, the dimension of the values and the
    buckets of the values; failed spans under status_code=STATUS_CODE_ERROR."""
    calls = traffic.query(f'{CALLS}{{service_name="{SERVICE}"}}')
    by_status = {s["metric"].get("status_code"): float(s["value"][1]) for s in calls}
    assert by_status.get("STATUS_CODE_ERROR", 0) >= 10 and by_status.get("STATUS_CODE_UNSET", 0) >= 30, by_status
    for s in calls:
        m = s["metric"]
        assert m.get("span_name") == OPERATION and m.get("span_kind") == "SPAN_KIND_SERVER", m
        assert m.get(DIMENSION_LABEL) == "GET", f"dimension {DIMENSION} not a label: {m}"
        assert m.get("job") == "monitoring-stack" and m.get("service") == f"{traffic.release}-jaeger-headless", m
    les = {float(s["metric"]["le"]) for s in traffic.query(f'{LATENCY}{{service_name="{SERVICE}"}}')}
    assert les == {5.0, 50.0, 500.0, math.inf}, f"buckets {sorted(les)}, values {BUCKETS}"


def test_what_nobody_reads_is_not_stored(traffic):
    """The keep-list of the monitoring-stack job holds the two series Jaeger reads (declared in the
    series inventory), not the histogram's _sum and _count, which the target does expose."""
    import urllib.request
    svc = f"{traffic.release}-jaeger-headless"
    (target,) = [t for t in traffic.targets() if t["labels"].get("service") == svc]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": traffic.net.url}))
    with opener.open(target["scrapeUrl"], timeout=10) as r:
        exposed = r.read().decode()
    for name in ("traces_span_metrics_duration_milliseconds_sum", "traces_span_metrics_duration_milliseconds_count"):
        assert f"\n{name}{{" in exposed, f"{name} is not exposed at {target['scrapeUrl']}"
        assert not traffic.query(f'{name}{{service="{svc}"}}'), f"{name} is stored though nothing reads it"


def _points(family):
    """{frozenset(labels): [values]} of a MetricFamily from Jaeger's metrics API."""
    out = {}
    for m in family.get("metrics") or []:
        labels = frozenset((lab["name"], lab["value"]) for lab in m.get("labels") or [])
        vals = []
        for p in m.get("metricPoints") or []:
            v = (p.get("gaugeValue") or {}).get("doubleValue")
            vals.append(float(v) if v is not None else 0.0)
        out[labels] = vals
    return out


def _ask(stack, kind, **params):
    now_ms = int(time.time() * 1000)
    q = {"endTs": now_ms, "lookback": 300_000, "step": 5_000, "ratePer": 60_000, "spanKind": "server",
         "groupByOperation": "true", **params}
    return jh.metrics_api(stack.jaeger.url("http-query"), kind, [SERVICE], **q)


@pytest.mark.parametrize("kind,params", [("calls", {}), ("latencies", {"quantile": 0.95}), ("errors", {})])
def test_jaegers_metrics_api_answers_from_prometheus(traffic, kind, params):
    """What the Monitor tab shows: call rate, p95 latency and error rate of the service and its
    operation, each a positive, finite value (Jaeger's reader computed them in Prometheus from the
    stored span metrics; 5 of every 20 spans failed, each span took 5 ms)."""
    def answer():
        pts = _points(_ask(traffic, kind, **params))
        mine = {k: [v for v in vals if not math.isnan(v)] for k, vals in pts.items()
                if ("service_name", SERVICE) in k}
        return mine if any(v and max(v) > 0 for v in mine.values()) else None
    got = traffic.wait(answer, 60, what=f"Jaeger /api/metrics/{kind} for {SERVICE} non-empty and positive")
    labels = set().union(*got)
    assert ("operation", OPERATION) in labels, f"{kind}: labels {labels}"
    top = max(max(v) for v in got.values() if v)
    assert math.isfinite(top), (kind, got)
    if kind == "errors":
        assert 0.1 <= top <= 0.5, f"error rate {top}, 5 of 20 spans failed"
    if kind == "latencies":
        assert 0 < top <= 50.0, f"p95 latency {top} ms of 5 ms spans (buckets le=5 and le=50)"


def test_minstep_and_an_unknown_service(traffic):
    """The Monitor tab asks minstep first; a service without spans has no series (an empty
    answer, not an error)."""
    minstep = jh.metrics_api(traffic.jaeger.url("http-query"), "minstep", [])
    assert minstep.get("data") == 1, f"minstep (ms) {minstep}: Jaeger's Prometheus reader answers 1"
    other = _points(jh.metrics_api(traffic.jaeger.url("http-query"), "calls", ["no-such-service"],
                                   endTs=int(time.time() * 1000), lookback=300_000, step=5_000, ratePer=60_000))
    assert not any(vals for vals in other.values()), other
