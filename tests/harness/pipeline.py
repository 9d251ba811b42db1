"""What the spec and the cross-component contract say the pipeline must do, in one place for
the e2e tests, scripts/preview.py and scripts/bench.py: alerts (severity, category), routing
destinations, the chart values the e2e stack is rendered with, and how to read a
notification back (which alerts it carries)."""
import json
import re

from . import spec
from .scenarios import SCENARIOS
from .workload_state import PHASE5_SERVICES

RUNBOOK = "https://runbooks.e2e.test/phase5"
CHANNELS = {"critical": "#e2e-critical", "warnings": "#e2e-warnings", "database": "#e2e-database-team",
            "platform": "#e2e-platform-team", "audit": "#e2e-audit-team",
            "notification": "#e2e-notification-team"}
EMAIL_TO = "oncall@e2e.test"
SMTP_PASSWORD = "e2e-smtp-password"

TEAM = {"database": "database", "kafka": "platform", "audit": "audit", "reminder": "notification"}
# Receivers (keys of CHANNELS) that read their own incoming webhook in the e2e stack
# (alertmanager.slack.ownWebhooks); the warnings receiver keeps the shared slack-webhook-url, so
# the e2e scenarios prove both. Slack app webhooks ignore `channel`: which webhook a notification
# came through is what decides where a person sees it.
OWN_WEBHOOKS = ("critical", "database", "platform", "audit", "notification")


def slack_webhook(key):
    """The credentials Secret key the Slack receiver `key` posts through."""
    return f"slack-webhook-url-{key}" if key in OWN_WEBHOOKS else "slack-webhook-url"


def slack_destination(key):
    """destination() of a notification of Slack receiver `key`: its channel and its webhook."""
    return f"slack:{CHANNELS[key]}@{slack_webhook(key)}"


def scenario_service(alert):
    """The Deployment a scenario runs on: one per scenario, so none share a label set."""
    return "e2e-" + re.sub(r"(?<!^)([A-Z])", r"-\1", alert).lower()


# A service with an availability objective (prometheus.slos) whose errors burn it fast: the
# ErrorBudgetBurn page must reach the paging receivers and its team's channel. Objectives of
# 99 % (backend too): the synthetic baseline (0.5 % errors) stays under a 1x burn, as a healthy
# service would.
SLO_SERVICE = "e2e-slo-fast-burn"
# The team categories of the e2e stack (prometheus.phase5.categories, the fallback of the
# Services' team label): the missing-signal and SLO scenarios run on services owned by a team,
# so their notifications must reach its channel.
CATEGORIES = {scenario_service("Phase5TargetDown"): "database",
              scenario_service("Phase5MetricsMissing"): "audit",
              SLO_SERVICE: "reminder"}

# alert -> (severity, category), from the contract (harness/spec.py), for every alert the
# synthetic workload can make true (the Watchdog has its own tests; the monitoring-stack alerts
# read the real Prometheus/Alertmanager and are proven by promtool). A category of None (the
# service's team) is the one CATEGORIES gives the scenario's service.
ALERTS = {name: (sev, cat or CATEGORIES.get(scenario_service(name), "application"))
          for name, (sev, cat, _) in spec.ALERTS.items() if name in SCENARIOS}
# DiskSpaceLow reads the real node_exporter (this machine's disks): its own stack fires it.
DISK_ALERT = "DiskSpaceLow"
DISK_SEVERITY = (spec.ALERTS[DISK_ALERT][0], spec.ALERTS[DISK_ALERT][1])
# StatefulSets of the synthetic cluster: postgres (PodDown of postgres-0 must page) and one for
# the StatefulSet inhibition case.
STATEFULSET = "postgres"

