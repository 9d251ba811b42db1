"""Unit tier: Prometheus' and Alertmanager's web config (global.web, README "Authentication and
TLS"). Off by default and then invisible; on, every client the chart renders follows (alerting,
the monitoring-stack jobs, Grafana's datasource, the helm-test pods, the probes), every file a
client or server is told to read is mounted, the hashes sit only in a Secret, and bad input fails
at render time naming the value. The real binaries run it in tests/test_e2e_webauth.py."""
import copy

import pytest
import yaml

from harness import params
from harness.manifests import containers, ident, pod_spec
from harness.render import render, render_error
from harness.schema import kube_errors
from test_unit_secrets import CONFIG_LINE, REFERENCE

pytestmark = pytest.mark.unit

HASH = "$2b$10$" + "a" * 53
REL, NS = "p5", "monitoring"
COMPONENTS = ("prometheus", "alertmanager")
# The scrape targets of the stack that serve the same web config (node-exporter's
# --web.config.file, kube-state-metrics' --tls-config): section "the exporters" below.
EXPORTERS = ("node-exporter", "kube-state-metrics")


def web(tls=True, basic=True, components=COMPONENTS + EXPORTERS, **tls_extra):
    """global.web with every server on (the exporters too, so every render of this module with
    the web config on, the no-credential scan's included, carries theirs)."""
    return {c: {"tls": {"enabled": tls, "secretName": f"{c}-tls", **tls_extra},
                "basicAuth": {"enabled": basic, "users": {"p5": HASH}, "clientSecret": f"{c}-client"}}
            for c in components}


# Loki's ruler refuses Alertmanager basic auth (it takes the password only as a literal in its
# config; test_unit_loki_ruler.py): the renders with it on run without the ruler.
RULER_OFF = {"loki.ruler.enabled": False}


def on(tls=True, basic=True, **extra):
    return {"global.web": web(tls, basic), **(RULER_OFF if basic else {}), **extra}


def _sidecar_on(values_files):
    """The profile runs the Thanos sidecar, which the chart refuses beside Prometheus' basic auth
    (test_the_thanos_sidecar_with_basic_auth_is_refused_naming_both_values)."""
    for f in values_files:
        doc = yaml.safe_load(open(f)) or {}
        if ((doc.get("prometheus") or {}).get("thanos") or {}).get("sidecar", {}).get("enabled"):
            return True
    return False


def on_for(values_files):
    """on() as far as the profile admits: TLS for both and basic auth for Alertmanager always,
    basic auth for Prometheus unless the profile runs the Thanos sidecar."""
    cfg = on()
    if _sidecar_on(values_files):
        cfg["global.web"]["prometheus"]["basicAuth"]["enabled"] = False
    return cfg


def _prom_config(m):
    return yaml.safe_load(m.get("ConfigMap", f"{REL}-prometheus")["data"]["prometheus.yml"])


def _container(m, kind, name, container):
    obj = m.get(kind, name)
    return obj, next(c for c in pod_spec(obj)["containers"] if c["name"] == container)


def _mounted_files(m, obj, container):
    """{absolute path: True} of every file the container's configMap/secret/projected volumes
    give it (keys, or items' paths)."""
    vols = {v["name"]: v for v in pod_spec(obj).get("volumes") or []}
    files = set()
    for mnt in container.get("volumeMounts") or []:
        v = vols.get(mnt["name"], {})       # absent: a volumeClaimTemplate
        sources = []
        if "secret" in v:
            sources.append(("Secret", v["secret"]["secretName"], v["secret"].get("items")))
        if "configMap" in v:
            sources.append(("ConfigMap", v["configMap"]["name"], v["configMap"].get("items")))
        for s in (v.get("projected") or {}).get("sources", []):
            kind = "Secret" if "secret" in s else "ConfigMap"
            src = s.get("secret") or s.get("configMap")
            sources.append((kind, src["name"], src.get("items")))
        for kind, name, items in sources:
            if items:
                keys = [it["path"] for it in items]
            else:
                o = m.find(kind, name)
                keys = list((o or {}).get("data") or {}) + list((o or {}).get("stringData") or {}) if o else \
                    ["tls.crt", "tls.key", "ca.crt"]     # a user's kubernetes.io/tls Secret
            files |= {f"{mnt['mountPath'].rstrip('/')}/{k}" for k in keys}
    return files


