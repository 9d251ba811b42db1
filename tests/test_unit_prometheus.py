"""Unit tier for the Prometheus and node-exporter subcharts: retention, scrape interval,
storage, RBAC, checksums, credentials and host access, read from the rendered objects."""
import pytest
import yaml

from harness import params
from harness import prometheus as prom
from harness.manifests import containers, ident, pod_spec
from harness.render import render, render_error

pytestmark = pytest.mark.unit

STS = "p5-prometheus"
PROM_RESOURCES = {  # what Kubernetes discovery and the kubelet scrape need, nothing more
    ("", "nodes"), ("", "pods"), ("", "services"), ("discovery.k8s.io", "endpointslices"), ("", "nodes/metrics"),
}


def _sts(values=(), set_values=None):
    return render(values, set_values).get("StatefulSet", STS)


def _args(sts):
    return next(c for c in containers(sts) if c["name"] == "prometheus")["args"]


def _config(values=(), set_values=None):
    cm = render(values, set_values).get("ConfigMap", STS)
    return yaml.safe_load(cm["data"]["prometheus.yml"])


def _job(config, name):
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert name in jobs, f"no scrape job {name}; jobs: {sorted(jobs)}"
    return jobs[name]


def test_retention_is_30_days_with_a_size_cap():
    args = _args(_sts())
    assert "--storage.tsdb.retention.time=30d" in args, args
    size = [a for a in args if a.startswith("--storage.tsdb.retention.size=")]
    assert size and size[0].split("=")[1].endswith("GB"), f"no retention size flag: {args}"


@pytest.mark.parametrize("values", params.profiles())
def test_retention_size_is_below_the_volume(values):
    """The size cap only saves the disk if it is smaller than the volume."""
    sts = _sts(values)
    claims = sts["spec"].get("volumeClaimTemplates") or []
    if not claims:
        return
    volume = claims[0]["spec"]["resources"]["requests"]["storage"]
    assert volume.endswith("Gi"), f"{ident(sts)}: volume size {volume}"
    cap = next(a for a in _args(sts) if "retention.size" in a).split("=")[1]
    assert cap.endswith("GB") and int(cap[:-2]) < int(volume[:-2]), f"{ident(sts)}: retention.size {cap} vs volume {volume}"


@pytest.mark.parametrize("values", params.profiles())
def test_scrape_interval_is_15s(values):
    config = _config(values)
    assert config["global"]["scrape_interval"] == "15s", config["global"]
    overridden = [j["job_name"] for j in config["scrape_configs"] if "scrape_interval" in j]
    assert not overridden, f"jobs overriding the 15s interval: {overridden}"


def test_persistent_volume_by_default():
    sts = _sts()
    claims = sts["spec"].get("volumeClaimTemplates")
    assert claims and claims[0]["metadata"]["name"] == "storage", f"{ident(sts)}: no PVC template"
    assert claims[0]["spec"]["resources"]["requests"]["storage"] == "50Gi"
    volumes = {v["name"]: v for v in pod_spec(sts).get("volumes", [])}
    assert "storage" not in volumes, f"storage must come from the claim, not {volumes.get('storage')}"
    mounts = {m["name"]: m["mountPath"] for m in containers(sts)[0]["volumeMounts"]}
    assert mounts.get("storage") == "/prometheus"


def test_persistence_off_uses_an_emptydir():
    sts = _sts(set_values={"prometheus.persistence.enabled": False})
    assert not sts["spec"].get("volumeClaimTemplates")
    volumes = {v["name"]: v for v in pod_spec(sts)["volumes"]}
    assert "emptyDir" in volumes["storage"], volumes["storage"]


def test_existing_claim():
    sts = _sts(set_values={"prometheus.persistence.existingClaim": "tsdb-claim"})
    assert not sts["spec"].get("volumeClaimTemplates"), "existingClaim must replace the claim template"
    volumes = {v["name"]: v for v in pod_spec(sts)["volumes"]}
    assert volumes["storage"] == {"name": "storage", "persistentVolumeClaim": {"claimName": "tsdb-claim"}}


