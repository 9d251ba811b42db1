"""Unit tier: Thanos' web config (global.web.thanos, README "Authentication and TLS"): one
`--http.config` for the HTTP servers of the Prometheus pods' sidecars, Query, the Store Gateway
and the Compactor. Off by default and then invisible; on, every client the chart renders
follows (Prometheus' monitoring-stack-thanos job, Grafana's and Jaeger's datasource with
thanosQuery, the helm-test pods, the probes), every file a server or client is told to read is
mounted, the hashes sit only in a Secret, and bad input fails at render time naming the value.
The real thanos and prometheus binaries run it in tests/test_e2e_thanos_webauth.py."""
import pytest
import yaml

from harness import params
from harness.manifests import ident, pod_spec
from harness.render import render, render_error
from harness.schema import kube_errors
from test_unit_webauth import HASH, NS, REL, _container, _file_refs, _mounted_files, _prom_config

pytestmark = pytest.mark.unit

# Query with the sidecars, the Store Gateway and the Compactor, and both thanosQuery clients.
THANOS = {"thanos.enabled": True, "thanos.objstoreSecret": "objstore",
          "thanos.storeGateway.enabled": True, "thanos.compactor.enabled": True,
          "prometheus.thanos.sidecar.enabled": True, "prometheus.thanos.sidecar.objstoreSecret": "objstore",
          "grafana.datasources.prometheus.thanosQuery": True,
          "jaeger.spanMetrics.enabled": True, "jaeger.spanMetrics.prometheus.thanosQuery": True}
# kind, object name, container, HTTP port name: every Thanos HTTP server.
SERVERS = {
    "sidecar": ("StatefulSet", f"{REL}-prometheus", "thanos-sidecar", "http-thanos"),
    "query": ("Deployment", f"{REL}-thanos-query", "thanos-query", "http"),
    "store": ("StatefulSet", f"{REL}-thanos-store", "thanos-store", "http"),
    "compact": ("StatefulSet", f"{REL}-thanos-compact", "thanos-compact", "http"),
}
SERVER_NAME = f"{REL}-thanos-query.{NS}.svc"
SCRAPED = [f"{REL}-thanos-query", f"{REL}-thanos-store", f"{REL}-thanos-compact", f"{REL}-prometheus-headless"]
TESTS = {"thanos": f"{REL}-thanos-query", "thanos-store": f"{REL}-thanos-store", "thanos-compact": f"{REL}-thanos-compact"}


def web(tls=True, basic=True, **tls_extra):
    return {"tls": {"enabled": tls, "secretName": "thanos-tls", **tls_extra},
            "basicAuth": {"enabled": basic, "users": {"p5": HASH}, "clientSecret": "thanos-client"}}


def on(tls=True, basic=True, **extra):
    return {**THANOS, "global.web.thanos": web(tls, basic), **extra}


def _job(m, name):
    return next((j for j in _prom_config(m)["scrape_configs"] if j["job_name"] == name), None)


def _server(m, key):
    kind, name, cont, _ = SERVERS[key]
    return _container(m, kind, name, cont)


def _datasource(m):
    ds = yaml.safe_load(m.get("ConfigMap", f"{REL}-grafana")["data"]["datasources.yaml"])
    return next(d for d in ds["datasources"] if d["uid"] == "prometheus")


def _spm_backend(m):
    cfg = yaml.safe_load(m.get("ConfigMap", f"{REL}-jaeger")["data"]["config.yaml"])
    return cfg["extensions"]["jaeger_storage"]["metric_backends"]["prometheus"]["prometheus"]


