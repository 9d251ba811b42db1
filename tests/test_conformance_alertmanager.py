"""Conformance tier for the Alertmanager subchart, with the real amtool (v0.35):
`amtool check-config` (configuration + notification templates) for the defaults and every
profile, `amtool config routes test` for every route of the spec and the brief, the
templates rendered with a brief-style alert, and each inhibition rule against the brief."""
import json
import time

import pytest

from harness import alertmanager as am
from harness import params
from harness.render import render

pytestmark = pytest.mark.conformance

GRAFANA = "https://grafana.phase5.example.com"
OPTIONAL_ON = {
    "alertmanager.pagerduty.enabled": True,
    "alertmanager.webhook.enabled": True,
    "alertmanager.watchdog.enabled": True,
    "alertmanager.email.username": "alerts@phase5.example.com",
}

CRITICAL = ["slack-critical", "email-critical"]
WARNING = ["slack-warnings"]

# The routing table of the spec and the brief: one row per route, with the labels the
# alert rules produce -> the receivers, in the order Alertmanager resolves them.
ROUTES = [
    # severity routes
    ("critical-to-slack-and-email", am.alert_labels("HighErrorRate"), CRITICAL),
    ("critical-pod-down", am.alert_labels("PodDown"), CRITICAL),
    ("warning-to-slack-warnings", am.alert_labels("HighResponseTime"), WARNING),
    ("warning-high-cpu", am.alert_labels("HighCPUUsage"), WARNING),
    ("warning-high-memory", am.alert_labels("HighMemoryUsage"), WARNING),
    ("warning-disk-space", am.alert_labels("DiskSpaceLow"), WARNING),
    ("warning-pod-restarts", am.alert_labels("PodRestartingTooOften"), WARNING),
    ("warning-replica-mismatch", am.alert_labels("DeploymentReplicaMismatch"), WARNING),
    ("warning-hpa-maxed", am.alert_labels("HPAMaxedOut"), WARNING),
    # team routes (continue) + severity
    ("critical-database-reaches-critical-receivers-and-database-team",
     am.alert_labels("DatabaseConnectionPoolExhausted"), ["slack-database"] + CRITICAL),
    ("warning-database-to-database-team-and-warnings",
     am.alert_labels("DatabaseConnectionPoolExhausted", severity="warning"), ["slack-database"] + WARNING),
    ("warning-kafka-to-platform-team-and-warnings", am.alert_labels("KafkaConsumerLag"), ["slack-platform"] + WARNING),
    ("critical-kafka-to-platform-team-and-critical",
     am.alert_labels("KafkaConsumerLag", severity="critical"), ["slack-platform"] + CRITICAL),
    ("critical-audit-to-audit-team-and-critical", am.alert_labels("AuditLogFailures"), ["slack-audit"] + CRITICAL),
    ("warning-reminder-to-notification-team-and-warnings",
     am.alert_labels("ReminderDeliveryFailures"), ["slack-notification"] + WARNING),
    # StatefulSet pods (postgres-0): the pod alerts carry no `deployment` and route as any pod's
    ("critical-pod-down-statefulset", am.statefulset_labels("PodDown"), CRITICAL),
    ("warning-high-cpu-statefulset", am.statefulset_labels("HighCPUUsage"), WARNING),
    ("warning-pod-restarts-statefulset", am.statefulset_labels("PodRestartingTooOften"), WARNING),
    ("warning-hpa-maxed-statefulset", am.statefulset_labels("HPAMaxedOut"), WARNING),
    # missing signals: the owning team's channel (category from phase5.categories) + severity
    ("target-down-to-database-team-and-critical", am.alert_labels("Phase5TargetDown"), ["slack-database"] + CRITICAL),
    ("target-down-of-an-application-service-to-critical",
     am.alert_labels("Phase5TargetDown", category="application", service="backend"), CRITICAL),
    ("target-down-of-kafka-exporter-to-platform-team",
     am.alert_labels("Phase5TargetDown", category="kafka", service="kafka-exporter"), ["slack-platform"] + CRITICAL),
    ("metrics-missing-to-audit-team-and-critical", am.alert_labels("Phase5MetricsMissing"), ["slack-audit"] + CRITICAL),
    ("metrics-missing-of-reminder-agent-to-notification-team",
     am.alert_labels("Phase5MetricsMissing", category="reminder", service="reminder-agent"), ["slack-notification"] + CRITICAL),
    # the monitoring stack watching itself
    ("rule-failures-to-critical", am.alert_labels("PrometheusRuleEvaluationFailures"), CRITICAL),
    ("prometheus-notifications-failing-to-critical", am.alert_labels("PrometheusNotificationsFailing"), CRITICAL),
    ("prometheus-notifications-dropped-to-critical", am.alert_labels("PrometheusNotificationsDropped"), CRITICAL),
    ("alertmanager-notifications-failing-to-critical", am.alert_labels("AlertmanagerNotificationsFailing"), CRITICAL),
    ("config-reload-failed-to-warnings", am.alert_labels("ConfigReloadFailed"), WARNING),
    ("tsdb-compactions-failing-to-warnings", am.alert_labels("PrometheusTSDBCompactionsFailing"), WARNING),
    ("alertmanager-cluster-members-missing-to-warnings", am.alert_labels("AlertmanagerClusterMembersMissing"), WARNING),
    ("alertmanager-cluster-split-to-warnings", am.alert_labels("AlertmanagerClusterSplit"), WARNING),
    # the rest of the stack, storage and nodes (issue 25): category monitoring, routed by severity
    *[(f"{name}-by-severity", am.alert_labels(name),
       CRITICAL if am.ALERTS[name]["severity"] == "critical" else WARNING)
      for name in ("MonitoringTargetDown", "MonitoringTargetMissing", "KubeStateMetricsDown", "NodeExporterDown",
                   "MonitoringDaemonSetNotOnEveryNode", "LokiRequestErrors", "LokiIngestionRefused",
                   "LokiCompactorNotRunning", "LogCollectorSendFailures", "LogCollectorDroppedLines",
                   "JaegerSpansRefused", "JaegerSpansDropped", "PersistentVolumeFillingUp",
                   "PrometheusTSDBNearRetentionSize", "NodeNotReady", "NodeUnderPressure", "NodeUnschedulable",
                   "ScrapeLimitExceeded")],
    # Watchdog: its own receiver only
    ("watchdog-only-to-its-receiver", am.alert_labels("Watchdog"), ["watchdog"]),
    ("watchdog-only-even-if-critical", am.alert_labels("Watchdog", severity="critical", category="database"), ["watchdog"]),
    # fallback
    ("no-severity-to-default", {"alertname": "Unlabelled", "namespace": am.NS}, ["slack-warnings"]),
]

