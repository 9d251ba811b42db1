"""Unit tier, issue 28: Loki's ruler (log alerts) as the chart renders it.

A stand-in: Loki cannot run here (AGPL, not built), so nothing evaluates these rules. The proof
is held to the documentation of the pinned Loki (the chart's appVersion 3.7; the configuration
reference's `ruler` block and the alerting page of v3.7):
- the `ruler` block uses only keys that block documents, reads the rule files from local storage
  at the directory the rules ConfigMap is mounted under (`<directory>/fake/`, the tenant of a
  single-tenant Loki), keeps its scratch files (`rule_path`) and WAL on the Loki volume, and sends
  to this release's Alertmanager: DNS SRV discovery of its headless Service (the host form Loki's
  notifier demands, `_<port name>._tcp.<name>`, on a port that Service has), every replica; over
  HTTPS with the CA and Service name when global.web.alertmanager.tls is on; with basic auth, the
  user name and password of global.web.alertmanager.basicAuth.clientSecret through the environment
  (`-config.expand-env`: the ConfigMap holds only `${VAR}` references, the StatefulSet sets each
  from the Secret; the expansion is checked with a stand-in of Loki's, drone/envsubst, see
  _expand_env); off (no block, no ConfigMap, no mount) when disabled, and in operator mode without
  loki.ruler.alertmanagerUrl;
- the rule files parse as Loki rule files (groups -> rules with alert/expr/for/labels/
  annotations, Prometheus' rule file format), every alert carries `severity` and `category`
  (a static label, or one its expression sets with label_replace) and links to its runbook, and
  every expression passes harness.logql.check (a stand-in LogQL check, see its docstring) reading
  only labels the log collector attaches.
test_conformance_loki_rules.py routes their labels through the rendered Alertmanager (amtool).
"""
import re

import pytest
import yaml

from harness import logql, params, paths
from harness.manifests import containers, pod_spec
from harness.render import render, render_error

pytestmark = pytest.mark.unit

NAME = "p5-loki"
RULES_CM = f"{NAME}-rules"
AM_HEADLESS = "p5-alertmanager-headless"

# The `ruler` block of Loki 3.7's configuration reference (docs/sources/shared/configuration.md,
# v3.7.x): every key it documents at the top of the block, and those of the sub-blocks the chart
# writes. A key outside these would be a setting Loki rejects or one in the wrong place.
RULER_KEYS = {
    "external_url", "datasource_uid", "external_labels", "ruler_client", "evaluation_interval",
    "poll_interval", "storage", "rule_path", "alertmanager_url", "enable_alertmanager_discovery",
    "alertmanager_refresh_interval", "enable_alertmanager_v2", "alert_relabel_configs",
    "notification_queue_capacity", "notification_timeout", "alertmanager_client",
    "for_outage_tolerance", "for_grace_period", "resend_delay", "enable_sharding", "sharding_strategy",
    "sharding_algo", "search_pending_for", "ring", "flush_period", "enable_api", "enabled_tenants",
    "disabled_tenants", "query_stats_enabled", "disable_rule_group_label", "wal", "wal_cleaner",
    "remote_write", "evaluation",
}
STORAGE_KEYS = {"type", "azure", "alibabacloud", "gcs", "s3", "bos", "swift", "cos", "local"}
CLIENT_KEYS = {"tls_cert_path", "tls_key_path", "tls_ca_path", "tls_server_name", "tls_insecure_skip_verify",
               "tls_cipher_suites", "tls_min_version", "basic_auth_username", "basic_auth_password",
               "type", "credentials", "credentials_file"}
WAL_KEYS = {"dir", "truncate_frequency", "min_age", "max_age"}
# Loki's notifier with enable_alertmanager_discovery (pkg/ruler/base/notifier.go): the host must
# be an SRV name, _<port name>._tcp.<service fqdn>.
SRV_HOST = re.compile(r"^_.+\._.+")
# The labels the log collector attaches (Alloy's and Promtail's config in the promtail subchart),
# plus the one label_replace adds: what a stream selector or `by` may name.
COLLECTOR_LABELS = {"namespace", "pod", "container", "app", "component", "job", "level"}
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
WEB_TLS = {"global.web.alertmanager.tls.enabled": True, "global.web.alertmanager.tls.secretName": "am-tls"}