# ----------------------------------------------------------------------------- off by default
@pytest.mark.parametrize("values", params.profiles())
def test_off_by_default_nothing_changes(values):
    """Every profile (and the full Thanos set on top): no web Secret, no --http.config, plain
    httpGet probes, no monitoring-stack-thanos job, Query's clients on plain http."""
    for m in (render(values), render(values, THANOS)):
        assert m.find("Secret", f"{REL}-thanos-web") is None
        for key, (kind, name, cont_name, port) in SERVERS.items():
            obj = m.find(kind, name)
            if obj is None or cont_name not in [c["name"] for c in pod_spec(obj)["containers"]]:
                continue
            _, cont = _server(m, key)
            assert not [a for a in cont["args"] if a.startswith("--http.config")], (key, cont["args"])
            for probe in ("livenessProbe", "readinessProbe"):
                assert cont[probe]["httpGet"]["port"] == port and "scheme" not in cont[probe]["httpGet"], (key, cont[probe])
            assert not [v for v in cont.get("volumeMounts") or [] if v["name"].startswith("thanos-web")], key
        assert _job(m, "monitoring-stack-thanos") is None
        if m.find("Deployment", f"{REL}-thanos-query"):
            url = _datasource(m)["url"]
            assert not url.startswith("https://") or "thanos" not in url, url
    m = render((), THANOS)
    assert _datasource(m)["url"] == f"http://{REL}-thanos-query:10902"
    assert _spm_backend(m)["endpoint"] == f"http://{REL}-thanos-query:10902"


# ----------------------------------------------------------------------------- on
def test_every_server_gets_the_web_config_and_every_file_it_reads_is_mounted():
    m = render((), on())
    body = yaml.safe_load(m.get("Secret", f"{REL}-thanos-web")["stringData"]["web-config.yml"])
    assert body["basic_auth_users"] == {"p5": HASH} and body["tls_server_config"]["min_version"] == "TLS12", body
    for key in SERVERS:
        obj, cont = _server(m, key)
        files = _mounted_files(m, obj, cont)
        flags = [a.split("=", 1)[1] for a in cont["args"] if a.startswith("--http.config=")]
        assert len(flags) == 1 and flags[0] in files, (key, cont["args"], sorted(files))
        for f in _file_refs(body):
            assert f in files, f"{key}: its web config reads {f}, not mounted; mounted: {sorted(files)}"
        vols = {v["name"]: v for v in pod_spec(obj)["volumes"]}
        assert vols["thanos-web-tls"]["secret"]["secretName"] == "thanos-tls", key
    # The sidecar shares the Prometheus pod with Prometheus' own web volumes: no name taken twice.
    names = [v["name"] for v in pod_spec(m.get("StatefulSet", f"{REL}-prometheus"))["volumes"]]
    assert len(names) == len(set(names)), names


def test_prometheus_scrapes_the_thanos_services_over_https_verifying_the_query_name():
    m = render((), on())
    job = _job(m, "monitoring-stack-thanos")
    assert job["scheme"] == "https", job
    assert job["tls_config"] == {"ca_file": "/etc/phase5-web/thanos/ca.crt", "server_name": SERVER_NAME}, job
    assert job["basic_auth"] == {"username_file": "/etc/phase5-web/thanos/username",
                                 "password_file": "/etc/phase5-web/thanos/password"}, job
    keep = [r for r in job["relabel_configs"] if r.get("source_labels") == ["__meta_kubernetes_service_name"]]
    assert keep[0] == {"source_labels": ["__meta_kubernetes_service_name"], "regex": "|".join(SCRAPED), "action": "keep"}
    assert {"target_label": "job", "replacement": "monitoring-stack"} in job["relabel_configs"]
    # ... and the plain monitoring-stack job no longer scrapes them.
    plain = _job(m, "monitoring-stack")
    drop = next(r for r in plain["relabel_configs"] if r.get("action") == "drop")
    assert set(SCRAPED) <= set(drop["regex"].split("|")), drop
    obj, prom = _container(m, "StatefulSet", f"{REL}-prometheus", "prometheus")
    files = _mounted_files(m, obj, prom)
    for f in _file_refs(job):
        assert f in files, f"Prometheus' thanos job reads {f}, not mounted; mounted: {sorted(files)}"
    # Every Thanos Service the job keeps is one the chart renders, annotated for scraping.
    for name in SCRAPED:
        svc = m.get("Service", name)
        assert svc["metadata"]["annotations"]["prometheus.io/scrape"] == "true", name


