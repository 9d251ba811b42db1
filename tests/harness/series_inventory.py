"""One inventory of the series the chart reads: every metric name the RENDERED rule files
(recording rules, alerts, SLO rules, rules.extra) and every Grafana panel and template-variable
query read, with the labels each selector needs, and the scrape job that stores it. The
Prometheus keep-lists (charts/.../prometheus/files/keep-lists.yaml) are generated from it.

    from harness import series_inventory as inv
    inv.inventory()        # {metric: Series(labels, readers, job)}
    inv.keep_lists()       # {infrastructure job: [metric, ...]}, what files/keep-lists.yaml holds

    .venv/bin/python scripts/series_inventory.py [--write]   # print the inventory; rewrite the file

The parser: `promql-parser` from PyPI (pinned in requirements.txt): Python bindings of the Rust
`promql-parser` crate (GreptimeDB's PromQL parser), a real grammar-based parser, not regexes.
It was already the harness's parser (harness/promql.py, the runbook and dashboard checks), parses
every rendered expression (subqueries, `@` and offset modifiers, `group_left`,
`{__name__=~"a|b"}` included; tests/test_unit_series_inventory.py parses them all) and adds no
build step. The alternative, a small Go program around
github.com/prometheus/prometheus/promql/parser at promtool's version (v0.316.0), would be the
reference grammar itself, but needs a tools.versions entry, a build recipe and a Go build in
`make tools` (BUILD_COST below). What the two parsers could disagree on is caught anyway: the
real grammar checks every rule file (`promtool check rules`, conformance tier) and the real
Prometheus runs every rule and panel query (e2e tier, test_e2e_pipeline.py).

BUILD_COST, measured here (2026-12-02, 2 cores): a 30-line Go program calling
parser.NewParser(parser.Options{}).ParseExpr and parser.Inspect at v0.316.0 compiles 263
packages; with an empty Go build cache (module cache warm) its build took 182 s, a rebuild 0.5 s
(10 MB binary). promtool shares most of those packages, so after `make tools` it would be cheap,
but on a fresh machine it is three more minutes of CI's 90 for what promql-parser already does.

Programs other than Prometheus' rules and Grafana read series too. Each is declared here as a
CONSUMER: a function of a render returning [(reader, expr)], the PromQL it sends, built from the
rendered configuration of that program. Jaeger's Monitor tab (jaeger.spanMetrics) is one: its
Prometheus metrics reader (internal/storage/metricstore/prometheus/metricstore/reader.go of
jaegertracing/jaeger v1.76.0) asks for <metric_namespace>_calls[_total] and
<metric_namespace>_duration[_milliseconds]_bucket by service_name, span_name, span_kind,
status_code and le, so those series are "read" like a rule's and kept by the monitoring-stack job.

Dashboard queries have Grafana's macros and template variables substituted first
(harness.dashboards.substitute: $__rate_interval -> 1m, $namespace -> .*, ...), as the e2e tier
does before running them.

Which job stores a metric: a `job="..."` matcher on the selector when there is one, else the
name's prefix (JOB_PREFIXES: kube_ -> kube-state-metrics, node_ -> node-exporter, container_ ->
cadvisor, kubelet_ -> kubelet, the stack's own prefixes -> monitoring-stack); every other name is
a Phase 5 application or exporter series (jobs phase5-services/phase5-exporters, which keep
everything by default). Names recorded by the chart's own rules, the alert series (ALERTS,
ALERTS_FOR_STATE) and the series Prometheus writes per target (up, scrape_*) are never scraped
and need no keep-list.
"""
import dataclasses
import re

import promql_parser
import yaml

from . import dashboards
from . import prometheus as prom
from .paths import SUBCHARTS_DIR, ci_values, profiles

KEEP_LISTS_FILE = SUBCHARTS_DIR / "prometheus" / "files" / "keep-lists.yaml"

# The infrastructure jobs of files/prometheus.yml that store only what the chart reads.
INFRA_JOBS = ("kubelet", "cadvisor", "kube-state-metrics", "node-exporter", "monitoring-stack")
# Jobs of the Phase 5 services and exporters (keep everything unless told otherwise).
PHASE5_JOB = "phase5"
PHASE5_JOBS = ("phase5-services", "phase5-exporters")

# Name prefix -> the job whose targets expose it (the first match wins).
JOB_PREFIXES = (
    ("kube_", "kube-state-metrics"),
    ("node_", "node-exporter"),
    ("container_", "cadvisor"),
    ("machine_", "cadvisor"),
    ("kubelet_", "kubelet"),
    ("prometheus_", "monitoring-stack"),
    ("alertmanager_", "monitoring-stack"),
    ("loki_", "monitoring-stack"),       # Loki itself and Alloy's loki.write component
    ("promtail_", "monitoring-stack"),
    ("otelcol_", "monitoring-stack"),     # Jaeger v2 (OpenTelemetry Collector telemetry)
    ("jaeger_", "monitoring-stack"),
    ("grafana_", "monitoring-stack"),
    ("thanos_", "monitoring-stack"),
    ("traces_span_metrics_", "monitoring-stack"),   # Jaeger's span metrics (jaeger.spanMetrics)
)

