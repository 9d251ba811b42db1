"""Unit tier: the Grafana subchart. Dashboards (JSON, uids, panel ids, datasources,
PromQL that parses and reads only metrics something produces, the spec's panels),
provisioned datasources and their correlations, credentials (never a literal, random
and kept on upgrade, existingSecret), hardening (read-only root with writable mounts),
Service, Ingress and persistence."""
import base64
import json
import re

import promql_parser
import pytest
import yaml

from harness.promql import metric_names
from harness import dashboards as dash
from harness import grafana as gf
from harness import ksm, params, paths, spec, upstream_metrics
from harness.manifests import component, ident
from harness.render import render, render_error, render_raw, umbrella_copy

pytestmark = pytest.mark.unit

CHART = paths.SUBCHARTS_DIR / "grafana"
DATASOURCE_UIDS = {"prometheus": "prometheus", "loki": "loki", "jaeger": "jaeger"}  # uid -> type

# The spec's "Grafana Dashboards" section, panel by panel (titles as the dashboards show them).
SPEC_DASHBOARDS = {
    "phase5-overview": ("System Overview", [
        "Request Rate by Service",
        "Error Rate",
        "Response Time Percentiles (p50, p95, p99)",
        "Active Pods",
        "WebSocket Connections",
        "CPU Usage by Pod",
        "Memory Usage by Pod",
        "Database Connection Pool",
        "Kafka Consumer Lag",
    ]),
    "phase5-database": ("Database & Infrastructure", [
        "Database Connections (active, idle, max)",
        "Database Query Duration (p95)",
        "Database Transactions per Second",
        "Database Size",
        "Redis Memory Usage",
        "Redis Operations per Second",
        "Kafka Broker Status",
        "Kafka Messages per Second",
        "Disk Usage",
        "Network I/O",
    ]),
    "phase5-agents": ("Agents Monitoring", [
        "Task Operations Rate (by operation and status)",
        "Reminder Delivery Rate (by channel and status)",
        "Reminder Delivery Success Rate",
        "Audit Log Write Rate",
        "Recurring Task Generation",
        "WebSocket Messages (sent/received)",
        "Agent Health Status",
        "Kafka Event Processing Lag by Agent",
    ]),
    # Not the spec's: the error-budget dashboard of prometheus.slos (issue 14).
    "phase5-slo": ("Error Budget", [
        "Error Budget Left (last 3 days)",
        "Burn Rate",
    ]),
}

# Panels beyond the spec's, each with the reason it exists.
EXTRA_PANELS = {
    # issue 14: the monitoring-stack alerts link here; it shows what they measure
    "phase5-overview": ["Alerting Pipeline Health",
                        # issue 25: the stack, storage and node alerts link here; they show what those measure
                        "Monitoring Stack Health", "Volumes and Nodes",
                        # issue 27: ScrapeLimitExceeded links here; how close each job is to its limit
                        "Scrape Size vs Limit",
                        # issue 28: the spec's "HPA current/desired replicas" (Kubernetes metrics)
                        "HPA Replicas (current, desired, max)"],
    # issue 28: the spec's Redis "Hit/miss rates" and "Connected clients", Kafka "Topic partition counts"
    "phase5-database": ["Redis Hit Ratio", "Redis Connected Clients", "Kafka Topic Partitions"],
}

# Metrics a panel may read. Recording rules (the brief's 13), the Phase 5 application
# metrics, and per exporter the upstream series the panels use.
RECORDING_RULES = set(spec.RECORDING_RULES) | set(spec.DASHBOARD_RECORDING_RULES) | {
    "service:slo_objective:ratio", "service:slo_errors:ratio_rate1h", "service:slo_errors:ratio_rate6h",
    "service:slo_errors:ratio_rate1d", "service:slo_errors:ratio_rate3d"}   # prometheus.slos
APPLICATION_METRICS = {
    "http_requests_total",
    "http_request_duration_seconds_bucket", "http_request_duration_seconds_sum", "http_request_duration_seconds_count",
    "task_operations_total",
    "reminder_delivery_total", "reminder_delivery_failed_total",
    "audit_log_writes_total", "audit_log_errors_total",
    "websocket_connections_active", "websocket_messages_sent_total", "websocket_messages_received_total",
    "database_connections_active", "database_connections_idle", "database_connections_max",
    "kafka_consumer_lag",
    "recurring_task_generated_total",
}
EXPORTER_METRICS = {
    "prometheus (synthetic)": {"up"},
    "postgres_exporter": {
        "pg_up", "pg_stat_database_xact_commit", "pg_stat_database_xact_rollback",
        "pg_database_size_bytes", "pg_stat_activity_count", "pg_stat_activity_max_tx_duration",
        "pg_stat_statements_seconds_total", "pg_stat_statements_calls_total",
    },
    "redis_exporter": {"redis_up", "redis_memory_used_bytes", "redis_memory_max_bytes", "redis_commands_processed_total",
                       "redis_keyspace_hits_total", "redis_keyspace_misses_total", "redis_connected_clients"},
    "kafka_exporter": {"kafka_brokers", "kafka_topic_partition_current_offset", "kafka_consumergroup_lag",
                       "kafka_topic_partitions", "kafka_consumergroup_current_offset"},
    "node-exporter": {
        "node_filesystem_avail_bytes", "node_filesystem_size_bytes",
        "node_network_receive_bytes_total", "node_network_transmit_bytes_total",
    },
    "kube-state-metrics": {
        "kube_pod_status_phase", "kube_pod_status_ready", "kube_pod_container_status_restarts_total",
        "kube_deployment_spec_replicas", "kube_deployment_status_replicas_available",
        "kube_horizontalpodautoscaler_status_current_replicas", "kube_horizontalpodautoscaler_spec_max_replicas",
    },
    "cAdvisor": set(),
    "the stack's own Prometheus and Alertmanager": {
        "prometheus_rule_evaluation_failures_total", "prometheus_notifications_errors_total",
        "prometheus_notifications_dropped_total", "alertmanager_notifications_failed_total",
        "prometheus_config_last_reload_successful", "alertmanager_config_last_reload_successful",
        "prometheus_tsdb_compactions_failed_total", "alertmanager_cluster_enabled",
    },
}
# issue 25: the series of the rest of the stack (Loki, the collectors, Jaeger, the kubelet, the TSDB)
# and kube-state-metrics' DaemonSet and node series, as the documented tables list them.
EXPORTER_METRICS["upstream components (harness/upstream_metrics.py)"] = set(upstream_metrics.documented())
EXPORTER_METRICS["kube-state-metrics"] |= set(ksm.KSM_METRICS)
ALLOWED_METRICS = RECORDING_RULES | APPLICATION_METRICS | set().union(*EXPORTER_METRICS.values())

# A trace id as the Phase 5 services log it (JSON logs and logfmt).
SAMPLE_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SAMPLE_LOG_LINES = [
    f'{{"level":"info","msg":"task created","traceID":"{SAMPLE_TRACE_ID}"}}',
    f'level=info msg="reminder sent" trace_id={SAMPLE_TRACE_ID} channel=email',
]


@pytest.fixture(scope="module")
def boards():
    return dash.load()


@pytest.fixture(scope="module")
def default_objs():
    return render()


# ---------------------------------------------------------------- dashboards

def test_dashboard_files_are_the_three_spec_dashboards(boards):
    assert set(boards) == set(SPEC_DASHBOARDS), f"dashboard uids {sorted(boards)}"
    for f in sorted(dash.DASHBOARDS_DIR.glob("*.json")):
        d = json.loads(f.read_text())
        assert f.stem == d["uid"], f"{f.name}: uid {d['uid']!r} differs from the file name"


@pytest.mark.parametrize("uid", SPEC_DASHBOARDS)
def test_dashboard_has_exactly_the_spec_panels(boards, uid):
    title, want = SPEC_DASHBOARDS[uid]
    want = want + EXTRA_PANELS.get(uid, [])
    d = boards[uid]
    assert d["title"] == title, f"{uid}: title {d['title']!r}, want {title!r}"
    got = [p["title"] for p in dash.panels(d) if p.get("type") != "row"]
    assert sorted(got) == sorted(want), (
        f"{uid}: missing {sorted(set(want) - set(got))}, unexpected {sorted(set(got) - set(want))}, "
        f"duplicates {sorted({t for t in got if got.count(t) > 1})}")


@pytest.mark.parametrize("uid", SPEC_DASHBOARDS)
def test_dashboard_panel_ids_unique_and_layout_sane(boards, uid):
    ps = dash.panels(boards[uid])
    ids = [p.get("id") for p in ps]
    assert all(isinstance(i, int) for i in ids), f"{uid}: panel without an integer id: {ids}"
    assert len(ids) == len(set(ids)), f"{uid}: duplicate panel ids {ids}"
    cells = {}
    for p in ps:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, f"{uid}/{p['title']}: gridPos {g} out of 24 columns"
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{uid}: {p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]