def test_existing_claim_refuses_two_replicas():
    msg = render_error(set_values={"prometheus.persistence.existingClaim": "tsdb-claim", "prometheus.replicas": 2})
    assert "existingClaim" in msg, msg


@pytest.mark.parametrize("values", params.profiles())
def test_rbac_has_no_wildcards_and_only_read_verbs(values):
    objs = render(values)
    problems = []
    for role in objs.of_kind("ClusterRole") + objs.of_kind("Role"):
        for rule in role.get("rules", []):
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                if "*" in (rule.get(field) or []):
                    problems.append(f"{ident(role)}: wildcard in {field}: {rule}")
            extra = set(rule.get("verbs", [])) - {"get", "list", "watch"}
            if extra:
                problems.append(f"{ident(role)}: verbs {sorted(extra)} beyond get/list/watch: {rule}")
    assert not problems, "\n".join(problems)
    role = objs.get("ClusterRole", f"monitoring-{STS}")  # cluster-scoped: <namespace>-<fullname>
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted == PROM_RESOURCES, f"{ident(role)}: grants {sorted(granted)}, discovery needs {sorted(PROM_RESOURCES)}"


def test_only_prometheus_pods_mount_the_token_they_need():
    objs = render()
    sts = objs.get("StatefulSet", STS)
    assert pod_spec(sts)["automountServiceAccountToken"] is True, "Prometheus needs its token for discovery"
    sa = objs.get("ServiceAccount", STS)
    assert sa["automountServiceAccountToken"] is False
    binding = objs.get("ClusterRoleBinding", f"monitoring-{STS}")
    assert binding["roleRef"]["name"] == f"monitoring-{STS}", binding
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": STS, "namespace": "monitoring"}]


def _annotations(set_values=None):
    return _sts(set_values=set_values)["spec"]["template"]["metadata"]["annotations"]


def test_checksum_changes_when_rules_change():
    base = _annotations()
    assert len(base["checksum/rules"]) == 64 and len(base["checksum/config"]) == 64, base
    rules = _annotations({"prometheus.alerts.HighErrorRate.threshold": 0.1})
    assert rules["checksum/rules"] != base["checksum/rules"], "a threshold change must roll the pod"
    assert rules["checksum/config"] == base["checksum/config"], "the config did not change"
    config = _annotations({"prometheus.scrapeInterval": "30s"})
    assert config["checksum/config"] != base["checksum/config"], "a config change must roll the pod"


REMOTE_WRITE = {
    "endpoints": [
        {"name": "mimir", "url": "https://mimir.example.com/api/v1/push",
         "basicAuth": {"username": "tenant-1", "passwordKey": "mimir-password"}},
        {"name": "vm", "url": "https://vm.example.com/api/v1/write", "bearerTokenKey": "vm-token"},
    ],
    "secretData": {"mimir-password": "s3cr3t-pa55", "vm-token": "t0k3n-value"},
}


def test_remote_write_credentials_are_never_inline():
    objs = render(set_values={"prometheus.remoteWrite": REMOTE_WRITE})
    config = yaml.safe_load(objs.get("ConfigMap", STS)["data"]["prometheus.yml"])
    rw = {e["name"]: e for e in config["remote_write"]}
    assert rw["mimir"]["basic_auth"] == {"username": "tenant-1",
                                         "password_file": "/etc/prometheus/secrets/remote-write/mimir-password"}
    assert rw["vm"]["authorization"]["credentials_file"] == "/etc/prometheus/secrets/remote-write/vm-token"
    for obj in objs:
        if obj["kind"] == "Secret":
            continue
        text = yaml.safe_dump(obj)
        for secret in REMOTE_WRITE["secretData"].values():
            assert secret not in text, f"{ident(obj)}: carries a remote-write credential"
    secret = objs.get("Secret", "p5-prometheus-remote-write")
    assert set(secret["data"]) == {"mimir-password", "vm-token"}
    sts = objs.get("StatefulSet", STS)
    volumes = {v["name"]: v for v in pod_spec(sts)["volumes"]}
    assert volumes["remote-write"]["secret"]["secretName"] == "p5-prometheus-remote-write"
    for c in containers(sts):
        assert not [e for e in c.get("env", []) if "value" in e and "secret" in e["name"].lower()], c["env"]


