"""Unit tier: operator mode (global.operator.enabled), for clusters that already run
kube-prometheus-stack. The chart renders PrometheusRules, ServiceMonitors, an
AlertmanagerConfig and sidecar dashboard ConfigMaps built from the same sources as the full
stack (rule files, scrape jobs, alertmanager.yaml, dashboard files); these tests prove each
is the same data, and that the full-stack defaults are untouched. The real prometheus-operator
judges the objects in the cluster tier (test_cluster_operator.py)."""
import json

import pytest
import yaml

from harness import operator as op
from harness import dashboards, paths, spec
from harness.manifests import component
from harness.operator import OPERATOR_VALUES
from harness.render import render, render_error

pytestmark = pytest.mark.unit
# (test_operator_mode_lints_strict is conformance as well: it runs helm lint.)

GRAFANA_FILES = paths.SUBCHARTS_DIR / "grafana" / "files" / "dashboards"
# Per-alert values and settings that change the rules: both modes must follow them alike.
TUNED = {"prometheus.alerts.HighErrorRate.threshold": 0.2, "prometheus.alerts.PodDown.enabled": False,
         "prometheus.rules.runbookBaseUrl": "https://runbooks.example.com/p5",
         "prometheus.rules.grafanaUrl": "https://grafana.example.com",
         "prometheus.slos": {"backend": {"availability": 99.5}, "reminder-agent": {"availability": 99}},
         "global.phase5.namespaceRegex": "tasks-.*"}


def both(values=None, files=()):
    return (render(files, dict(values or {})),
            render(files, {**(values or {}), **OPERATOR_VALUES}))


@pytest.fixture(scope="module")
def operator_render():
    return render((), OPERATOR_VALUES)


# ------------------------------------------------------------------ default off, switch on
@pytest.mark.parametrize("profile", [None, *paths.profiles(), *paths.ci_values()],
                         ids=lambda p: "defaults" if p is None else p.stem)
def test_full_stack_profiles_render_no_operator_objects(profile):
    m = render([profile] if profile else [])
    found = [f"{o['kind']}/{o['metadata']['name']}" for o in m if o["kind"] in op.KINDS]
    assert not found, f"operator objects in a full-stack render: {found}"
    sidecar = [o["metadata"]["name"] for o in m.of_kind("ConfigMap")
               if "grafana_dashboard" in (o["metadata"].get("labels") or {})]
    assert not sidecar, f"sidecar dashboard ConfigMaps in a full-stack render: {sidecar}"


def test_operator_mode_runs_no_workload_of_the_replaced_components(operator_render):
    running = {component(o) for o in operator_render.workloads()}
    replaced = running & set(op.REPLACED)
    assert not replaced, f"operator mode still runs {sorted(replaced)}: kube-prometheus-stack runs those"
    assert {"loki", "alloy", "jaeger"} <= running, f"logs and traces stay; running: {sorted(running)}"
    leftover = [f"{o['kind']}/{o['metadata']['name']}" for o in operator_render
                if component(o) in op.REPLACED and o["kind"] not in (*op.KINDS, "ConfigMap", "Secret")]
    assert not leftover, f"objects of replaced components left: {leftover}"
    tests = {o["metadata"]["name"] for o in operator_render.of_kind("Pod")}
    assert not {f"p5-test-{c}" for c in op.REPLACED} & tests, f"helm test pods for replaced components: {tests}"


def test_every_operator_object_carries_the_selector_labels():
    m = render((), {**OPERATOR_VALUES, "global.operator.selectorLabels": {"release": "monitoring-stack"}})
    objs = [o for o in m if o["kind"] in op.KINDS]
    assert {o["kind"] for o in objs} == set(op.KINDS), f"kinds rendered: {sorted({o['kind'] for o in objs})}"
    for o in objs:
        labels = o["metadata"]["labels"]
        assert labels.get("release") == "monitoring-stack", f"{o['kind']}/{o['metadata']['name']}: labels {labels}"
        assert labels.get("app.kubernetes.io/instance") == "p5"


def test_the_default_selector_label_is_kube_prometheus_stacks():
    m = render((), OPERATOR_VALUES)
    for o in m:
        if o["kind"] in op.KINDS:
            assert o["metadata"]["labels"]["release"] == "kube-prometheus-stack", o["metadata"]


@pytest.mark.parametrize("values", [{"global.operator.enabled": "yes"},
                                    {"global.operator.selectorLabels": {"release": 1}},
                                    {"global.operator.selectro": {}}],
                         ids=["enabled-not-bool", "label-not-string", "typo"])