EXPECTED_RECEIVERS = {
    "watchdog", "slack-critical", "email-critical", "slack-warnings",
    "slack-database", "slack-platform", "slack-audit", "slack-notification",
}


def _labels_id(labels):
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


@pytest.fixture(scope="module")
def default_config(tmp_path_factory):
    objs = render()
    return am.write_tree(objs, tmp_path_factory.mktemp("am-defaults")), objs


@pytest.fixture(scope="module")
def optional_config(tmp_path_factory):
    objs = render(set_values=OPTIONAL_ON)
    return am.write_tree(objs, tmp_path_factory.mktemp("am-optional")), objs


# --- amtool check-config ----------------------------------------------------------------

VARIANTS = [
    pytest.param({}, id="chart-defaults"),
    pytest.param(OPTIONAL_ON, id="all-receivers"),
    pytest.param({**OPTIONAL_ON, "alertmanager.secrets.existingSecret": "alertmanager-secrets"}, id="existing-secret"),
    pytest.param({"alertmanager.slack.enabled": False, "alertmanager.email.enabled": False}, id="no-slack-no-email"),
    pytest.param({
        "alertmanager.extraReceivers": [{"name": "oncall-sms", "webhook_configs": [
            {"url_file": "/etc/alertmanager/secrets/sms-url"}]}],
        "alertmanager.route.extraRoutes": [{"receiver": "oncall-sms", "matchers": ['service="backend"'], "continue": True}],
        "alertmanager.extraInhibitRules": [{"source_matchers": ['alertname="NodeDown"'],
                                            "target_matchers": ['category="node"'], "equal": ["instance"]}],
        "alertmanager.secrets.extra": {"sms-url": "https://sms.example/hook"},
    }, id="extra-route-receiver-inhibit"),
    pytest.param({"alertmanager.slack.ownWebhooks": ["critical", "warnings", "database", "platform", "audit",
                                                     "notification", "monitoring"],
                  "alertmanager.slack.channels.monitoring": "#team-monitoring"}, id="slack-own-webhooks"),
    pytest.param({"alertmanager.slack.mode": "app", "alertmanager.slack.channels.monitoring": "#team-monitoring"},
                 id="slack-app"),
]


@pytest.mark.parametrize("extra", VARIANTS)
@pytest.mark.parametrize("values", params.profiles())
def test_amtool_check_config(values, extra, tmp_path):
    objs = render(values, extra)
    config_file = am.write_tree(objs, tmp_path)
    proc = am.amtool("check-config", config_file)
    out = proc.stdout
    assert "SUCCESS" in out and "FAILED" not in out, out
    # check-config loads (parses) the templates when the config names any.
    assert "- 1 templates" in out, f"templates not loaded by check-config:\n{out}"
    cfg = am.config(objs)
    names = {r["name"] for r in cfg["receivers"]}
    assert EXPECTED_RECEIVERS <= names, f"receivers missing: {sorted(EXPECTED_RECEIVERS - names)}"
    for path in cfg_files(cfg):
        local = tmp_path / path.lstrip("/")
        assert local.exists(), f"*_file {path} is not a key of the credentials Secret (no {local.name})"