def test_remote_write_existing_secret_creates_no_secret():
    values = {"endpoints": REMOTE_WRITE["endpoints"], "existingSecret": "my-rw-creds"}
    objs = render(set_values={"prometheus.remoteWrite": values})
    assert not [s for s in objs.of_kind("Secret") if "prometheus" in s["metadata"]["name"]]
    volumes = {v["name"]: v for v in pod_spec(objs.get("StatefulSet", STS))["volumes"]}
    assert volumes["remote-write"]["secret"]["secretName"] == "my-rw-creds"


def test_remote_write_credentials_without_a_secret_fail():
    msg = render_error(set_values={"prometheus.remoteWrite.endpoints": REMOTE_WRITE["endpoints"]})
    assert "existingSecret" in msg, msg


def test_alerts_go_to_this_release_alertmanager_and_external_ones():
    config = _config()
    am = config["alerting"]["alertmanagers"]
    assert len(am) == 1
    keep = am[0]["relabel_configs"][0]
    assert keep["regex"] == "p5-alertmanager" and keep["action"] == "keep", am
    static = _config(set_values={"prometheus.alerting.inCluster.discovery": "static",
                                 "prometheus.alerting.external": [{"targets": ["am.example.com:443"], "scheme": "https"}]})
    am = static["alerting"]["alertmanagers"]
    assert am[0]["static_configs"][0]["targets"] == ["p5-alertmanager.monitoring.svc:9093"]
    assert am[1]["scheme"] == "https" and am[1]["static_configs"][0]["targets"] == ["am.example.com:443"]


def test_phase5_jobs_choose_services_by_labels_and_by_the_deprecated_names():
    """Both Phase 5 jobs exist with empty name lists (Services opt in by labels); the names of
    the deprecated lists still mark a Service (so a 0.5.x upgrade keeps them); the selector and
    exporter labels are the global ones, sanitized as Prometheus' discovery names them. Which
    Services are kept is decided by the real Prometheus: tests/test_e2e_discovery.py and the
    e2e pipeline."""
    config = _config(set_values={"prometheus.phase5.services": ["backend", "my-agent"],
                                 "global.phase5.selector": {"example.com/tier": "api", "app.kubernetes.io/part-of": "shop"},
                                 "global.phase5.exporterSelector": {"example.com/role": "exporter"}})
    relabel = _job(config, "phase5-services")["relabel_configs"]
    assert {"source_labels": ["__meta_kubernetes_namespace"], "regex": "phase5-.*", "action": "keep"} in relabel
    assert {"source_labels": ["__meta_kubernetes_service_annotation_prometheus_io_scrape"], "regex": "true",
            "action": "keep"} in relabel
    kind = "__tmp_phase5_kind"
    assert {"source_labels": ["__meta_kubernetes_service_label_app_kubernetes_io_part_of",
                              "__meta_kubernetes_service_label_example_com_tier"],
            "regex": "shop;api", "target_label": kind, "replacement": "service"} in relabel, relabel
    assert {"source_labels": ["__meta_kubernetes_service_name"], "regex": "backend|my-agent",
            "target_label": kind, "replacement": "service"} in relabel, relabel
    # maps merge with the defaults (app.kubernetes.io/component: exporter stays)
    assert {"source_labels": ["__meta_kubernetes_service_label_app_kubernetes_io_component",
                              "__meta_kubernetes_service_label_app_kubernetes_io_part_of",
                              "__meta_kubernetes_service_label_example_com_role",
                              "__meta_kubernetes_service_label_example_com_tier"],
            "regex": "exporter;shop;exporter;api", "target_label": kind, "replacement": "exporter"} in relabel, relabel
    assert relabel.index({"source_labels": [kind], "regex": "service", "action": "keep"}) > \
        max(i for i, r in enumerate(relabel) if r.get("target_label") == kind), "keep before the kind is decided"
    targets = {r.get("target_label") for r in relabel}
    assert {"namespace", "service"} <= targets, f"every Phase 5 series needs namespace and service: {relabel}"
    empty = _config(set_values={"prometheus.phase5.services": [], "prometheus.phase5.exporters": []})
    for job, want in (("phase5-services", "service"), ("phase5-exporters", "exporter")):
        r = _job(empty, job)["relabel_configs"]
        assert {"source_labels": [kind], "regex": want, "action": "keep"} in r, r
        assert not [x for x in r if x.get("source_labels") == ["__meta_kubernetes_service_name"]
                    and x.get("target_label") == kind], r
    for name in ("phase5-exporters", "monitoring-stack", "kube-state-metrics", "node-exporter", "kubelet", "cadvisor"):
        _job(config, name)
    assert _job(config, "kube-state-metrics").get("honor_labels") is True