def test_operator_values_are_schema_checked(values):
    msg = render_error((), values)
    assert "operator" in msg or "selectro" in msg, msg


# ------------------------------------------------------------------ rules: one source
@pytest.mark.parametrize("values", [{}, TUNED], ids=["defaults", "tuned"])
def test_prometheusrules_are_the_rule_files_the_full_stack_loads(values):
    full, oper = both(values)
    want, got = op.rule_files(full), op.rule_files(oper)
    assert set(got) == set(want), f"rule files: operator {sorted(got)}, full stack {sorted(want)}"
    for name in want:
        assert got[name] == want[name], f"PrometheusRule {name} differs from the rules ConfigMap's {name}.yaml"


def test_prometheusrules_hold_every_spec_rule_with_links(operator_render):
    rules = [r for doc in op.rule_files(operator_render).values() for g in doc["groups"] for r in g["rules"]]
    recorded = {r["record"] for r in rules if "record" in r}
    missing = set(spec.RECORDING_RULES) - recorded
    assert not missing, f"recording rules missing from the PrometheusRules: {sorted(missing)}"
    alerts = {r["alert"]: r for r in rules if "alert" in r}
    missing = set(spec.ALERTS) - set(alerts)
    assert not missing, f"alerts missing from the PrometheusRules: {sorted(missing)}"
    assert "ErrorBudgetBurn" in alerts, "the SLO rules are not in the PrometheusRules"
    for name, r in alerts.items():
        assert r["annotations"]["runbook_url"].endswith(f"/{name}.md"), (name, r["annotations"])
        assert r["annotations"]["dashboard"].startswith("/d/phase5-"), (name, r["annotations"])


def test_every_alert_carries_a_category_for_the_route_matcher(operator_render):
    """The AlertmanagerConfig's top route takes alerts with a `category` (the default of
    alertmanager.operator.routeMatchers): every Phase 5 alert has one, by label or by the
    join on service:phase5_category:info (Phase5TargetDown, Phase5MetricsMissing)."""
    amc = operator_render.get("AlertmanagerConfig", "p5-alertmanager")
    assert {"name": "category", "matchType": "=~", "value": ".+"} in amc["spec"]["route"]["matchers"]
    for doc in op.rule_files(operator_render).values():
        for g in doc["groups"]:
            for r in g["rules"]:
                if "alert" in r:
                    joined = "group_left (category)" in r["expr"]
                    assert "category" in r.get("labels", {}) or joined, f"{r['alert']}: no category label"


# ------------------------------------------------------------------ scrape targets
@pytest.mark.parametrize("values", [{}, TUNED], ids=["defaults", "tuned"])
def test_servicemonitors_select_what_the_full_stack_jobs_select(values):
    full, oper = both(values)
    jobs = op.scrape_jobs(full)
    monitors = {o["metadata"]["name"].removeprefix("p5-prometheus-"): o for o in oper.of_kind("ServiceMonitor")}
    assert set(monitors) == {"phase5-services", "phase5-exporters"}, sorted(monitors)
    for name, sm in monitors.items():
        s = sm["spec"]
        assert s["namespaceSelector"] == {"any": True} and s["selector"] == {}, s
        assert len(s["endpoints"]) == 1
        ep = s["endpoints"][0]
        assert "port" not in ep and "targetPort" not in ep, "a port filter the full-stack job does not have"
        want = [op.to_camel(r) for r in jobs[name]["relabel_configs"]]
        got = ep["relabelings"]
        assert got[:len(want)] == want, f"{name}: relabelings differ from job {name}'s relabel_configs"
        assert got[len(want):] == [{"action": "labeldrop", "regex": "container|endpoint"},
                                   {"action": "replace", "targetLabel": "job", "replacement": name}], got[len(want):]
        assert ep["interval"] == "15s" and ep["scrapeTimeout"] == "10s"


def test_servicemonitors_exist_without_the_service_lists():
    """Services opt in by labels: both ServiceMonitors exist with the deprecated lists empty."""
    m = render((), {**OPERATOR_VALUES, "prometheus.phase5.services": [], "prometheus.phase5.exporters": []})
    names = [o["metadata"]["name"] for o in m.of_kind("ServiceMonitor")]
    assert names == ["p5-prometheus-phase5-services", "p5-prometheus-phase5-exporters"], names