def cfg_files(cfg):
    out = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k.endswith("_file") and isinstance(v, str):
                    out.append(v)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(cfg)
    return out


def test_extra_route_keeps_the_builtin_routes(tmp_path):
    """A user route with continue: true adds its receiver without losing the spec's ones."""
    objs = render(set_values={
        "alertmanager.extraReceivers": [{"name": "backend-oncall"}],
        "alertmanager.route.extraRoutes": [{"receiver": "backend-oncall", "matchers": ['service="backend"'],
                                            "continue": True}],
    })
    config_file = am.write_tree(objs, tmp_path)
    got = am.routes_test(config_file, am.alert_labels("DatabaseConnectionPoolExhausted"))
    assert got == ["backend-oncall", "slack-database"] + CRITICAL, got
    assert am.routes_test(config_file, am.alert_labels("Watchdog")) == ["watchdog"]


@pytest.mark.parametrize("channel,want", [
    pytest.param("", CRITICAL, id="no-monitoring-channel"),
    pytest.param("#team-monitoring", ["slack-monitoring"] + CRITICAL, id="monitoring-channel"),
])
def test_monitoring_alerts_reach_the_monitoring_team_when_it_has_a_channel(channel, want, tmp_path):
    """The stack's own alerts (category monitoring) reach the severity channels and, once
    slack.channels.monitoring is set, a copy in the monitoring team's channel (amtool decides)."""
    config_file = am.write_tree(render(set_values={"alertmanager.slack.channels.monitoring": channel}), tmp_path)
    assert am.routes_test(config_file, am.alert_labels("PrometheusNotificationsFailing")) == want
    warn = am.routes_test(config_file, am.alert_labels("ConfigReloadFailed"))
    assert warn == [r for r in want if r == "slack-monitoring"] + WARNING, warn


def test_check_config_catches_a_broken_template(tmp_path):
    """The check-config run above would notice a template that does not parse."""
    config_file = am.write_tree(render(), tmp_path)
    broken = config_file.parent / "phase5.tmpl"
    text = broken.read_text()
    assert '{{- define "phase5.slack.title" -}}' in text, "the definition to break is not in phase5.tmpl"
    broken.write_text(text.replace('{{- define "phase5.slack.title" -}}', '{{- define "phase5.slack.title" -}}{{ if }}'))
    proc = am.amtool("check-config", config_file, check=False)
    assert proc.returncode != 0, f"amtool accepted a broken template:\n{proc.stdout}"


# --- routing ----------------------------------------------------------------------------

@pytest.mark.parametrize("labels,want", [pytest.param(l, w, id=i) for i, l, w in ROUTES])
def test_route(default_config, labels, want):
    config_file, _ = default_config
    got = am.routes_test(config_file, labels)
    assert got == want, f"{_labels_id(labels)}: routed to {got}, want {want}"


def test_every_brief_alert_has_a_route_row():
    covered = {labels["alertname"] for _, labels, _ in ROUTES}
    assert set(am.ALERTS) <= covered, f"alerts without a routing row: {sorted(set(am.ALERTS) - covered)}"


@pytest.mark.parametrize("values", params.profiles())
def test_routing_table_holds_in_every_profile(values, tmp_path):
    config_file = am.write_tree(render(values), tmp_path)
    wrong = []
    for name, labels, want in ROUTES:
        got = am.routes_test(config_file, labels)
        if got != want:
            wrong.append(f"{name}: {got} != {want}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("labels,want", [
    pytest.param(am.alert_labels("DatabaseConnectionPoolExhausted"),
                 ["webhook", "slack-database"] + CRITICAL + ["pagerduty-critical"], id="critical-database-pages"),
    pytest.param(am.alert_labels("KafkaConsumerLag"), ["webhook", "slack-platform"] + WARNING, id="warning-kafka-no-page"),
    pytest.param(am.alert_labels("Watchdog"), ["watchdog"], id="watchdog-stays-alone"),
])
def test_route_with_optional_receivers(optional_config, labels, want):
    config_file, _ = optional_config
    got = am.routes_test(config_file, labels)
    assert got == want, f"{_labels_id(labels)}: routed to {got}, want {want}"


def _route_for(cfg, receiver):
    (route,) = [r for r in cfg["route"]["routes"] if r["receiver"] == receiver]
    return route