# Series no target exposes: Prometheus writes them.
PER_TARGET = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
              "scrape_series_added", "scrape_timeout_seconds", "scrape_sample_limit", "scrape_body_size_bytes"}
ALERT_SERIES = {"ALERTS", "ALERTS_FOR_STATE"}

_PLAIN_NAMES = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*(\|[a-zA-Z_:][a-zA-Z0-9_:]*)*")


@dataclasses.dataclass
class Series:
    """A metric the chart reads: the labels its selectors match on or its expressions group,
    join or relabel by (generous: a label a join or label_replace brings in is listed for every
    selector under it), who reads it ("rule <file>: <name>", "panel <uid>: <title>",
    "variable <uid>: $<name>") and the job that stores it."""
    labels: set
    readers: set
    job: str


@dataclasses.dataclass
class Selector:
    names: list          # metric names read ([None]: a selector without a name)
    job: str             # the job="..." matcher's value, "" when none
    labels: set          # matcher labels and the labels the enclosing expressions need


def _names(vs):
    """The metric names a vector selector reads: its name, or the values of an equality or
    alternation-of-plain-names regex matcher on __name__ (Phase5MetricsMissing's form)."""
    if vs.name:
        return [vs.name]
    for m in vs.matchers.matchers:
        if m.name == "__name__":
            if str(m.op) in ("MatchOp.Equal", "=") or _PLAIN_NAMES.fullmatch(m.value):
                return m.value.split("|")
            return [None]
    return [None]


def _selectors(node, context=frozenset()):
    """Every vector selector under node, with the labels the expressions around it need:
    aggregation grouping (by and without), vector matching (on/ignoring and group_left/right)
    and the source labels of label_replace/label_join."""
    P = promql_parser
    if isinstance(node, P.VectorSelector):
        matchers = list(node.matchers.matchers)
        job = next((m.value for m in matchers if m.name == "job" and str(m.op) in ("MatchOp.Equal", "=")), "")
        labels = {m.name for m in matchers} - {"__name__"}
        return [Selector(_names(node), job, set(labels | context))]
    if isinstance(node, P.MatrixSelector):
        return _selectors(node.vector_selector, context)
    if isinstance(node, (P.SubqueryExpr, P.ParenExpr, P.UnaryExpr)):
        return _selectors(node.expr, context)
    if isinstance(node, P.AggregateExpr):
        ctx = context | set(node.modifier.labels if node.modifier else ())
        out = _selectors(node.expr, ctx)
        if node.param is not None:
            out += _selectors(node.param, context)
        return out
    if isinstance(node, P.BinaryExpr):
        ctx = set(context)
        mod = node.modifier
        if mod is not None:
            if mod.matching is not None:
                ctx |= set(mod.matching.labels)
            ctx |= set(mod.group_labels or ())
        return _selectors(node.lhs, frozenset(ctx)) + _selectors(node.rhs, frozenset(ctx))
    if isinstance(node, P.Call):
        ctx = set(context)
        args = list(node.args)
        strings = [a.val for a in args if isinstance(a, P.StringLiteral)]
        if node.func.name == "label_replace" and len(strings) == 4:
            ctx.add(strings[2])
        elif node.func.name == "label_join" and len(strings) >= 2:
            ctx |= set(strings[2:])
        out = []
        for a in args:
            out += _selectors(a, frozenset(ctx))
        return out
    return []   # number and string literals


def selectors(expr):
    """[Selector] of a PromQL expression, parsed by promql_parser (raises on a parse error)."""
    return _selectors(promql_parser.parse(expr))


def job_of(name, job=""):
    """The scrape job that stores metric `name` (PHASE5_JOB for the services and exporters)."""
    if job:
        return PHASE5_JOB if job in PHASE5_JOBS else job
    for prefix, owner in JOB_PREFIXES:
        if name.startswith(prefix):
            return owner
    return PHASE5_JOB


def rule_expressions(rules):
    """[(reader, expr)] of rendered rule files ({file name: text})."""
    out = []
    for fname, text in sorted(rules.items()):
        for g in (yaml.safe_load(text) or {}).get("groups") or []:
            for r in g.get("rules") or []:
                out.append((f"rule {fname}: {r.get('alert') or r.get('record')}", r["expr"]))
    return out


def recorded_names(rules):
    return {r.get("record") for text in rules.values()
            for g in (yaml.safe_load(text) or {}).get("groups") or [] for r in g.get("rules") or []} - {None}


def dashboard_expressions():
    """[(reader, expr)] of every Prometheus panel query and label_values() variable selector,
    Grafana's macros and variables substituted."""
    out = [(f"panel {uid}: {title}", expr) for uid, title, expr in dashboards.panel_queries()]
    out += [(f"variable {uid}: ${name}", sel) for uid, name, sel, _ in dashboards.variable_queries() if sel]
    return out