# `for` durations, shortened through the chart's own per-alert values. The alerts that
# inhibit others (DeploymentReplicaMismatch, HPAMaxedOut, PodRestartingTooOften) become
# true sooner than the ones they suppress, as in a real incident where the deployment-level
# cause is visible before its pod-level symptoms are old enough to page.
# PodDown inhibits Phase5TargetDown of its pod (a pod that is not Ready fails its scrapes), so
# Phase5TargetDown needs longer.
# Through the API server, a pod that is not Ready also makes its Deployment short of available
# replicas: PodDown must become true before DeploymentReplicaMismatch (which it inhibits), as
# with the chart's defaults (2m before 15m). The mismatch in turn precedes the restarts it
# explains, and the restarts the CPU alert.
FOR = {a: "12s" for a in ALERTS}
FOR.update({"PodDown": "4s", "HPAMaxedOut": "4s", "DeploymentReplicaMismatch": "8s",
            "PodRestartingTooOften": "12s", "HighCPUUsage": "20s", "Phase5TargetDown": "20s"})


# Inhibition cases: (id, [alerts triggered on one Deployment, in order], suppressed, delivered)
INHIBITIONS = [
    ("critical-suppresses-warning", ["HighErrorRate", "HighResponseTime"],
     ["HighResponseTime"], ["HighErrorRate"]),
    # PodDown (critical) silences the mismatch (warning) of its Deployment; the mismatch does
    # not silence PodDown (read literally, the spec's rules muted both and paged nobody).
    ("poddown-suppresses-replica-mismatch", ["PodDown", "DeploymentReplicaMismatch"],
     ["DeploymentReplicaMismatch"], ["PodDown"]),
    ("replica-mismatch-suppresses-restarts", ["PodRestartingTooOften", "DeploymentReplicaMismatch"],
     ["PodRestartingTooOften"], ["DeploymentReplicaMismatch"]),
    ("hpa-maxed-suppresses-cpu", ["HighCPUUsage", "HPAMaxedOut"],
     ["HighCPUUsage"], ["HPAMaxedOut"]),
    ("restarts-suppress-cpu", ["HighCPUUsage", "PodRestartingTooOften"],
     ["HighCPUUsage"], ["PodRestartingTooOften"]),
    # A pod that is not Ready also fails its scrapes: PodDown explains Phase5TargetDown.
    ("poddown-suppresses-target-down", ["PodDown"], ["Phase5TargetDown"], ["PodDown"]),
    # Keyed on service, critical-over-warning works for a StatefulSet pod as for a Deployment's.
    ("statefulset-poddown-suppresses-its-cpu", ["HighCPUUsage", "PodDown"], ["HighCPUUsage"], ["PodDown"]),
]
FAULT_SERVICES = ("e2e-fault-am-restart", "e2e-fault-receiver-5xx")
# A node drained: DRAIN_SERVICE's two pods may run only on DRAIN_NODE and DRAIN_PEER (node affinity,
# a taint only they tolerate on DRAIN_NODE, and the workload's spread: one per node), so once
# DRAIN_NODE is drained the replacement stays Pending. The pod on DRAIN_PEER keeps the service
# scraped: the Deployment is short, the service is not down (one replica drained would leave it
# without a target, and Phase5MetricsMissing, critical, would page and silence the warning).
DRAIN_NODE = "kwok-node-drain"
DRAIN_PEER = "kwok-node-a"
DRAIN_SERVICE = "e2e-fault-node-drain"
DRAIN_TAINT = {"key": "phase5.test/drain", "value": "true", "effect": "NoSchedule"}
PLACEMENT = {DRAIN_SERVICE: {
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [DRAIN_NODE, DRAIN_PEER]}]}]}}},
    "tolerations": [{"key": DRAIN_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}]}}
REPLICAS = {DRAIN_SERVICE: 2}
SLOS = {"backend": {"availability": 99}, SLO_SERVICE: {"availability": 99}}
SLO_ALERT = ("critical", CATEGORIES[SLO_SERVICE])   # ErrorBudgetBurn's fast-burn pairs (page), its team
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def seconds(duration):
    """A Prometheus/Alertmanager duration (`1m`, `20s`, `1m30s`, `500ms`, `1d`) in seconds; anything
    else fails (the one parser of the harness and the benchmarks)."""
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", str(duration))
    assert parts and "".join(n + u for n, u in parts) == str(duration), f"not a duration: {duration!r}"
    return sum(int(n) * DURATION_UNITS[u] for n, u in parts)