def test_kube_state_metrics_exports_every_label_and_annotation_the_rules_read():
    """The chart knows what its rules read: every label_* / annotation_* matcher on a
    kube_<resource>_labels / _annotations series in the rendered rules is allowed by the rendered
    kube-state-metrics arguments (else kube-state-metrics drops it and discovery sees nothing),
    with a custom selector and team label too; and each resource is a collector."""
    from harness import ksm
    import re
    for values in ({}, {"global.phase5.selector": {"example.com/tier": "api"}, "global.phase5.teamLabel": "example.com/owner",
                        "global.phase5.exporterSelector": {}}):
        objs = render(set_values=values)
        rules = "\n".join(objs.get("ConfigMap", "p5-prometheus-rules")["data"].values())
        dep = objs.get("Deployment", "p5-kube-state-metrics")
        args = containers(dep)[0]["args"]
        allow = ksm.allowlists(args)
        resources = next(a for a in args if a.startswith("--resources=")).split("=", 1)[1].split(",")
        read = set()
        for res, kind, matchers in re.findall(r"kube_(\w+?)_(labels|annotations)\{([^}]*)\}", rules):
            for name in re.findall(r"\b((?:label|annotation)_\w+)", matchers):
                read.add((res + "s", kind, name))
        assert {r for r, _, _ in read} >= {"services", "deployments", "statefulsets"}, read
        allowed = {(res, kind, ("label_" if kind == "labels" else "annotation_") + ksm.sanitize(k))
                   for kind, by_res in allow.items() for res, keys in by_res.items() for k in keys}
        missing = read - allowed
        assert not missing, f"{values}: the rules read {sorted(missing)}, which kube-state-metrics does not export ({args})"
        assert {r for r, _, _ in read} <= set(resources), f"collectors {resources} lack {read}"


def test_ha_replicas_get_a_replica_label_dropped_from_alerts():
    config = _config(set_values={"prometheus.replicas": 2})
    assert config["global"]["external_labels"]["prometheus_replica"] == "${POD_NAME}"
    assert {"action": "labeldrop", "regex": "prometheus_replica"} in config["alerting"]["alert_relabel_configs"]


def test_ingress_with_tls():
    objs = render(set_values={"prometheus.ingress": {
        "enabled": True, "className": "nginx", "hosts": ["prom.example.com"], "allowUnauthenticated": True,
        "tls": [{"secretName": "prom-tls", "hosts": ["prom.example.com"]}]}})
    ing = objs.get("Ingress", STS)
    assert ing["spec"]["tls"] == [{"secretName": "prom-tls", "hosts": ["prom.example.com"]}]
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": STS, "port": {"name": "http-web"}}


