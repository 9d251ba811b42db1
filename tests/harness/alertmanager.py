"""Alertmanager helpers shared by the unit and conformance tests: the brief's alert label
sets, the rendered configuration, and a way to lay it out on disk for amtool."""
import base64
import re
import subprocess
from pathlib import Path

import yaml

from . import tools

RELEASE = "p5"
NAMESPACE = "monitoring"
FULLNAME = f"{RELEASE}-alertmanager"
HEADLESS = f"{FULLNAME}-headless"
CONFIG_SECRET = f"{FULLNAME}-config"
CREDENTIALS_SECRET = f"{FULLNAME}-secrets"
CONFIG_DIR = "/etc/alertmanager/config"
SECRETS_DIR = "/etc/alertmanager/secrets"
CONFIG_KEY = "alertmanager.yaml"

# Keys of the credentials Secret (chart-created or existingSecret).
CREDENTIAL_KEYS = ("slack-webhook-url", "smtp-password", "pagerduty-routing-key", "webhook-url", "watchdog-url")

# Every alert of the brief with the labels its rule produces (alertname is added by
# Prometheus). namespace/service are sample values; extra labels as the brief's table lists
# (the pod alerts' `node`: kube_pod_info's, the node the pod runs on).
NS = "phase5"
ALERTS = {
    "HighErrorRate": {"severity": "critical", "category": "application", "service": "backend"},
    "HighResponseTime": {"severity": "warning", "category": "application", "service": "backend"},
    "PodDown": {"severity": "critical", "category": "kubernetes", "service": "backend",
                "pod": "backend-7d9f-abcde", "deployment": "backend", "workload_kind": "Deployment", "workload": "backend", "node": "node-1"},
    "HighCPUUsage": {"severity": "warning", "category": "kubernetes", "service": "backend",
                     "pod": "backend-7d9f-abcde", "deployment": "backend", "workload_kind": "Deployment", "workload": "backend", "node": "node-1"},
    "HighMemoryUsage": {"severity": "warning", "category": "kubernetes", "service": "backend",
                        "pod": "backend-7d9f-abcde", "deployment": "backend", "workload_kind": "Deployment", "workload": "backend", "node": "node-1"},
    "DatabaseConnectionPoolExhausted": {"severity": "critical", "category": "database", "service": "backend"},
    "KafkaConsumerLag": {"severity": "warning", "category": "kafka", "service": "recurring-task-agent",
                         "consumergroup": "recurring-task-agent", "topic": "task-events"},
    # node-exporter's job relabels instance to the node name and namespace to the release's.
    "DiskSpaceLow": {"severity": "warning", "category": "node", "service": "node-exporter",
                     "namespace": "monitoring", "instance": "node-1", "mountpoint": "/"},
    "PodRestartingTooOften": {"severity": "warning", "category": "kubernetes", "service": "backend",
                              "pod": "backend-7d9f-abcde", "deployment": "backend", "container": "backend",
                              "workload_kind": "Deployment", "workload": "backend", "node": "node-1"},
    "DeploymentReplicaMismatch": {"severity": "warning", "category": "kubernetes", "service": "backend",
                                  "deployment": "backend", "workload_kind": "Deployment", "workload": "backend"},
    "HPAMaxedOut": {"severity": "warning", "category": "kubernetes", "service": "backend",
                    "horizontalpodautoscaler": "backend", "deployment": "backend", "workload_kind": "Deployment", "workload": "backend"},
    "AuditLogFailures": {"severity": "critical", "category": "audit", "service": "audit-agent"},
    "ReminderDeliveryFailures": {"severity": "warning", "category": "reminder", "service": "notification-agent"},
    # Issue 14: missing signals (category: the team of the service, phase5.categories) and the
    # monitoring stack watching itself (namespace/service/pod of the scraped component).
    "Phase5TargetDown": {"severity": "critical", "category": "database", "service": "postgres-exporter",
                         "pod": "postgres-exporter-0", "instance": "10.1.0.7:9187", "job": "phase5-exporters"},
    "Phase5MetricsMissing": {"severity": "critical", "category": "audit", "service": "audit-agent"},
    "PrometheusRuleEvaluationFailures": {"severity": "critical", "category": "monitoring", "service": "p5-prometheus",
                                         "pod": "p5-prometheus-0", "rule_group": "phase5-kubernetes"},
    "PrometheusNotificationsFailing": {"severity": "critical", "category": "monitoring", "service": "p5-prometheus",
                                       "pod": "p5-prometheus-0", "alertmanager": "http://10.1.0.5:9093/api/v2/alerts"},
    "PrometheusNotificationsDropped": {"severity": "critical", "category": "monitoring", "service": "p5-prometheus",
                                       "pod": "p5-prometheus-0"},
    "AlertmanagerNotificationsFailing": {"severity": "critical", "category": "monitoring", "service": "p5-alertmanager",
                                         "pod": "p5-alertmanager-0", "integration": "slack"},
    "ConfigReloadFailed": {"severity": "warning", "category": "monitoring", "service": "p5-prometheus",
                           "pod": "p5-prometheus-0"},
    "PrometheusTSDBCompactionsFailing": {"severity": "warning", "category": "monitoring", "service": "p5-prometheus",
                                         "pod": "p5-prometheus-0"},
    "AlertmanagerClusterMembersMissing": {"severity": "warning", "category": "monitoring", "service": "p5-alertmanager",
                                          "pod": "p5-alertmanager-2"},
    "AlertmanagerClusterSplit": {"severity": "warning", "category": "monitoring", "service": "p5-alertmanager"},
    # Issue 25: the rest of the stack, storage and nodes (release namespace "monitoring" where
    # the rule sets it; nodes: service = instance = the node).
    "MonitoringTargetDown": {"severity": "critical", "category": "monitoring", "namespace": "monitoring",
                             "service": "p5-loki", "pod": "p5-loki-0", "instance": "10.1.0.9:3100",
                             "job": "monitoring-stack"},
    "MonitoringTargetMissing": {"severity": "critical", "category": "monitoring", "namespace": "monitoring",
                                "service": "p5-grafana"},
    "KubeStateMetricsDown": {"severity": "critical", "category": "monitoring", "namespace": "monitoring",
                             "service": "kube-state-metrics", "job": "kube-state-metrics"},
    "NodeExporterDown": {"severity": "warning", "category": "monitoring", "namespace": "monitoring",
                         "service": "node-exporter", "instance": "node-1", "job": "node-exporter"},
    "MonitoringDaemonSetNotOnEveryNode": {"severity": "warning", "category": "monitoring", "namespace": "monitoring",
                                          "service": "p5-promtail", "daemonset": "p5-promtail"},
    "LokiRequestErrors": {"severity": "warning", "category": "monitoring", "namespace": "monitoring",
                          "service": "p5-loki", "route": "loki_api_v1_query_range"},
    "LokiIngestionRefused": {"severity": "warning", "category": "monitoring", "namespace": "monitoring",
                             "service": "p5-loki", "reason": "rate_limited"},
    "LokiCompactorNotRunning": {"severity": "warning", "category": "monitoring", "namespace": "monitoring",
                                "service": "p5-loki", "operation": "retention"},
    "LogCollectorSendFailures": {"severity": "warning", "category": "monitoring", "namespace": "monitoring",
                                 "service": "p5-promtail", "pod": "p5-promtail-abcde"},
    "LogCollectorDroppedLines": {"severity": "warning", "category": "monitoring", "namespace": "monitoring",
                                 "service": "p5-promtail", "pod": "p5-promtail-abcde", "reason": "rate_limited"},
    "JaegerSpansRefused": {"severity": "warning", "category": "monitoring", "namespace": "monitoring",
                           "service": "p5-jaeger", "receiver": "otlp", "transport": "http"},
    "JaegerSpansDropped": {"severity": "critical", "category": "monitoring", "namespace": "monitoring",
                           "service": "p5-jaeger", "exporter": "jaeger_storage_exporter"},
    "PersistentVolumeFillingUp": {"severity": "critical", "category": "monitoring", "namespace": "phase5-data",
                                  "service": "data-postgres-0", "persistentvolumeclaim": "data-postgres-0"},
    "PrometheusTSDBNearRetentionSize": {"severity": "warning", "category": "monitoring", "namespace": "monitoring",
                                        "service": "p5-prometheus", "pod": "p5-prometheus-0"},
    "ScrapeLimitExceeded": {"severity": "critical", "category": "monitoring", "namespace": "phase5-prod",
                            "service": "backend", "pod": "backend-7d9f-abcde", "instance": "10.1.0.7:8000",
                            "job": "phase5-services", "limit": "sample"},
    "NodeNotReady": {"severity": "critical", "category": "monitoring", "namespace": "monitoring",
                     "service": "node-1", "node": "node-1", "instance": "node-1"},
    "NodeUnderPressure": {"severity": "warning", "category": "monitoring", "namespace": "monitoring",
                          "service": "node-1", "node": "node-1", "instance": "node-1", "condition": "MemoryPressure"},
    "NodeUnschedulable": {"severity": "warning", "category": "monitoring", "namespace": "monitoring",
                          "service": "node-1", "node": "node-1", "instance": "node-1"},
    "Watchdog": {"severity": "none", "category": "meta"},
}