def jaeger_spm_expressions(objs, release="p5"):
    """[(reader, expr)]: the three queries Jaeger's Monitor tab sends (calls, latencies, errors;
    reader.go of jaegertracing/jaeger v1.76.0, spanKind=server, groupByOperation=true) to the
    Prometheus of the rendered Jaeger's metric backend; none when Jaeger or its metrics backend is
    not rendered. The metric names follow the backend's settings as the reader builds them."""
    try:
        cm = objs.get("ConfigMap", f"{release}-jaeger")
    except (KeyError, LookupError):
        return []
    cfg = yaml.safe_load(cm["data"]["config.yaml"])
    backends = ((cfg.get("extensions") or {}).get("jaeger_storage") or {}).get("metric_backends") or {}
    out = []
    for name, b in sorted(backends.items()):
        p = b.get("prometheus")
        if p is None:
            continue
        ns = p.get("metric_namespace", "traces_span_metrics")
        calls = f"{ns}_calls" + ("_total" if p.get("normalize_calls") else "")
        unit = {"ms": "milliseconds", "s": "seconds"}[p.get("latency_unit", "ms")]
        latency = f"{ns}_duration" + (f"_{unit}" if p.get("normalize_duration") else "")
        sel = 'service_name =~ "phase5-backend", span_kind =~ "SPAN_KIND_SERVER"'
        by = "service_name,span_name"
        err = f'sum(rate({calls}{{service_name =~ "phase5-backend", status_code = "STATUS_CODE_ERROR", ' \
              f'span_kind =~ "SPAN_KIND_SERVER"}}[10m])) by ({by})'
        out += [
            (f"jaeger {name}: calls", f"sum(rate({calls}{{{sel}}}[10m])) by ({by})"),
            (f"jaeger {name}: latencies", f"histogram_quantile(0.95, sum(rate({latency}_bucket{{{sel}}}[10m])) by ({by},le))"),
            (f"jaeger {name}: errors", f"{err} / sum(rate({calls}{{{sel}}}[10m])) by ({by})"),
        ]
    return out


# Programs that read series from Prometheus besides its rules and Grafana: f(render) -> [(reader, expr)].
CONSUMERS = (jaeger_spm_expressions,)


def consumer_expressions(objs):
    return [e for f in CONSUMERS for e in f(objs)]


def rendered(values_files=(), set_values=None):
    """(prometheus.yml, rule files, consumers' [(reader, expr)]) of one render."""
    from .render import render
    config, rules = prom.rendered(values_files, set_values)
    return config, rules, consumer_expressions(render(values_files, set_values))


def values_sets():
    """The values the inventory renders with: the defaults, every profile in values/ and every
    ci/*-values.yaml scenario (an alert or job one of them switches on reads what it reads too)."""
    return [()] + [(p,) for p in profiles()] + [(p,) for p in ci_values()]


def renders():
    """rendered() of each of values_sets()."""
    return [rendered(v) for v in values_sets()]


def inventory(rendered=None):
    """{metric: Series} over the renders (default: renders(); each a rendered() triple) and the
    dashboards.
    Raises ValueError for a selector without a metric name (no keep-list can hold it)."""
    rendered = renders() if rendered is None else rendered
    exprs, recorded = [], set()
    for _, rules, consumers in rendered:
        exprs += rule_expressions(rules) + list(consumers)
        recorded |= recorded_names(rules)
    exprs += dashboard_expressions()
    out = {}
    for reader, expr in exprs:
        for sel in selectors(expr):
            for name in sel.names:
                if name is None:
                    raise ValueError(f"{reader}: a selector without a metric name: {expr}")
                if name in recorded or name in PER_TARGET or name in ALERT_SERIES:
                    continue
                s = out.setdefault(name, Series(set(), set(), job_of(name, sel.job)))
                if s.job != job_of(name, sel.job):
                    raise ValueError(f"{name}: read from job {s.job} and from job {job_of(name, sel.job)} ({reader})")
                s.labels |= sel.labels - {"", "__name__"}
                s.readers.add(reader)
    return out


def keep_lists(inv=None):
    """{infrastructure job: sorted metric names} from the inventory."""
    inv = inventory() if inv is None else inv
    out = {job: [] for job in INFRA_JOBS}
    for name in sorted(inv):
        if inv[name].job in out:
            out[inv[name].job].append(name)
    return out


HEADER = """\
# GENERATED by scripts/series_inventory.py --write from the series the chart reads: every rule,
# alert and SLO rule the chart renders (defaults, values/*.yaml, ci/*-values.yaml) and every Grafana
# panel and variable query, and the queries of the other readers (CONSUMERS there: Jaeger's
# Monitor tab), parsed as PromQL (tests/harness/series_inventory.py). Do not edit:
# a unit test fails when this file and the inventory differ. files/prometheus.yml keeps only
# these metric names (plus scrape.jobs.<job>.extraKeep) for each job; README "What Prometheus stores".
"""


def keep_lists_text(lists=None):
    lists = keep_lists() if lists is None else lists
    return HEADER + yaml.safe_dump(lists, sort_keys=False, default_flow_style=False)


def committed_keep_lists():
    return yaml.safe_load(KEEP_LISTS_FILE.read_text())