def test_thanos_sidecar():
    objs = render(set_values={"prometheus.thanos.sidecar": {"enabled": True, "objstoreSecret": "thanos-objstore"}})
    sts = objs.get("StatefulSet", STS)
    names = [c["name"] for c in containers(sts)]
    assert names == ["prometheus", "thanos-sidecar"], names
    assert "--storage.tsdb.max-block-duration=2h" in _args(sts)
    sidecar = containers(sts)[1]
    assert "--objstore.config-file=/etc/thanos/objstore/objstore.yml" in sidecar["args"]
    ports = {p["name"]: p["port"] for p in objs.get("Service", STS)["spec"]["ports"]}
    assert ports == {"http-web": 9090, "grpc-thanos": 10901}


def test_service_contract():
    svc = render().get("Service", STS)
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("http-web", 9090)]
    ann = svc["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "9090", ann


@pytest.mark.parametrize("overrides,needle", [
    pytest.param({"prometheus.alerts.HighErrorRate.treshold": 0.1}, "treshold", id="alert-key-typo"),
    pytest.param({"prometheus.alerts.NoSuchAlert": {"enabled": True}}, "NoSuchAlert", id="unknown-alert"),
    pytest.param({"prometheus.alerts.HighErrorRate.severity": "page"}, "/alerts/HighErrorRate/severity", id="bad-severity"),
    pytest.param({"prometheus.alerts.HighErrorRate.threshold": 5}, "/alerts/HighErrorRate/threshold", id="ratio-above-1"),
    pytest.param({"prometheus.alerts.PodDown.threshold": 1}, "threshold", id="no-threshold-for-PodDown"),
    pytest.param({"prometheus.alerts.HighCPUUsage.for": "ten minutes"}, "/alerts/HighCPUUsage/for", id="bad-duration"),
    pytest.param({"prometheus.retention.size": "50Gi"}, "/retention/size", id="kubernetes-unit-in-retention"),
])
def test_bad_prometheus_values_fail_naming_the_key(overrides, needle):
    msg = render_error(set_values=overrides)
    assert needle in msg, msg


# --- node-exporter ---------------------------------------------------------------------------

HOST_FIELDS = ("hostNetwork", "hostPID", "hostIPC")
LOG_COLLECTORS = {"promtail", "alloy"}  # read node logs through hostPath: their own documented exception


@pytest.mark.parametrize("values", params.profiles())
def test_host_access_is_limited_to_node_exporter(values):
    problems = []
    for obj in render(values).workloads():
        spec = pod_spec(obj)
        name = obj["metadata"]["labels"]["app.kubernetes.io/name"]
        host = [f for f in HOST_FIELDS if spec.get(f)]
        if host and name != "node-exporter":
            problems.append(f"{ident(obj)}: {host} outside node-exporter")
        host_paths = [v["name"] for v in spec.get("volumes", []) if "hostPath" in v]
        if host_paths and name not in {"node-exporter", *LOG_COLLECTORS}:
            problems.append(f"{ident(obj)}: hostPath volumes {host_paths}")
        if name == "node-exporter":
            for c in containers(obj):
                rw = [m["mountPath"] for m in c.get("volumeMounts", []) if m["name"] in host_paths and not m.get("readOnly")]
                if rw:
                    problems.append(f"{ident(obj)}: host mounts not read-only: {rw}")
    assert not problems, "\n".join(problems)


def test_node_exporter_is_hardened_apart_from_host_access():
    objs = render()
    ds = objs.get("DaemonSet", "p5-node-exporter")
    spec = pod_spec(ds)
    assert spec["hostNetwork"] is True and spec["hostPID"] is True
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    (c,) = containers(ds)
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, sc
    assert sc["capabilities"] == {"drop": ["ALL"]} and not sc.get("privileged"), sc
    assert c["resources"]["requests"] and c["resources"]["limits"], c["resources"]
    assert ":" in c["image"] and not c["image"].endswith(":latest"), c["image"]
    assert "--path.rootfs=/host/root" in c["args"]
    svc = objs.get("Service", "p5-node-exporter")
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("http-metrics", 9100)]
    assert svc["metadata"]["annotations"]["prometheus.io/port"] == "9100"


