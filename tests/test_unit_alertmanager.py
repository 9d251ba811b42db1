"""Unit tier for the Alertmanager subchart: configuration in a Secret, StatefulSet + PVC,
HA clustering (peers, headless Service, PDB), credentials only through *_file settings from
the mounted Secret (chart-created or existingSecret), and the checksum that rolls the pods."""
import json

import pytest
import yaml

from harness import params, paths
from harness import alertmanager as am
from harness.manifests import containers, ident, pod_spec
from harness.render import render, render_error

pytestmark = pytest.mark.unit

CHART_DIR = paths.SUBCHARTS_DIR / "alertmanager"

# Every optional receiver on, so every *_file setting is rendered.
ALL_RECEIVERS = {
    "alertmanager.pagerduty.enabled": True,
    "alertmanager.webhook.enabled": True,
    "alertmanager.watchdog.enabled": True,
    "alertmanager.email.username": "alerts@phase5.example.com",
}

# Sentinel credentials: they may appear in the chart-created credentials Secret and nowhere else.
SENTINELS = {
    "alertmanager.secrets.slackWebhookUrl": "https://hooks.slack.example/SENTINEL-slack-1f3a",
    "alertmanager.secrets.smtpPassword": "SENTINEL-smtp-9b2c",
    "alertmanager.secrets.pagerdutyRoutingKey": "SENTINEL-pd-77e1",
    "alertmanager.secrets.webhookUrl": "https://hooks.example/SENTINEL-webhook-5d0e",
    "alertmanager.secrets.watchdogUrl": "https://hc.example/SENTINEL-watchdog-4c4c",
}

# Fields in which Alertmanager takes a credential inline; the chart must use the *_file twin.
INLINE_SECRET_FIELDS = {
    "slack_api_url", "api_url", "smtp_auth_password", "auth_password", "auth_secret", "smtp_auth_secret",
    "routing_key", "service_key", "app_token", "slack_app_token", "bearer_token", "password",
}


def statefulset(objs):
    return objs.get("StatefulSet", am.FULLNAME)


def am_container(objs):
    (c,) = [c for c in containers(statefulset(objs)) if c["name"] == "alertmanager"]
    return c


def args_of(objs):
    return am_container(objs)["args"]