# ------------------------------------------------------------------ routes and receivers
def _am_config(full):
    sec = full.get("Secret", "p5-alertmanager-config")
    return yaml.safe_load(sec["stringData"]["alertmanager.yaml"])


@pytest.mark.parametrize("values", [{}, {"alertmanager.pagerduty.enabled": True, "alertmanager.webhook.enabled": True,
                                         "alertmanager.watchdog.enabled": True, "alertmanager.email.username": "am"}],
                         ids=["defaults", "every-receiver"])
def test_alertmanagerconfig_carries_the_routing_tree_and_inhibitions(values):
    full, oper = both(values)
    cfg = _am_config(full)
    amc = oper.get("AlertmanagerConfig", "p5-alertmanager")["spec"]
    route = op.amc_route(amc["route"])
    assert route.pop("matchers") == ['category=~".+"'], "the top route's matchers are the routeMatchers value"
    assert route == cfg["route"], "the AlertmanagerConfig's routing tree differs from alertmanager.yaml's"
    assert op.amc_inhibit(amc["inhibitRules"]) == cfg["inhibit_rules"], "inhibitions differ"
    assert sorted(r["name"] for r in amc["receivers"]) == sorted(r["name"] for r in cfg["receivers"])
    for r in amc["receivers"]:
        orig = next(x for x in cfg["receivers"] if x["name"] == r["name"])
        kinds = {k for k in orig if k != "name"}
        assert {k for k in r if k != "name"} == {"".join(p.title() if i else p for i, p in enumerate(k.split("_")))
                                                 for k in kinds}, (r["name"], sorted(r), sorted(orig))


def test_alertmanagerconfig_credentials_are_secret_references_only():
    values = {**OPERATOR_VALUES, "alertmanager.pagerduty.enabled": True, "alertmanager.webhook.enabled": True,
              "alertmanager.watchdog.enabled": True, "alertmanager.email.username": "am",
              "alertmanager.secrets.existingSecret": "alertmanager-secrets"}
    m = render((), values)
    amc = m.get("AlertmanagerConfig", "p5-alertmanager")["spec"]
    refs = {}
    for r in amc["receivers"]:
        for kind, configs in r.items():
            if kind == "name":
                continue
            for c in configs:
                for field in ("apiURL", "authPassword", "routingKey", "urlSecret"):
                    if field in c:
                        refs[(r["name"], field)] = c[field]
    assert refs, "no secret references"
    for where, ref in refs.items():
        assert set(ref) == {"name", "key"} and ref["name"] == "alertmanager-secrets", (where, ref)
    keys = {ref["key"] for ref in refs.values()}
    assert keys == {"slack-webhook-url", "smtp-password", "pagerduty-routing-key", "webhook-url", "watchdog-url"}, keys
    assert not m.find("Secret", "p5-alertmanager-secrets"), "existingSecret: the chart must create no credentials Secret"
    # Nothing in the object looks like a credential value.
    text = json.dumps(amc)
    assert "hooks.slack.com" not in text and "password:" not in text


def test_alertmanagerconfig_inlines_the_notification_templates(operator_render):
    amc = operator_render.get("AlertmanagerConfig", "p5-alertmanager")["spec"]
    slack = next(r for r in amc["receivers"] if r["name"] == "slack-critical")["slackConfigs"][0]
    assert slack["title"].endswith('{{ template "phase5.slack.title" . }}'), slack["title"][-80:]
    assert '{{- define "phase5.slack.title" -}}' in slack["title"]
    assert '{{- define "phase5.grafanaURL" }}http://localhost:3000{{ end -}}' in slack["title"]


@pytest.mark.parametrize("key,value", [("alertmanager.route.extraRoutes", [{"receiver": "x"}]),
                                       ("alertmanager.extraReceivers", [{"name": "x"}]),
                                       ("alertmanager.extraInhibitRules", [{"equal": ["a"]}])],
                         ids=["extraRoutes", "extraReceivers", "extraInhibitRules"])
def test_raw_alertmanager_extras_are_refused_in_operator_mode(key, value):
    msg = render_error((), {**OPERATOR_VALUES, key: value})
    assert key.removeprefix("alertmanager.") in msg and "operator mode" in msg, msg