@pytest.mark.parametrize("uid", SPEC_DASHBOARDS)
def test_dashboard_has_namespace_and_service_variables(boards, uid):
    names = {v["name"]: v for v in boards[uid]["templating"]["list"]}
    for var in ("namespace", "service"):
        assert var in names, f"{uid}: no ${var} template variable; has {sorted(names)}"
        assert names[var]["datasource"] == dash.DATASOURCE, f"{uid}: ${var} not on the $datasource variable"
        assert names[var].get("includeAll") and names[var].get("allValue") == ".*", f"{uid}: ${var} has no All (.*)"
    used = " ".join(t["expr"] for _, t in dash.prometheus_targets(boards[uid]))
    assert "$namespace" in used, f"{uid}: no panel filters on $namespace"


def test_every_target_uses_a_provisioned_datasource(boards, default_objs):
    """Every datasource a dashboard names, through its $datasource variable's default where it uses
    the variable, is provisioned with that type."""
    provisioned = gf.datasources(default_objs)
    assert set(DATASOURCE_UIDS) <= set(provisioned)
    bad = []
    for uid, d in boards.items():
        var = dash.datasource_variable(d)
        if var is not None and provisioned.get(var["current"]["value"], {}).get("type") != var["query"]:
            bad.append(f"{uid}: $datasource defaults to {var['current']['value']!r}, not a provisioned {var['query']} datasource")
        for v in d["templating"]["list"]:
            if "datasource" in v and dash.resolve_datasource(d, v["datasource"]) not in provisioned:
                bad.append(f"{uid}: variable {v['name']}: datasource {v['datasource']}")
        for p in dash.panels(d):
            for ds in [p.get("datasource")] + [t.get("datasource") for t in p.get("targets", [])]:
                if ds is None:
                    continue
                ds_uid = dash.resolve_datasource(d, ds)
                if ds_uid not in provisioned:
                    bad.append(f"{uid}/{p['title']}: datasource uid {ds.get('uid')!r} is not provisioned")
                elif provisioned[ds_uid]["type"] != ds.get("type"):
                    bad.append(f"{uid}/{p['title']}: datasource type {ds.get('type')!r} != {provisioned[ds_uid]['type']!r}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("uid", SPEC_DASHBOARDS)
def test_dashboard_has_datasource_and_cluster_variables(boards, uid):
    """Issue 28: a datasource variable (Prometheus datasources, default the chart's) and a cluster
    variable (the `cluster` label Prometheus adds from prometheus.externalLabels.cluster) whose All
    is ".*", before the variables that depend on them."""
    variables = boards[uid]["templating"]["list"]
    names = [v["name"] for v in variables]
    assert names[:2] == ["datasource", "cluster"], f"{uid}: variables {names}"
    ds, cluster = variables[0], variables[1]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus", f"{uid}: $datasource {ds}"
    assert ds["current"]["value"] == DATASOURCE_UIDS["prometheus"] and not ds.get("multi") and not ds.get("includeAll")
    assert cluster["type"] == "query" and cluster["datasource"] == dash.DATASOURCE, f"{uid}: $cluster {cluster}"
    assert cluster["includeAll"] and cluster["allValue"] == ".*", f"{uid}: $cluster has no All (.*)"
    assert cluster["current"]["value"] == ["$__all"], f"{uid}: $cluster does not default to All"
    (_, var, selector, label), = [q for q in dash.variable_queries() if q[0] == uid and q[1] == "cluster"]
    assert label == "cluster" and selector == "up", f"{uid}: $cluster reads label_values({selector}, {label})"
    # The label the variable lists is the one Prometheus adds to what leaves it.
    external = yaml.safe_load((paths.SUBCHARTS_DIR / "prometheus" / "values.yaml").read_text())["externalLabels"]
    assert "cluster" in external, f"prometheus.externalLabels has no cluster label: {external}"
    for v in variables[2:]:
        assert v["type"] != "query" or 'cluster=~"$cluster"' in v["query"]["query"], \
            f"{uid}: ${v['name']} does not follow $cluster: {v['query']['query']}"


def _cluster_matchers(expr):
    """(selectors, those with the cluster matcher) of an expression with $cluster still in it."""
    tree = promql_parser.parse(dash.substitute(expr, {"cluster": "CLUSTER"}))
    sels, matched = [], []

    def pre(node):
        if isinstance(node, promql_parser.VectorSelector):
            sels.append(node)
            if any(m.name == "cluster" and m.value == "CLUSTER" and m.op == promql_parser.MatchOp.Re
                   for m in node.matchers.matchers):
                matched.append(node)
    promql_parser.walk(tree, pre)
    return sels, matched


def test_every_prometheus_query_reads_the_datasource_and_cluster_variables(boards):
    """No fixed Prometheus uid is left in a panel, target or variable, and every vector selector of
    every panel query carries cluster=~"$cluster" (a regex match: its All, ".*", also matches series
    without the label, so every query keeps its data where no cluster label exists)."""
    bad = []
    for uid, d in boards.items():
        for v in d["templating"]["list"]:
            if v.get("datasource", {}).get("type") == "prometheus" and v["datasource"] != dash.DATASOURCE:
                bad.append(f"{uid}: variable {v['name']}: {v['datasource']}")
        for p in dash.panels(d):
            for ds in [p.get("datasource")] + [t.get("datasource") for t in p.get("targets", [])]:
                if ds and ds.get("type") == "prometheus" and ds != dash.DATASOURCE:
                    bad.append(f"{uid}/{p['title']}: datasource {ds}")
        for p, t in dash.prometheus_targets(d):
            sels, matched = _cluster_matchers(t["expr"])
            if not sels or len(sels) != len(matched):
                bad.append(f"{uid}/{p['title']}: {len(sels) - len(matched)} of {len(sels)} selectors lack cluster=~\"$cluster\": {t['expr']}")
    assert not bad, "\n".join(bad)


def test_cluster_check_catches_a_selector_without_the_matcher():
    sels, matched = _cluster_matchers('sum(a{cluster=~"$cluster"}) / sum(b{job="x"})')
    assert len(sels) == 2 and len(matched) == 1
    sels, matched = _cluster_matchers('a{cluster="$cluster"}')      # an equality would lose unlabelled series
    assert len(sels) == 1 and not matched


def test_rendered_dashboards_keep_the_grafana_variables(boards, default_objs):
    """The render resolves only the alert threshold steps: "${datasource}", $cluster and the other
    Grafana variables reach Grafana unchanged (grafana.dashboards matches only "${alerts.<Alert>...}")."""
    shipped = dash.rendered(default_objs)
    for uid, d in boards.items():
        r, d = shipped[uid], dash.with_expr_defaults(d)     # the query placeholders: test_panel_queries_compare_...
        assert r["templating"] == d["templating"], f"{uid}: the render changed the variables"
        for p, q in zip(dash.panels(d), dash.panels(r)):
            assert q.get("datasource") == p.get("datasource") and q.get("targets") == p.get("targets"), \
                f"{uid}/{p['title']}: the render changed the queries or datasources"


def test_every_panel_query_parses_as_promql():
    queries = dash.panel_queries()
    assert len(queries) >= sum(len(p) for _, p in SPEC_DASHBOARDS.values()), "fewer queries than panels"
    bad = []
    for uid, title, expr in queries:
        assert "$" not in expr, f"{uid}/{title}: unsubstituted variable in {expr}"
        try:
            promql_parser.parse(expr)
        except Exception as e:  # the parser raises ValueError with the position
            bad.append(f"{uid}/{title}: {e}: {expr}")
    assert not bad, "\n".join(bad)


def test_every_panel_has_a_query(boards):
    empty = [f"{uid}/{p['title']}" for uid, d in boards.items() for p in dash.panels(d)
             if p.get("type") != "row" and not any(t.get("expr") for t in p.get("targets", []))]
    assert not empty, f"panels without a query: {empty}"


def test_every_metric_read_is_produced_by_something():
    unknown = []
    for uid, title, expr in dash.panel_queries():
        for name in metric_names(expr):
            if name not in ALLOWED_METRICS:
                unknown.append(f"{uid}/{title}: {name!r} is neither a recording rule, an application metric "
                               f"nor in an exporter's allow-list")
    for uid, var, selector, _label in dash.variable_queries():
        for name in metric_names(selector) if selector else []:
            if name not in ALLOWED_METRICS:
                unknown.append(f"{uid}: variable ${var} reads {name!r}")
    assert not unknown, "\n".join(unknown)


def test_recording_rules_preferred_over_raw_series(default_objs):
    """Where a recording rule exists, panels read it instead of recomputing it. Except a target
    asking for exemplars ("exemplar": true, issue 28): recorded series carry none, so it reads the
    raw series, and it must recompute exactly the expression of a recording rule (its line is the
    recorded one; the rule counts as shown)."""
    raw_covered = {"http_requests_total", "http_request_duration_seconds_bucket", "task_operations_total",
                   "reminder_delivery_total", "audit_log_writes_total", "websocket_connections_active",
                   "kafka_consumer_lag", "container_cpu_usage_seconds_total", "container_memory_working_set_bytes"}
    records = _recording_rules(default_objs)
    offenders, used = [], set()
    for uid, d in dash.load().items():
        for p, t in dash.prometheus_targets(d):
            names = metric_names(dash.substitute(t["expr"]))
            used |= set(names)
            raw = [n for n in names if n in raw_covered]
            if raw and t.get("exemplar"):
                bare = re.sub(r"\{[^}]*\}", "", t["expr"])
                same = [r for r, exprs in records.items() if any(e.strip() in bare for e in exprs)]
                if same:
                    used |= set(same)
                    continue
                offenders.append(f"{uid}/{p['title']}: exemplar target {t['refId']} recomputes no recording rule: {t['expr']}")
            offenders += [f"{uid}/{p['title']}: reads {n}" for n in raw]
    assert not offenders, "\n".join(offenders)
    assert RECORDING_RULES <= used, f"recording rules no panel shows: {sorted(RECORDING_RULES - used)}"


# Issue 27: series that grow with the pods - one per Phase 5 pod, container or scrape target, or a
# virtual interface per pod on each node (node_exporter's veths), and the per-pod records (pod:...).
PER_TARGET = ("up", "scrape_")
POD_SCALED_PREFIXES = PER_TARGET + ("container_", "kube_pod_", "node_network_", "pod:")
POD_JOBS = ("phase5-services", "phase5-exporters")      # the scrape jobs with a target per pod
POD_MARK = "__the_pod_variable__"


def _unbounded_pod_selectors(expr):
    """The selectors of a panel query (variables at their defaults, $pod a marker) that read series
    growing with the pods without the $pod drill-down restricting them; `up` and scrape_* also pass
    when a `job` matcher keeps the jobs with a target per pod out."""
    out = []

    def pre(node):
        if not isinstance(node, promql_parser.VectorSelector) or not node.name:
            return
        name = node.name
        if not (name in APPLICATION_METRICS or name.startswith(POD_SCALED_PREFIXES)):
            return
        m = {x.name: x for x in node.matchers.matchers}
        if "pod" in m and m["pod"].value == POD_MARK and str(m["pod"].op).endswith(("Re", "Equal")) \
                and "Not" not in str(m["pod"].op):
            return
        job = m.get("job")
        if job and name.startswith(PER_TARGET) and "Not" not in str(job.op) and \
                not any(re.fullmatch(job.value if str(job.op).endswith("Re") else re.escape(job.value), j) for j in POD_JOBS):
            return
        out.append(name)

    promql_parser.walk(promql_parser.parse(expr), pre)
    return out


def test_no_panel_reads_series_that_grow_with_the_pods_by_default():
    """At 10,000 pods a panel over one series per pod is seconds of work and thousands of lines
    (docs/benchmarks.md, issue 27): every panel reads recording rules for those (per workload,
    service, namespace, job or node), or restricts the raw series with the $pod drill-down, whose
    default is one pod (no All). Recording rules read raw series; panels do not."""
    offenders = []
    for uid, title, expr in dash.panel_queries(variables={"pod": POD_MARK}):
        bad = _unbounded_pod_selectors(expr)
        if bad:
            offenders.append(f"{uid}/{title}: reads {sorted(set(bad))} for every pod: {expr}")
    assert not offenders, "\n".join(offenders)


def test_the_pod_check_catches_a_raw_per_pod_query():
    assert _unbounded_pod_selectors('max by (pod) (up{namespace=~".*"})') == ["up"]
    assert _unbounded_pod_selectors('workload:container_cpu_usage:ratio_max') == []
    assert _unbounded_pod_selectors('pod:container_cpu_usage:ratio') == ["pod:container_cpu_usage:ratio"]
    assert _unbounded_pod_selectors(f'sum(rate(http_requests_total{{pod=~"{POD_MARK}"}}[5m]))') == []
    assert _unbounded_pod_selectors('sum(rate(http_requests_total{pod=~".*"}[5m]))') == ["http_requests_total"]
    assert _unbounded_pod_selectors('count(up{job=~"monitoring-stack|node-exporter"} == 0)') == []
    assert _unbounded_pod_selectors('count(up{job=~"phase5-.*"} == 0)') == ["up"]
    assert _unbounded_pod_selectors('sum(kube_pod_status_ready{job="kube-state-metrics"})') == ["kube_pod_status_ready"]


@pytest.mark.parametrize("uid, name, label", [("phase5-overview", "pod", "pod"), ("phase5-agents", "pod", "pod"),
                                               ("phase5-database", "node", "instance")])
def test_drill_down_variable_starts_at_one_value(boards, uid, name, label):
    """$pod ($node) has no All and no saved value, so Grafana starts it at the first pod (node) of
    its list: the per-pod (per-node) panels read one by default, not 10,000 pods (100 nodes)."""
    var = next((v for v in boards[uid]["templating"]["list"] if v["name"] == name), None)
    assert var, f"{uid}: no ${name} drill-down variable"
    assert not var.get("includeAll") and not var.get("current"), f"{uid}: ${name} may start at All: {var}"
    assert var["datasource"] == dash.DATASOURCE, f"{uid}: ${name} not on the $datasource variable"
    used = " ".join(t["expr"] for _, t in dash.prometheus_targets(boards[uid]))
    assert f'{label}=~"${name}"' in used, f"{uid}: no panel drills down with ${name}"


def test_error_rate_panel_shows_the_alert_threshold(default_objs):
    p = next(p for p in dash.panels(dash.rendered(default_objs)["phase5-overview"]) if p["title"] == "Error Rate")
    defaults = p["fieldConfig"]["defaults"]
    steps = [s.get("value") for s in defaults["thresholds"]["steps"]]
    assert 0.05 in steps, f"Error Rate thresholds {steps} lack 0.05 (HighErrorRate's 5%)"
    assert defaults.get("unit") == "percentunit", "Error Rate unit is not percentunit (0.05 = 5%)"
    mode = defaults.get("custom", {}).get("thresholdsStyle", {}).get("mode", "off")
    assert mode != "off", "Error Rate does not draw its threshold"
    assert "service:http_requests_errors:ratio_rate5m" in p["targets"][0]["expr"]


# ---------------------------------------------------------------- threshold lines follow the alerts

# Every panel threshold step that stands for an alert (issue 28): (dashboard, panel title) ->
# (alert, complement). The files say so with "${alerts.<Alert>.threshold}" (complement:
# "${1 - alerts.<Alert>.threshold}", a success or used share against a failure or free share).
ALERT_LINES = {
    ("phase5-overview", "Error Rate"): ("HighErrorRate", False),
    ("phase5-overview", "Response Time Percentiles (p50, p95, p99)"): ("HighResponseTime", False),
    ("phase5-overview", "CPU Usage by Pod"): ("HighCPUUsage", False),
    ("phase5-overview", "Memory Usage by Pod"): ("HighMemoryUsage", False),
    ("phase5-overview", "Database Connection Pool"): ("DatabaseConnectionPoolExhausted", False),
    ("phase5-overview", "Kafka Consumer Lag"): ("KafkaConsumerLag", False),
    ("phase5-overview", "Volumes and Nodes"): ("PrometheusTSDBNearRetentionSize", False),
    ("phase5-agents", "Kafka Event Processing Lag by Agent"): ("KafkaConsumerLag", False),
    ("phase5-agents", "Reminder Delivery Success Rate"): ("ReminderDeliveryFailures", True),
    ("phase5-database", "Disk Usage"): ("DiskSpaceLow", True),
}
# Three thresholds set away from their defaults, one of them a complement line.
CUSTOM_THRESHOLDS = {"HighErrorRate": 0.125, "KafkaConsumerLag": 5000, "DiskSpaceLow": 0.25}
_COMPARISON = re.compile(r"[<>]=?\s*(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)(?![\w.])")


def _alert_defaults():
    return yaml.safe_load((paths.SUBCHARTS_DIR / "prometheus" / "values.yaml").read_text())["alerts"]


def _rendered_alert_constants(objs):
    """{alert: [every constant its rendered expression compares with]}."""
    cm = objs.get("ConfigMap", "p5-prometheus-rules")
    out = {}
    for text in cm["data"].values():
        for g in (yaml.safe_load(text) or {}).get("groups", []):
            for r in g["rules"]:
                if "alert" in r:
                    out[r["alert"]] = [float(c) for c in _COMPARISON.findall(r["expr"])]
    return out


def test_every_alert_line_of_the_dashboards_is_known(boards):
    """The files' alert steps are exactly ALERT_LINES: a literal line beside an alert, or a new
    alert step, shows up here."""
    got = {(uid, title): (alert, comp) for uid, d in boards.items()
           for title, _, _, alert, comp in dash.alert_steps(d)}
    assert got == ALERT_LINES, f"alert steps of the files: {got}"
    # A step that stands for an alert has no literal step beside it that could end on its wrong side.
    for uid, d in boards.items():
        for p in dash.panels(d):
            if (uid, p["title"]) in ALERT_LINES:
                for steps in dash.threshold_sets(p):
                    if any(isinstance(s.get("value"), str) for s in steps):
                        assert [s["value"] for s in steps][0] is None and len(steps) == 2, (
                            f"{uid}/{p['title']}: steps {steps}: the base and the alert's step only")


@pytest.mark.parametrize("custom", [{}, CUSTOM_THRESHOLDS], ids=["defaults", "three-custom"])
def test_panel_threshold_lines_follow_the_rendered_alert_thresholds(boards, custom):
    """One source: prometheus.alerts.<Alert>.threshold moves both the alert (its rendered
    expression compares with it) and every panel step that stands for it."""
    objs = render(set_values={f"prometheus.alerts.{a}.threshold": v for a, v in custom.items()})
    shipped = dash.rendered(objs)
    constants = _rendered_alert_constants(objs)
    defaults = _alert_defaults()
    problems = []
    for uid, d in boards.items():
        panels = {p["title"]: p for p in dash.panels(shipped[uid])}
        for title, i, j, alert, comp in dash.alert_steps(d):
            threshold = custom.get(alert, defaults[alert]["threshold"])
            want = round(1 - threshold, 9) if comp else threshold
            got = dash.threshold_sets(panels[title])[i][j]["value"]
            if got != want:
                problems.append(f"{uid}/{title}: step {got!r}, want {want!r} ({'1 - ' if comp else ''}{alert} {threshold})")
            if threshold not in constants.get(alert, []):
                problems.append(f"{alert}: rendered expression compares with {constants.get(alert)}, not {threshold}")
    assert not problems, "\n".join(problems)
    for alert, v in custom.items():
        assert v != defaults[alert]["threshold"], f"{alert}: pick a custom value, not the default"


# Queries that count what is past an alert's threshold (issue 28: no literal beside an alert):
# (dashboard, panel title) -> alert. The files write "${alerts.<Alert>.threshold:<default>}".
ALERT_QUERIES = {
    ("phase5-overview", "Monitoring Stack Health"): "LokiCompactorNotRunning",
    ("phase5-overview", "Volumes and Nodes"): "PersistentVolumeFillingUp",
}
CUSTOM_QUERY_THRESHOLDS = {"LokiCompactorNotRunning": 7200, "PersistentVolumeFillingUp": 0.2}


def test_every_alert_query_of_the_dashboards_is_known_and_defaults_to_the_alerts_default(boards):
    """The files' query placeholders are exactly ALERT_QUERIES, and each default (what a release
    without Prometheus renders, and what the e2e tier queries) is the alert's default threshold."""
    defaults = _alert_defaults()
    got = {(uid, title): alert for uid, d in boards.items() for title, alert, _ in dash.alert_exprs(d)}
    assert got == ALERT_QUERIES, f"alert placeholders in the files' queries: {got}"
    for uid, d in boards.items():
        for title, alert, default in dash.alert_exprs(d):
            assert float(default) == defaults[alert]["threshold"], \
                f"{uid}/{title}: default {default}, prometheus.alerts.{alert}.threshold {defaults[alert]['threshold']}"


@pytest.mark.parametrize("values,want", [
    ({}, None),
    ({f"prometheus.alerts.{a}.threshold": v for a, v in CUSTOM_QUERY_THRESHOLDS.items()}, CUSTOM_QUERY_THRESHOLDS),
    ({"prometheus.enabled": False}, None),
], ids=["defaults", "custom", "no-prometheus"])
def test_panel_queries_compare_with_the_rendered_alert_thresholds(boards, values, want):
    """One source for queries too: the rendered query compares with the alert's threshold (and the
    rendered alert with the same number), the default without Prometheus; nothing of the
    placeholder reaches Grafana."""
    defaults = _alert_defaults()
    objs = render(set_values=values)
    shipped = dash.rendered(objs)
    constants = _rendered_alert_constants(objs) if "prometheus.enabled" not in values else {}
    for (uid, title), alert in ALERT_QUERIES.items():
        threshold = (want or {}).get(alert, defaults[alert]["threshold"])
        panel = next(p for p in dash.panels(shipped[uid]) if p["title"] == title)
        exprs = [t["expr"] for _, t in dash.prometheus_targets({"panels": [panel]})]
        compared = [float(c) for e in exprs for c in _COMPARISON.findall(e)]
        assert threshold in compared, f"{uid}/{title}: queries {exprs} do not compare with {threshold}"
        if constants:
            assert threshold in constants[alert], f"{alert}: rendered expression compares with {constants[alert]}"
    text = json.dumps(shipped)
    assert "${alerts." not in text, "a placeholder reached Grafana"


def test_a_query_placeholder_naming_no_alert_or_no_default_fails_the_render(tmp_path):
    chart = umbrella_copy(tmp_path)
    f = chart / "charts" / "grafana" / "files" / "dashboards" / "phase5-overview.json"
    f.write_text(f.read_text().replace("${alerts.LokiCompactorNotRunning.threshold:10800}",
                                       "${alerts.LokiCompactorRunning.threshold:10800}"))
    msg = render_error(chart=chart)
    assert "prometheus.alerts.LokiCompactorRunning has no threshold" in msg, msg
    f.write_text(f.read_text().replace("${alerts.LokiCompactorRunning.threshold:10800}",
                                       "${alerts.LokiCompactorNotRunning.threshold}"))
    assert "a query placeholder is" in render_error(chart=chart)


def test_without_prometheus_the_alert_lines_are_left_out(boards):
    """prometheus.enabled=false: no alert for a line to follow, so the alert steps are dropped and
    everything else of the dashboards is as the files have it."""
    shipped = dash.rendered(render(set_values={"prometheus.enabled": False}))
    for uid, d in boards.items():
        for p in dash.panels(shipped[uid]):
            for steps in dash.threshold_sets(p):
                assert all(not isinstance(s.get("value"), str) for s in steps), f"{uid}/{p['title']}: {steps}"
        want = {(t, i) for t, i, _, _, _ in dash.alert_steps(d)}
        files = {p["title"]: p for p in dash.panels(d)}
        for p in dash.panels(shipped[uid]):
            for i, steps in enumerate(dash.threshold_sets(p)):
                dropped = len(dash.threshold_sets(files[p["title"]])[i]) - len(steps)
                assert dropped == (1 if (p["title"], i) in want else 0), f"{uid}/{p['title']}: {steps}"


def test_a_step_naming_no_alert_fails_the_render(tmp_path):
    chart = umbrella_copy(tmp_path)
    f = chart / "charts" / "grafana" / "files" / "dashboards" / "phase5-overview.json"
    f.write_text(f.read_text().replace("${alerts.HighErrorRate.threshold}", "${alerts.HighErrorRatio.threshold}"))
    msg = render_error(chart=chart)
    assert "phase5-overview.json" in msg and "prometheus.alerts.HighErrorRatio has no threshold" in msg, msg
    f.write_text(f.read_text().replace("${alerts.HighErrorRatio.threshold}", "${alert.HighErrorRate}"))
    assert 'threshold step "${alert.HighErrorRate}"' in render_error(chart=chart)


def _recording_rules(objs):
    """{recorded name: [expressions]} of the rendered rule files."""
    out = {}
    for text in objs.get("ConfigMap", "p5-prometheus-rules")["data"].values():
        for g in (yaml.safe_load(text) or {}).get("groups", []):
            for r in g["rules"]:
                if "record" in r:
                    out.setdefault(r["record"], []).append(r["expr"])
    return out


def test_every_metric_the_spec_lists_is_shown_by_a_panel(default_objs):
    """Each item of the spec's "Metrics Collected" lists (spec.SPEC_METRICS) is read by some
    panel, directly or through the recording rules a panel reads (issue 28)."""
    records = _recording_rules(default_objs)
    seen, todo = set(), [n for _, _, e in dash.panel_queries() for n in metric_names(e)]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += [n for e in records.get(name, []) for n in metric_names(e)]
    missing = {item: [n for n in names if n not in seen] for item, names in spec.SPEC_METRICS.items()}
    missing = {k: v for k, v in missing.items() if v}
    assert not missing, f"spec metrics no panel shows (item: series): {missing}"


def test_panel_queries_substitutes_variables():
    """The helper a later e2e test uses: variables can be pinned, unknown ones are errors."""
    q = dash.panel_queries(variables={"namespace": "phase5", "service": "backend"})
    assert all("$" not in e for _, _, e in q)
    assert any('namespace=~"phase5"' in e for _, _, e in q)
    with pytest.raises(KeyError, match="namspace"):
        dash.substitute('up{namespace=~"$namspace"}')


# ---------------------------------------------------------------- provisioning

def test_dashboards_configmap_carries_every_file(default_objs):
    cm = default_objs.get("ConfigMap", "p5-grafana-dashboards")
    files = {f.name: json.loads(f.read_text()) for f in dash.DASHBOARDS_DIR.glob("*.json")}
    assert set(cm["data"]) == set(files), f"ConfigMap keys {sorted(cm['data'])} != files {sorted(files)}"
    for name, d in files.items():
        shipped = json.loads(cm["data"][name])
        d = dash.with_expr_defaults(d)
        # The alert steps are set at render time (test_panel_threshold_lines_follow_...): blank
        # them on both sides, the rest is the file (its query placeholders at their defaults).
        steps = dash.alert_steps(d)
        for board in (d, shipped):
            panels = {p["title"]: p for p in dash.panels(board)}
            for title, i, j, _, _ in steps:
                dash.threshold_sets(panels[title])[i][j]["value"] = None
        assert shipped == d, f"{name} differs in the ConfigMap"


def _mounts(objs):
    c = gf.container(objs)
    vols = {v["name"]: v for v in gf.deployment(objs)["spec"]["template"]["spec"]["volumes"]}
    return {m["mountPath"]: (m, vols[m["name"]]) for m in c["volumeMounts"]}


def test_dashboard_providers_point_at_mounted_dashboards(default_objs):
    mounts = _mounts(default_objs)
    provs = gf.providers(default_objs)
    assert provs and all(p["type"] == "file" for p in provs)
    for p in provs:
        path = p["options"]["path"]
        assert path in mounts, f"provider {p['name']}: {path} is not mounted; mounts {sorted(mounts)}"
    phase5 = next(p for p in provs if p["name"] == "phase5")
    _, vol = mounts[phase5["options"]["path"]]
    assert vol["configMap"]["name"] == "p5-grafana-dashboards"
    assert "/etc/grafana/provisioning/dashboards" in mounts and "/etc/grafana/provisioning/datasources" in mounts


def test_extra_dashboards_from_values():
    extra = {"team-slo": json.dumps({"uid": "team-slo", "title": "Team SLO", "panels": []})}
    objs = render(set_values={"grafana.dashboards.extra": extra, "grafana.dashboards.extraFolder": "Team"})
    cm = objs.get("ConfigMap", "p5-grafana-dashboards-extra")
    assert json.loads(cm["data"]["team-slo.json"])["uid"] == "team-slo"
    prov = next(p for p in gf.providers(objs) if p["name"] == "extra")
    assert prov["folder"] == "Team"
    mounts = _mounts(objs)
    assert mounts[prov["options"]["path"]][1]["configMap"]["name"] == cm["metadata"]["name"]


def test_datasources_have_fixed_uids_and_in_chart_urls(default_objs):
    ds = gf.datasources(default_objs)
    for uid, typ in DATASOURCE_UIDS.items():
        assert ds[uid]["type"] == typ, f"datasource {uid}: type {ds[uid]['type']}"
    assert ds["prometheus"]["url"] == "http://p5-prometheus:9090"
    assert ds["loki"]["url"] == "http://p5-loki:3100"
    assert ds["jaeger"]["url"] == "http://p5-jaeger:16686"
    assert ds["prometheus"].get("isDefault") is True
    assert sum(1 for d in ds.values() if d.get("isDefault")) == 1, "more than one default datasource"


def test_datasource_urls_follow_the_release_name():
    objs = render(release="obs")
    ds = gf.datasources(objs, release="obs")
    assert ds["prometheus"]["url"] == "http://obs-prometheus:9090"
    assert ds["loki"]["url"] == "http://obs-loki:3100"
    assert ds["jaeger"]["url"] == "http://obs-jaeger:16686"


def test_external_datasource_urls():
    objs = render(set_values={
        "grafana.datasources.prometheus.url": "https://mimir.example.com/prometheus",
        "grafana.datasources.loki.url": "https://loki.example.com/",
        "grafana.datasources.jaeger.url": "http://jaeger-query.tracing:16686",
    })
    ds = gf.datasources(objs)
    assert ds["prometheus"]["url"] == "https://mimir.example.com/prometheus"
    assert ds["loki"]["url"] == "https://loki.example.com"
    assert ds["jaeger"]["url"] == "http://jaeger-query.tracing:16686"


def test_correlations_logs_to_traces(default_objs):
    loki = gf.datasources(default_objs)["loki"]
    fields = loki["jsonData"]["derivedFields"]
    link = next((f for f in fields if f.get("datasourceUid") == "jaeger"), None)
    assert link, f"loki: no derived field links to jaeger: {fields}"
    assert link["url"] == "${__value.raw}", f"loki derived field url after Grafana's expansion: {link['url']!r}"
    rx = re.compile(link["matcherRegex"])
    for line in SAMPLE_LOG_LINES:
        m = rx.search(line)
        assert m and m.group(1) == SAMPLE_TRACE_ID, f"derived field regex {rx.pattern!r} misses the trace id in {line}"


def test_correlations_exemplars_to_traces(default_objs):
    prom = gf.datasources(default_objs)["prometheus"]
    dests = prom["jsonData"].get("exemplarTraceIdDestinations") or []
    assert any(d.get("datasourceUid") == "jaeger" and d.get("name") for d in dests), \
        f"prometheus: no exemplar destination to jaeger: {dests}"


def test_correlations_traces_to_logs_and_metrics(default_objs):
    jaeger = gf.datasources(default_objs)["jaeger"]["jsonData"]
    logs = jaeger.get("tracesToLogsV2") or {}
    assert logs.get("datasourceUid") == "loki", f"jaeger tracesToLogsV2: {logs}"
    assert logs.get("filterByTraceID") and logs.get("tags"), f"jaeger tracesToLogsV2 selects nothing: {logs}"
    metrics = jaeger.get("tracesToMetrics") or {}
    assert metrics.get("datasourceUid") == "prometheus", f"jaeger tracesToMetrics: {metrics}"
    assert metrics.get("queries"), "jaeger tracesToMetrics has no queries"
    for q in metrics["queries"]:
        assert "$__tags" in q["query"], f"tracesToMetrics query {q['name']!r} ignores the span's tags: {q['query']}"
        expr = q["query"].replace("$__tags", 'service="backend"')
        for name in metric_names(expr):
            assert name in RECORDING_RULES | APPLICATION_METRICS, f"tracesToMetrics {q['name']!r} reads {name}"


def test_provisioning_dollars_are_escaped(default_objs):
    """Grafana replaces $VAR/${VAR} in provisioning files with environment variables: the
    Grafana-side macros must reach it as $$, or they silently become empty strings."""
    raw = gf.datasources(default_objs, expand=False)
    assert raw["loki"]["jsonData"]["derivedFields"][0]["url"] == "$${__value.raw}"
    lone = []

    def walk(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{where}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")
        elif isinstance(node, str):
            # Grafana interpolates values (not comments): every $ must be $$ or a provider.
            if re.search(r"(?<!\$)\$(?!\$|__file\{|__env\{)(?:\w|\{)", node.replace("$$", "")):
                lone.append(f"{where}: {node}")

    walk(raw, "datasources")
    assert not lone, "unescaped $ Grafana would expand from its environment:\n" + "\n".join(lone)


def test_extra_datasources_from_values():
    extra = [{"name": "Tempo", "type": "tempo", "uid": "tempo", "url": "http://tempo:3200",
              "secureJsonData": {"httpHeaderValue1": "$__file{/etc/grafana/secrets-extra/tempo/token}"},
              "jsonData": {"httpHeaderName1": "X-Scope-OrgID"}}]
    objs = render(set_values={"grafana.datasources.extra": extra,
                              "grafana.extraSecretMounts": [{"name": "tempo", "secretName": "tempo-token"}]})
    ds = gf.datasources(objs)
    assert ds["tempo"]["url"] == "http://tempo:3200"
    assert ds["tempo"]["secureJsonData"]["httpHeaderValue1"].startswith("$__file{")
    assert "/etc/grafana/secrets-extra/tempo" in _mounts(objs)


def test_extra_datasource_literal_credential_rejected():
    msg = render_error(set_values={"grafana.datasources.extra": [
        {"name": "PG", "type": "postgres", "uid": "pg", "secureJsonData": {"password": "hunter2hunter2"}}]})
    assert "secureJsonData" in msg, msg


# ---------------------------------------------------------------- credentials

def _grafana_text(values=(), set_values=None, **kw):
    _, text = render_raw(values, set_values, **kw)
    docs = [d for d in yaml.safe_load_all(text) if d]
    return [d for d in docs if (d.get("metadata", {}).get("labels") or {}).get("app.kubernetes.io/name") == "grafana"]


@pytest.mark.parametrize("values", params.profiles())
def test_no_password_literal_anywhere(values):
    docs = _grafana_text(values)
    problems = []
    for d in docs:
        if d["kind"] == "ConfigMap":
            for key, text in d["data"].items():
                if re.search(r"(?im)^\s*(admin_password|secret_key|password)\s*=", text):
                    problems.append(f"ConfigMap/{d['metadata']['name']}[{key}]: a password setting")
                if re.search(r"admin123|admin/admin", text):
                    problems.append(f"ConfigMap/{d['metadata']['name']}[{key}]: the spec's default password")
        for c in (d.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []):
            for e in c.get("env", []):
                if re.search(r"PASSWORD|SECRET|TOKEN", e["name"]) and not e["name"].endswith("__FILE") and "value" in e:
                    problems.append(f"{ident(d)}: env {e['name']} is a literal")
                if e["name"].endswith("__FILE") and not e["value"].startswith("/etc/grafana/secrets/"):
                    problems.append(f"{ident(d)}: env {e['name']} reads {e['value']}, not the mounted Secret")
    assert not problems, "\n".join(problems)
    env = {e["name"]: e for e in gf.container(render(values))["env"]}
    for name in ("GF_SECURITY_ADMIN_USER__FILE", "GF_SECURITY_ADMIN_PASSWORD__FILE", "GF_SECURITY_SECRET_KEY__FILE"):
        assert name in env, f"grafana: {name} missing; env {sorted(env)}"


def test_no_fixed_password_in_chart_sources():
    hits = [str(f.relative_to(CHART)) for f in CHART.rglob("*") if f.is_file()
            and re.search(r"admin123", f.read_text(errors="ignore"))]
    assert not hits, f"the spec's fixed password appears in {hits}"
    vals = yaml.safe_load((CHART / "values.yaml").read_text())
    assert vals["admin"]["password"] == "" and vals["admin"]["secretKey"] == "", "a default credential ships"


def _secret_data(objs, name="p5-grafana"):
    s = objs.get("Secret", name)
    return {k: base64.b64decode(v).decode() for k, v in s["data"].items()}


def test_generated_secret_is_random():
    a = _secret_data(render(namespace="monitoring"))
    b = _secret_data(render(namespace="monitoring-b"))
    for key in ("admin-password", "secret-key"):
        assert len(a[key]) >= 32, f"{key}: {len(a[key])} characters"
        assert a[key] != b[key], f"{key}: two fresh installs got the same value (not random)"
    assert a["admin-user"] == "admin"


def test_secret_template_keeps_existing_values_on_upgrade():
    """A fast pre-check of the template's order (look up its own Secret, reuse the stored
    keys, generate only as a last resort); the cluster tier's
    test_grafana_password_survives_upgrade proves it with `helm upgrade` on a real API server."""
    src = (CHART / "templates" / "secret.yaml").read_text()
    assert re.search(r'lookup "v1" "Secret" \.Release\.Namespace \$name', src), "secret.yaml does not lookup its Secret"
    for key in ("passwordKey", "secretKeyKey"):
        reuse = src.index(f"hasKey $current .Values.admin.{key}")
        generate = src.index("randAlphaNum", reuse)
        assert reuse < generate, f"{key}: the random value is not the last resort"


def test_pinned_password_is_used():
    objs = render(set_values={"grafana.admin.password": "correct-horse-battery", "grafana.admin.secretKey": "s" * 24})
    data = _secret_data(objs)
    assert data["admin-password"] == "correct-horse-battery"
    assert data["secret-key"] == "s" * 24


@pytest.mark.parametrize("password", ["admin123", "short"])
def test_weak_pinned_password_rejected(password):
    msg = render_error(set_values={"grafana.admin.password": password})
    assert "grafana" in msg and "/admin/password" in msg, msg


def test_existing_secret_disables_chart_secret():
    objs = render(set_values={"grafana.admin.existingSecret": "grafana-admin",
                              "grafana.admin.passwordKey": "password"})
    assert objs.find("Secret", "p5-grafana") is None, "existingSecret set but the chart still creates a Secret"
    vol = next(v for v in gf.deployment(objs)["spec"]["template"]["spec"]["volumes"] if v["name"] == "admin-secret")
    assert vol["secret"]["secretName"] == "grafana-admin"
    assert {"admin-user", "password", "secret-key"} == {i["key"] for i in vol["secret"]["items"]}
    env = {e["name"]: e["value"] for e in gf.container(objs)["env"] if "value" in e}
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/etc/grafana/secrets/admin/password"


def test_secret_mounted_where_env_points(default_objs):
    mounts = _mounts(default_objs)
    env = {e["name"]: e["value"] for e in gf.container(default_objs)["env"] if e["name"].endswith("__FILE")}
    secret = default_objs.get("Secret", "p5-grafana")
    for name, path in env.items():
        mount_path, key = path.rsplit("/", 1)
        assert mount_path in mounts, f"{name}: {mount_path} is not mounted"
        m, vol = mounts[mount_path]
        assert m.get("readOnly") and vol["secret"]["secretName"] == "p5-grafana"
        assert key in secret["data"], f"{name}: key {key} not in Secret/p5-grafana"


# ---------------------------------------------------------------- workload

@pytest.mark.parametrize("values", params.profiles())
def test_hardened_with_writable_mounts(values):
    objs = render(values)
    pod = gf.deployment(objs)["spec"]["template"]["spec"]
    c = gf.container(objs)
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"] and sc["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 472 and pod["securityContext"]["fsGroup"] == 472
    assert pod["automountServiceAccountToken"] is False
    mounts = _mounts(objs)
    writable = {p for p, (m, v) in mounts.items() if not m.get("readOnly")
                and ("emptyDir" in v or "persistentVolumeClaim" in v)}
    ini = gf.grafana_ini(objs)
    needs = {ini["paths"]["data"], ini["paths"]["logs"], ini["paths"]["plugins"], "/tmp"}
    for path in needs:
        assert any(path == w or path.startswith(w.rstrip("/") + "/") for w in writable), \
            f"grafana writes {path} but no writable volume covers it; writable mounts {sorted(writable)}"
    assert ini["paths"]["provisioning"] == "/etc/grafana/provisioning"


def test_image_is_pinned_grafana_13(default_objs):
    """A full release tag of the major the provisioning files are written for (Grafana 13)."""
    image = gf.container(default_objs)["image"]
    assert re.fullmatch(r"docker\.io/grafana/grafana:13\.\d+\.\d+", image), image


def test_service_and_metrics(default_objs):
    svc = default_objs.get("Service", "p5-grafana")
    ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
    assert ports == {"http-web": 3000}, ports
    ann = svc["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "3000" \
        and ann["prometheus.io/path"] == "/metrics", ann
    assert gf.grafana_ini(default_objs)["metrics"]["enabled"] == "true"
    assert default_objs.find("Ingress", "p5-grafana") is None, "Ingress on by default"


def test_config_change_rolls_the_pod(default_objs):
    before = gf.deployment(default_objs)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    after = gf.deployment(render(set_values={"grafana.datasources.loki.maxLines": 5000}))
    assert after["spec"]["template"]["metadata"]["annotations"]["checksum/config"] != before


def test_ingress_with_tls():
    objs = render(set_values={"grafana.ingress": {
        "enabled": True, "className": "nginx", "hosts": ["grafana.example.com"],
        "tls": [{"secretName": "grafana-tls"}]}})
    ing = objs.get("Ingress", "p5-grafana")
    assert ing["spec"]["tls"] == [{"secretName": "grafana-tls", "hosts": ["grafana.example.com"]}]
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "p5-grafana", "port": {"name": "http-web"}}
    ini = gf.grafana_ini(objs)
    assert ini["server"]["root_url"] == "https://grafana.example.com/"
    assert ini["security"]["cookie_secure"] == "true"


def test_ingress_sub_path():
    objs = render(set_values={"grafana.ingress": {"enabled": True, "hosts": ["ops.example.com"], "path": "/grafana"}})
    ini = gf.grafana_ini(objs)
    assert ini["server"]["root_url"] == "http://ops.example.com/grafana/"
    assert ini["server"]["serve_from_sub_path"] == "true"


def test_ingress_without_hosts_fails():
    msg = render_error(set_values={"grafana.ingress.enabled": True})
    assert "grafana.ingress.hosts" in msg, msg


def test_persistence():
    objs = render(set_values={"grafana.persistence": {"enabled": True, "size": "20Gi", "storageClass": "fast"}})
    pvc = objs.get("PersistentVolumeClaim", "p5-grafana")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert pvc["spec"]["storageClassName"] == "fast"
    dep = gf.deployment(objs)
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    m, vol = _mounts(objs)["/var/lib/grafana"]
    assert vol["persistentVolumeClaim"]["claimName"] == "p5-grafana"
    existing = render(set_values={"grafana.persistence": {"enabled": True, "existingClaim": "grafana-data"}})
    assert existing.find("PersistentVolumeClaim", "p5-grafana") is None
    assert _mounts(existing)["/var/lib/grafana"][1]["persistentVolumeClaim"]["claimName"] == "grafana-data"


def test_profiles_size_grafana():
    prod = render((paths.PROFILES_DIR / "production.yaml",))
    assert prod.find("PersistentVolumeClaim", "p5-grafana") is not None, "production: Grafana without persistence"
    dev = render((paths.PROFILES_DIR / "dev.yaml",))
    assert dev.find("PersistentVolumeClaim", "p5-grafana") is None, "dev: Grafana with persistence"


def test_grafana_ini_overrides_become_env():
    objs = render(set_values={"grafana.grafanaIni": {"auth.generic_oauth": {"enabled": True}, "users": {"default_theme": "light"}}})
    env = {e["name"]: e.get("value") for e in gf.container(objs)["env"]}
    assert env["GF_AUTH_GENERIC_OAUTH_ENABLED"] == "true"
    assert env["GF_USERS_DEFAULT_THEME"] == "light"


def test_grafana_ini_credential_rejected():
    msg = render_error(set_values={"grafana.grafanaIni": {"security": {"admin_password": "whatever12345"}}})
    assert "admin_password" in msg, msg


_FSTYPE = re.compile(r'node_filesystem_\w+\{(?:[^}"]*"[^"]*"\s*,\s*)*fstype!~"([^"]*)"[^}]*\}')


def test_disk_panel_excludes_the_filesystem_types_disk_space_low_excludes():
    """The disk panel shows what DiskSpaceLow judges: the same fstype exclusion on every
    node_filesystem_* selector of both (the e2e tier checks it on node_exporter's real series)."""
    rules = (paths.SUBCHARTS_DIR / "prometheus" / "files" / "rules" / "phase5-alerts.yaml").read_text()
    rule_filters = set(_FSTYPE.findall(rules))
    assert len(rule_filters) == 1, f"DiskSpaceLow's node_filesystem selectors disagree: {rule_filters}"
    panels = [(uid, title, e) for uid, title, e in dash.panel_queries() if "node_filesystem_" in e]
    assert panels, "no dashboard panel reads node_filesystem_*"
    # ... and the recording rules the panels read instead (mountpoint:filesystem_usage:ratio_max, issue 27)
    records = yaml.safe_load((paths.SUBCHARTS_DIR / "prometheus" / "files" / "rules" / "recording-rules.yaml").read_text())
    panels += [("recording-rules.yaml", r["record"], r["expr"]) for g in records["groups"] for r in g["rules"]
               if "node_filesystem_" in r["expr"]]
    for uid, title, expr in panels:
        found = _FSTYPE.findall(expr)
        assert found and set(found) == rule_filters, \
            f"{uid} / {title}: fstype exclusion {set(found)}, DiskSpaceLow excludes {rule_filters}"


# ------------------------------------------------------------------- dashboard sidecar
SIDECAR = "dashboards-sidecar"
SIDECAR_ON = {"grafana.sidecar.dashboards.enabled": True,
              "grafana.sidecar.dashboards.namespaces": ["phase5-tasks", "phase5-prod"]}
# The environment k8s-sidecar documents, per pinned version: the "Configuration Environment
# Variables" table of its README at that tag (github.com/kiwigrid/k8s-sidecar, tag 2.10.1), with
# the documented values of the variables whose values are a choice. Required there: LABEL, FOLDER.
K8S_SIDECAR_DOCUMENTED_ENV = {
    "2.10.1": {
        "LABEL", "LABEL_VALUE", "FOLDER", "FOLDER_ANNOTATION", "NAMESPACE", "RESOURCE", "RESOURCE_NAME",
        "METHOD", "SLEEP_TIME", "REQ_URL", "REQ_METHOD", "REQ_PAYLOAD", "REQ_RETRY_TOTAL",
        "REQ_RETRY_CONNECT", "REQ_RETRY_READ", "REQ_RETRY_BACKOFF_FACTOR", "REQ_TIMEOUT", "REQ_USERNAME",
        "REQ_PASSWORD", "REQ_USERNAME_FILE", "REQ_PASSWORD_FILE", "REQ_BASIC_AUTH_ENCODING", "REQ_SKIP_INIT",
        "SCRIPT", "ERROR_THROTTLE_SLEEP", "SKIP_TLS_VERIFY", "DISABLE_X509_STRICT_VERIFICATION",
        "REQ_SKIP_TLS_VERIFY", "UNIQUE_FILENAMES", "DEFAULT_FILE_MODE", "KUBECONFIG", "ENABLE_5XX",
        "WATCH_SERVER_TIMEOUT", "WATCH_CLIENT_TIMEOUT", "IGNORE_ALREADY_PROCESSED", "LOG_LEVEL",
        "LOG_FORMAT", "LOG_TZ", "LOG_CONFIG", "HEALTH_PORT", "HEALTH_HOST",
    },
}
K8S_SIDECAR_REQUIRED_ENV = {"LABEL", "FOLDER"}
# METHOD: LIST lists once and exits, SLEEP polls, anything else watches; RESOURCE: configmap,
# secret or both (the chart grants configmaps only); booleans are the string "true".
K8S_SIDECAR_CHOICES = {"METHOD": {"WATCH"}, "RESOURCE": {"configmap"}, "UNIQUE_FILENAMES": {"true", "false"}}
# The single rule the sidecar's Roles (or ClusterRole) hold: it reads ConfigMaps' data from the
# list and the watch, never with get (k8s-sidecar calls get only for RESOURCE_NAME, unset here).
SIDECAR_RULES = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "watch"]}]