def _config(objs):
    return yaml.safe_load(objs.get("ConfigMap", NAME)["data"]["loki.yaml"])


def _rule_files(objs):
    cm = objs.get("ConfigMap", RULES_CM)
    return {k: yaml.safe_load(v) for k, v in (cm.get("data") or {}).items()}


def _alerts(objs):
    return {r["alert"]: r for f in _rule_files(objs).values() for g in f["groups"] for r in g["rules"] if "alert" in r}


def _mounts(objs):
    sts = objs.get("StatefulSet", NAME)
    (c,) = containers(sts)
    volumes = {v["name"]: v for v in pod_spec(sts)["volumes"]}
    claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates") or []}
    return {m["mountPath"]: volumes.get(m["name"]) or ({"claim": m["name"]} if m["name"] in claims else {})
            for m in c["volumeMounts"]}


@pytest.fixture(scope="module")
def objs():
    return render()


@pytest.mark.parametrize("values", params.profiles())
def test_ruler_keys_are_lokis(values):
    objs = render(values)
    ruler = _config(objs)["ruler"]
    assert set(ruler) <= RULER_KEYS, f"ruler keys Loki 3.7 does not document: {sorted(set(ruler) - RULER_KEYS)}"
    assert set(ruler["storage"]) <= STORAGE_KEYS and set(ruler["storage"]["local"]) == {"directory"}, ruler["storage"]
    assert set(ruler.get("alertmanager_client") or {}) <= CLIENT_KEYS, ruler.get("alertmanager_client")
    assert set(ruler["wal"]) <= WAL_KEYS, ruler["wal"]
    assert ruler["enable_api"] is True and ruler["ring"]["kvstore"]["store"] == "inmemory", ruler
    assert DURATION.match(ruler["evaluation_interval"]), ruler["evaluation_interval"]


