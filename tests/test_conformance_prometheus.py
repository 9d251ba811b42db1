"""Conformance tier for the Prometheus subchart: promtool checks the rendered configuration
and rules for the defaults and every profile, runs the promtool unit tests in tests/rules/
against the rendered rules, and proves that values really change the rendered alerts."""
import textwrap

import pytest
import yaml

from harness import params
from harness import prometheus as prom
from harness import spec

pytestmark = pytest.mark.conformance

# The spec's rule and alert names are listed once, in harness/spec.py.
DASHBOARDS = {"/d/phase5-overview", "/d/phase5-database", "/d/phase5-agents"}
RULE_TEST_FILES = sorted(prom.RULES_TESTS_DIR.glob("*.test.yaml"))


def _output(proc):
    return f"exit {proc.returncode}\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("values", params.profiles())
def test_promtool_check_config(values, tmp_path):
    config, rules = prom.rendered(values)
    path = prom.layout(tmp_path, config, rules)
    proc = prom.promtool("check", "config", path)
    assert proc.returncode == 0, f"promtool check config ({values or 'defaults'}):\n{_output(proc)}"
    assert "SUCCESS" in proc.stdout and "rules found" in proc.stdout, _output(proc)


def test_promtool_check_config_with_remote_write_and_external_alertmanagers(tmp_path):
    config, rules = prom.rendered(set_values={
        "prometheus.remoteWrite": {
            "existingSecret": "rw-creds",
            "endpoints": [
                {"name": "mimir", "url": "https://mimir.example.com/api/v1/push",
                 "basicAuth": {"username": "tenant-1", "passwordKey": "mimir-password"},
                 "queueConfig": {"max_samples_per_send": 2000}},
                {"name": "thanos", "url": "https://receive.example.com/api/v1/receive",
                 "bearerTokenKey": "thanos-token", "headers": {"X-Scope-OrgID": "phase5"}},
            ]},
        "prometheus.alerting.external": [{"targets": ["am.example.com:443"], "scheme": "https"}],
        "prometheus.alerting.inCluster.discovery": "static",
        "prometheus.replicas": 2,
    })
    path = prom.layout(tmp_path, config, rules)
    proc = prom.promtool("check", "config", path)
    assert proc.returncode == 0, _output(proc)


@pytest.mark.parametrize("set_values", [
    {"prometheus.scrape.keepAllSeries": True},
    {"prometheus.scrape.jobs.phase5-exporters.keep": ["pg_.*", "kafka_.*"],
     "prometheus.scrape.jobs.phase5-exporters.drop": ["pg_stat_statements_.*"],
     "prometheus.scrape.jobs.kube-state-metrics.extraKeep": ["kube_pod_labels", "kube_node_.*"],
     "prometheus.scrape.kubelet.extraPodNamespaces": ["kube-system", "team-.*"],
     "prometheus.scrape.jobs.kubelet.limits": {"sampleLimit": 0, "labelLimit": 0, "bodySizeLimit": "0"}},
], ids=["keep-all-series", "keep-drop-extra-keep-and-no-limits"])
def test_promtool_check_config_with_series_selection(set_values, tmp_path):
    """Issue 27: keep-lists, keep/drop lists, the namespace filter and the limits, as the
    real promtool reads them (the defaults: test_promtool_check_config)."""
    config, rules = prom.rendered(set_values=set_values)
    proc = prom.promtool("check", "config", prom.layout(tmp_path, config, rules))
    assert proc.returncode == 0, _output(proc)


@pytest.mark.parametrize("values", params.profiles())
def test_promtool_check_rules(values, tmp_path):
    _, rules = prom.rendered(values)
    rules_dir = prom.write_rules(tmp_path, rules)
    files = sorted(rules_dir.glob("*.yaml"))
    assert {f.name for f in files} >= {"recording-rules.yaml", "phase5-alerts.yaml"}, files
    proc = prom.promtool("check", "rules", *files)
    assert proc.returncode == 0, f"promtool check rules ({values or 'defaults'}):\n{_output(proc)}"


def test_one_promtool_test_file_per_rule_file():
    _, rules = prom.rendered()
    tested = {f.name.removesuffix(".test.yaml") + ".yaml" for f in RULE_TEST_FILES}
    assert tested == set(rules), f"rule files {sorted(rules)} vs test files {[f.name for f in RULE_TEST_FILES]}"