# ------------------------------------------------------------------ dashboards
def test_sidecar_configmaps_carry_the_chart_dashboards(operator_render):
    cms = {o["metadata"]["name"]: o for o in operator_render.of_kind("ConfigMap")
           if o["metadata"].get("labels", {}).get("grafana_dashboard") == "1"}
    files = sorted(GRAFANA_FILES.glob("*.json"))
    assert len(files) >= 3
    assert set(cms) == {f"p5-grafana-dashboard-{f.stem}" for f in files}, sorted(cms)
    # The dashboards the chart's own Grafana gets (alert threshold steps resolved from the values).
    shipped = dashboards.rendered(render())
    for f in files:
        cm = cms[f"p5-grafana-dashboard-{f.stem}"]
        assert cm["metadata"]["annotations"] == {"grafana_folder": "Phase 5"}
        assert json.loads(cm["data"][f"{f.name}"]) == shipped[f.stem], f"{f.name} differs from the chart's own Grafana's"


def test_sidecar_labels_folder_and_datasource_are_configurable():
    m = render((), {**OPERATOR_VALUES, "grafana.operator.dashboards": {
        "labels": {"dashboards": "phase5"}, "folderAnnotation": "k8s-sidecar-target-directory",
        "datasourceUid": "kps-prom"}, "grafana.dashboards.folder": "Tasks"})
    cms = [o for o in m.of_kind("ConfigMap") if o["metadata"].get("labels", {}).get("dashboards") == "phase5"]
    assert len(cms) == len(list(GRAFANA_FILES.glob("*.json")))
    for cm in cms:
        assert cm["metadata"]["annotations"] == {"k8s-sidecar-target-directory": "Tasks"}
        dash = json.loads(next(iter(cm["data"].values())))
        uids = set()

        def walk(node):
            if isinstance(node, dict):
                ds = node.get("datasource")
                if isinstance(ds, dict) and ds.get("type") == "prometheus":
                    uids.add(ds.get("uid"))
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
        walk(dash)
        # Every Prometheus query reads the $datasource variable, whose default is that Grafana's uid.
        assert uids == {"${datasource}"}, f"{cm['metadata']['name']}: Prometheus datasource uids {uids}"
        var = dashboards.datasource_variable(dash)
        assert var["current"]["value"] == "kps-prom", f"{cm['metadata']['name']}: $datasource defaults to {var['current']}"


def test_notes_explain_operator_mode_and_the_matcher_strategy(tmp_path):
    from harness.render import NOTES_PROBE, notes, umbrella_copy
    text = notes(umbrella_copy(tmp_path, NOTES_PROBE), (), OPERATOR_VALUES)
    assert "alertmanagerConfigMatcherStrategy.type=None" in text, text
    assert "port-forward svc/p5-prometheus" not in text and "port-forward svc/p5-grafana" not in text, text
    assert "operator mode" in text


# ------------------------------------------------------------------ lint
@pytest.mark.conformance
def test_operator_mode_lints_strict():
    import subprocess

    from harness import tools
    helm = tools.require("helm")
    proc = subprocess.run([helm, "lint", "--strict", "--kube-version", paths.KUBE_MAX, str(paths.UMBRELLA),
                           "--set", "global.operator.enabled=true",
                           "--set", "alertmanager.secrets.existingSecret=alertmanager-secrets"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("values", [
    {},
    {"prometheus.scrape.jobs.phase5-services.drop": ["debug_.*"],
     "prometheus.scrape.jobs.phase5-exporters.keep": ["pg_.*", "kafka_.*"],
     "prometheus.scrape.jobs.phase5-exporters.limits": {"sampleLimit": 0, "labelLimit": 30, "bodySizeLimit": "0"}},
], ids=["defaults", "keep-drop-and-limits"])
def test_servicemonitors_store_and_limit_what_the_full_stack_jobs_do(values):
    """Issue 27 in operator mode: each ServiceMonitor carries its job's sample, label and body
    size limits and keep/drop lists (metricRelabelings), as the chart's own job does."""
    full, oper = both(values)
    jobs = op.scrape_jobs(full)
    monitors = {o["metadata"]["name"].removeprefix("p5-prometheus-"): o for o in oper.of_kind("ServiceMonitor")}
    for name, sm in monitors.items():
        job, s = jobs[name], sm["spec"]
        for key, camel in (("sample_limit", "sampleLimit"), ("label_limit", "labelLimit"),
                           ("body_size_limit", "bodySizeLimit")):
            assert s.get(camel) == job.get(key), f"{name}: {camel} {s.get(camel)}, job {key} {job.get(key)}"
        want = [op.to_camel(r) for r in job.get("metric_relabel_configs") or []]
        assert s["endpoints"][0].get("metricRelabelings", []) == want, f"{name}: metricRelabelings differ"