def test_cert_manager_certificate_names_what_the_clients_verify():
    m = render((), {**THANOS, "global.web.thanos": web(basic=False, secretName="",
                                                      certManager={"issuerName": "ca", "issuerKind": "ClusterIssuer"})})
    cert = m.get("Certificate", f"{REL}-thanos-web-tls")
    assert SERVER_NAME in cert["spec"]["dnsNames"] and f"{REL}-thanos-query" in cert["spec"]["dnsNames"], cert
    assert cert["spec"]["issuerRef"]["kind"] == "ClusterIssuer"
    assert _job(m, "monitoring-stack-thanos")["tls_config"]["server_name"] == SERVER_NAME
    for key in SERVERS:
        obj, _ = _server(m, key)
        vols = {v["name"]: v for v in pod_spec(obj)["volumes"]}
        assert vols["thanos-web-tls"]["secret"]["secretName"] == f"{REL}-thanos-web-tls", key


def test_probes_https_with_tls_tcp_with_basic_auth():
    """TLS: the kubelet's httpGet with scheme HTTPS on the same path and port. Basic auth:
    exporter-toolkit asks for credentials on every path (/-/ready too) and the kubelet could
    send them only as a literal in the pod spec, so a TCP connect on the same port."""
    plain, tls_only, both = render((), THANOS), render((), on(basic=False)), render((), on())
    for key, (_, _, _, port) in SERVERS.items():
        for probe in ("livenessProbe", "readinessProbe"):
            before = _server(plain, key)[1][probe]["httpGet"]
            assert _server(tls_only, key)[1][probe]["httpGet"] == {**before, "scheme": "HTTPS"}, (key, probe)
            got = _server(both, key)[1][probe]
            assert got["tcpSocket"] == {"port": port} and "httpGet" not in got, (key, probe, got)
        assert _server(both, key)[1]["ports"] == _server(plain, key)[1]["ports"], "same ports with the web config on"


def test_helm_test_pods_ask_over_https_with_the_credentials_read_at_run_time():
    tls_only, both = render((), on(basic=False)), render((), on())
    for comp, svc in TESTS.items():
        url = f"https://{svc}:10902/-/ready"
        cmd = tls_only.get("Pod", f"{REL}-test-{comp}")["spec"]["containers"][0]["command"]
        assert cmd[0] == "wget" and cmd[-1] == url, cmd
        pod = both.get("Pod", f"{REL}-test-{comp}")
        cmd = pod["spec"]["containers"][0]["command"]
        assert cmd[:2] == ["sh", "-c"] and cmd[2].endswith(" " + url), cmd
        files = _mounted_files(both, pod, pod["spec"]["containers"][0])
        for f in ("/etc/phase5-web/thanos/username", "/etc/phase5-web/thanos/password"):
            assert f"cat {f}" in cmd[2] and f in files, (cmd, sorted(files))