def inhibition_service(case_id):
    return f"e2e-inh-{case_id}"[:50]


def statefulsets():
    return [STATEFULSET, inhibition_service("statefulset-poddown-suppresses-its-cpu")]


def all_services():
    """The Deployments of the e2e stack: their Services opt in by the chart's default selector
    label (app.kubernetes.io/part-of: phase5), none of them is named in the release's values
    beyond the chart's default prometheus.phase5.services."""
    return (list(PHASE5_SERVICES) + [scenario_service(a) for a in ALERTS]
            + [inhibition_service(c[0]) for c in INHIBITIONS if inhibition_service(c[0]) not in statefulsets()]
            + list(FAULT_SERVICES) + [DRAIN_SERVICE, SLO_SERVICE])


def workload():
    """The e2e stack's workload: every service, one pod per node at most (so a Deployment can be
    scaled beyond what the nodes hold), the drain case pinned to its node."""
    from .workload import Workload
    return Workload(services=all_services(), statefulsets=statefulsets(), spread=True,
                    placement=PLACEMENT, replicas_of=REPLICAS)


def extra_nodes():
    """Nodes the e2e stack adds to the control plane's three: the node the drain case runs on."""
    return [{"name": DRAIN_NODE, "labels": {}, "taints": [DRAIN_TAINT]}]


def chart_values(for_durations=None):
    """--set-json values the e2e stack renders the chart with (nothing here is a swap: every
    key is a documented chart value, so this also proves those values work)."""
    v = {
        "prometheus.rules.runbookBaseUrl": RUNBOOK,
        "prometheus.phase5.categories": CATEGORIES,
        "prometheus.slos": SLOS,
        "prometheus.alerts.ErrorBudgetBurn.pageFor": "12s",
        "alertmanager.slack.channels": CHANNELS,
        "alertmanager.slack.ownWebhooks": list(OWN_WEBHOOKS),
        # Each URL ends in its Secret key, so a webhook the operator inlines (operator mode) is told
        # apart at the sink as a credential file is (harness.swaps).
        "alertmanager.secrets.slackWebhookUrls": {k: f"https://hooks.slack.invalid/services/{slack_webhook(k)}"
                                                  for k in OWN_WEBHOOKS},
        "alertmanager.email.to": EMAIL_TO,
        "alertmanager.email.username": "alertmanager",
        "alertmanager.pagerduty.enabled": True,
        "alertmanager.webhook.enabled": True,
        "alertmanager.watchdog.enabled": True,
        # Placeholder credentials: the chart writes them into its Secret; the harness then
        # replaces the file contents with the local sinks' URLs (a documented swap).
        "alertmanager.secrets.slackWebhookUrl": "https://hooks.slack.invalid/services/slack-webhook-url",
        "alertmanager.secrets.smtpPassword": SMTP_PASSWORD,
        "alertmanager.secrets.pagerdutyRoutingKey": "e2e-routing-key",
        "alertmanager.secrets.webhookUrl": "https://webhook.invalid/e2e",
        "alertmanager.secrets.watchdogUrl": "https://watchdog.invalid/e2e",
    }
    # DiskSpaceLow reads the real node_exporter, i.e. this machine's disks, whose free share is
    # not the test's to choose: the main stack never fires it (threshold 0), the disk stack of
    # test_disk_space_low_from_the_real_node_exporter always does (threshold 1).
    v["prometheus.alerts.DiskSpaceLow.threshold"] = 0
    # Issue 25: a component of the stack that stops (test_stopping_jaeger_pages_the_monitoring_alert)
    # fails its scrapes; 6s instead of 5m so the page arrives within the test.
    v["prometheus.alerts.MonitoringTargetDown.for"] = "6s"
    for alert, dur in (FOR if for_durations is None else for_durations).items():
        v[f"prometheus.alerts.{alert}.for"] = dur
    return v


