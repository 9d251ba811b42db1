"""Cluster tier: operator mode judged by the real prometheus-operator.

On the cluster tier's cluster (the local control plane, or KUBECONFIG's): the monitoring.coreos.com
CRDs that controller-gen generated from prometheus-operator's API types, the operator built from its
module (both pinned in tools.versions, built into bin/ by `make tools`), a Prometheus and an
Alertmanager resource selecting by `release: kps` as kube-prometheus-stack does. The chart is
installed in operator mode; the API server validates every object against the CRD schemas
(strict field validation), and the configuration the operator generates (the Secrets it writes)
must hold every Phase 5 rule and scrape job, every route and inhibition.
"""
import copy
import json
import subprocess

import pytest
import yaml

from harness import operator as op
from harness import paths, spec, tools
from harness.cluster import DEPLOY_SCRIPT_PSS
from harness.kps import ALERTMANAGER_ON_NAMESPACE, SELECTOR, OperatorStack
from harness.render import render, render_raw

pytestmark = pytest.mark.cluster

CREDENTIALS = {  # offline placeholders: nothing is ever sent to them here
    "alertmanager.secrets.slackWebhookUrl": "https://hooks.slack.invalid/services/T000/B000/XXXX",
    "alertmanager.secrets.smtpPassword": "not-a-real-password",
    "alertmanager.secrets.pagerdutyRoutingKey": "0123456789abcdef0123456789abcdef",
    "alertmanager.secrets.webhookUrl": "https://webhook.invalid/phase5",
    "alertmanager.secrets.watchdogUrl": "https://deadman.invalid/ping",
}
VALUES = {**op.OPERATOR_VALUES, "global.operator.selectorLabels": SELECTOR, **CREDENTIALS,
          "alertmanager.email.username": "alertmanager", "alertmanager.pagerduty.enabled": True,
          "alertmanager.webhook.enabled": True, "alertmanager.watchdog.enabled": True}
RELEASE = "p5"


def set_args(values):
    return [a for k, v in values.items() for a in ("--set-json", f"{k}={json.dumps(v)}")]


@pytest.fixture(scope="module")
def kps(cluster, tmp_path_factory):
    stack = OperatorStack(cluster, tmp_path_factory.mktemp("kps"))
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        if stack.namespace in cluster.namespaces:
            cluster.delete_namespace(stack.namespace)


@pytest.fixture(scope="module")
def installed(cluster, kps):
    """The chart installed in operator mode in its own namespace (Helm 3, --wait)."""
    helm = tools.require("helm")
    ns = cluster.new_namespace("p5-operator", DEPLOY_SCRIPT_PSS)
    cluster.helm(helm, "install", RELEASE, str(paths.UMBRELLA), "-n", ns, *set_args(VALUES),
                 "--wait", "--timeout", "5m")
    yield ns
    cluster.helm(helm, "uninstall", RELEASE, "-n", ns, "--timeout", "2m", check=False)
    cluster.delete_namespace(ns)


def wait_generated(cluster, kps, get, ready, what, timeout=120):
    box = {}

    def check():
        if not kps.alive():
            raise RuntimeError(f"prometheus-operator exited:\n{kps.log_tail()}")
        box["v"] = get()
        return box["v"] is not None and ready(box["v"])
    try:
        cluster.wait(check, timeout, what)
    except TimeoutError:
        pytest.fail(f"{what} after {timeout}s; operator log:\n{kps.log_tail(40)}\nlast: {str(box.get('v'))[:1500]}")
    return box["v"]


# ------------------------------------------------------------------------------ the tools
def test_crds_are_generated_by_controller_gen_not_committed():
    d = op.crds_dir()
    kinds = {op.load_yaml(f.read_text())["spec"]["names"]["kind"] for f in d.glob("monitoring.coreos.com_*.yaml")}
    assert {"Prometheus", "Alertmanager", "PrometheusRule", "ServiceMonitor", "PodMonitor",
            "AlertmanagerConfig"} <= kinds, sorted(kinds)
    for f in d.glob("*.yaml"):
        assert "controller-gen.kubebuilder.io/version" in f.read_text(), f"{f.name}: not controller-gen output"
    tracked = subprocess.run(["git", "ls-files"], cwd=paths.ROOT, capture_output=True, text=True).stdout
    assert "monitoring.coreos.com_" not in tracked, "generated CRDs must not be committed"