def test_promtool_test_rules_on_rendered_rules(tmp_path):
    _, rules = prom.rendered()
    proc = prom.run_rule_tests(tmp_path, rules, RULE_TEST_FILES)
    assert proc.returncode == 0, f"promtool test rules:\n{proc.failed_output}"
    assert proc.groups == sum(len(doc["tests"]) for doc in _test_docs().values()), proc.groups
    assert proc.stdout.count("SUCCESS") == proc.parts, _output(proc)


def _test_docs():
    return {f.name: yaml.safe_load(f.read_text()) for f in RULE_TEST_FILES}


def test_every_alert_has_a_firing_and_a_silent_case():
    """Each alert: a case before its `for` where nothing fires, and one after with exp_alerts
    carrying every contract label and annotation; each recording rule: a value check."""
    cases = {}
    exprs = set()
    for name, doc in _test_docs().items():
        for group in doc["tests"]:
            for case in group.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], []).append(case)
            for case in group.get("promql_expr_test", []):
                assert case.get("exp_samples"), f"{name}: {case['expr']} checks no value"
                exprs.add(case["expr"])
    problems = []
    for alert, (severity, category, extra) in spec.ALERTS.items():
        mine = cases.get(alert, [])
        firing = [c for c in mine if c.get("exp_alerts")]
        if not firing:
            problems.append(f"{alert}: no case where it fires")
        if alert != "Watchdog" and not [c for c in mine if not c.get("exp_alerts")]:
            problems.append(f"{alert}: no case where it stays silent")
        for c in firing:
            for exp in c["exp_alerts"]:
                labels = exp.get("exp_labels", {})
                want = {"severity", "category", "namespace", "service", *extra}
                if not want <= labels.keys():
                    problems.append(f"{alert}: case at {c['eval_time']} lacks labels {sorted(want - labels.keys())}")
                if labels.get("severity") != severity or (category and labels.get("category") != category):
                    problems.append(f"{alert}: expects {labels.get('severity')}/{labels.get('category')}")
                ann = exp.get("exp_annotations", {})
                if not {"summary", "description", "runbook_url", "dashboard"} <= ann.keys():
                    problems.append(f"{alert}: case at {c['eval_time']} does not check every annotation")
    for record in spec.RECORDING_RULES + spec.DASHBOARD_RECORDING_RULES:
        if record not in exprs:
            problems.append(f"{record}: no promql_expr_test checks its value")
    assert not problems, "\n".join(problems)


# The owner kinds a Phase 5 pod can have; None: no owner at all (a bare pod).
OWNER_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", None}
POD_ALERTS = ("PodDown", "HighCPUUsage", "HighMemoryUsage", "PodRestartingTooOften")


def _firing_labels(alertname):
    return [exp.get("exp_labels", {}) for doc in _test_docs().values() for group in doc["tests"]
            for case in group.get("alert_rule_test", []) if case["alertname"] == alertname
            for exp in case.get("exp_alerts") or []]


@pytest.mark.parametrize("alertname", POD_ALERTS)
def test_pod_alerts_have_a_firing_case_for_every_owner_kind(alertname):
    """No owner kind can silence a pod alert: the promtool tests (which run above) show each
    pod alert firing for a pod of every kind and for a pod without owner, with the workload
    as `service` when known and the pod's name otherwise."""
    kinds, problems = set(), []
    for labels in _firing_labels(alertname):
        kind = labels.get("workload_kind")
        kinds.add(kind)
        want = labels.get("workload") if kind else labels.get("pod")
        if labels.get("service") != want:
            problems.append(f"{alertname}: service {labels.get('service')!r} for {kind or 'a bare pod'}, want {want!r}")
        if ("deployment" in labels) != (kind == "Deployment"):
            problems.append(f"{alertname}: deployment label {labels.get('deployment')!r} on a {kind} pod")
    missing = OWNER_KINDS - kinds
    if alertname != "PodDown":   # one non-Deployment kind and a bare pod suffice for the resource alerts
        missing = {None} - kinds if kinds & (OWNER_KINDS - {"Deployment", None}) else missing
    assert not missing and not problems, (f"{alertname}: no firing case for owner kinds {missing}; "
                                          f"tested {kinds}\n" + "\n".join(problems))