@pytest.mark.parametrize("values", params.profiles())
def test_rules_are_read_from_the_mounted_configmap_and_scratch_stays_on_the_volume(values):
    objs = render(values)
    ruler = _config(objs)["ruler"]
    assert ruler["storage"]["type"] == "local", ruler["storage"]
    directory = ruler["storage"]["local"]["directory"].rstrip("/")
    mounts = _mounts(objs)
    tenant = mounts.get(f"{directory}/fake")
    assert tenant and tenant.get("configMap", {}).get("name") == RULES_CM, \
        f"no ConfigMap {RULES_CM} mounted at {directory}/fake (tenant `fake`): {sorted(mounts)}"
    assert _rule_files(objs), f"{RULES_CM} holds no rule file"
    for key in ("rule_path",):
        assert ruler[key].startswith("/var/loki/"), f"ruler.{key}={ruler[key]} is not on the Loki volume"
    assert ruler["wal"]["dir"].startswith("/var/loki/"), ruler["wal"]
    storage = mounts.get("/var/loki") or {}
    assert storage.get("claim") == "storage" or "emptyDir" in storage or "persistentVolumeClaim" in storage, storage
    checksum = objs.get("StatefulSet", NAME)["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/rules" in checksum, "a changed rule file does not roll the pod"


def test_ruler_sends_to_every_pod_of_this_releases_alertmanager(objs):
    ruler = _config(objs)["ruler"]
    url = ruler["alertmanager_url"]
    assert ruler["enable_alertmanager_discovery"] is True, ruler
    scheme, host = url.split("://", 1)
    assert scheme == "http" and SRV_HOST.match(host), f"{url}: not an SRV name Loki's notifier accepts"
    port_name, proto, service = re.match(r"^_([^.]+)\._([^.]+)\.([^.]+)\.", host).groups()
    assert proto == "tcp" and service == AM_HEADLESS, url
    svc = objs.get("Service", AM_HEADLESS)
    assert svc["spec"].get("clusterIP") == "None", "SRV records of every pod need the headless Service"
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert port_name in ports and ports[port_name]["port"] == 9093, f"{AM_HEADLESS} has no port {port_name}: {ports}"
    assert host.endswith(".monitoring.svc"), f"{url}: not in the release namespace"
    assert "alertmanager_client" not in ruler, ruler


def test_ruler_speaks_https_to_a_tls_alertmanager():
    objs = render(set_values=WEB_TLS)
    ruler = _config(objs)["ruler"]
    assert ruler["alertmanager_url"].startswith("https://_http-web._tcp."), ruler["alertmanager_url"]
    client = ruler["alertmanager_client"]
    assert client["tls_server_name"] == "p5-alertmanager.monitoring.svc", client
    ca_dir, ca_file = client["tls_ca_path"].rsplit("/", 1)
    vol = _mounts(objs).get(ca_dir)
    assert vol, f"nothing mounted at {ca_dir}"
    items = [(s["secret"]["name"], i["key"], i["path"]) for s in vol["projected"]["sources"] for i in s["secret"]["items"]]
    assert ("am-tls", "ca.crt", ca_file) in items, items
    assert not any(k == "tls.key" for _, k, _ in items), "the Alertmanager's private key reaches Loki"


WEB_BASIC = {"global.web.alertmanager.basicAuth.enabled": True,
             "global.web.alertmanager.basicAuth.users": {"p5": "$2y$12$" + "a" * 53},
             "global.web.alertmanager.basicAuth.clientSecret": "am-client"}
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(text, env):
    """Loki 3.7 with -config.expand-env (pkg/util/cfg/files.go) runs the whole file through
    drone/envsubst before parsing it: `${NAME}` becomes the variable's value, verbatim, and the
    result is not expanded again. A stand-in for the one form this chart writes; any other `$` in
    the file would be envsubst's to interpret, so the test refuses it."""
    rest = ENV_REF.sub("", text)
    assert "$" not in rest, f"a `$` Loki's env expansion would interpret: {rest[rest.index('$') - 40:][:80]!r}"
    return ENV_REF.sub(lambda m: env[m.group(1)], text)


def _secret_env(objs):
    (c,) = containers(objs.get("StatefulSet", NAME))
    return {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in c.get("env") or []}


@pytest.mark.parametrize("password", ["s3cr3t", "a: b # c", "'\"\\ ${X} |- >", "*anchor", "- [x]", "  leading spaces"])
def test_ruler_logs_in_to_a_basic_auth_alertmanager_from_the_client_secret(password):
    objs = render(set_values={**WEB_BASIC, **WEB_TLS})
    text = objs.get("ConfigMap", NAME)["data"]["loki.yaml"]
    assert password not in text
    env = _secret_env(objs)
    refs = set(ENV_REF.findall(text))
    assert refs <= set(env), f"${{...}} in loki.yaml the StatefulSet does not set: {sorted(refs - set(env))}"
    assert env["ALERTMANAGER_USERNAME"] == {"name": "am-client", "key": "username"}, env
    assert env["ALERTMANAGER_PASSWORD"] == {"name": "am-client", "key": "password"}, env
    values = {"ALERTMANAGER_USERNAME": "p5", "ALERTMANAGER_PASSWORD": password}
    client = yaml.safe_load(_expand_env(text, values))["ruler"]["alertmanager_client"]
    assert client["basic_auth_username"] == "p5" and client["basic_auth_password"] == password, client
    assert set(client) <= CLIENT_KEYS and client["tls_server_name"] == "p5-alertmanager.monitoring.svc", client


def test_no_alertmanager_login_without_basic_auth(objs):
    assert not {"ALERTMANAGER_USERNAME", "ALERTMANAGER_PASSWORD"} & set(_secret_env(objs))
    assert "basic_auth_password" not in (_config(objs)["ruler"].get("alertmanager_client") or {})


def test_basic_auth_with_the_ruler_off_renders():
    objs = render(set_values={"loki.ruler.enabled": False, **WEB_BASIC})
    assert "ruler" not in _config(objs)
    assert "ALERTMANAGER_PASSWORD" not in _secret_env(objs)


def test_ruler_off_leaves_nothing_behind():
    objs = render(set_values={"loki.ruler.enabled": False})
    assert "ruler" not in _config(objs)
    assert objs.find("ConfigMap", RULES_CM) is None
    assert not any("rules" in p for p in _mounts(objs)), sorted(_mounts(objs))
    assert "checksum/rules" not in objs.get("StatefulSet", NAME)["spec"]["template"]["metadata"]["annotations"]


def test_an_explicit_alertmanager_url_is_used_as_given():
    url = "https://am.example.com:9093/prefix,http://am-2.example.com:9093"
    ruler = _config(render(set_values={"loki.ruler.alertmanagerUrl": url}))["ruler"]
    assert ruler["alertmanager_url"] == url and ruler["enable_alertmanager_discovery"] is False, ruler


@pytest.mark.parametrize("bad", ["am:9093", "http://a b", "ftp://am"])
def test_bad_alertmanager_url_fails_naming_the_value(bad):
    assert "alertmanagerUrl" in render_error(set_values={"loki.ruler.alertmanagerUrl": bad})


def test_operator_mode_runs_the_ruler_only_with_a_url():
    op = {"global.operator.enabled": True}
    objs = render(set_values=op)
    assert "ruler" not in _config(objs) and objs.find("ConfigMap", RULES_CM) is None
    url = "http://kps-alertmanager.monitoring.svc:9093"
    ruler = _config(render(set_values={**op, "loki.ruler.alertmanagerUrl": url}))["ruler"]
    assert ruler["alertmanager_url"] == url, ruler


# ------------------------------------------------------------------------------- the rules

@pytest.mark.parametrize("values", params.profiles())
def test_rule_files_have_lokis_rule_file_structure(values):
    files = _rule_files(render(values))
    names = []
    for fname, doc in files.items():
        assert fname.endswith(".yaml") and set(doc) == {"groups"}, f"{fname}: {sorted(doc)}"
        for g in doc["groups"]:
            assert set(g) <= {"name", "interval", "limit", "rules"} and g["name"] and g["rules"], f"{fname}: group {g}"
            names.append(g["name"])
            for r in g["rules"]:
                assert set(r) <= {"alert", "record", "expr", "for", "labels", "annotations"}, f"{fname}: rule keys {sorted(r)}"
                assert ("alert" in r) != ("record" in r), f"{fname}: a rule is an alert or a recording rule: {r}"
                if "for" in r:
                    assert DURATION.match(str(r["for"])), f"{r.get('alert')}: for {r['for']!r}"
    assert len(names) == len(set(names)), f"group names repeat: {names}"


def _categories_set(expr):
    """The values an expression's label_replace(..., "category", "<value>", ...) can give."""
    return set(re.findall(r'"category",\s*"([^"]+)"', expr))


def test_every_log_alert_routes_and_links_to_its_runbook(objs):
    alerts = _alerts(objs)
    assert {"ErrorLogBurst", "AuditWriteFailureLogged"} <= set(alerts), sorted(alerts)
    base = yaml.safe_load((paths.SUBCHARTS_DIR / "loki" / "values.yaml").read_text())["ruler"]["runbookBaseUrl"]
    for name, r in alerts.items():
        labels = r.get("labels") or {}
        assert labels.get("severity") in ("critical", "warning", "info"), f"{name}: severity {labels.get('severity')}"
        assert labels.get("category") or _categories_set(r["expr"]), f"{name}: no category label (routing)"
        for key in ("summary", "description", "runbook_url"):
            assert r["annotations"].get(key), f"{name}: no {key} annotation"
        assert r["annotations"]["runbook_url"] == f"{base.rstrip('/')}/{name}.md", r["annotations"]["runbook_url"]


def test_every_expression_is_logql_reading_collector_labels(objs):
    for name, r in _alerts(objs).items():
        ranges = logql.check(r["expr"])
        for _, matchers, stages, _, _ in ranges:
            used = {n for n, _, _ in matchers}
            assert used <= COLLECTOR_LABELS, f"{name}: selects on {sorted(used - COLLECTOR_LABELS)}, which no collector attaches"
            assert ("namespace", "=~", "phase5-.*") in matchers, f"{name}: not limited to the Phase 5 namespaces: {matchers}"
        for by in re.findall(r"by\s*\(([^)]*)\)", r["expr"]):
            names = {b.strip() for b in by.split(",") if b.strip()}
            assert names <= COLLECTOR_LABELS, f"{name}: groups by {sorted(names - COLLECTOR_LABELS)}"


def test_error_burst_carries_the_team_and_service_of_the_app(objs):
    expr = _alerts(objs)["ErrorLogBurst"]["expr"]
    values = yaml.safe_load((paths.SUBCHARTS_DIR / "loki" / "values.yaml").read_text())["ruler"]
    assert _categories_set(expr) == set(values["categories"].values()) | {"application"}, expr
    for app, cat in values["categories"].items():
        assert f'"category", "{cat}", "app", "{app}"' in expr, f"{app} -> {cat} missing: {expr}"
    assert '"service", "$1", "app", "(.+)"' in expr, expr
    assert re.search(r"\)\s*>\s*1\b", expr), f"threshold 1 line/s not in {expr}"


def test_log_alert_settings_come_from_values():
    objs = render(set_values={"loki.ruler.alerts.ErrorLogBurst.threshold": 2.5,
                              "loki.ruler.alerts.ErrorLogBurst.for": "15m",
                              "loki.ruler.alerts.ErrorLogBurst.severity": "critical",
                              "loki.ruler.alerts.AuditWriteFailureLogged.enabled": False,
                              "loki.ruler.categories": {"backend": "platform"}})
    alerts = _alerts(objs)
    assert "AuditWriteFailureLogged" not in alerts, sorted(alerts)
    r = alerts["ErrorLogBurst"]
    assert r["for"] == "15m" and r["labels"]["severity"] == "critical", r
    # Helm merges maps: backend's team joins the defaults
    assert "> 2.5" in r["expr"] and '"category", "platform", "app", "backend"' in r["expr"], r["expr"]


def test_extra_rule_files_from_values():
    extra = {"groups": [{"name": "payments", "rules": [{
        "alert": "PaymentFailedLines", "expr": 'sum by (namespace, app) (count_over_time({namespace="phase5-prod", app="backend"} |= "payment failed" [5m])) > 0',
        "labels": {"severity": "critical", "category": "application"}}]}]}
    files = _rule_files(render(set_values={"loki.ruler.extraRules": {"payments": extra}}))
    assert files["payments.yaml"] == extra, files.get("payments.yaml")
    logql.check(extra["groups"][0]["rules"][0]["expr"])


def test_logql_check_refuses_what_loki_refuses():
    """The stand-in is no rubber stamp: each of these is invalid LogQL."""
    for bad in ['sum(rate({namespace=~".*"}[5m]))',                       # matches every stream
                'sum(rate({namespace="a"} |~ "(" [5m]))',                 # regex does not compile
                'sum(rate({namespace="a"} | frobnicate [5m]))',           # unknown stage
                'sum(rate({namespace="a"}))',                             # no range
                'sum by (app (rate({namespace="a"}[5m]))',                # unbalanced
                'sum(rate(namespace="a"[5m]))']:                          # no stream selector
        with pytest.raises(Exception):
            logql.check(bad)
    logql.check('sum by (app) (count_over_time({namespace="a", level=~"error|fatal"} | json | msg=~"x.*" [5m])) > 0')