def test_route_timing_and_grouping(default_config):
    """Critical is immediate (group_wait 0s), warnings wait 30 s; grouping by alertname,
    service and namespace; the Watchdog stops where it matches. The rendered intervals are the
    chart's defaults (the e2e stacks shorten some through values: docs/e2e.md): critical groups
    re-notify after 1m and repeat hourly, the root and warning routes after 5m and 4h."""
    _, objs = default_config
    cfg = am.config(objs)
    assert set(cfg["route"]["group_by"]) == {"alertname", "service", "namespace"}, cfg["route"]["group_by"]
    for receiver in CRITICAL:
        assert _route_for(cfg, receiver)["group_wait"] == "0s", f"{receiver}: not immediate"
        timing = {k: _route_for(cfg, receiver).get(k) for k in ("group_interval", "repeat_interval")}
        assert timing == {"group_interval": "1m", "repeat_interval": "1h"}, f"{receiver}: {timing}"
    assert _route_for(cfg, "slack-warnings")["group_wait"] == "30s"
    for route in (cfg["route"], _route_for(cfg, "slack-warnings")):
        timing = {k: route.get(k) for k in ("group_wait", "group_interval", "repeat_interval")}
        assert timing == {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}, \
            f"{route['receiver']}: {timing}"
    watchdog = _route_for(cfg, "watchdog")
    assert cfg["route"]["routes"][0] is not None and cfg["route"]["routes"][0]["receiver"] == "watchdog"
    assert watchdog.get("continue") is False, "Watchdog route continues to other receivers"
    for team in ("slack-database", "slack-platform", "slack-audit", "slack-notification"):
        assert _route_for(cfg, team).get("continue") is True, f"{team}: team route must continue"


# --- notification templates -------------------------------------------------------------

def _template_data(tmp_path, status="firing"):
    labels = am.alert_labels("DatabaseConnectionPoolExhausted")
    annotations = {
        "summary": "Database connection pool nearly exhausted on backend",
        "description": "backend uses 96% of its database connections",
        "runbook_url": "https://runbooks.phase5.example.com/DatabaseConnectionPoolExhausted",
        "dashboard": "/d/phase5-database",
    }
    alert = {"status": status, "labels": labels, "annotations": annotations,
             "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": "http://prometheus/graph", "fingerprint": "0123456789abcdef"}
    data = {"receiver": "slack-critical", "status": status, "alerts": [alert],
            "groupLabels": {"alertname": labels["alertname"]}, "commonLabels": labels,
            "commonAnnotations": annotations, "externalURL": "http://alertmanager:9093"}
    f = tmp_path / "data.json"
    f.write_text(json.dumps(data))
    return f, labels, annotations


@pytest.mark.parametrize("template,kind", [
    ("phase5.slack.text", "text"),
    ("phase5.email.html", "html"),
    ("phase5.email.text", "text"),
])
def test_templates_render_every_field(tmp_path, template, kind):
    objs = render(set_values={"global.grafanaUrl": GRAFANA})
    config_file = am.write_tree(objs, tmp_path)
    data, labels, annotations = _template_data(tmp_path)
    proc = am.amtool("template", "render", f"--template.glob={config_file.parent}/*.tmpl",
                     f"--template.text={{{{ template \"{template}\" . }}}}", f"--template.type={kind}",
                     f"--template.data={data}")
    out = proc.stdout
    for what, needle in [
        ("alert name", labels["alertname"]), ("severity", labels["severity"]), ("service", labels["service"]),
        ("summary", annotations["summary"]), ("description", annotations["description"]),
        ("runbook link", annotations["runbook_url"]), ("dashboard link", GRAFANA + annotations["dashboard"]),
    ]:
        assert needle in out, f"{template}: {what} ({needle!r}) missing from:\n{out}"


@pytest.mark.parametrize("template,want", [
    ("phase5.slack.title", "[FIRING:1] DatabaseConnectionPoolExhausted (critical) - backend"),
    ("phase5.email.subject", "[FIRING:1] DatabaseConnectionPoolExhausted (critical) - backend"),
    ("phase5.slack.color", "danger"),
])
def test_template_titles(tmp_path, template, want):
    config_file = am.write_tree(render(), tmp_path)
    data, _, _ = _template_data(tmp_path)
    proc = am.amtool("template", "render", f"--template.glob={config_file.parent}/*.tmpl",
                     f"--template.text={{{{ template \"{template}\" . }}}}", f"--template.data={data}")
    assert proc.stdout.strip() == want, f"{template}: {proc.stdout.strip()!r}"