def _file_refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k.endswith("_file") and isinstance(v, str):
                yield v
            yield from _file_refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _file_refs(v)


# ----------------------------------------------------------------------------- off by default
@pytest.mark.parametrize("values", params.profiles())
def test_off_by_default_nothing_changes(values):
    m = render(values)
    assert not [ident(o) for o in m if o["metadata"]["name"].endswith("-web") or o["kind"] == "Certificate"]
    for c in COMPONENTS:
        obj, cont = _container(m, "StatefulSet", f"{REL}-{c}", c)
        assert not [a for a in cont["args"] if a.startswith("--web.config.file")]
        assert cont["readinessProbe"]["httpGet"].get("scheme", "HTTP") == "HTTP"
    cfg = _prom_config(m)
    assert not [j["job_name"] for j in cfg["scrape_configs"] if j["job_name"].startswith("monitoring-stack-")]
    assert not [a for a in cfg["alerting"]["alertmanagers"] if "basic_auth" in a or "tls_config" in a]


# ----------------------------------------------------------------------------- on
@pytest.mark.parametrize("values", params.profiles())
def test_every_file_a_server_or_client_reads_is_mounted(values):
    cfg = on_for(values)
    m = render(values, cfg)
    for c in COMPONENTS:
        obj, cont = _container(m, "StatefulSet", f"{REL}-{c}", c)
        files = _mounted_files(m, obj, cont)
        web_cfg = next(a.split("=", 1)[1] for a in cont["args"] if a.startswith("--web.config.file="))
        assert web_cfg in files
        body = yaml.safe_load(m.get("Secret", f"{REL}-{c}-web")["stringData"]["web-config.yml"])
        if cfg["global.web"][c]["basicAuth"]["enabled"]:
            assert body["basic_auth_users"] == {"p5": HASH}
        else:
            assert "basic_auth_users" not in body
        assert body["tls_server_config"]["min_version"] == "TLS12"
        for f in _file_refs(body):
            assert f in files, f"{c}: the web config reads {f}, not mounted; mounted: {sorted(files)}"
    obj, cont = _container(m, "StatefulSet", f"{REL}-prometheus", "prometheus")
    files = _mounted_files(m, obj, cont)
    prom_basic = cfg["global.web"]["prometheus"]["basicAuth"]["enabled"]
    cfg = _prom_config(m)
    refs = [f for f in _file_refs({"a": cfg["alerting"], "s": cfg["scrape_configs"]}) if "/phase5-web/" in f]
    # alerting + two jobs: username, password, ca each (the Prometheus job: ca only, without its basic auth)
    assert len(refs) >= (9 if prom_basic else 7), refs
    for f in refs:
        assert f in files, f"prometheus.yml reads {f}, not mounted; mounted: {sorted(files)}"
    if prom_basic:      # else an httpGet HTTPS probe (test_tls_only_probes_use_https_...)
        probe = cont["readinessProbe"]["exec"]["command"]
        client_yml = next(a.split("=", 1)[1] for a in probe if a.startswith("--http.config.file="))
        assert client_yml in files