# ------------------------------------------------------------------------------ admission
def test_api_server_accepts_every_operator_object_strictly(cluster, kps, tmp_path):
    """Server-side dry run with strict field validation: an unknown or misspelt field in any
    PrometheusRule, ServiceMonitor or AlertmanagerConfig fails (CRD schemas would otherwise
    prune it silently). A deliberately misspelt copy proves the check bites."""
    ns = cluster.new_namespace("p5-dryrun", DEPLOY_SCRIPT_PSS)
    try:
        docs, _ = render_raw((), VALUES, namespace=ns)
        objs = [d for d in docs if d["kind"] in op.KINDS]
        assert {d["kind"] for d in objs} == set(op.KINDS)
        good = tmp_path / "operator-objects.yaml"
        good.write_text(yaml.safe_dump_all(objs))
        proc = cluster.kubectl("apply", "--dry-run=server", "--validate=strict", "--server-side",
                               "--field-manager=phase5-test", "-f", str(good), check=False)
        assert proc.returncode == 0, f"the API server refused operator-mode objects:\n{proc.stderr}"
        assert "unknown field" not in proc.stderr, proc.stderr
        bad = copy.deepcopy(objs)
        sm = next(o for o in bad if o["kind"] == "ServiceMonitor")
        sm["spec"]["endpoints"][0]["relabellings"] = sm["spec"]["endpoints"][0].pop("relabelings")
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump(sm))
        proc = cluster.kubectl("apply", "--dry-run=server", "--validate=strict", "--server-side",
                               "--field-manager=phase5-test", "-f", str(tmp_path / "bad.yaml"), check=False)
        assert proc.returncode != 0 and "relabellings" in proc.stderr, \
            f"strict validation did not catch a misspelt field: rc={proc.returncode} {proc.stderr}"
    finally:
        cluster.delete_namespace(ns)


# ------------------------------------------------------------------------------ generated Prometheus config
def test_generated_prometheus_config_has_every_rule_and_scrape_job(cluster, kps, installed):
    ns = installed
    jobs_wanted = {f"serviceMonitor/{ns}/{RELEASE}-prometheus-{j}/0": j for j in ("phase5-services", "phase5-exporters")}
    cfg = wait_generated(cluster, kps, kps.prometheus_config,
                         lambda c: set(jobs_wanted) <= {j["job_name"] for j in c.get("scrape_configs") or []},
                         "the operator's Prometheus config has the Phase 5 ServiceMonitor jobs")
    full = render((), {k: v for k, v in VALUES.items() if not k.startswith("global.operator")}, namespace=ns)
    chart_jobs = op.scrape_jobs(full)
    generated = {j["job_name"]: j for j in cfg["scrape_configs"]}
    for job_name, chart_job in jobs_wanted.items():
        g = generated[job_name]
        sd = g["kubernetes_sd_configs"]
        assert all(not s.get("namespaces", {}).get("names") for s in sd), f"{job_name}: namespace-restricted {sd}"
        relabel = g["relabel_configs"]
        ours = [dict(r, action=r.get("action", "replace")) for r in chart_jobs[chart_job]["relabel_configs"]]
        norm = [{k: v for k, v in r.items() if k != "separator" or v != ";"} for r in relabel]
        norm = [dict(r, action=r.get("action", "replace")) for r in norm]
        # The chart's own relabelling appears, in order and unchanged, in the generated job ...
        start = next((i for i in range(len(norm)) if norm[i:i + len(ours)] == ours), None)
        assert start is not None, f"{job_name}: the chart's relabel_configs are not in the generated job:\n" \
                                  f"{yaml.safe_dump(relabel)}"
        tail = norm[start + len(ours):]
        # ... followed by the label fix-ups (and the operator's own sharding step, if any).
        assert tail[:2] == [{"action": "labeldrop", "regex": "container|endpoint"},
                            {"action": "replace", "target_label": "job", "replacement": chart_job}], tail
        # No port filter the chart's job does not have: every port is a candidate, the annotation wins.
        ports = [r for r in norm[:start] if any("port" in s for s in r.get("source_labels", [])) and r["action"] == "keep"]
        assert not ports, f"{job_name}: port filters {ports}"
    files = wait_generated(cluster, kps, kps.rule_files,
                           lambda f: len([k for k in f if k.startswith(f"{ns}-")]) >= 3,
                           "the operator's rule ConfigMaps hold the Phase 5 PrometheusRules")
    got = {k: v for k, v in files.items() if k.startswith(f"{ns}-")}
    want = op.rule_files(full)
    for name, doc in want.items():
        match = [k for k in got if k.startswith(f"{ns}-{RELEASE}-prometheus-{name}-")]
        assert match, f"rule file {name}: not generated; generated {sorted(got)}"
        assert got[match[0]] == doc, f"generated rule file {match[0]} differs from the chart's {name}.yaml"
    rules = [r for d in got.values() for g in d["groups"] for r in g["rules"]]
    assert set(spec.RECORDING_RULES) <= {r.get("record") for r in rules}
    assert set(spec.ALERTS) | {"ErrorBudgetBurn"} <= {r.get("alert") for r in rules}


# ------------------------------------------------------------------------------ generated Alertmanager config
def _no_false_continue(route):
    """`continue: false` is Alertmanager's default; the operator omits it."""
    route = {k: v for k, v in route.items() if not (k == "continue" and v is False)}
    if route.get("routes"):
        route["routes"] = [_no_false_continue(r) for r in route["routes"]]
    return route