def test_hpa_maxed_out_has_a_firing_case_for_a_non_deployment_target():
    kinds = {labels.get("workload_kind") for labels in _firing_labels("HPAMaxedOut")}
    assert kinds - {"Deployment", None} and None in kinds, f"HPAMaxedOut tested for targets {kinds}"


def test_spec_names_are_rendered():
    _, rules = prom.rendered()
    records = prom.records(rules["recording-rules.yaml"])
    alerts = prom.alerts(rules["phase5-alerts.yaml"])
    missing = [r for r in spec.RECORDING_RULES if r not in records]
    missing += [a for a in spec.ALERTS if a not in alerts]
    assert not missing, f"rules the spec names are missing from the rendered rule files: {missing}"


def test_alert_labels_and_annotations_follow_the_contract():
    base = "https://runbooks.example.org/phase5/"
    _, rules = prom.rendered(set_values={"prometheus.rules.runbookBaseUrl": base,
                                         "prometheus.rules.grafanaUrl": "https://grafana.example.org"})
    problems = []
    for name, rule in prom.alerts(rules["phase5-alerts.yaml"]).items():
        severity, category, _ = spec.ALERTS[name]
        labels, ann = rule.get("labels", {}), rule.get("annotations", {})
        if (labels.get("severity"), labels.get("category")) != (severity, category):
            problems.append(f"{name}: labels {labels}")
        if category is None and "service:phase5_category:info" not in rule["expr"]:
            problems.append(f"{name}: its category (team) must come from service:phase5_category:info")
        if ann.get("runbook_url") != f"https://runbooks.example.org/phase5/{name}.md":
            problems.append(f"{name}: runbook_url {ann.get('runbook_url')}")
        dash = ann.get("dashboard", "").removeprefix("https://grafana.example.org")
        if dash not in DASHBOARDS:
            problems.append(f"{name}: dashboard {ann.get('dashboard')}")
        if "$value" not in ann.get("description", ""):
            problems.append(f"{name}: description does not show the value: {ann.get('description')}")
        if not ann.get("summary"):
            problems.append(f"{name}: no summary")
    assert not problems, "\n".join(problems)


# A 10 % 5xx rate: above the default 5 % threshold, below an overridden 20 %.
_OVERRIDE_TEST = textwrap.dedent("""\
    rule_files: [recording-rules.yaml, phase5-alerts.yaml]
    evaluation_interval: 1m
    tests:
      - interval: 1m
        input_series:
          - series: 'http_requests_total{namespace="phase5-tasks", service="backend", status="200"}'
            values: '0+54x20'
          - series: 'http_requests_total{namespace="phase5-tasks", service="backend", status="500"}'
            values: '0+6x20'
        alert_rule_test:
          - eval_time: 15m
            alertname: HighErrorRate
            exp_alerts: %s
    """)
_FIRING = ('[{exp_labels: {severity: %s, category: application, namespace: phase5-tasks, service: backend}}]')


def _promtool_labels_only(tmp_path, rules, test_text):
    """promtool test rules of `test_text` against `rules`. These focused checks compare labels
    only, so the annotations are dropped from the rendered alerts (promtool would otherwise
    require them in exp_annotations); the full annotations are covered by tests/rules/."""
    doc = yaml.safe_load(rules["phase5-alerts.yaml"])
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    prom.write_rules(tmp_path, {**rules, "phase5-alerts.yaml": yaml.safe_dump(doc)})
    (tmp_path / "focused.test.yaml").write_text(test_text)
    return prom.promtool("test", "rules", "focused.test.yaml", cwd=tmp_path)


def _run_override_case(tmp_path, rules, exp_alerts):
    """Run the 10 %-errors case against `rules`."""
    return _promtool_labels_only(tmp_path, rules, _OVERRIDE_TEST % exp_alerts)