def _pod(objs):
    return gf.deployment(objs)["spec"]["template"]["spec"]


def _sidecar(objs):
    found = [c for c in _pod(objs)["containers"] if c["name"] == SIDECAR]
    return found[0] if found else None


def _env(container):
    return {e["name"]: e.get("value") for e in container.get("env") or []}


def _grafana_rbac(objs):
    return [o for o in objs if o["kind"] in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
            and o["metadata"]["labels"].get("app.kubernetes.io/name") == "grafana"]


def test_sidecar_off_by_default(default_objs):
    """Off by default (values.yaml says why): no sidecar container, no RBAC for Grafana's
    ServiceAccount, no provider for its folder, no API token in the pod."""
    assert _sidecar(default_objs) is None
    assert not _grafana_rbac(default_objs), [ident(o) for o in _grafana_rbac(default_objs)]
    assert "sidecar" not in {p["name"] for p in gf.providers(default_objs)}
    pod = _pod(default_objs)
    assert pod["automountServiceAccountToken"] is False
    assert not [v for v in pod["volumes"] if "projected" in v], pod["volumes"]


def test_sidecar_env_is_k8s_sidecar_documented_configuration():
    """Stand-in check: k8s-sidecar cannot run here (no container runtime), so its configuration
    is held to the upstream documentation of the pinned image version instead: every variable the
    chart sets is one that version documents, the required ones are set, those with a documented
    set of values have one of them, and the image tag is a version whose list is recorded here (a
    bump without re-reading the documentation fails)."""
    objs = render(set_values=SIDECAR_ON)
    c = _sidecar(objs)
    assert c, "sidecar.dashboards.enabled renders no dashboards-sidecar container"
    tag = c["image"].rsplit(":", 1)[-1]
    assert c["image"] == f"quay.io/kiwigrid/k8s-sidecar:{tag}", c["image"]
    assert tag in K8S_SIDECAR_DOCUMENTED_ENV, f"k8s-sidecar {tag}: its documented environment is not recorded here"
    env = _env(c)
    undocumented = set(env) - K8S_SIDECAR_DOCUMENTED_ENV[tag]
    assert not undocumented, f"k8s-sidecar {tag} documents no {sorted(undocumented)}"
    assert K8S_SIDECAR_REQUIRED_ENV <= set(env), f"required by k8s-sidecar, not set: {K8S_SIDECAR_REQUIRED_ENV - set(env)}"
    for name, allowed in K8S_SIDECAR_CHOICES.items():
        assert env.get(name) in allowed, f"{name}={env.get(name)!r}, documented choices here: {sorted(allowed)}"
    assert (env["LABEL"], env["LABEL_VALUE"]) == ("grafana_dashboard", "1")
    assert env["FOLDER_ANNOTATION"] == "grafana_folder"
    assert env["FOLDER"].startswith("/")
    # HEALTH_PORT (an integer) is the port the probes ask /healthz on
    port = {p["name"]: p["containerPort"] for p in c["ports"]}[c["livenessProbe"]["httpGet"]["port"]]
    assert int(env["HEALTH_PORT"]) == port and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # No readiness probe: the sidecar's first sync or API trouble must not take Grafana out of its Service.
    assert "readinessProbe" not in c
    assert not any(e.get("valueFrom") for e in c["env"]), "no credential is needed (Grafana re-reads the folder)"


