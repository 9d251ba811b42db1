"""Unit tier: the metric table of docs/integration.md lists exactly the application metrics the
rendered recording rules, alerts and Grafana dashboards read - with their types and the labels
the queries filter on - so the service teams' contract cannot drift from what the stack reads."""
import re

import pytest

from harness import dashboards as dash
from harness.promql import selectors
from harness import prometheus as prom
from harness.paths import ROOT
from test_unit_grafana import EXPORTER_METRICS

pytestmark = pytest.mark.unit

DOC = ROOT / "docs" / "integration.md"
HEADER = re.compile(r"^\|\s*Metric\s*\|\s*Type\s*\|\s*Labels your code sets\s*\|\s*Read by\s*\|\s*$")
TYPES = {"counter", "gauge", "histogram"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Labels Prometheus adds at scrape time (or histogram_quantile needs), and `cluster`, the external
# label (prometheus.externalLabels) the dashboards' $cluster variable filters on: not the service's to set.
SCRAPE_LABELS = {"__name__", "namespace", "service", "pod", "le", "job", "instance", "cluster"}

# The exporter allow-lists the Grafana tests keep (upstream names, e.g. pg_*, kafka_brokers, up).
EXPORTER_NAMES = set().union(*EXPORTER_METRICS.values())
# Whole families that never come from a Phase 5 service: kube-state-metrics, cAdvisor,
# node-exporter, the kubelet, postgres_exporter, redis_exporter, and the stack's own Prometheus
# and Alertmanager (the monitoring-stack alerts), and Prometheus' own ALERTS series (PodDown holds
# on it while kube-state-metrics is blind). (kafka_ is NOT such a prefix:
# kafka_consumer_lag is an application metric; kafka_exporter's names are in EXPORTER_NAMES.)
NON_APPLICATION_PREFIXES = ("kube_", "container_", "node_", "kubelet_", "pg_", "redis_", "prometheus_", "alertmanager_",
                            "ALERTS")


def doc_table(text):
    """{metric: (type, set of label names)} from the metric table (the one with the HEADER)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if HEADER.match(line)), None)
    assert start is not None, f"{DOC}: no table with the header | Metric | Type | Labels your code sets | Read by |"
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 4, f"{DOC}: malformed row: {line}"
        metric = re.fullmatch(r"`([a-zA-Z_:][a-zA-Z0-9_:]*)`", cells[0])
        assert metric, f"{DOC}: metric cell is not one backticked name: {cells[0]!r}"
        assert cells[1] in TYPES, f"{DOC}: {cells[0]}: type {cells[1]!r} not one of {sorted(TYPES)}"
        assert metric.group(1) not in rows, f"{DOC}: {metric.group(1)} listed twice"
        # Label names are the backticked words before any parenthesis (values come inside them).
        labels = set(re.findall(r"`([a-zA-Z_]\w*)`", re.sub(r"\([^)]*\)", "", cells[2])))
        rows[metric.group(1)] = (cells[1], labels)
    return rows


@pytest.fixture(scope="module")
def read():
    """{metric name: {source: label names matched}} for every series the stack reads."""
    _, rules = prom.rendered()
    exprs = []
    for name, text in rules.items():
        for rec, rule in prom.records(text).items():
            exprs.append((f"recording rule {rec}", rule["expr"]))
        for alert, rule in prom.alerts(text).items():
            exprs.append((f"alert {alert}", rule["expr"]))
    exprs += [(f"dashboard {uid}: {title}", expr) for uid, title, expr in dash.panel_queries()]
    records = {rec for text in rules.values() for rec in prom.records(text)}
    assert len(records) >= 13 and len(exprs) > 40, f"suspiciously little read: {len(records)} records, {len(exprs)} queries"
    found = {}
    for source, expr in exprs:
        for metric, labels in selectors(expr):
            assert metric, f"{source}: selector without a metric name: {expr}"
            if metric in records:
                continue
            found.setdefault(metric, {}).setdefault(source, set()).update(labels)
    return found


def is_application(metric):
    return metric not in EXPORTER_NAMES and not metric.startswith(NON_APPLICATION_PREFIXES)


def base_name(metric, table):
    """http_request_duration_seconds_bucket -> http_request_duration_seconds when the table
    lists that name as a histogram."""
    for suffix in HISTOGRAM_SUFFIXES:
        base = metric.removesuffix(suffix)
        if base != metric and table.get(base, ("",))[0] == "histogram":
            return base
    return metric


def test_table_lists_exactly_the_application_metrics_read(read):
    table = doc_table(DOC.read_text())
    application = {}
    for metric, sources in read.items():
        if is_application(metric):
            application.setdefault(base_name(metric, table), []).extend(sources)
    missing = {m: sorted(s)[:3] for m, s in application.items() if m not in table}
    extra = sorted(set(table) - set(application))
    assert not missing, f"{DOC}: application metrics read but not in the table: {missing}"
    assert not extra, f"{DOC}: table lists metrics no rule, alert or dashboard reads: {extra}"


def test_table_types_match_the_names(read):
    table = doc_table(DOC.read_text())
    problems = []
    for metric, (kind, _) in table.items():
        if kind == "counter" and not metric.endswith("_total"):
            problems.append(f"{metric}: a counter must end in _total")
        if kind != "counter" and metric.endswith("_total"):
            problems.append(f"{metric}: ends in _total but is documented as {kind}")
        if kind == "histogram" and f"{metric}_bucket" not in read:
            problems.append(f"{metric}: documented as histogram but nothing reads {metric}_bucket")
    assert not problems, "\n".join(problems)


def test_table_names_every_label_the_queries_filter_on(read):
    table = doc_table(DOC.read_text())
    problems = []
    for metric, sources in read.items():
        row = table.get(base_name(metric, table))
        if not is_application(metric) or row is None:
            continue
        for source, labels in sources.items():
            for label in sorted(labels - SCRAPE_LABELS - row[1]):
                problems.append(f"{source}: filters {metric} on `{label}`, which the table does not list")
    assert not problems, "\n".join(problems)


def test_doc_covers_discovery_traces_and_logs():
    text = DOC.read_text()
    for needle in ('prometheus.io/scrape: "true"', "prometheus.io/port", "phase5-.*", "kind: Service",
                   ":4317", ":4318", ":9411", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME",
                   "@opentelemetry/sdk-node", '"level"', '"traceID"', "prom-client"):
        assert needle in text, f"{DOC}: does not mention {needle!r}"