def test_every_client_uses_https_the_ca_the_service_name_and_the_credentials():
    m = render(values_files=(), set_values=on())
    cfg = _prom_config(m)
    am = cfg["alerting"]["alertmanagers"][0]
    assert am["scheme"] == "https"
    assert am["tls_config"] == {"ca_file": "/etc/phase5-web/alertmanager/ca.crt",
                                "server_name": f"{REL}-alertmanager.{NS}.svc"}
    assert am["basic_auth"] == {"username_file": "/etc/phase5-web/alertmanager/username",
                                "password_file": "/etc/phase5-web/alertmanager/password"}
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    stack_drop = next(r for r in jobs["monitoring-stack"]["relabel_configs"] if r.get("action") == "drop")
    for c in COMPONENTS:
        j = jobs[f"monitoring-stack-{c}"]
        assert j["scheme"] == "https" and j["tls_config"]["server_name"] == f"{REL}-{c}.{NS}.svc"
        assert j["basic_auth"]["password_file"] == f"/etc/phase5-web/{c}/password"
        assert {"target_label": "job", "replacement": "monitoring-stack"} in j["relabel_configs"]
        assert f"{REL}-{c}" in stack_drop["regex"].split("|"), "scraped twice (once without credentials)"
        # The same series are stored and the same limits hold as in the monitoring-stack job.
        for key in ("metric_relabel_configs", "sample_limit", "label_limit", "body_size_limit"):
            assert j.get(key) == jobs["monitoring-stack"].get(key), key
        assert j["metric_relabel_configs"], "every series of the component stored"
    # Grafana's Prometheus datasource: the CA and credentials as $__file{} of its mounted files.
    ds = yaml.safe_load(m.get("ConfigMap", f"{REL}-grafana")["data"]["datasources.yaml"])
    prom = next(d for d in ds["datasources"] if d["uid"] == "prometheus")
    assert prom["url"] == f"https://{REL}-prometheus:9090"
    assert prom["basicAuth"] is True and prom["jsonData"]["tlsAuthWithCACert"] is True
    assert prom["jsonData"]["serverName"] == f"{REL}-prometheus.{NS}.svc"
    obj, cont = _container(m, "Deployment", f"{REL}-grafana", "grafana")
    files = _mounted_files(m, obj, cont)
    for ref in (prom["basicAuthUser"], *prom["secureJsonData"].values()):
        assert ref.startswith("$__file{") and ref[8:-1] in files, (ref, sorted(files))
    # The helm-test pods: the component's own client with the client config, mounted.
    for c, tool in (("prometheus", "promtool"), ("alertmanager", "amtool")):
        pod = m.get("Pod", f"{REL}-test-{c}")
        cmd = pod["spec"]["containers"][0]["command"]
        assert cmd[0] == tool and f"https://{REL}-{c}:" in " ".join(cmd)
        cfg_file = next(a.split("=", 1)[1] for a in cmd if a.startswith("--http.config.file="))
        assert cfg_file in _mounted_files(m, pod, pod["spec"]["containers"][0])
        assert pod["spec"]["containers"][0]["image"].startswith(f"quay.io/prometheus/{c}:v")
    # Probes: exporter-toolkit asks for credentials on /-/ready too.
    _, am_c = _container(m, "StatefulSet", f"{REL}-alertmanager", "alertmanager")
    assert am_c["livenessProbe"]["tcpSocket"] == {"port": "http-web"}