def test_operator_mode_texts_render_as_the_template_files_do(tmp_path):
    """Operator mode's AlertmanagerConfig carries no template files: each text that calls a
    phase5.* template has phase5.tmpl (and phase5.grafanaURL) in front of it. Rendered by amtool
    with no template file, every such text gives exactly (whitespace too) what the same field of
    the chart's own alertmanager.yaml gives with the template files: phase5.tmpl's trim markers keep
    the text between its definitions out of the notification."""
    values = {**OPTIONAL_ON, "global.grafanaUrl": GRAFANA}
    full = render(set_values=values)
    config_file = am.write_tree(full, tmp_path / "full")
    amc = render(set_values={**values, "global.operator.enabled": True}).get("AlertmanagerConfig", "p5-alertmanager")
    crd = {r["name"]: r for r in amc["spec"]["receivers"]}
    data, _, _ = _template_data(tmp_path)
    (tmp_path / "none").mkdir()
    pairs = []
    for r in am.config(full)["receivers"]:
        for kind, configs in r.items():
            if kind == "name":
                continue
            twin = crd[r["name"]]["".join(p.title() if i else p for i, p in enumerate(kind.split("_")))][0]
            for field, text in configs[0].items():
                if field == "headers":
                    pairs += [(f"{r['name']} header {k}", v, next(h["value"] for h in twin["headers"] if h["key"] == k))
                              for k, v in text.items()]
                elif isinstance(text, str) and '{{ template "phase5.' in text:
                    pairs.append((f"{r['name']} {field}", text, twin[field]))
    assert len(pairs) >= 9, f"too few templated texts found: {[p[0] for p in pairs]}"

    def rendered(glob, text, kind):
        return am.amtool("template", "render", f"--template.glob={glob}", f"--template.text={text}",
                         f"--template.type={kind}", f"--template.data={data}").stdout

    for where, own, inline in pairs:
        kind = "html" if where.endswith(" html") else "text"
        want = rendered(f"{config_file.parent}/*.tmpl", own, kind)
        got = rendered(f"{tmp_path / 'none'}/*.tmpl", inline, kind)
        assert got == want, f"{where}: the AlertmanagerConfig's text renders {got!r}, alertmanager.yaml's {want!r}"


# --- inhibition -------------------------------------------------------------------------

BRIEF_INHIBITIONS = {
    "critical-suppresses-warning": (
        {a for a, l in am.ALERTS.items() if l["severity"] == "critical"},
        {a for a, l in am.ALERTS.items() if l["severity"] == "warning"},
        {"namespace", "service"},
    ),
    "workload-suppresses-pod-alerts": (
        {"DeploymentReplicaMismatch", "HPAMaxedOut"},
        # PodDown is left out: it is critical and silences the workload alerts itself.
        {"PodRestartingTooOften", "HighCPUUsage", "HighMemoryUsage"},
        {"namespace", "workload_kind", "workload"},
    ),
    "restarts-suppress-cpu": (
        {"PodRestartingTooOften"},
        {"HighCPUUsage"},
        {"namespace", "pod"},
    ),
    "pod-down-explains-target-down": (
        {"PodDown"},
        {"Phase5TargetDown"},
        {"namespace", "pod"},
    ),
    # issue 25: a component, kube-state-metrics or a node down does not page every symptom under it
    "component-down-explains-its-own-alerts": (
        {"MonitoringTargetDown"},
        # not ScrapeLimitExceeded (issue 27): it is why the component's scrapes fail
        {a for a, l in am.ALERTS.items() if l["category"] == "monitoring"} - {"MonitoringTargetDown", "ScrapeLimitExceeded"},
        {"namespace", "service"},
    ),
    "loki-down-explains-collector-failures": (
        {"MonitoringTargetDown"},
        {"LogCollectorSendFailures", "LogCollectorDroppedLines"},
        {"namespace"},
    ),
    "kube-state-metrics-down-blinds-what-it-feeds": (
        {"KubeStateMetricsDown"},
        {"PodDown", "DeploymentReplicaMismatch", "HPAMaxedOut", "PodRestartingTooOften", "HighCPUUsage",
         "HighMemoryUsage", "MonitoringDaemonSetNotOnEveryNode", "NodeNotReady", "NodeUnderPressure",
         "NodeUnschedulable"},
        set(),
    ),
    "node-not-ready-explains-its-exporter-and-disks": (
        {"NodeNotReady"},
        {"NodeExporterDown", "DiskSpaceLow"},
        {"instance"},
    ),
    "node-not-ready-explains-daemonsets-short-of-a-pod": (
        {"NodeNotReady"},
        {"MonitoringDaemonSetNotOnEveryNode"},
        {"namespace"},
    ),
    "node-not-ready-explains-the-alerts-of-its-pods": (
        {"NodeNotReady"},
        {"PodDown", "PodRestartingTooOften", "HighCPUUsage", "HighMemoryUsage"},
        {"node"},
    ),
}


def _inhibit_rules(objs):
    return am.config(objs)["inhibit_rules"]


def _matched(matchers):
    return {a for a in am.ALERTS if am.matches(matchers, am.alert_labels(a))}