def test_node_exporter_host_access_can_be_switched_off():
    ds = render(set_values={"node-exporter.hostAccess": {"hostNetwork": False, "hostPID": False, "hostMounts": False}}).get(
        "DaemonSet", "p5-node-exporter")
    spec = pod_spec(ds)
    assert not spec["hostNetwork"] and not spec["hostPID"] and not spec.get("volumes"), spec


def test_service_categories_render_one_fallback_series_per_categories_entry():
    """phase5.categories becomes service:phase5_category_fallback:info, one series per entry
    (listed in phase5.services or not: a Service found by its labels may be named there), the
    fallback of service:phase5_category:info for a Service without the team label."""
    _, rules = prom.rendered(set_values={"prometheus.phase5.services": ["backend"],
                                         "prometheus.phase5.exporters": ["postgres-exporter"],
                                         "prometheus.phase5.categories": {"billing": "reminder", "postgres-exporter": "database"}})
    doc = yaml.safe_load(rules["recording-rules.yaml"])
    got = {(r["labels"]["service"], r["labels"]["category"])
           for g in doc["groups"] for r in g["rules"] if r.get("record") == "service:phase5_category_fallback:info"}
    assert {("billing", "reminder"), ("postgres-exporter", "database"), ("audit-agent", "audit")} <= got, got
    assert not [c for svc, c in got if svc == "backend"], got
    expr = prom.records(rules["recording-rules.yaml"])["service:phase5_category:info"]["expr"]
    assert "label_monitoring_phase5_io_team" in expr and "service:phase5_category_fallback:info" in expr, expr


def test_metrics_missing_series_list_becomes_a_regex_and_a_count():
    _, rules = prom.rendered(set_values={"prometheus.alerts.Phase5MetricsMissing.series":
                                         ["http_requests_total", "audit_log_writes_total", "a:b"]})
    expr = prom.alerts(rules["phase5-alerts.yaml"])["Phase5MetricsMissing"]["expr"]
    assert '__name__=~"http_requests_total|audit_log_writes_total|a:b"' in expr, expr
    assert ") < 3" in expr, expr


@pytest.mark.parametrize("slos,needle", [
    pytest.param({"backend": {"availability": 100}}, "/slos/backend/availability", id="availability-100"),
    pytest.param({"backend": {"availability": 0}}, "/slos/backend/availability", id="availability-0"),
    pytest.param({"backend": {"availability": -1}}, "/slos/backend/availability", id="availability-negative"),
    pytest.param({"backend": {"latency": {"objective": 100.5, "threshold": 1}}}, "/slos/backend/latency/objective",
                 id="latency-above-100"),
    pytest.param({"frontend": {"latency": {"objective": 99}}}, "threshold", id="latency-without-threshold"),
    pytest.param({"backend": {"availabilty": 99.9}}, "availabilty", id="typo"),
])
def test_bad_slo_fails_the_render_naming_the_key(slos, needle):
    msg = render_error(set_values={"prometheus.slos": slos})
    assert needle in msg, msg


def test_slo_rules_render_per_service_and_window():
    _, rules = prom.rendered(set_values={"prometheus.slos": {"frontend": {"availability": 99.5}}})
    doc = yaml.safe_load(rules["slo-rules.yaml"])
    records = [r for g in doc["groups"] for r in g["rules"] if r.get("record", "").startswith("service:slo_errors:")]
    got = {(r["record"], r["labels"]["slo"], 'service="frontend"' in r["expr"]) for r in records}
    for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"):
        assert (f"service:slo_errors:ratio_rate{w}", "availability", True) in got, (w, sorted(got))
    pairs = {(r["labels"]["service"], r["labels"]["slo"], r["labels"]["long_window"], r["labels"]["short_window"],
              r["labels"]["burn_rate"], r["labels"]["severity"])
             for g in doc["groups"] for r in g["rules"] if r.get("alert") == "ErrorBudgetBurn"}
    assert ("frontend", "availability", "1h", "5m", "14.4", "critical") in pairs, pairs
    assert ("frontend", "availability", "3d", "6h", "1", "warning") in pairs, pairs
    assert ("backend", "latency", "1h", "5m", "14.4", "critical") in pairs, pairs   # the default is merged