# The pod alerts of a StatefulSet pod (postgres-0) as the rules label them: no `deployment`,
# the StatefulSet as workload and service. HPAMaxedOut for an HPA scaling that StatefulSet.
STATEFULSET = {"service": "postgres", "pod": "postgres-0", "workload_kind": "StatefulSet", "workload": "postgres"}


def statefulset_labels(alertname, **overrides):
    """alert_labels() of a pod alert (or HPAMaxedOut) for the StatefulSet pod postgres-0."""
    labels = {k: v for k, v in alert_labels(alertname).items() if k not in ("deployment", "pod", "container")}
    labels.update(STATEFULSET)
    if alertname == "PodRestartingTooOften":
        labels["container"] = "postgres"
    if alertname == "HPAMaxedOut":
        labels.pop("pod")
        labels["horizontalpodautoscaler"] = "postgres"
    labels.update(overrides)
    return labels


def alert_labels(alertname, **overrides):
    """The full label set of one of the brief's alerts (namespace included)."""
    labels = {"alertname": alertname, "namespace": NS, **ALERTS[alertname]}
    labels.update(overrides)
    return labels


def config_secret(objs):
    return objs.get("Secret", CONFIG_SECRET)


def secret_files(secret):
    """A Secret's contents as {key: text}, from stringData or (base64) data."""
    out = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    out.update(secret.get("stringData") or {})
    return out