@pytest.mark.parametrize("rule_name", sorted(BRIEF_INHIBITIONS))
@pytest.mark.parametrize("values", params.profiles())
def test_inhibition_rule(values, rule_name):
    """Exactly one rendered rule silences the brief's targets by the brief's sources, with the
    brief's equal labels (matchers evaluated against the alerts' real label sets)."""
    sources, targets, equal = BRIEF_INHIBITIONS[rule_name]
    rules = _inhibit_rules(render(values))
    for rule in rules:
        assert {"source_matchers", "target_matchers"} <= rule.keys() and not \
            {"source_match", "source_match_re", "target_match", "target_match_re"} & rule.keys(), \
            f"rule uses deprecated fields: {rule}"
    found = [r for r in rules
             if _matched(r["source_matchers"]) == sources and _matched(r["target_matchers"]) == targets]
    assert len(found) == 1, (f"{rule_name}: want sources {sorted(sources)} -> targets {sorted(targets)}; "
                             f"rendered: {[(sorted(_matched(r['source_matchers'])), sorted(_matched(r['target_matchers']))) for r in rules]}")
    assert set(found[0].get("equal", [])) == equal, f"{rule_name}: equal {found[0].get('equal')}, want {sorted(equal)}"
    # The equal labels are ones the alerts on both sides actually carry.
    for a in sources | targets:
        assert equal <= am.alert_labels(a).keys(), f"{rule_name}: {a} lacks one of {sorted(equal)}"


def _inhibits(rules, a, b):
    la, lb = am.alert_labels(a), am.alert_labels(b)
    return any(am.matches(r["source_matchers"], la) and am.matches(r["target_matchers"], lb)
               and all(la.get(k) == lb.get(k) for k in r.get("equal", [])) for r in rules)


def test_no_two_alerts_inhibit_each_other():
    """Alertmanager lets an inhibited alert still inhibit: two alerts that mute each other
    page nobody (PodDown and DeploymentReplicaMismatch of one Deployment did, once)."""
    rules = _inhibit_rules(render())
    cycles = [(a, b) for a in am.ALERTS for b in am.ALERTS
              if a < b and _inhibits(rules, a, b) and _inhibits(rules, b, a)]
    assert not cycles, f"alerts that silence each other: {cycles}"


def test_only_the_brief_inhibitions_by_default():
    assert len(_inhibit_rules(render())) == len(BRIEF_INHIBITIONS)


def test_watchdog_is_never_inhibited():
    rules = _inhibit_rules(render())
    hit = [r for r in rules if "Watchdog" in _matched(r["target_matchers"])]
    assert not hit, f"rules that could silence the Watchdog: {hit}"


def _inhibits_labels(rules, source, target):
    """Whether a firing alert with labels `source` silences one with labels `target`
    (Alertmanager semantics: an equal label missing on both sides counts as equal)."""
    return any(am.matches(r["source_matchers"], source) and am.matches(r["target_matchers"], target)
               and all(source.get(k, "") == target.get(k, "") for k in r.get("equal", [])) for r in rules)


BARE_POD = {"service": "debug-shell", "pod": "debug-shell"}   # no owner: no workload labels


def _bare(alertname):
    labels = {k: v for k, v in am.alert_labels(alertname).items()
              if k not in ("deployment", "workload_kind", "workload", "pod", "service")}
    return {**labels, **BARE_POD}


@pytest.mark.parametrize("target", ["HighCPUUsage", "HighMemoryUsage", "PodRestartingTooOften"])
def test_statefulset_pod_warnings_are_silenced_by_its_own_poddown_only(target):
    """Keyed on `service`, the critical-over-warning rule works for a StatefulSet pod: its
    PodDown silences its warnings, a Deployment's PodDown does not."""
    rules = _inhibit_rules(render())
    assert _inhibits_labels(rules, am.statefulset_labels("PodDown"), am.statefulset_labels(target))
    assert not _inhibits_labels(rules, am.alert_labels("PodDown"), am.statefulset_labels(target))
    assert not _inhibits_labels(rules, am.statefulset_labels(target), am.statefulset_labels("PodDown"))


@pytest.mark.parametrize("target", ["HighCPUUsage", "HighMemoryUsage", "PodRestartingTooOften"])
def test_hpa_at_max_on_a_statefulset_silences_its_pods(target):
    """The workload inhibition covers any kind the HPA scales (decision: README)."""
    rules = _inhibit_rules(render())
    assert _inhibits_labels(rules, am.statefulset_labels("HPAMaxedOut"), am.statefulset_labels(target))


@pytest.mark.parametrize("source", ["DeploymentReplicaMismatch", "HPAMaxedOut"])
@pytest.mark.parametrize("target", ["HighCPUUsage", "HighMemoryUsage", "PodRestartingTooOften"])
def test_workload_alerts_never_silence_other_workloads_or_bare_pods(source, target):
    """A Deployment's workload alert must not silence the pods of a StatefulSet or a bare pod
    of the same namespace (with `equal: [namespace, deployment]` both lack `deployment`, so
    Alertmanager would count them equal), and an HPA whose target is unknown silences nothing."""
    rules = _inhibit_rules(render())
    assert not _inhibits_labels(rules, am.alert_labels(source), am.statefulset_labels(target))
    assert not _inhibits_labels(rules, am.alert_labels(source), _bare(target))
    unknown_target = {k: v for k, v in am.alert_labels(source).items()
                      if k not in ("deployment", "workload_kind", "workload")}
    assert not _inhibits_labels(rules, unknown_target, _bare(target))
    assert not _inhibits_labels(rules, am.statefulset_labels("HPAMaxedOut"), am.alert_labels(target))