def test_label_value_empty_means_any_value():
    """k8s-sidecar: LABEL_VALUE unset filters by the label key alone."""
    env = _env(_sidecar(render(set_values={**SIDECAR_ON, "grafana.sidecar.dashboards.labelValue": ""})))
    assert "LABEL_VALUE" not in env and env["LABEL"] == "grafana_dashboard"


def test_sidecar_reads_release_and_listed_namespaces_with_a_role_each():
    """NAMESPACE is the release namespace plus the listed Phase 5 namespaces, and exactly those
    namespaces get a Role (configmaps list/watch, nothing else) bound to the pod's ServiceAccount;
    nothing cluster-wide."""
    objs = render(set_values=SIDECAR_ON, namespace="monitoring")
    namespaces = _env(_sidecar(objs))["NAMESPACE"].split(",")
    assert sorted(namespaces) == ["monitoring", "phase5-prod", "phase5-tasks"], namespaces
    rbac = _grafana_rbac(objs)
    assert not [ident(o) for o in rbac if o["kind"].startswith("Cluster")], "a ClusterRole nobody asked for"
    roles = {o["metadata"]["namespace"]: o for o in rbac if o["kind"] == "Role"}
    bindings = {o["metadata"]["namespace"]: o for o in rbac if o["kind"] == "RoleBinding"}
    assert set(roles) == set(bindings) == set(namespaces), (sorted(roles), sorted(bindings))
    sa = _pod(objs)["serviceAccountName"]
    for ns, role in roles.items():
        assert role["rules"] == SIDECAR_RULES, f"Role in {ns}: {role['rules']}"
        b = bindings[ns]
        assert b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]}
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": "monitoring"}], b["subjects"]


