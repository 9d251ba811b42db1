"""Conformance tier, issue 28: the Loki ruler's log alerts route like every other alert.

Loki cannot run here (a stand-in: test_unit_loki_ruler.py holds the rules and the ruler block to
Loki's documentation), but what decides where a log alert goes is the rendered Alertmanager, and
that runs: for every alert of the rendered Loki rule files, every label set its rule can produce
(its `severity`; its static `category`, or each team its expression's label_replace sets, and the
`application` fallback; `service` = the app, `namespace`, `source: logs`) is routed by the real
`amtool config routes test` against the rendered alertmanager.yaml, and must reach the receivers
of its team and severity - the same receivers a metric alert with that severity and category gets.
"""
import re

import pytest
import yaml

from harness import alertmanager as am
from harness.render import render

pytestmark = pytest.mark.conformance

CRITICAL = ["slack-critical", "email-critical"]
WARNING = ["slack-warnings"]
# category -> the team receiver the spec's routing adds (README / the Alertmanager README's table)
TEAM = {"database": "slack-database", "kafka": "slack-platform", "audit": "slack-audit",
        "reminder": "slack-notification"}
# a metric alert of each (severity, category) the log alerts use, routed for comparison
METRIC_TWIN = {("warning", "application"): am.alert_labels("HighResponseTime"),
               ("warning", "reminder"): am.alert_labels("ReminderDeliveryFailures"),
               ("warning", "audit"): am.alert_labels("AuditLogFailures", severity="warning"),
               ("critical", "audit"): am.alert_labels("AuditLogFailures")}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    objs = render()
    return objs, am.write_tree(objs, tmp_path_factory.mktemp("am-loki-rules"))


def _label_sets(objs):
    """(alert name, labels) for every label set a rendered log alert can carry."""
    cm = objs.get("ConfigMap", "p5-loki-rules")
    out = []
    for text in cm["data"].values():
        for g in yaml.safe_load(text)["groups"]:
            for r in g["rules"]:
                if "alert" not in r:
                    continue
                static = r.get("labels") or {}
                # label_replace(..., "category", "<team>", "<source label>", "<regex>"): the fallback
                # has no source label (every app), the others name one app each
                teams = [(cat, app if src else "")
                         for cat, src, app in re.findall(r'"category",\s*"([^"]+)",\s*"([^"]*)",\s*"([^"]*)"', r["expr"])]
                apps = re.findall(r'app=~"([^"]+)"', r["expr"])
                if static.get("category"):
                    choices = [(static["category"], (apps[0].split("|")[0] if apps else "audit-agent"))]
                else:
                    choices = [(cat, app or "backend") for cat, app in teams]
                    assert choices and ("application", "backend") in choices, f"{r['alert']}: no team fallback: {r['expr']}"
                for cat, app in choices:
                    labels = {**static, "alertname": r["alert"], "category": cat, "namespace": am.NS,
                              "app": app, "service": app}
                    out.append((r["alert"], labels))
    assert {a for a, _ in out} >= {"ErrorLogBurst", "AuditWriteFailureLogged"}, out
    return out


def test_log_alerts_reach_their_team_and_severity_receivers(rendered):
    objs, config_file = rendered
    problems = []
    for alert, labels in _label_sets(objs):
        want = ([TEAM[labels["category"]]] if labels["category"] in TEAM else []) + \
               (CRITICAL if labels["severity"] == "critical" else WARNING)
        got = am.routes_test(config_file, labels)
        if got != want:
            problems.append(f"{alert} {labels}: amtool routes to {got}, want {want}")
        twin = METRIC_TWIN.get((labels["severity"], labels["category"]))
        if twin is not None and am.routes_test(config_file, twin) != got:
            problems.append(f"{alert} {labels}: routed unlike the metric alert {twin['alertname']} of the same severity and category")
    assert not problems, "\n".join(problems)


# What the spec's routing says each starter log alert of each app must reach (written by hand, not
# derived from the rules: a rule that lost its team would route consistently, and wrongly).
EXPECTED = {
    ("AuditWriteFailureLogged", "audit-agent"): ["slack-audit"] + CRITICAL,
    ("ErrorLogBurst", "audit-agent"): ["slack-audit"] + WARNING,
    ("ErrorLogBurst", "notification-agent"): ["slack-notification"] + WARNING,
    ("ErrorLogBurst", "reminder-agent"): ["slack-notification"] + WARNING,
    ("ErrorLogBurst", "backend"): WARNING,
}


def test_the_starter_log_alerts_reach_the_teams_the_spec_names(rendered):
    objs, config_file = rendered
    found = {(alert, labels["app"]): labels for alert, labels in _label_sets(objs)}
    assert set(EXPECTED) <= set(found), f"label sets the rules produce: {sorted(found)}"
    problems = [f"{key}: amtool routes {found[key]} to {got}, want {want}"
                for key, want in EXPECTED.items() if (got := am.routes_test(config_file, found[key])) != want]
    assert not problems, "\n".join(problems)


def test_a_log_alert_is_inhibited_like_a_metric_alert(rendered):
    """A warning log alert of a service is muted while a critical alert of that service fires
    (the rendered inhibit rules; Alertmanager's semantics, harness.alertmanager.matches)."""
    objs, _ = rendered
    cfg = am.config(objs)
    burst = next(labels for alert, labels in _label_sets(objs) if alert == "ErrorLogBurst" and labels["severity"] == "warning")
    critical = am.alert_labels("HighErrorRate", service=burst["service"], namespace=burst["namespace"])
    muted = [r for r in cfg.get("inhibit_rules") or []
             if am.matches(r.get("source_matchers") or [], critical) and am.matches(r.get("target_matchers") or [], burst)
             and all(critical.get(k, "") == burst.get(k, "") for k in r.get("equal") or [])]
    assert muted, f"{burst} is not inhibited by {critical}: {cfg.get('inhibit_rules')}"