def test_grafana_and_jaeger_reach_query_with_thanos_settings_not_prometheus():
    """With thanosQuery the datasource's server is Thanos Query: global.web.thanos applies, and
    global.web.prometheus (another CA, other credentials) must not be sent there."""
    prom_web = {"tls": {"enabled": True, "secretName": "prometheus-tls"},
                "basicAuth": {"enabled": False}}
    m = render((), on(**{"global.web.prometheus": prom_web}))
    ds = _datasource(m)
    assert ds["url"] == f"https://{REL}-thanos-query:10902" and ds["jsonData"]["serverName"] == SERVER_NAME, ds
    assert ds["basicAuth"] is True and ds["basicAuthUser"] == "$__file{/etc/phase5-web/thanos/username}", ds
    assert ds["secureJsonData"] == {"basicAuthPassword": "$__file{/etc/phase5-web/thanos/password}",
                                    "tlsCACert": "$__file{/etc/phase5-web/thanos/ca.crt}"}, ds
    obj, graf = _container(m, "Deployment", f"{REL}-grafana", "grafana")
    files = _mounted_files(m, obj, graf)
    assert {"/etc/phase5-web/thanos/ca.crt", "/etc/phase5-web/thanos/username", "/etc/phase5-web/thanos/password"} <= files
    assert not [f for f in files if "/phase5-web/prometheus/" in f], sorted(files)
    be = _spm_backend(m)
    assert be["endpoint"] == f"https://{REL}-thanos-query:10902", be
    assert be["tls"] == {"ca_file": "/etc/phase5-web/thanos/ca.crt", "server_name_override": SERVER_NAME}, be
    obj, jae = _container(m, "Deployment", f"{REL}-jaeger", "jaeger")
    assert "/etc/phase5-web/thanos/ca.crt" in _mounted_files(m, obj, jae)
    # Prometheus' web config on, Thanos' off: Query is plain http and gets nothing of Prometheus'.
    m = render((), {**THANOS, "global.web.prometheus": prom_web})
    ds = _datasource(m)
    assert ds["url"] == f"http://{REL}-thanos-query:10902" and "serverName" not in ds["jsonData"], ds
    assert "secureJsonData" not in ds and "tls" not in _spm_backend(m), ds


def test_the_hashes_sit_in_secrets_only():
    problems = [ident(o) for o in render((), on()) if o["kind"] != "Secret" and HASH in yaml.safe_dump(o)]
    assert not problems, problems


def _without(path, value=""):
    v = web()
    node = v
    *head, last = path.split(".")
    for k in head:
        node = node[k]
    node[last] = value
    return {**THANOS, "global.web.thanos": v}


@pytest.mark.parametrize("overrides,named", [
    (_without("tls.secretName"), "global.web.thanos.tls.secretName"),
    (_without("basicAuth.users", {}), "global.web.thanos.basicAuth.users"),
    (_without("basicAuth.clientSecret"), "global.web.thanos.basicAuth.clientSecret"),
    (_without("basicAuth.users", {"p5": "plain-password"}), "/global/web/thanos/basicAuth/users/p5"),
    ({"global.web.thanos": web(), "global.operator.enabled": True}, "global.web.thanos: operator mode"),
    ({"global.web.thanos": web(), "prometheus.thanos.sidecar.enabled": True}, "thanos.enabled is false"),
], ids=["tls-no-secret", "no-users", "no-client-secret", "plain-password", "operator-mode", "thanos-off"])
def test_bad_input_fails_naming_the_value(overrides, named):
    msg = render_error(set_values=overrides)
    assert named in msg, msg


def test_notes_say_https_and_where_the_ca_and_credentials_are(tmp_path):
    from harness.render import NOTES_PROBE, notes, umbrella_copy
    text = notes(umbrella_copy(tmp_path, NOTES_PROBE), set_values=on())
    line = next(l for l in text.splitlines() if f"svc/{REL}-thanos-query " in l)
    assert line.rstrip().endswith("-> https://localhost:10902"), line
    assert f"trust the CA in Secret thanos-tls, server name {SERVER_NAME}" in text, text
    assert "the user and password in Secret thanos-client" in text, text
    plain = notes(umbrella_copy(tmp_path / "plain", NOTES_PROBE), set_values=THANOS)
    line = next(l for l in plain.splitlines() if f"svc/{REL}-thanos-query " in l)
    assert line.rstrip().endswith("-> http://localhost:10902") and "thanos-tls" not in plain, line


def test_variants_valid_for_kubernetes():
    """Every object of the renders with Thanos' web config on (TLS alone, TLS and basic auth)
    passes the strict Kubernetes schemas of the oldest and newest supported versions (the TLS
    comes from the user's Secret: no cert-manager Certificate, a CRD with no schema here)."""
    errors = kube_errors(obj for overrides in (on(), on(basic=False)) for obj in render(set_values=overrides))
    assert not errors, "\n".join(errors)