def _strip_receivers(route, prefix):
    route = dict(route)
    route["receiver"] = route["receiver"].removeprefix(prefix)
    if route.get("routes"):
        route["routes"] = [_strip_receivers(r, prefix) for r in route["routes"]]
    return route


def _phase5_route(cfg, prefix):
    ours = [r for r in cfg["route"].get("routes") or [] if r.get("receiver", "").startswith(prefix)]
    return ours[0] if ours else None


def test_generated_alertmanager_config_has_every_route_and_inhibition(cluster, kps, installed):
    ns = installed
    prefix = f"{ns}/{RELEASE}-alertmanager/"
    cfg = wait_generated(cluster, kps, kps.alertmanager_config, lambda c: _phase5_route(c, prefix) is not None,
                         "the operator's Alertmanager config has the Phase 5 route")
    full = render((), {k: v for k, v in VALUES.items() if not k.startswith("global.operator")}, namespace=ns)
    chart = yaml.safe_load(full.get("Secret", f"{RELEASE}-alertmanager-config")["stringData"]["alertmanager.yaml"])
    route = _strip_receivers(_phase5_route(cfg, prefix), prefix)
    # The operator makes the AlertmanagerConfig's top route a child of its root: it forces
    # `continue: true` there; with strategy None it adds no namespace matcher.
    assert route.pop("continue") is True
    assert route.pop("matchers") == ['category=~".+"'], "top-route matchers: only the chart's routeMatchers"
    want = _no_false_continue(chart["route"])
    route = _no_false_continue(route)
    for i, (g, w) in enumerate(zip(route.get("routes", []), want.get("routes", []))):
        assert g == w, f"child route {i} differs: generated {g}, chart {w}"
    assert route == want, f"generated route:\n{yaml.safe_dump(route)}\nchart route:\n{yaml.safe_dump(want)}"
    inhibit = [r for r in cfg.get("inhibit_rules") or []]
    assert inhibit == chart["inhibit_rules"], f"generated inhibit_rules:\n{yaml.safe_dump(inhibit)}"
    names = {r["name"].removeprefix(prefix) for r in cfg["receivers"] if r["name"].startswith(prefix)}
    assert names == {r["name"] for r in chart["receivers"]}, names
    # Credentials came from the Secret through the operator (never from the chart's objects).
    slack = next(r for r in cfg["receivers"] if r["name"] == prefix + "slack-critical")["slack_configs"][0]
    assert slack["api_url"] == CREDENTIALS["alertmanager.secrets.slackWebhookUrl"]


def _amtool_routes(cfg, tmp_path, name, labels):
    amtool = tools.require("amtool")
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([amtool, "config", "routes", "test", f"--config.file={path}",
                           *[f"{k}={v}" for k, v in labels.items()]], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.strip().split(","))


def test_matcher_strategy_none_is_what_routes_phase5_alerts(cluster, kps, installed, tmp_path):
    """The operator's default strategy (OnNamespace) adds namespace="<the AlertmanagerConfig's
    namespace>" to the Phase 5 route, so alerts of the phase5-* namespaces never reach it; with
    alertmanagerConfigMatcherStrategy.type None (what the README tells users to set) they reach
    exactly the spec's receivers (amtool on each generated config)."""
    ns = installed
    prefix = f"{ns}/{RELEASE}-alertmanager/"
    none_cfg = wait_generated(cluster, kps, kps.alertmanager_config, lambda c: _phase5_route(c, prefix) is not None,
                              "Phase 5 route (strategy None)")
    default_cfg = wait_generated(cluster, kps, lambda: kps.alertmanager_config(ALERTMANAGER_ON_NAMESPACE),
                                 lambda c: _phase5_route(c, prefix) is not None, "Phase 5 route (default strategy)")
    assert f'namespace="{ns}"' in _phase5_route(default_cfg, prefix)["matchers"], \
        "the default strategy was expected to add the namespace matcher"
    alert = {"alertname": "DatabaseConnectionPoolExhausted", "severity": "critical", "category": "database",
             "namespace": "phase5-app", "service": "backend"}
    got = _amtool_routes(none_cfg, tmp_path, "none", alert)
    assert got == {prefix + r for r in ("webhook", "slack-database", "slack-critical", "email-critical",
                                        "pagerduty-critical")}, got
    assert not any(r.startswith(prefix) for r in _amtool_routes(default_cfg, tmp_path, "default", alert)), \
        "with the default strategy a phase5-* alert should miss the Phase 5 route"
    # kube-prometheus-stack's own alerts carry no `category`: the Phase 5 routing leaves them alone.
    kps_alert = {"alertname": "KubePodCrashLooping", "severity": "critical", "namespace": "phase5-app"}
    assert not any(r.startswith(prefix) for r in _amtool_routes(none_cfg, tmp_path, "kps-alert", kps_alert))