def test_threshold_override_changes_the_rendered_rule_and_its_behaviour(tmp_path):
    _, default_rules = prom.rendered()
    _, raised = prom.rendered(set_values={"prometheus.alerts.HighErrorRate":
                                          {"threshold": 0.2, "for": "1m", "severity": "warning"}})
    default_rule = prom.alerts(default_rules["phase5-alerts.yaml"])["HighErrorRate"]
    raised_rule = prom.alerts(raised["phase5-alerts.yaml"])["HighErrorRate"]
    assert default_rule["expr"].count("> 0.05)") == 2, default_rule["expr"]
    assert raised_rule["expr"].count("> 0.2)") == 2 and "0.05" not in raised_rule["expr"], raised_rule["expr"]
    assert raised_rule["for"] == "1m" and raised_rule["labels"]["severity"] == "warning", raised_rule
    assert "threshold 0.2" in raised_rule["annotations"]["description"]

    (tmp_path / "default").mkdir()
    (tmp_path / "raised").mkdir()
    fires = _run_override_case(tmp_path / "default", default_rules, _FIRING % "critical")
    assert fires.returncode == 0, f"10 % errors must fire at the default 5 %:\n{_output(fires)}"
    silent = _run_override_case(tmp_path / "raised", raised, "[]")
    assert silent.returncode == 0, f"10 % errors must stay silent at 20 %:\n{_output(silent)}"


_SERIES_BY_SERVICE_TEST = textwrap.dedent("""\
    rule_files: [recording-rules.yaml, phase5-alerts.yaml]
    evaluation_interval: 1m
    tests:
      - interval: 1m
        input_series:
          # reminder-agent is held to its own list: the default list's duration count is not asked
          # of it, reminder_deliveries_total is.
          - series: 'up{job="phase5-services", namespace="phase5-tasks", service="reminder-agent", pod="r-1", instance="10.0.0.1:8000"}'
            values: '1x20'
          - series: 'http_requests_total{job="phase5-services", namespace="phase5-tasks", service="reminder-agent", status="200"}'
            values: '0+1x20'
          # notification-agent has both its own series: silent, although it lacks the default's.
          - series: 'up{job="phase5-services", namespace="phase5-tasks", service="notification-agent", pod="n-1", instance="10.0.0.2:8000"}'
            values: '1x20'
          - series: 'http_requests_total{job="phase5-services", namespace="phase5-tasks", service="notification-agent", status="200"}'
            values: '0+1x20'
          - series: 'reminder_deliveries_total{job="phase5-services", namespace="phase5-tasks", service="notification-agent", channel="email", status="sent"}'
            values: '0+1x20'
          # backend keeps the default list and misses its duration count.
          - series: 'up{job="phase5-services", namespace="phase5-tasks", service="backend", pod="b-1", instance="10.0.0.3:8000"}'
            values: '1x20'
          - series: 'http_requests_total{job="phase5-services", namespace="phase5-tasks", service="backend", status="200"}'
            values: '0+1x20'
        alert_rule_test:
          - eval_time: 15m
            alertname: Phase5MetricsMissing
            exp_alerts:
              - exp_labels: {severity: critical, category: reminder, namespace: phase5-tasks, service: reminder-agent,
                             required_series: "http_requests_total|reminder_deliveries_total"}
              - exp_labels: {severity: critical, category: application, namespace: phase5-tasks, service: backend}
    """)


def test_required_series_per_service(tmp_path):
    """alerts.Phase5MetricsMissing.seriesByService holds a service to its own list instead of
    `series` (issue 24: each service's required series can differ): run by promtool on the
    rendered rules, a service missing one of its own series fires (carrying the list), one with
    all of its own series stays silent although it lacks the default list's, and the others keep
    the default list."""
    own = ["http_requests_total", "reminder_deliveries_total"]
    _, rules = prom.rendered(set_values={"prometheus.alerts.Phase5MetricsMissing.seriesByService":
                                         {"reminder-agent": own, "notification-agent": own}})
    proc = _promtool_labels_only(tmp_path, rules, _SERIES_BY_SERVICE_TEST)
    assert proc.returncode == 0, _output(proc)


def test_disabled_alert_is_left_out(tmp_path):
    _, rules = prom.rendered(set_values={"prometheus.alerts.KafkaConsumerLag.enabled": False,
                                         "prometheus.alerts.Watchdog.enabled": False})
    alerts = prom.alerts(rules["phase5-alerts.yaml"])
    assert "KafkaConsumerLag" not in alerts and "Watchdog" not in alerts, sorted(alerts)
    assert len(alerts) == len(spec.ALERTS) - 2, sorted(alerts)
    proc = prom.promtool("check", "rules", prom.write_rules(tmp_path, rules) / "phase5-alerts.yaml")
    assert proc.returncode == 0, _output(proc)