def test_all_namespaces_is_a_cluster_role_only_when_asked():
    objs = render(set_values={"grafana.sidecar.dashboards.enabled": True,
                              "grafana.sidecar.dashboards.allNamespaces": True})
    assert _env(_sidecar(objs))["NAMESPACE"] == "ALL"
    rbac = _grafana_rbac(objs)
    assert sorted(o["kind"] for o in rbac) == ["ClusterRole", "ClusterRoleBinding"], [ident(o) for o in rbac]
    role = next(o for o in rbac if o["kind"] == "ClusterRole")
    binding = next(o for o in rbac if o["kind"] == "ClusterRoleBinding")
    assert role["rules"] == SIDECAR_RULES, role["rules"]
    assert role["metadata"]["name"].startswith("monitoring-"), "cluster-scoped names carry the namespace"
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": _pod(objs)["serviceAccountName"], "namespace": "monitoring"}]


@pytest.mark.parametrize("values, message", [
    ({"grafana.sidecar.dashboards.namespaces": ["payments"]},
     'grafana.sidecar.dashboards.namespaces: "payments" does not match global.phase5.namespaceRegex "phase5-.*"'),
    ({"grafana.sidecar.dashboards.namespaces": ["phase5-tasks"], "grafana.sidecar.dashboards.allNamespaces": True},
     'allNamespaces reads every namespace, so namespaces ["phase5-tasks"] must be empty'),
    ({"grafana.sidecar.dashboards.namespaces": ["Phase5_Tasks"]}, "sidecar/dashboards/namespaces/0"),
    ({"grafana.sidecar.dashboards.namespaces": ["phase5-a", "phase5-a"]}, "sidecar/dashboards/namespaces"),
    ({"grafana.sidecar.dashboards.label": "bad label"}, "sidecar/dashboards/label"),
    ({"grafana.sidecar.dashboards.searchNamespace": "ALL"}, "searchNamespace"),
])
def test_bad_sidecar_values_fail_naming_the_value(values, message):
    err = render_error(set_values={"grafana.sidecar.dashboards.enabled": True, **values})
    assert message in err, err