# The root route's (webhook, team channels) and the warnings' group wait for the stacks of
# test_e2e_pipeline, test_e2e_operator and test_e2e_stack_faults, shortened through the chart's
# own values (the rendered 30 s, the spec's, is held by test_conformance_alertmanager): these
# stacks prove which receivers get each alert, once, with its text, not how long Alertmanager
# holds a new group. 10 s is still
# longer than the lead each inhibiting alert has over the one it suppresses needs (it must be in
# Alertmanager when the suppressed alert's group is flushed; critical routes wait 0 s as rendered).
GROUP_WAIT = 10


def scenario_values(for_durations=None):
    """chart_values() with GROUP_WAIT for the root and warning routes (the main e2e stacks)."""
    return {**chart_values(for_durations), "alertmanager.route.groupWait": f"{GROUP_WAIT}s",
            "alertmanager.route.warning.groupWait": f"{GROUP_WAIT}s"}


def expected_destinations(alert, category=None):
    """Where the spec routes `alert` (with PagerDuty, the webhook and the Watchdog receiver on);
    `category` for an alert whose category is its service's team (default: the scenario's)."""
    if alert == "Watchdog":
        return {"webhook:watchdog"}
    sev, cat = SLO_ALERT if alert == "ErrorBudgetBurn" else DISK_SEVERITY if alert == DISK_ALERT else ALERTS[alert]
    cat = category or cat
    dest = {"webhook:webhook"}
    if sev == "critical":
        dest |= {slack_destination("critical"), f"email:{EMAIL_TO}", "pagerduty"}
    else:
        dest.add(slack_destination("warnings"))
    if cat in TEAM:
        dest.add(slack_destination(TEAM[cat]))
    return dest


# ------------------------------------------------------------------ reading notifications
_SLACK = re.compile(r"\*Alert:\* (\S+) \((\w+)\).*?\*Service:\* (\S*)", re.S)
_EMAIL = re.compile(r"Alert:\s+(\S+) \((\w+)\).*?Service:\s+(\S*)", re.S)
_TITLE = re.compile(r"\[(FIRING|RESOLVED)(?::\d+)?\] (\S+)(?: \((\w+)\))?(?: - (\S+))?")


def destination(n):
    if n.kind == "slack":   # channel @ the webhook (credential file) it came through
        return f"slack:{n.key}@{n.path.rstrip('/').rsplit('/', 1)[-1]}"
    if n.kind == "email":
        return f"email:{n.key}"
    if n.kind == "webhook":
        return f"webhook:{n.key}"
    return n.kind


def carried(n):
    """[(status, alertname, service)] of the alerts a notification carries."""
    b = n.body
    if n.kind == "webhook":
        return [(a["status"], a["labels"].get("alertname"), a["labels"].get("service"))
                for a in b.get("alerts", [])]
    if n.kind == "slack":
        text = "\n".join(a.get("text", "") for a in b.get("attachments", []))
        return [(st, name, svc) for name, st, svc in _SLACK.findall(text)]
    if n.kind == "email":
        return [(st, name, svc) for name, st, svc in _EMAIL.findall(b.get("text") or "")]
    if n.kind == "pagerduty":
        m = _TITLE.search((b.get("payload") or {}).get("summary", ""))
        if not m:
            return []
        status = "resolved" if b.get("event_action") == "resolve" else "firing"
        return [(status, m.group(2), m.group(4))]
    return []


def readable_text(n):
    """The human-readable text of a notification (templates rendered)."""
    b = n.body
    if n.kind == "slack":
        return "\n".join(f"{a.get('title', '')}\n{a.get('text', '')}" for a in b.get("attachments", []))
    if n.kind == "email":
        return f"{b.get('subject')}\n{b.get('text')}"
    return json.dumps(b, ensure_ascii=False)


def deliveries(notifications, status="firing"):
    """{(alertname, service): {destination: count}} over notifications."""
    out = {}
    for n in notifications:
        for st, name, svc in carried(n):
            if st != status:
                continue
            d = out.setdefault((name, svc), {})
            d[destination(n)] = d.get(destination(n), 0) + 1
    return out