# --- issue 25: the stack's inhibitions on the label sets the rules really produce ---------

def _labels(name, **overrides):
    return am.alert_labels(name, **overrides)


def test_not_ready_node_silences_only_its_own_exporter_and_disks():
    rules = _inhibit_rules(render())
    down = _labels("NodeNotReady")                                      # node-1
    assert _inhibits_labels(rules, down, _labels("NodeExporterDown"))
    assert _inhibits_labels(rules, down, _labels("DiskSpaceLow"))
    assert _inhibits_labels(rules, down, _labels("NodeUnderPressure"))   # its own warning (critical rule)
    other = {"instance": "node-2", "service": "node-2", "node": "node-2"}
    assert not _inhibits_labels(rules, down, _labels("NodeExporterDown", instance="node-2"))
    assert not _inhibits_labels(rules, down, _labels("DiskSpaceLow", instance="node-2"))
    assert not _inhibits_labels(rules, down, _labels("NodeUnderPressure", **other))
    # no node-exporter target at all is not explained by one node
    no_target = {k: v for k, v in _labels("NodeExporterDown").items() if k != "instance"}
    assert not _inhibits_labels(rules, down, no_target)
    # the node's pressure never silences NodeNotReady
    assert not _inhibits_labels(rules, _labels("NodeUnderPressure"), down)


def test_kube_state_metrics_down_silences_the_alerts_it_feeds_in_every_namespace():
    rules = _inhibit_rules(render())
    ksm = _labels("KubeStateMetricsDown")
    for target in ("PodDown", "DeploymentReplicaMismatch", "HPAMaxedOut", "NodeNotReady"):
        assert _inhibits_labels(rules, ksm, _labels(target)), target
        assert _inhibits_labels(rules, ksm, _labels(target, namespace="phase5-other")), target
    for target in ("HighErrorRate", "Phase5TargetDown", "MonitoringTargetDown", "PersistentVolumeFillingUp"):
        assert not _inhibits_labels(rules, ksm, _labels(target)), f"{target} does not read kube-state-metrics"


def test_a_component_down_silences_its_own_alerts_and_loki_down_the_collectors():
    rules = _inhibit_rules(render())
    loki_down, jaeger_down = _labels("MonitoringTargetDown"), _labels("MonitoringTargetDown", service="p5-jaeger",
                                                                       pod="p5-jaeger-0")
    assert _inhibits_labels(rules, jaeger_down, _labels("JaegerSpansDropped"))      # critical, same service
    assert not _inhibits_labels(rules, loki_down, _labels("JaegerSpansDropped"))
    assert _inhibits_labels(rules, loki_down, _labels("LokiIngestionRefused"))
    for target in ("LogCollectorSendFailures", "LogCollectorDroppedLines"):
        assert _inhibits_labels(rules, loki_down, _labels(target)), target
        assert not _inhibits_labels(rules, jaeger_down, _labels(target)), target
    # another release's Loki (another namespace) does not explain this release's collectors
    assert not _inhibits_labels(rules, _labels("MonitoringTargetDown", namespace="staging"),
                                _labels("LogCollectorSendFailures"))
    # a Loki named after another release does not either
    assert not _inhibits_labels(rules, _labels("MonitoringTargetDown", service="other-loki"),
                                _labels("LogCollectorDroppedLines"))


# The real Alertmanager judges the issue-25 inhibitions: the rendered routing tree and
# inhibit_rules unchanged, every receiver emptied (nothing is sent anywhere), the alerts posted
# through its API, and `status.inhibitedBy` read back.
STACK_INHIBITION_CASES = {
    "a NotReady node silences its own exporter, disks and pressure, not another node's": (
        [_labels("NodeNotReady"), _labels("NodeExporterDown"), _labels("DiskSpaceLow"),
         _labels("NodeUnderPressure"), _labels("NodeExporterDown", instance="node-2"),
         _labels("DiskSpaceLow", instance="node-2")],
        {"NodeExporterDown/node-1", "DiskSpaceLow/node-1", "NodeUnderPressure/node-1"},
    ),
    "kube-state-metrics down silences what it feeds, in every namespace, and nothing else": (
        [_labels("KubeStateMetricsDown"), _labels("PodDown"), _labels("PodDown", namespace="phase5-other"),
         _labels("NodeNotReady"), _labels("HighErrorRate"), _labels("PersistentVolumeFillingUp")],
        {"PodDown/backend", "PodDown/backend@phase5-other", "NodeNotReady/node-1"},
    ),
    "Loki down silences its own alerts and the collectors', not Jaeger's": (
        [_labels("MonitoringTargetDown"), _labels("LokiIngestionRefused"), _labels("LogCollectorSendFailures"),
         _labels("LogCollectorDroppedLines"), _labels("JaegerSpansDropped")],
        {"LokiIngestionRefused/p5-loki", "LogCollectorSendFailures/p5-promtail", "LogCollectorDroppedLines/p5-promtail"},
    ),
    "a NotReady node silences the alerts of its own pods, not of other nodes' or unplaced pods": (
        [_labels("NodeNotReady"), _labels("PodDown"),
         _labels("PodRestartingTooOften", service="worker", workload="worker", deployment="worker", pod="worker-5b6c-xk2p9"),
         _labels("PodDown", service="frontend", workload="frontend", deployment="frontend", pod="frontend-6c7d-q8w2e",
                 node="node-2"),
         {k: v for k, v in _labels("PodDown", service="pending", workload="pending", deployment="pending",
                                   pod="pending-5f6g-abcde").items() if k != "node"},
         # a pod that is not Ready fails its scrapes: its PodDown, inhibited itself, still explains that
         _labels("Phase5TargetDown", service="backend", pod=am.ALERTS["PodDown"]["pod"])],
        {"PodDown/backend", "PodRestartingTooOften/worker", "Phase5TargetDown/backend"},
    ),
    "Jaeger down silences its critical storage alert": (
        [_labels("MonitoringTargetDown", service="p5-jaeger", pod="p5-jaeger-0"), _labels("JaegerSpansDropped"),
         _labels("LogCollectorSendFailures")],
        {"JaegerSpansDropped/p5-jaeger"},
    ),
}