def test_listing_the_release_namespace_changes_nothing():
    objs = render(set_values={**SIDECAR_ON, "grafana.sidecar.dashboards.namespaces": ["monitoring", "phase5-tasks"]},
                  namespace="monitoring")
    assert _env(_sidecar(objs))["NAMESPACE"] == "monitoring,phase5-tasks"
    assert sorted(o["metadata"]["namespace"] for o in _grafana_rbac(objs) if o["kind"] == "Role") == ["monitoring", "phase5-tasks"]


def test_namespaces_follow_the_phase5_regex():
    objs = render(set_values={**SIDECAR_ON, "grafana.sidecar.dashboards.namespaces": ["payments"],
                              "global.phase5.namespaceRegex": "phase5-.*|payments"})
    assert "payments" in _env(_sidecar(objs))["NAMESPACE"].split(",")


def test_grafana_provider_reads_the_folder_the_sidecar_writes():
    """Grafana's `sidecar` provider reads the directory the sidecar writes (FOLDER): one emptyDir,
    writable in the sidecar, read-only in Grafana; sub-directories (the folder annotation) become
    Grafana folders, which Grafana does only when the provider names no folder of its own."""
    objs = render(set_values=SIDECAR_ON)
    prov = next(p for p in gf.providers(objs) if p["name"] == "sidecar")
    folder = _env(_sidecar(objs))["FOLDER"]
    assert prov["type"] == "file" and prov["options"]["path"] == folder, (prov, folder)
    assert prov["options"]["foldersFromFilesStructure"] is True and not prov.get("folder"), prov
    vols = {v["name"]: v for v in _pod(objs)["volumes"]}
    g_mount = next(m for m in gf.container(objs)["volumeMounts"] if m["mountPath"] == folder)
    s_mount = next(m for m in _sidecar(objs)["volumeMounts"] if m["mountPath"] == folder)
    assert g_mount["name"] == s_mount["name"] and "emptyDir" in vols[g_mount["name"]], (g_mount, s_mount)
    assert g_mount.get("readOnly") is True and not s_mount.get("readOnly"), (g_mount, s_mount)
    test_dashboard_providers_point_at_mounted_dashboards(objs)