def config_text(objs):
    return secret_files(config_secret(objs))[CONFIG_KEY]


def config(objs):
    """The rendered alertmanager.yaml, parsed."""
    return yaml.safe_load(config_text(objs))


def write_tree(objs, root, credentials=None):
    """Lay the config Secret and credential files out under `root` as the pod sees them,
    with every /etc/alertmanager path rewritten into `root`. Returns the config file path.

    credentials: {key: value} for the secrets dir (default: the chart-created Secret's
    contents if rendered, else a dummy value for every known key).
    """
    root = Path(root)
    cfg_dir = root / CONFIG_DIR.lstrip("/")
    sec_dir = root / SECRETS_DIR.lstrip("/")
    cfg_dir.mkdir(parents=True, exist_ok=True)
    sec_dir.mkdir(parents=True, exist_ok=True)
    for key, text in secret_files(config_secret(objs)).items():
        if key == CONFIG_KEY:
            text = text.replace("/etc/alertmanager/", f"{root}/etc/alertmanager/")
        (cfg_dir / key).write_text(text)
    if credentials is None:
        created = objs.find("Secret", CREDENTIALS_SECRET)
        credentials = secret_files(created) if created else {k: "dummy" for k in CREDENTIAL_KEYS}
    for key, value in credentials.items():
        (sec_dir / key).write_text(value or "https://placeholder.invalid/")
    return cfg_dir / CONFIG_KEY


def amtool(*args, check=True):
    proc = subprocess.run([tools.require("amtool"), *map(str, args)], capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, f"amtool {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
    return proc


def routes_test(config_file, labels):
    """The receivers `amtool config routes test` resolves for a label set, in match order."""
    proc = amtool("config", "routes", "test", f"--config.file={config_file}",
                  *[f"{k}={v}" for k, v in sorted(labels.items())])
    out = proc.stdout.strip().splitlines()
    return [r for r in out[-1].split(",") if r] if out else []


_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


def parse_matcher(text):
    """`name="v"`, `name=~"re"`, ... -> (name, op, value). Only the quoted form the chart writes."""
    m = _MATCHER.match(text)
    assert m, f"unparsable matcher {text!r}"
    return m.group(1), m.group(2), m.group(3).encode().decode("unicode_escape")


def matches(matchers, labels):
    """Whether a label set satisfies every matcher (Alertmanager semantics: a missing label is "",
    regexes are anchored)."""
    for text in matchers:
        name, op, value = parse_matcher(text)
        got = labels.get(name, "")
        ok = {
            "=": got == value,
            "!=": got != value,
            "=~": re.fullmatch(value, got) is not None,
            "!~": re.fullmatch(value, got) is None,
        }[op]
        if not ok:
            return False
    return True