def walk(node, path=""):
    """(path, key, value) for every mapping entry in a parsed YAML tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield path, k, v
            yield from walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}[{i}]")


# --- configuration lives in a Secret -----------------------------------------------------

@pytest.mark.parametrize("values", params.profiles())
def test_config_rendered_into_secret_not_configmap(values):
    objs = render(values)
    secret = am.config_secret(objs)
    files = am.secret_files(secret)
    assert am.CONFIG_KEY in files, f"{ident(secret)}: keys {sorted(files)} lack {am.CONFIG_KEY}"
    cfg = yaml.safe_load(files[am.CONFIG_KEY])
    assert {"route", "receivers", "inhibit_rules", "templates"} <= cfg.keys(), f"{ident(secret)}: {sorted(cfg)}"
    assert any(k.endswith(".tmpl") for k in files), f"{ident(secret)}: no notification templates in {sorted(files)}"
    for cm in objs.of_kind("ConfigMap"):
        # Other components' configs may say "receivers" (Jaeger's OpenTelemetry pipeline):
        # look for what only an Alertmanager configuration or its templates carry.
        text = json.dumps(cm.get("data") or {})
        for needle in ("inhibit_rules", am.CONFIG_KEY, "phase5.slack"):
            assert needle not in text, f"{ident(cm)}: carries Alertmanager configuration ({needle})"
        for key, body in (cm.get("data") or {}).items():
            doc = yaml.safe_load(body) if key.endswith((".yaml", ".yml")) else None
            assert not (isinstance(doc, dict) and {"route", "receivers"} <= doc.keys()), \
                f"{ident(cm)}: {key} is an Alertmanager configuration"
    assert not [cm for cm in objs.by_component("alertmanager") if cm["kind"] == "ConfigMap"]
    sts = statefulset(objs)
    vols = {v["name"]: v for v in pod_spec(sts)["volumes"]}
    assert vols["config"].get("secret", {}).get("secretName") == am.CONFIG_SECRET, f"{ident(sts)}: config volume {vols['config']}"
    assert f"--config.file={am.CONFIG_DIR}/{am.CONFIG_KEY}" in args_of(objs)


def test_templates_are_files_from_the_chart():
    """The notification templates are files/templates/*.tmpl verbatim (not escaped YAML)."""
    files = am.secret_files(am.config_secret(render()))
    for tmpl in (CHART_DIR / "files" / "templates").glob("*.tmpl"):
        assert files.get(tmpl.name) == tmpl.read_text(), f"{tmpl.name} differs from the chart file"
    assert files["grafana-url.tmpl"].strip() == '{{ define "phase5.grafanaURL" }}http://localhost:3000{{ end }}'


# --- StatefulSet, PVC, clustering --------------------------------------------------------

@pytest.mark.parametrize("values", params.profiles())
def test_statefulset_keeps_state_on_pvc(values):
    objs = render(values)
    sts = statefulset(objs)
    spec = sts["spec"]
    assert spec["serviceName"] == am.HEADLESS, f"{ident(sts)}: serviceName {spec['serviceName']}"
    mounts = {m["name"]: m["mountPath"] for m in am_container(objs)["volumeMounts"]}
    assert mounts.get("storage") == "/alertmanager", f"{ident(sts)}: mounts {mounts}"
    assert "--storage.path=/alertmanager" in args_of(objs)
    vols = {v["name"]: v for v in pod_spec(sts)["volumes"]}
    claims = {c["metadata"]["name"]: c for c in spec.get("volumeClaimTemplates") or []}
    if values and values[0].stem == "dev":
        assert "storage" not in claims and "emptyDir" in vols.get("storage", {}), f"{ident(sts)}: dev should use emptyDir"
    else:
        assert "storage" in claims and "storage" not in vols, f"{ident(sts)}: no PVC for silences/nflog"
        assert claims["storage"]["spec"]["resources"]["requests"]["storage"], f"{ident(sts)}: PVC without size"


@pytest.mark.parametrize("replicas", [2, 3, 5])
def test_replicas_form_a_cluster(replicas):
    objs = render(set_values={"alertmanager.replicas": replicas})
    args = args_of(objs)
    peers = sorted(a.split("=", 1)[1] for a in args if a.startswith("--cluster.peer="))
    want = sorted(f"{am.FULLNAME}-{i}.{am.HEADLESS}.{am.NAMESPACE}.svc:9094" for i in range(replicas))
    assert peers == want, f"StatefulSet/{am.FULLNAME}: peers {peers}, want {want}"
    assert "--cluster.listen-address=0.0.0.0:9094" in args, args
    headless = objs.get("Service", am.HEADLESS)
    assert headless["spec"]["clusterIP"] == "None", f"{ident(headless)}: not headless"
    ports = {(p["port"], p["protocol"]) for p in headless["spec"]["ports"]}
    assert {(9093, "TCP"), (9094, "TCP"), (9094, "UDP")} <= ports, f"{ident(headless)}: web/cluster ports missing: {ports}"
    pdb = objs.get("PodDisruptionBudget", am.FULLNAME)
    sel = statefulset(objs)["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchLabels"] == sel, f"{ident(pdb)}: selector does not match the pods"
    assert pdb["spec"]["maxUnavailable"] < replicas


def test_peer_timeout_is_rendered_from_its_value_and_checked():
    """The dedup wait (--cluster.peer-timeout: position n waits n x this) comes from
    alertmanager.peerTimeout, Alertmanager's own default of 15s unless set; not a duration fails."""
    assert "--cluster.peer-timeout=15s" in args_of(render(set_values={"alertmanager.replicas": 3}))
    args = args_of(render(set_values={"alertmanager.replicas": 3, "alertmanager.peerTimeout": "30s"}))
    assert [a for a in args if a.startswith("--cluster.peer-timeout")] == ["--cluster.peer-timeout=30s"], args
    msg = render_error(set_values={"alertmanager.replicas": 3, "alertmanager.peerTimeout": "soon"})
    assert "peerTimeout" in msg, msg


def test_the_e2e_cluster_swap_moves_only_addresses_and_refuses_a_stray_peer():
    """harness.swaps.alertmanager_cluster_flags (the e2e's swap 10b): each rendered peer goes to
    the loopback port of the pod it names, every other flag stays; a peer that is not a pod of
    the StatefulSet through its headless Service, or a replica no peer names, is refused."""
    import copy

    from harness.swaps import ClusterMember, Swaps, alertmanager_cluster_flags
    objs = render(set_values={"alertmanager.replicas": 3})
    sts = statefulset(objs)
    args = args_of(objs)
    ports = [7001, 7002, 7003]
    out = alertmanager_cluster_flags(args, objs, sts, ClusterMember(1, ports), Swaps())
    assert sorted(a for a in out if a.startswith("--cluster.peer=")) == [f"--cluster.peer=127.0.0.1:{p}" for p in ports]
    assert "--cluster.listen-address=127.0.0.1:7002" in out and "--cluster.advertise-address=127.0.0.1:7002" in out
    assert [a for a in out if not a.startswith(("--cluster.peer=", "--cluster.listen", "--cluster.advertise"))] == \
        [a for a in args if not a.startswith(("--cluster.peer=", "--cluster.listen", "--cluster.advertise"))]
    stray = [a.replace(am.HEADLESS, am.FULLNAME) if a.startswith(f"--cluster.peer={am.FULLNAME}-2.") else a for a in args]
    with pytest.raises(ValueError, match="is not one of its 3 pods"):
        alertmanager_cluster_flags(stray, objs, sts, ClusterMember(0, ports), Swaps())
    missing = [a for a in args if not a.startswith(f"--cluster.peer={am.FULLNAME}-2.")]
    with pytest.raises(ValueError, match="not each of its 3 replicas"):
        alertmanager_cluster_flags(missing, objs, sts, ClusterMember(0, ports), Swaps())
    not_headless = copy.deepcopy(sts)
    not_headless["spec"]["serviceName"] = am.FULLNAME
    with pytest.raises(ValueError):
        alertmanager_cluster_flags(args, objs, not_headless, ClusterMember(0, ports), Swaps())


def test_single_replica_disables_cluster_listener():
    objs = render(set_values={"alertmanager.replicas": 1})
    args = args_of(objs)
    assert "--cluster.listen-address=" in args, f"StatefulSet/{am.FULLNAME}: cluster listener not disabled: {args}"
    assert not [a for a in args if a.startswith("--cluster.peer")], args
    assert objs.find("PodDisruptionBudget", am.FULLNAME) is None, "PDB rendered for a single replica"
    ports = [p["port"] for p in objs.get("Service", am.HEADLESS)["spec"]["ports"]]
    assert 9094 not in ports, f"Service/{am.HEADLESS}: cluster port without a cluster"


def test_production_is_highly_available():
    objs = render((paths.PROFILES_DIR / "production.yaml",))
    assert statefulset(objs)["spec"]["replicas"] >= 2
    assert objs.find("PodDisruptionBudget", am.FULLNAME) is not None


# --- contract and hardening --------------------------------------------------------------

@pytest.mark.parametrize("values", params.profiles())
def test_service_contract_and_hardening(values):
    objs = render(values)
    svc = objs.get("Service", am.FULLNAME)
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("http-web", 9093)], f"{ident(svc)}: {svc['spec']['ports']}"
    ann = svc["metadata"].get("annotations") or {}
    assert ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "9093", f"{ident(svc)}: {ann}"
    sts = statefulset(objs)
    spec = pod_spec(sts)
    assert spec["automountServiceAccountToken"] is False, f"{ident(sts)}: token mounted"
    c = am_container(objs)
    assert c["image"] == "quay.io/prometheus/alertmanager:v0.35.0", f"{ident(sts)}: image {c['image']}"
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"] and sc["capabilities"]["drop"] == ["ALL"], sc
    assert c["resources"].get("requests") and c["resources"].get("limits"), f"{ident(sts)}: unsized"


# --- credentials -------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [
    pytest.param({}, id="defaults"),
    pytest.param(ALL_RECEIVERS, id="all-receivers"),
    pytest.param({**ALL_RECEIVERS, "alertmanager.secrets.existingSecret": "alertmanager-secrets"}, id="existing-secret"),
    pytest.param({**ALL_RECEIVERS, "alertmanager.slack.ownWebhooks": ["critical", "database"]}, id="own-webhooks"),
    pytest.param({**ALL_RECEIVERS, "alertmanager.slack.mode": "app"}, id="slack-app"),
])
@pytest.mark.parametrize("values", params.profiles())
def test_credentials_read_via_file_settings(values, extra):
    objs = render(values, extra)
    cfg = am.config(objs)
    inline = [f"{p}.{k}" for p, k, _ in walk(cfg) if k in INLINE_SECRET_FIELDS]
    assert not inline, f"credentials set inline (use the *_file setting): {inline}"
    webhook_urls = [f"{p}.url" for p, k, v in walk(cfg) if k == "webhook_configs" for w in v if "url" in w]
    assert not webhook_urls, f"webhook url inline: {webhook_urls}"
    files = {f"{p}.{k}": v for p, k, v in walk(cfg) if k.endswith("_file")}
    app = extra.get("alertmanager.slack.mode") == "app"
    expected = {"app_token_file" if app else "api_url_file", "smtp_auth_password_file"}
    if extra:
        expected |= {"routing_key_file", "url_file"}
    have = {k.rsplit(".", 1)[1] for k in files}
    assert expected <= have, f"missing *_file settings: {sorted(expected - have)}; have {sorted(have)}"
    keys = set(am.CREDENTIAL_KEYS) | {f"slack-webhook-url-{k}" for k in extra.get("alertmanager.slack.ownWebhooks", ())}
    keys |= {"slack-app-token"} if app else set()
    for where, path in files.items():
        assert path.startswith(am.SECRETS_DIR + "/"), f"{where}: {path} is not in the mounted credentials dir"
        assert path.rsplit("/", 1)[1] in keys, f"{where}: {path} is not a credentials Secret key {sorted(keys)}"
    sts = statefulset(objs)
    secret_name = extra.get("alertmanager.secrets.existingSecret", am.CREDENTIALS_SECRET)
    vols = {v["name"]: v for v in pod_spec(sts)["volumes"]}
    assert vols["secrets"]["secret"]["secretName"] == secret_name, f"{ident(sts)}: {vols['secrets']}"
    mounts = {m["name"]: m for m in am_container(objs)["volumeMounts"]}
    assert mounts["secrets"]["mountPath"] == am.SECRETS_DIR and mounts["secrets"]["readOnly"], mounts["secrets"]
    if secret_name == am.CREDENTIALS_SECRET:
        created = am.secret_files(objs.get("Secret", am.CREDENTIALS_SECRET))
        assert keys <= created.keys(), f"Secret/{am.CREDENTIALS_SECRET}: keys {sorted(created)}"


def test_existing_secret_replaces_the_chart_secret():
    objs = render(set_values={"alertmanager.secrets.existingSecret": "alertmanager-secrets"})
    assert objs.find("Secret", am.CREDENTIALS_SECRET) is None, "chart still creates its credentials Secret"
    chart_secrets = [s for s in objs.of_kind("Secret") if s in objs.by_component("alertmanager")]
    assert [s["metadata"]["name"] for s in chart_secrets] == [am.CONFIG_SECRET], \
        f"only the config Secret may remain: {[ident(s) for s in chart_secrets]}"
    for s in chart_secrets:
        assert not set(am.CREDENTIAL_KEYS) & am.secret_files(s).keys(), f"{ident(s)}: carries credential keys"
    vols = {v["name"]: v for v in pod_spec(statefulset(objs))["volumes"]}
    assert vols["secrets"]["secret"]["secretName"] == "alertmanager-secrets"


def test_no_default_credentials():
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    set_ = {k: v for k, v in values["secrets"].items() if k not in ("existingSecret", "extra") and v}
    assert not set_, f"alertmanager values.yaml ships credentials: {set_}"
    assert values["secrets"]["extra"] == {}


@pytest.mark.parametrize("values", params.profiles())
def test_no_credential_in_configmap_env_or_config(values):
    """With every credential set, each appears only in the credentials Secret."""
    objs = render(values, {**SENTINELS, **ALL_RECEIVERS})
    leaks = []
    for obj in objs:
        if obj["kind"] == "Secret" and obj["metadata"]["name"] == am.CREDENTIALS_SECRET:
            continue
        text = json.dumps(obj)
        leaks += [f"{ident(obj)}: contains {key}" for key, v in SENTINELS.items() if v in text]
    sts = statefulset(objs)
    for c in containers(sts):
        leaks += [f"{ident(sts)}/{c['name']}: env {e['name']} is a literal" for e in c.get("env") or [] if "value" in e]
    assert not leaks, "\n".join(leaks)
    created = json.dumps(am.secret_files(objs.get("Secret", am.CREDENTIALS_SECRET)))
    missing = [k for k, v in SENTINELS.items() if v not in created]
    assert not missing, f"Secret/{am.CREDENTIALS_SECRET}: lacks {missing}"


# --- Slack: one webhook per team, or one app ----------------------------------------------

def _slack_configs(objs):
    """{receiver: its one slack_config} of the rendered alertmanager.yaml."""
    return {r["name"]: r["slack_configs"][0] for r in am.config(objs)["receivers"] if r.get("slack_configs")}


def test_each_slack_receiver_reads_its_own_webhook_or_the_shared_one():
    """Slack app webhooks ignore `channel`: a team reaches its channel only through its own webhook
    file, and a receiver not listed keeps the shared one."""
    own = {"database": "https://hooks.slack.example/T/database", "monitoring": "https://hooks.slack.example/T/mon"}
    objs = render(set_values={"alertmanager.slack.ownWebhooks": list(own),
                              "alertmanager.slack.channels.monitoring": "#team-monitoring",
                              "alertmanager.secrets.slackWebhookUrls": own})
    files = {name: c.get("api_url_file") for name, c in _slack_configs(objs).items()}
    want = {name: f"{am.SECRETS_DIR}/slack-webhook-url" for name in files}
    want |= {"slack-database": f"{am.SECRETS_DIR}/slack-webhook-url-database",
             "slack-monitoring": f"{am.SECRETS_DIR}/slack-webhook-url-monitoring"}
    assert files == want, f"webhook file per receiver: {files}"
    assert am.config(objs)["global"]["slack_api_url_file"] == f"{am.SECRETS_DIR}/slack-webhook-url", \
        "extraReceivers' Slack configs that name no webhook keep reading the shared one"
    created = am.secret_files(objs.get("Secret", am.CREDENTIALS_SECRET))
    assert {k: created.get(f"slack-webhook-url-{k}") for k in own} == own, sorted(created)
    assert "slack-app-token" not in created


def test_the_monitoring_team_receiver_exists_only_with_its_channel():
    routes = lambda objs: [r for r in am.config(objs)["route"]["routes"] if r.get("receiver") == "slack-monitoring"]
    assert not routes(render()) and "slack-monitoring" not in _slack_configs(render()), \
        "no monitoring channel set: the stack's alerts reach the severity channels only"
    objs = render(set_values={"alertmanager.slack.channels.monitoring": "#team-monitoring"})
    (route,) = routes(objs)
    assert route["matchers"] == ['category="monitoring"'] and route["continue"] is True, route
    assert _slack_configs(objs)["slack-monitoring"]["channel"] == "#team-monitoring"


def test_slack_app_mode_posts_every_receiver_with_the_token_to_its_channel():
    objs = render(set_values={"alertmanager.slack.mode": "app", "alertmanager.slack.appUrl": "https://slack.example/api/chat.postMessage",
                              "alertmanager.secrets.slackAppToken": "xoxb-unit"})
    configs = _slack_configs(objs)
    channels = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["slack"]["channels"]
    assert set(configs) == {f"slack-{k}" for k, v in channels.items() if v}, sorted(configs)
    for name, c in configs.items():
        assert c.get("app_token_file") == f"{am.SECRETS_DIR}/slack-app-token" and "api_url_file" not in c, f"{name}: {c}"
        assert c["app_url"] == "https://slack.example/api/chat.postMessage" and c["channel"] == channels[name[6:]], f"{name}: {c}"
    assert am.secret_files(objs.get("Secret", am.CREDENTIALS_SECRET))["slack-app-token"] == "xoxb-unit"


def test_own_webhooks_reach_the_alertmanagerconfig_of_operator_mode():
    objs = render(set_values={"global.operator.enabled": True, "alertmanager.slack.ownWebhooks": ["audit"]})
    amc = objs.get("AlertmanagerConfig", am.FULLNAME)["spec"]
    keys = {r["name"]: r["slackConfigs"][0]["apiURL"]["key"] for r in amc["receivers"] if r.get("slackConfigs")}
    assert keys["slack-audit"] == "slack-webhook-url-audit", keys
    assert {k for n, k in keys.items() if n != "slack-audit"} == {"slack-webhook-url"}, keys


@pytest.mark.parametrize("overrides,needles", [
    pytest.param({"alertmanager.slack.mode": "app", "alertmanager.slack.ownWebhooks": ["audit"]},
                 ["alertmanager.slack.ownWebhooks", "audit", "mode webhook only"], id="own-webhooks-in-app-mode"),
    pytest.param({"alertmanager.slack.mode": "app", "global.operator.enabled": True},
                 ["alertmanager.slack.mode: app", "operator mode"], id="app-mode-in-operator-mode"),
    pytest.param({"alertmanager.slack.appUrl": "https://slack.example/api"}, ["alertmanager.slack.appUrl", "mode app only"],
                 id="app-url-in-webhook-mode"),
    pytest.param({"alertmanager.slack.ownWebhooks": ["monitoring"]}, ["alertmanager.slack.channels.monitoring is empty"],
                 id="own-webhook-of-a-receiver-without-channel"),
    pytest.param({"alertmanager.secrets.slackWebhookUrls": {"database": "https://hooks.slack.example/x"}},
                 ["alertmanager.secrets.slackWebhookUrls.database", "would be ignored"], id="url-nobody-reads"),
    pytest.param({"alertmanager.slack.ownWebhooks": ["sales"]}, ["ownWebhooks"], id="own-webhook-of-unknown-receiver"),
    pytest.param({"alertmanager.secrets.slackWebhookUrls": {"sales": "x"}}, ["slackWebhookUrls"], id="url-of-unknown-receiver"),
    pytest.param({"alertmanager.slack.mode": "bot"}, ["mode"], id="unknown-mode"),
])
def test_slack_settings_that_would_deliver_nowhere_fail_naming_them(overrides, needles):
    msg = render_error(set_values=overrides)
    missing = [n for n in needles if n not in msg]
    assert not missing, f"the error does not say {missing}:\n{msg}"


def test_no_slack_credential_outside_the_credentials_secret():
    sentinels = {"alertmanager.secrets.slackWebhookUrls": {"database": "https://hooks.slack.example/SENTINEL-db-81c2"}}
    for extra in ({**sentinels, "alertmanager.slack.ownWebhooks": ["database"]},
                  {"alertmanager.slack.mode": "app", "alertmanager.secrets.slackAppToken": "xoxb-SENTINEL-app-3e9d"}):
        objs = render(set_values=extra)
        value = "SENTINEL-db-81c2" if "alertmanager.slack.ownWebhooks" in extra else "xoxb-SENTINEL-app-3e9d"
        leaks = [ident(o) for o in objs if value in json.dumps(o)
                 and not (o["kind"] == "Secret" and o["metadata"]["name"] == am.CREDENTIALS_SECRET)]
        assert not leaks, f"{value} outside Secret/{am.CREDENTIALS_SECRET}: {leaks}"
        assert value in json.dumps(am.secret_files(objs.get("Secret", am.CREDENTIALS_SECRET)))


# --- checksum ----------------------------------------------------------------------------

def _annotations(objs):
    return statefulset(objs)["spec"]["template"]["metadata"]["annotations"]


def test_checksum_rolls_pods_on_config_change():
    base = _annotations(render())
    assert len(base.get("checksum/config", "")) == 64, f"StatefulSet/{am.FULLNAME}: annotations {base}"
    assert base == _annotations(render()), "checksum not deterministic"
    changed = _annotations(render(set_values={"alertmanager.slack.channels.critical": "#sev1"}))
    assert changed["checksum/config"] != base["checksum/config"], "config change did not change checksum/config"
    assert changed["checksum/secrets"] == base["checksum/secrets"]
    rotated = _annotations(render(set_values={"alertmanager.secrets.smtpPassword": "n3w"}))
    assert rotated["checksum/secrets"] != base["checksum/secrets"], "credential change did not roll the pods"
    assert rotated["checksum/config"] == base["checksum/config"]


# --- values schema -----------------------------------------------------------------------

@pytest.mark.parametrize("overrides,needle", [
    pytest.param({"alertmanager.replicas": 0}, "/replicas", id="replicas-zero"),
    pytest.param({"alertmanager.route.critical.groupWait": "soon"}, "groupWait", id="bad-duration"),
    pytest.param({"alertmanager.slack.channels.sales": "#sales"}, "sales", id="unknown-channel"),
    pytest.param({"alertmanager.grafanaUrl": "http://g/{{ x }}"}, "grafanaUrl", id="templated-grafana-url"),
    pytest.param({"alertmanager.email.smtpPort": 0}, "smtpPort", id="bad-port"),
    pytest.param({"alertmanager.secrets.slackWebhook": "x"}, "slackWebhook", id="secret-typo"),
])
def test_bad_values_fail_naming_key(overrides, needle):
    msg = render_error(set_values=overrides)
    assert needle in msg, msg



# ---------------------------------------------------------------------------- Ingress (issue 28)
def test_no_ingress_by_default():
    assert not render().of_kind("Ingress")


def test_ingress_with_tls_annotations_and_class():
    """The chart's ingress helper, as for Prometheus, Grafana and Jaeger: the Service's web port,
    TLS hosts defaulting to ingress.hosts, annotations and class as given."""
    objs = render(set_values={"alertmanager.ingress": {
        "enabled": True, "className": "nginx", "hosts": ["am.example.com"],
        "annotations": {"nginx.ingress.kubernetes.io/auth-url": "https://oauth2-proxy/oauth2/auth"},
        "tls": [{"secretName": "am-tls"}]}})
    ing = objs.get("Ingress", "p5-alertmanager")
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["metadata"]["annotations"] == {"nginx.ingress.kubernetes.io/auth-url": "https://oauth2-proxy/oauth2/auth"}
    assert ing["spec"]["tls"] == [{"secretName": "am-tls", "hosts": ["am.example.com"]}]
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "p5-alertmanager", "port": {"name": "http-web"}}
    svc = objs.get("Service", "p5-alertmanager")
    assert "http-web" in {p["name"] for p in svc["spec"]["ports"]}, svc["spec"]["ports"]
    assert svc["spec"].get("clusterIP") != "None", "the Ingress must reach the load-balanced Service"


def test_ingress_needs_a_host():
    msg = render_error(set_values={"alertmanager.ingress": {"enabled": True, "allowUnauthenticated": True}})
    assert "alertmanager.ingress.hosts" in msg, msg


def test_no_ingress_in_operator_mode():
    from harness.operator import OPERATOR_VALUES
    objs = render(set_values={**OPERATOR_VALUES, "alertmanager.ingress": {
        "enabled": True, "hosts": ["am.example.com"], "allowUnauthenticated": True}})
    assert not [i for i in objs.of_kind("Ingress") if "alertmanager" in i["metadata"]["name"]]