def test_tls_only_probes_use_https_and_clients_send_no_credentials():
    m = render(set_values=on(basic=False))
    for c in COMPONENTS:
        _, cont = _container(m, "StatefulSet", f"{REL}-{c}", c)
        assert cont["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    am = _prom_config(m)["alerting"]["alertmanagers"][0]
    assert "basic_auth" not in am and am["tls_config"]["ca_file"].endswith("/alertmanager/ca.crt")
    body = yaml.safe_load(m.get("Secret", f"{REL}-prometheus-web")["stringData"]["web-config.yml"])
    assert "basic_auth_users" not in body


@pytest.mark.parametrize("values", params.profiles())
def test_the_hashes_sit_in_secrets_only_and_no_credential_literal_appears(values):
    """test_unit_secrets' scan, on a render with the web config on."""
    problems = []
    for obj in render(values, on_for(values)):
        if obj["kind"] != "Secret" and HASH in yaml.safe_dump(obj):
            problems.append(f"{ident(obj)} holds a bcrypt hash")
        if obj["kind"] == "ConfigMap":
            for key, body in (obj.get("data") or {}).items():
                for line in str(body).splitlines():
                    mm = CONFIG_LINE.match(line)
                    if mm and not mm.group(1).lower().endswith(("_file", "file")) and not REFERENCE.match(mm.group(3)):
                        problems.append(f"{ident(obj)} {key}: {line.strip()}")
        for c in containers(obj):
            for env in c.get("env") or []:
                if "value" in env and HASH in env["value"]:
                    problems.append(f"{ident(obj)} {c['name']}: env {env['name']} holds a bcrypt hash")
    assert not problems, "\n".join(problems)


def test_cert_manager_certificate_names_what_the_clients_verify():
    values = web()
    for c in COMPONENTS:
        values[c]["tls"] = {"enabled": True, "secretName": "", "certManager": {"issuerName": "ca", "issuerKind": "ClusterIssuer"}}
    m = render(set_values={"global.web": values, **RULER_OFF})
    for c in COMPONENTS:
        cert = m.get("Certificate", f"{REL}-{c}-web-tls")
        assert cert["spec"]["secretName"] == f"{REL}-{c}-web-tls"
        assert cert["spec"]["issuerRef"] == {"name": "ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
        assert f"{REL}-{c}.{NS}.svc" in cert["spec"]["dnsNames"]
        obj = m.get("StatefulSet", f"{REL}-{c}")
        vols = {v["name"]: v for v in pod_spec(obj)["volumes"]}
        assert vols["web-tls"]["secret"]["secretName"] == f"{REL}-{c}-web-tls"


def test_variants_valid_for_kubernetes():
    errors = kube_errors(obj for overrides in (on(), on(basic=False)) for obj in render(set_values=overrides))
    assert not errors, "\n".join(errors)


# ----------------------------------------------------------------------------- refused
def _without(path, value=None):
    v = web()
    node = v
    *head, last = path.split(".")
    for k in head:
        node = node[k]
    node[last] = value if value is not None else ""
    return {"global.web": v, **RULER_OFF}


@pytest.mark.parametrize("overrides,named", [
    (_without("alertmanager.basicAuth.users", {}), "global.web.alertmanager.basicAuth.users"),
    (_without("prometheus.basicAuth.clientSecret"), "global.web.prometheus.basicAuth.clientSecret"),
    (_without("prometheus.tls.secretName"), "global.web.prometheus.tls.secretName"),
    (_without("alertmanager.basicAuth.users", {"p5": "plain-password"}), "/global/web/alertmanager/basicAuth/users/p5"),
    (_without("prometheus.tls.certManager", {"issuerName": "x", "issuerKind": "Cluster"}), "/global/web/prometheus/tls/certManager/issuerKind"),
    ({"global.web": web(), "global.operator.enabled": True}, "global.web.prometheus"),
], ids=["no-users", "no-client-secret", "tls-no-secret", "plain-password", "issuer-kind", "operator-mode"])
def test_bad_input_fails_naming_the_value(overrides, named):
    msg = render_error(set_values=overrides)
    assert named in msg, msg


def test_web_values_do_not_leak_between_components():
    v = copy.deepcopy(web())
    v["alertmanager"]["tls"]["enabled"] = v["alertmanager"]["basicAuth"]["enabled"] = False
    m = render(set_values={"global.web": v})
    am = _prom_config(m)["alerting"]["alertmanagers"][0]
    assert "scheme" not in am or am["scheme"] == "http"
    assert "basic_auth" not in am and m.find("Secret", f"{REL}-alertmanager-web") is None
    assert "monitoring-stack-alertmanager" not in {j["job_name"] for j in _prom_config(m)["scrape_configs"]}


# ----------------------------------------------------------------------------- the Ingress
# Prometheus (its query and admin APIs) and Alertmanager (silences mute pages, issue 28) are
# refused behind an Ingress without authentication in front; the same values for both.
INGRESS = {"enabled": True, "hosts": ["mon.example.org"]}


@pytest.mark.parametrize("comp", COMPONENTS)
def test_an_ingress_without_authentication_is_refused_naming_the_values(comp):
    msg = render_error(set_values={f"{comp}.ingress": INGRESS})
    for named in (f"{comp}.ingress.enabled", f"global.web.{comp}.basicAuth.enabled",
                  f"{comp}.ingress.annotations", f"{comp}.ingress.allowUnauthenticated"):
        assert named in msg, msg


@pytest.mark.parametrize("comp", COMPONENTS)
@pytest.mark.parametrize("overrides", [
    lambda c: {f"{c}.ingress": {**INGRESS, "annotations": {"nginx.ingress.kubernetes.io/auth-url": "https://oauth2-proxy/oauth2/auth"}}},
    lambda c: {f"{c}.ingress": {**INGRESS, "annotations": {"traefik.ingress.kubernetes.io/router.middlewares": "monitoring-sso@kubernetescrd"}}},
    lambda c: {f"{c}.ingress": INGRESS, **on(basic=True)},
    lambda c: {f"{c}.ingress": {**INGRESS, "allowUnauthenticated": True}},
], ids=["nginx-auth-url", "traefik-middleware", "own-basic-auth", "explicitly-open"])
def test_an_ingress_with_authentication_or_explicitly_open_renders(comp, overrides):
    objs = render(set_values=overrides(comp))
    ing = objs.get("Ingress", f"{REL}-{comp}")
    assert ing["spec"]["rules"][0]["host"] == "mon.example.org"
    assert [i["metadata"]["name"] for i in objs.of_kind("Ingress")] == [f"{REL}-{comp}"], "only the one asked for"


@pytest.mark.parametrize("comp", COMPONENTS)
def test_tls_alone_does_not_count_as_authentication(comp):
    msg = render_error(set_values={f"{comp}.ingress": INGRESS, **on(basic=False)})
    assert f"{comp}.ingress.allowUnauthenticated" in msg


def test_one_components_authentication_does_not_open_the_others_ingress():
    """Prometheus' basic auth or annotation says nothing about Alertmanager's Ingress."""
    web_prom_only = web(basic=True)
    web_prom_only["alertmanager"]["basicAuth"]["enabled"] = False
    msg = render_error(set_values={"global.web": web_prom_only, "alertmanager.ingress": INGRESS,
                                   "prometheus.ingress": {**INGRESS, "allowUnauthenticated": True}})
    assert "alertmanager.ingress.allowUnauthenticated" in msg, msg


@pytest.mark.parametrize("key", ["global.web.prometheus.tls", "global.web.alertmanager.basicAuth",
                                 "global.web.prometheus.basicAuth.users", "global.web.alertmanager.tls.certManager",
                                 "global.web.node-exporter.tls", "global.web.kube-state-metrics.basicAuth",
                                 "global.web.loki.tls", "global.web.grafana.tls.certManager", "global.web.promtail.tls",
                                 "global.web.thanos.tls", "global.web.thanos.basicAuth.users"])
def test_a_nulled_web_key_renders_the_defaults(key):
    """Helm keeps the default of a nulled key this deep in `global` (test_unit_removed_values
    leaves these keys out for that reason): the render must be the default one."""
    def shape(m):
        return sorted((ident(o), tuple(c.get("args") or ()), yaml.safe_dump(c.get("readinessProbe")))
                      for o in m if o["kind"] in ("StatefulSet", "Deployment", "ConfigMap") for c in containers(o)) + \
            sorted(ident(o) for o in m)
    assert shape(render(set_values={key: None})) == shape(render())


# ----------------------------------------------------------------------------- the Thanos sidecar
SIDECAR = {"prometheus.thanos.sidecar": {"enabled": True, "objstoreSecret": "thanos-objstore"}}


def test_the_thanos_sidecar_reaches_prometheus_over_tls():
    m = render(set_values={**SIDECAR, **on(basic=False)})
    obj, side = _container(m, "StatefulSet", f"{REL}-prometheus", "thanos-sidecar")
    assert "--prometheus.url=https://localhost:9090" in side["args"]
    client = next(a.split("=", 1)[1] for a in side["args"] if a.startswith("--prometheus.http-client="))
    tls = yaml.safe_load(client)["tls_config"]
    assert tls["server_name"] == f"{REL}-prometheus.{NS}.svc"
    assert tls["ca_file"] in _mounted_files(m, obj, side)


def test_the_thanos_sidecar_with_basic_auth_is_refused_naming_both_values():
    msg = render_error(set_values={**SIDECAR, **on()})
    assert "prometheus.thanos.sidecar.enabled" in msg and "global.web.prometheus.basicAuth.enabled" in msg, msg


def test_notes_say_https_and_where_the_ca_and_credentials_are(tmp_path):
    from harness.render import NOTES_PROBE, notes, umbrella_copy
    text = notes(umbrella_copy(tmp_path, NOTES_PROBE), set_values=on())
    for c in COMPONENTS:
        line = next(l for l in text.splitlines() if f"svc/{REL}-{c} " in l)
        assert line.rstrip().endswith(f"-> https://localhost:{9090 if c == 'prometheus' else 9093}"), line
        assert f"trust the CA in Secret {c}-tls, server name {REL}-{c}.{NS}.svc" in text
        assert f"the user and password in Secret {c}-client" in text


# ----------------------------------------------------------------------------- the exporters
# node-exporter and kube-state-metrics serve the same web config (README, "Authentication and
# TLS", the exporters): their own flag, Prometheus' node-exporter and kube-state-metrics jobs,
# their probes and helm-test pods follow. The real node_exporter runs it in
# tests/test_e2e_exporter_tls.py (and stands in for kube-state-metrics' exporter-toolkit there).
# workload kind, container, the config flag, (probe, port name, health path key) each.
EXPORTER_PODS = {
    "node-exporter": ("DaemonSet", "node-exporter", "--web.config.file",
                      (("livenessProbe", "http-metrics", "live"), ("readinessProbe", "http-metrics", "ready"))),
    "kube-state-metrics": ("Deployment", "kube-state-metrics", "--tls-config",
                           (("livenessProbe", "http-metrics", "live"), ("readinessProbe", "http-telemetry", "ready"))),
}
HEALTH = {"node-exporter": {"live": "/", "ready": "/"}, "kube-state-metrics": {"live": "/livez", "ready": "/readyz"}}
TEST_URL = {"node-exporter": "{s}://p5-node-exporter:9100/metrics", "kube-state-metrics": "{s}://p5-kube-state-metrics:8081/readyz"}


def exporters_on(tls=True, basic=True):
    return {"global.web": web(tls, basic, components=EXPORTERS)}


def _job(m, c):
    return next(j for j in _prom_config(m)["scrape_configs"] if j["job_name"] == c)


@pytest.mark.parametrize("values", params.profiles())
def test_exporters_off_by_default_plain_http(values):
    m = render(values)
    for c, (kind, cont_name, flag, probes) in EXPORTER_PODS.items():
        assert m.find("Secret", f"{REL}-{c}-web") is None
        _, cont = _container(m, kind, f"{REL}-{c}", cont_name)
        assert not [a for a in cont["args"] if a.startswith(flag)], cont["args"]
        for probe, port, key in probes:
            assert cont[probe]["httpGet"] == {"path": HEALTH[c][key], "port": port}, (c, probe, cont[probe])
        job = _job(m, c)
        assert job.get("scheme", "http") == "http" and "tls_config" not in job and "basic_auth" not in job, job
        cmd = m.get("Pod", f"{REL}-test-{c}")["spec"]["containers"][0]["command"]
        assert cmd[-1] == TEST_URL[c].format(s="http"), cmd


@pytest.mark.parametrize("values", params.profiles())
def test_exporters_every_file_a_server_or_client_reads_is_mounted(values):
    m = render(values, exporters_on())
    _, prom = _container(m, "StatefulSet", f"{REL}-prometheus", "prometheus")
    prom_files = _mounted_files(m, m.get("StatefulSet", f"{REL}-prometheus"), prom)
    for c, (kind, cont_name, flag, _) in EXPORTER_PODS.items():
        obj, cont = _container(m, kind, f"{REL}-{c}", cont_name)
        files = _mounted_files(m, obj, cont)
        cfg_file = next(a.split("=", 1)[1] for a in cont["args"] if a.startswith(flag + "="))
        assert cfg_file in files, (c, cfg_file, sorted(files))
        body = yaml.safe_load(m.get("Secret", f"{REL}-{c}-web")["stringData"]["web-config.yml"])
        assert body["basic_auth_users"] == {"p5": HASH} and body["tls_server_config"]["min_version"] == "TLS12"
        for f in _file_refs(body):
            assert f in files, f"{c}: its web config reads {f}, not mounted; mounted: {sorted(files)}"
        refs = list(_file_refs(_job(m, c)))
        assert len(refs) == 3, refs     # ca_file, username_file, password_file
        for f in refs:
            assert f in prom_files, f"Prometheus' {c} job reads {f}, not mounted; mounted: {sorted(prom_files)}"
        pod = m.get("Pod", f"{REL}-test-{c}")
        test_files = _mounted_files(m, pod, pod["spec"]["containers"][0])
        script = pod["spec"]["containers"][0]["command"][-1]
        for f in (f"/etc/phase5-web/{c}/username", f"/etc/phase5-web/{c}/password"):
            assert f"cat {f}" in script and f in test_files, (script, sorted(test_files))


def test_exporter_jobs_scrape_https_verifying_the_name_the_certificate_holds():
    """scheme https, the CA, server_name = the Service's DNS name, which the cert-manager
    Certificate lists among its dnsNames (a user's own certificate must hold it too: README).
    node-exporter's targets are node addresses (host network), so the name is what is verified."""
    values = web(basic=False, components=EXPORTERS)
    for c in EXPORTERS:
        values[c]["tls"] = {"enabled": True, "secretName": "", "certManager": {"issuerName": "ca", "issuerKind": "Issuer"}}
    m = render(set_values={"global.web": values})
    for c, (kind, _, _, _) in EXPORTER_PODS.items():
        job = _job(m, c)
        assert job["scheme"] == "https", job
        assert job["tls_config"] == {"ca_file": f"/etc/phase5-web/{c}/ca.crt", "server_name": f"{REL}-{c}.{NS}.svc"}
        assert "basic_auth" not in job
        cert = m.get("Certificate", f"{REL}-{c}-web-tls")
        assert job["tls_config"]["server_name"] in cert["spec"]["dnsNames"], cert["spec"]["dnsNames"]
        assert cert["spec"]["secretName"] == f"{REL}-{c}-web-tls"
        vols = {v["name"]: v for v in pod_spec(m.get(kind, f"{REL}-{c}"))["volumes"]}
        assert vols["web-tls"]["secret"]["secretName"] == f"{REL}-{c}-web-tls"
        # The job still keeps its Service's metrics port only (kube-state-metrics: not the telemetry port).
        keep = [r for r in job["relabel_configs"] if r.get("source_labels") == ["__meta_kubernetes_endpointslice_port_name"]]
        assert keep == [{"source_labels": ["__meta_kubernetes_endpointslice_port_name"], "regex": "http-metrics", "action": "keep"}]
    assert _job(m, "kube-state-metrics")["honor_labels"] is True


def test_exporter_probes_https_with_tls_tcp_with_basic_auth():
    """TLS: the kubelet's httpGet with scheme HTTPS on the same path and port (kube-state-metrics'
    --tls-config covers both its ports). Basic auth: exporter-toolkit asks for credentials on
    every path and the images hold no client, so a TCP connect on the same port."""
    tls_only, both = render(set_values=exporters_on(basic=False)), render(set_values=exporters_on())
    for c, (kind, cont_name, _, probes) in EXPORTER_PODS.items():
        _, cont = _container(tls_only, kind, f"{REL}-{c}", cont_name)
        for probe, port, key in probes:
            assert cont[probe]["httpGet"] == {"path": HEALTH[c][key], "port": port, "scheme": "HTTPS"}, (c, probe)
        _, cont = _container(both, kind, f"{REL}-{c}", cont_name)
        for probe, port, _ in probes:
            assert cont[probe]["tcpSocket"] == {"port": port} and "httpGet" not in cont[probe], (c, probe)
        assert cont["ports"] == _container(render(), kind, f"{REL}-{c}", cont_name)[1]["ports"], "same ports with TLS on"


def test_exporter_helm_test_pods_ask_over_https_with_the_credentials_read_at_run_time():
    tls_only, both = render(set_values=exporters_on(basic=False)), render(set_values=exporters_on())
    for c in EXPORTERS:
        cmd = tls_only.get("Pod", f"{REL}-test-{c}")["spec"]["containers"][0]["command"]
        assert cmd[0] == "wget" and cmd[-1] == TEST_URL[c].format(s="https"), cmd
        cmd = both.get("Pod", f"{REL}-test-{c}")["spec"]["containers"][0]["command"]
        assert cmd[:2] == ["sh", "-c"] and cmd[2].endswith(" " + TEST_URL[c].format(s="https")), cmd
        assert '--header "Authorization: Basic $(' in cmd[2], cmd


def test_exporter_web_values_do_not_leak():
    """node-exporter's web config says nothing about kube-state-metrics', nor about Prometheus'
    and Alertmanager's."""
    m = render(set_values={"global.web": web(components=("node-exporter",))})
    assert _job(m, "node-exporter")["scheme"] == "https"
    assert "tls_config" not in _job(m, "kube-state-metrics") and m.find("Secret", f"{REL}-kube-state-metrics-web") is None
    assert not [j["job_name"] for j in _prom_config(m)["scrape_configs"] if j["job_name"].startswith("monitoring-stack-")]
    _, prom = _container(m, "StatefulSet", f"{REL}-prometheus", "prometheus")
    assert [v["name"] for v in prom["volumeMounts"] if v["name"].startswith("web-")] == ["web-client-node-exporter"]


def _exporter_without(c, path, value=""):
    v = web(components=(c,))
    node = v[c]
    *head, last = path.split(".")
    for k in head:
        node = node[k]
    node[last] = value
    return {"global.web": v}


@pytest.mark.parametrize("overrides,named", [
    (_exporter_without("node-exporter", "tls.secretName"), "global.web.node-exporter.tls.secretName"),
    (_exporter_without("kube-state-metrics", "basicAuth.users", {}), "global.web.kube-state-metrics.basicAuth.users"),
    (_exporter_without("node-exporter", "basicAuth.clientSecret"), "global.web.node-exporter.basicAuth.clientSecret"),
    (_exporter_without("kube-state-metrics", "basicAuth.users", {"p5": "plain-password"}), "/global/web/kube-state-metrics/basicAuth/users/p5"),
    ({**exporters_on(), "global.operator.enabled": True}, "global.web.node-exporter: operator mode"),
    ({**exporters_on(), "node-exporter.enabled": False}, "node-exporter.enabled is false"),
    ({**exporters_on(), "kube-state-metrics.enabled": False}, "kube-state-metrics.enabled is false"),
], ids=["tls-no-secret", "no-users", "no-client-secret", "plain-password", "operator-mode", "node-exporter-off", "ksm-off"])
def test_exporter_bad_input_fails_naming_the_value(overrides, named):
    msg = render_error(set_values=overrides)
    assert named in msg, msg