def test_slo_burn_rate_table_is_consistent():
    """files/slo-burn-rates.json is the one place the workbook's windows and burn rates are
    written: the recorded windows are exactly the alerts' long and short windows (a window no
    alert reads is stored for nothing, an alert on an unrecorded window never fires), each
    short window is shorter than its long one, and each description's "budget lasts" is the
    30-day budget divided by the factor."""
    import json
    from harness import paths
    def duration_seconds(d):
        return int(d[:-1]) * {"m": 60, "h": 3600, "d": 86400}[d[-1]]
    table = json.loads((paths.SUBCHARTS_DIR / "prometheus" / "files" / "slo-burn-rates.json").read_text())
    used = {w for a in table["alerts"] for w in (a["long"], a["short"])}
    assert set(table["windows"]) == used and len(table["windows"]) == len(used), (table["windows"], sorted(used))
    for a in table["alerts"]:
        assert duration_seconds(a["short"]) < duration_seconds(a["long"]), a
        assert a["kind"] in ("page", "ticket"), a
        days = 30 / float(a["factor"])
        stated = float(a["budgetLasts"].split()[-2])
        assert abs(stated - days) <= 0.2 * days, f"{a}: the budget lasts {days:.1f} days at {a['factor']}x"


def test_slo_rules_follow_the_burn_rate_table(tmp_path):
    """The rules are built from the data file: a pair changed there is the pair rendered."""
    import shutil
    from harness import paths
    chart = tmp_path / "phase5-monitoring"
    shutil.copytree(paths.UMBRELLA, chart)
    f = chart / "charts" / "prometheus" / "files" / "slo-burn-rates.json"
    text = f.read_text()
    assert '"factor": "14.4"' in text
    f.write_text(text.replace('"factor": "14.4"', '"factor": "20"'))
    objs = render(set_values={"prometheus.slos": {"frontend": {"availability": 99.5}}}, chart=chart)
    rules = yaml.safe_load(objs.get("ConfigMap", "p5-prometheus-rules")["data"]["slo-rules.yaml"])
    factors = {r["labels"]["burn_rate"] for g in rules["groups"] for r in g["rules"] if r.get("alert") == "ErrorBudgetBurn"}
    assert factors == {"20", "6", "3", "1"}, factors


def test_slo_of_a_service_named_in_no_list_renders():
    """SLOs by the service label's value, validated for shape only: a service the release's
    values do not name (it opts in by its labels) gets its rules; no traffic is a missing
    signal (Phase5MetricsMissing), not a render error."""
    _, rules = prom.rendered(set_values={"prometheus.slos": {"billing": {"availability": 99.9}},
                                         "prometheus.phase5.services": []})
    burn = [r for g in yaml.safe_load(rules["slo-rules.yaml"])["groups"] for r in g["rules"]
            if r.get("alert") == "ErrorBudgetBurn" and r["labels"]["service"] == "billing"]
    assert len(burn) == 4, burn
    for r in burn:
        assert "category" not in r["labels"], f"a static category hides the team: {r['labels']}"
        assert "group_left (category)" in r["expr"] and "service:phase5_category:info" in r["expr"], r["expr"]


def test_no_slo_file_without_objectives():
    _, rules = prom.rendered(set_values={"prometheus.alerts.ErrorBudgetBurn.enabled": False})
    assert "slo-rules.yaml" not in rules, sorted(rules)