def test_api_token_only_in_the_sidecar_container():
    """The pod mounts no token; the sidecar's container alone mounts a projected one where the
    Kubernetes client looks (token, cluster CA, and the namespace file k8s-sidecar reads at start)."""
    objs = render(set_values=SIDECAR_ON)
    pod = _pod(objs)
    assert pod["automountServiceAccountToken"] is False
    projected = {v["name"]: v["projected"] for v in pod["volumes"] if "projected" in v}
    (name, vol), = projected.items()
    paths_ = {s["serviceAccountToken"]["path"] for s in vol["sources"] if "serviceAccountToken" in s} | {
        i["path"] for s in vol["sources"] for src in ("configMap", "downwardAPI") for i in s.get(src, {}).get("items", [])}
    assert {"token", "ca.crt", "namespace"} <= paths_, paths_
    for c in pod["containers"]:
        mounted = [m["mountPath"] for m in c.get("volumeMounts") or [] if m["name"] == name]
        if c["name"] == SIDECAR:
            assert mounted == ["/var/run/secrets/kubernetes.io/serviceaccount"], mounted
        else:
            assert not mounted, f"{c['name']} mounts the API token"


def test_operator_mode_renders_no_sidecar_or_its_rbac():
    """Operator mode runs no Grafana here (the existing one has its own sidecar): the sidecar's
    values change nothing, no Role or ClusterRole is left behind."""
    objs = render(set_values={**SIDECAR_ON, "global.operator.enabled": True})
    assert not [o for o in objs.workloads() if component(o) == "grafana"]
    assert not _grafana_rbac(objs), [ident(o) for o in _grafana_rbac(objs)]