def _alert_id(labels):
    ident = labels.get("instance") if labels["alertname"] in ("NodeExporterDown", "DiskSpaceLow") else labels["service"]
    suffix = f"@{labels['namespace']}" if labels["alertname"] == "PodDown" and labels["namespace"] != am.NS else ""
    return f"{labels['alertname']}/{ident}{suffix}"


@pytest.mark.parametrize("case", sorted(STACK_INHIBITION_CASES))
def test_stack_inhibitions_in_the_real_alertmanager(case, tmp_path):
    from harness import tools
    from harness.polling import wait_until
    from harness.ports import free_port
    from harness.process import Process
    import urllib.request
    binary = tools.require("alertmanager")
    alerts, want = STACK_INHIBITION_CASES[case]
    cfg = am.config(render())
    cfg.pop("global", None)
    cfg.pop("templates", None)
    cfg["receivers"] = [{"name": r["name"]} for r in cfg["receivers"]]
    (tmp_path / "am.yaml").write_text(json.dumps(cfg))
    port = free_port()
    proc = Process("alertmanager", [binary, f"--config.file={tmp_path / 'am.yaml'}", f"--storage.path={tmp_path / 'data'}",
                                    f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                   tmp_path / "alertmanager.log", f"http://127.0.0.1:{port}/-/ready")
    proc.start()
    base = f"http://127.0.0.1:{port}/api/v2/alerts"
    try:
        body = json.dumps([{"labels": labels} for labels in alerts]).encode()
        urllib.request.urlopen(urllib.request.Request(base, body, {"Content-Type": "application/json"}), timeout=5)

        def settled():
            with urllib.request.urlopen(base, timeout=5) as r:
                got = json.load(r)
            return got if len(got) == len(alerts) else None
        wait_until(settled, 10, "the posted alerts", every=0.2, retry=(OSError,))
        # inhibition is computed when the alerts are read; give the inhibitor its own cycle
        time.sleep(1)
        with urllib.request.urlopen(base, timeout=5) as r:
            got = json.load(r)
    finally:
        proc.stop()
    inhibited = {_alert_id(a["labels"]) for a in got if a["status"]["inhibitedBy"]}
    assert inhibited == want, f"{case}: inhibited {sorted(inhibited)}, want {sorted(want)}"


def _for_seconds(duration):
    import re
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)(ms|[smhdwy])", duration or "0s"))


@pytest.mark.parametrize("values", params.profiles())
def test_a_not_ready_node_fires_before_the_alerts_of_its_pods(values):
    """Alertmanager inhibits only while the source fires: the node controller turns a NotReady
    node's pods not ready at the same moment, so NodeNotReady's `for` must be shorter than the
    `for` of every pod alert it explains, or the pods page first (as with its old 5m against
    PodDown's 2m). Rendered rules, every profile."""
    from harness import prometheus as prom
    _, rules = prom.rendered(values)
    alerts = {}
    for text in rules.values():
        alerts.update(prom.alerts(text))
    node = _for_seconds(alerts["NodeNotReady"].get("for"))
    (rule,) = [r for r in _inhibit_rules(render(values)) if _matched(r["source_matchers"]) == {"NodeNotReady"}
               and "PodDown" in _matched(r["target_matchers"])]
    late = {a: alerts[a].get("for") for a in _matched(rule["target_matchers"])
            if _for_seconds(alerts[a].get("for")) <= node}
    assert not late, f"NodeNotReady (for {alerts['NodeNotReady'].get('for')}) fires after the pod alerts it inhibits: {late}"
