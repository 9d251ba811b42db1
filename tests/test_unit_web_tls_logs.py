"""Unit tier: TLS on the HTTP ports of Loki, Grafana and the log collector (global.web.loki,
global.web.grafana, global.web.promtail; README "Authentication and TLS"). Off by default and then
invisible; on, the server's own setting reads a mounted key pair and every client the chart
renders follows: Prometheus' monitoring-stack-<name> jobs (https, the CA, the Service name), the
collector's push to Loki, Grafana's Loki datasource, the probes, the helm-test pods, Grafana's
Ingress and NOTES. Bad input fails at render time naming the value.

None of the three servers runs here (Loki and Grafana are AGPL, Alloy is not on the Go module
proxy, Promtail is end of life), so the settings the chart writes are held by stand-ins to the
upstream source and documentation of the pinned versions, recorded below with where they were
read: a key the server does not know would be ignored (Grafana, Promtail's YAML at start: an
error) or refused, either way no TLS. The scrape side runs for real in
tests/test_e2e_web_tls_logs.py (the real Prometheus against the rendered jobs)."""

import pytest
import yaml

from harness import grafana as gf
from harness import params
from harness.logs import components, parse_alloy
from harness.manifests import ident, pod_spec
from harness.render import render, render_error
from harness.schema import kube_errors
from test_unit_webauth import _container, _file_refs, _mounted_files, _prom_config

pytestmark = pytest.mark.unit

REL, NS = "p5", "monitoring"
TLS_ONLY = ("loki", "grafana", "promtail")
COLLECTORS = ("alloy", "promtail")


def tls_on(components=TLS_ONLY, cert_manager=False):
    """global.web.<c>.tls on for each component: an existing Secret, or a cert-manager issuer."""
    out = {}
    for c in components:
        tls = {"enabled": True, "secretName": f"{c}-tls"}
        if cert_manager:
            tls = {"enabled": True, "secretName": "", "certManager": {"issuerName": "ca", "issuerKind": "ClusterIssuer"}}
        out[c] = {"tls": tls}
    return {"global.web": out}


def _render(values=(), collector="alloy", **sets):
    return render(values, {"promtail.collector": collector, **sets})


def _loki(m):
    return yaml.safe_load(m.get("ConfigMap", f"{REL}-loki")["data"]["loki.yaml"])


def _collector_config(m, collector):
    data = m.get("ConfigMap", f"{REL}-{collector}")["data"]
    if collector == "alloy":
        return parse_alloy(data["config.alloy"])
    return yaml.safe_load(data["promtail.yaml"])


def _alloy_write_endpoint(root):
    return components(root)[("loki.write", "default")].child("endpoint")


def _jobs(m):
    return {j["job_name"]: j for j in _prom_config(m)["scrape_configs"]}


def _workload(m, c, collector="alloy"):
    """(object, container) of a server: Loki's StatefulSet, Grafana's Deployment, the collector's DaemonSet."""
    if c == "loki":
        return _container(m, "StatefulSet", f"{REL}-loki", "loki")
    if c == "grafana":
        return _container(m, "Deployment", f"{REL}-grafana", "grafana")
    return _container(m, "DaemonSet", f"{REL}-{collector}", collector)


# ----------------------------------------------------------------------------- upstream (stand-ins)
# Loki v3.7.x and Promtail v3.5.x both embed dskit's server.Config (Promtail inline under `server`);
# yaml tags of vendor/github.com/grafana/dskit/server/server.go at grafana/loki v3.7.6 and v3.5.8
# (the newest tags of the pinned minors in the mirror read; the chart pins Loki 3.7.11 and
# Promtail 3.5.8): Config.MinVersion `tls_min_version`, Config.HTTPTLSConfig `http_tls_config`,
# TLSConfig {cert, key, client_ca, cert_file, key_file, client_auth_type, client_ca_file}; the
# allowed tls_min_version values are those of its flag's help (and Loki's configuration
# reference, docs/sources/shared/configuration.md "server").
DSKIT_SERVER_TLS_KEYS = {"tls_min_version", "tls_cipher_suites", "http_tls_config", "grpc_tls_config"}
DSKIT_TLS_CONFIG_KEYS = {"cert", "key", "client_ca", "cert_file", "key_file", "client_auth_type", "client_ca_file"}
DSKIT_TLS_VERSIONS = {"VersionTLS10", "VersionTLS11", "VersionTLS12", "VersionTLS13"}
# Promtail's clients[].tls_config: Prometheus common's TLSConfig (Promtail v3.5.8's
# docs/sources/send-data/promtail/configuration.md, "clients").
PROMTAIL_CLIENT_TLS_KEYS = {"ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify"}
# Alloy: the `http` block's `tls` block (internal/service/http/tls.go, TLSArguments, alloy tags;
# docs/sources/reference/config-blocks/http.md) and the loki.write endpoint's `tls_config` block
# (internal/component/common/config/types.go, TLSConfig), read at grafana/alloy's newest snapshot
# available here (the 1.18 line; the chart pins v1.21.3): the TLSArguments fields are unchanged
# since "all: use alloy struct tags" (2024-03, before v1.0), per that file's history.
ALLOY_HTTP_TLS_ATTRS = {"cert_pem", "cert_file", "key_pem", "key_file", "client_ca_pem", "client_ca_file",
                        "client_auth_type", "cipher_suites", "curve_preferences", "min_version", "max_version"}
ALLOY_TLS_VERSIONS = {"TLS10", "TLS11", "TLS12", "TLS13"}
ALLOY_CLIENT_TLS_ATTRS = {"ca_pem", "ca_file", "cert_pem", "cert_file", "key_pem", "key_file", "server_name",
                          "insecure_skip_verify", "min_version"}
# Grafana's datasource TLS settings: what its datasources service's dsTLSOptions reads (jsonData
# tlsAuth, tlsAuthWithCACert, tlsSkipVerify, serverName; decrypted secureJsonData tlsCACert,
# tlsClientCert, tlsClientKey), as the "Provision Grafana" docs' json data table lists them for
# HTTP data sources. The same fields the chart's Prometheus datasource already uses.
GRAFANA_DS_TLS_JSON = {"tlsAuth", "tlsAuthWithCACert", "tlsSkipVerify", "serverName"}
GRAFANA_DS_TLS_SECURE = {"tlsCACert", "tlsClientCert", "tlsClientKey"}


def test_loki_server_tls_keys_are_dskits():
    """Stand-in for Loki (it cannot run here): the server block's TLS keys are dskit's of the
    pinned Loki, the key pair paths its TLSConfig file fields, TLS 1.2 an allowed value."""
    server = _loki(render((), tls_on()))["server"]
    written = {k for k in server if "tls" in k}
    assert written and written <= DSKIT_SERVER_TLS_KEYS, written
    assert set(server["http_tls_config"]) <= DSKIT_TLS_CONFIG_KEYS, server["http_tls_config"]
    assert {"cert_file", "key_file"} <= set(server["http_tls_config"])
    assert server["tls_min_version"] in DSKIT_TLS_VERSIONS and server["tls_min_version"] == "VersionTLS12"
    assert "grpc_tls_config" not in server, "gRPC stays plain (single binary: the pod talks to itself)"


def test_promtail_server_and_client_tls_keys_are_upstreams():
    """Stand-in for Promtail: its server block (dskit's, inline) and clients[].tls_config."""
    cfg = _collector_config(_render(collector="promtail", **tls_on()), "promtail")
    server = cfg["server"]
    assert {k for k in server if "tls" in k} <= DSKIT_SERVER_TLS_KEYS
    assert set(server["http_tls_config"]) <= DSKIT_TLS_CONFIG_KEYS and server["tls_min_version"] == "VersionTLS12"
    (client,) = cfg["clients"]
    assert set(client["tls_config"]) <= PROMTAIL_CLIENT_TLS_KEYS, client["tls_config"]
    assert client["tls_config"] == {"ca_file": "/etc/phase5-web/loki/ca.crt", "server_name": f"{REL}-loki.{NS}.svc"}
    assert client["url"].startswith("https://")


def test_alloy_http_tls_block_and_write_tls_config_are_upstreams():
    """Stand-in for Alloy: the `http { tls { } }` config block (no label, once) and the
    loki.write endpoint's tls_config block, their attributes those of the pinned line's source."""
    root = _collector_config(_render(**tls_on()), "alloy")
    (http,) = [b for b in root.blocks if b.name == "http"]
    assert http.label is None and not http.attrs, "http takes blocks only"
    tls = http.child("tls")
    assert set(tls.attrs) <= ALLOY_HTTP_TLS_ATTRS, tls.attrs
    assert {"cert_file", "key_file"} <= set(tls.attrs) and tls.attrs["min_version"] in ALLOY_TLS_VERSIONS
    assert tls.attrs["min_version"] == "TLS12"
    ep = _alloy_write_endpoint(root)
    tc = ep.child("tls_config")
    assert set(tc.attrs) <= ALLOY_CLIENT_TLS_ATTRS, tc.attrs
    assert tc.attrs == {"ca_file": "/etc/phase5-web/loki/ca.crt", "server_name": f"{REL}-loki.{NS}.svc"}
    assert ep.attrs["url"].startswith("https://")


def test_grafana_ini_with_tls_uses_only_documented_keys():
    """Stand-in for Grafana: [server] protocol = https with cert_file / cert_key (Grafana 13's
    documented [server] keys, harness/grafana.py DOCUMENTED_INI); the datasource's TLS fields are
    those Grafana documents for provisioned HTTP data sources."""
    m = render((), tls_on())
    tag = gf.container(m)["image"].rsplit(":", 1)[1]
    documented = gf.DOCUMENTED_INI[tag.split(".")[0]]
    ini = gf.grafana_ini(m)
    bad = [f"[{s}] {k}" for s in ini.sections() for k in ini[s] if k not in documented.get(s, ())]
    assert not bad, bad
    assert ini["server"]["protocol"] == "https"
    assert ini["server"]["cert_file"] == "/etc/phase5-tls/grafana/tls.crt"
    assert ini["server"]["cert_key"] == "/etc/phase5-tls/grafana/tls.key"
    loki = gf.datasources(m, expand=False)["loki"]
    assert {k for k in loki["jsonData"] if k.startswith(("tls", "server"))} <= GRAFANA_DS_TLS_JSON
    assert set(loki["secureJsonData"]) <= GRAFANA_DS_TLS_SECURE


def test_the_stand_in_tables_are_no_rubber_stamp():
    """The key tables above refuse what the servers would not know."""
    assert "http_tls" not in DSKIT_SERVER_TLS_KEYS and "ca_file" not in DSKIT_TLS_CONFIG_KEYS
    assert "TLS12" not in DSKIT_TLS_VERSIONS and "VersionTLS12" not in ALLOY_TLS_VERSIONS
    assert "cert" not in ALLOY_HTTP_TLS_ATTRS and "ca" not in ALLOY_CLIENT_TLS_ATTRS


# ----------------------------------------------------------------------------- off by default
@pytest.mark.parametrize("collector", COLLECTORS)
@pytest.mark.parametrize("values", params.profiles())
def test_off_by_default_plain_http(values, collector):
    m = _render(values, collector)
    assert not [ident(o) for o in m if o["kind"] == "Certificate"]
    assert "http_tls_config" not in _loki(m)["server"]
    assert gf.grafana_ini(m)["server"]["protocol"] == "http" and "cert_file" not in gf.grafana_ini(m)["server"]
    cfg = _collector_config(m, collector)
    if collector == "alloy":
        assert not [b for b in cfg.blocks if b.name == "http"]
        assert not _alloy_write_endpoint(cfg).children("tls_config")
    else:
        assert "http_tls_config" not in cfg["server"] and "tls_config" not in cfg["clients"][0]
    for c in TLS_ONLY:
        obj, cont = _workload(m, c, collector)
        assert cont["readinessProbe"]["httpGet"].get("scheme", "HTTP") == "HTTP"
        assert not [v for v in pod_spec(obj).get("volumes") or [] if v["name"].startswith("web-")]
        cmd = m.get("Pod", f"{REL}-test-{collector if c == 'promtail' else c}")["spec"]["containers"][0]["command"]
        assert cmd[-1].startswith("http://"), cmd
    jobs = _jobs(m)
    assert not [j for j in jobs if j.startswith("monitoring-stack-")], sorted(jobs)


# ----------------------------------------------------------------------------- on
@pytest.mark.parametrize("collector", COLLECTORS)
@pytest.mark.parametrize("values", params.profiles())
def test_every_file_a_server_or_client_reads_is_mounted(values, collector):
    m = _render(values, collector, **tls_on())
    # The servers: the key pair their own setting names.
    reads = {"loki": list(_file_refs(_loki(m)["server"]["http_tls_config"])),
             "grafana": [gf.grafana_ini(m)["server"][k] for k in ("cert_file", "cert_key")]}
    cfg = _collector_config(m, collector)
    if collector == "alloy":
        reads["promtail"] = [v for b in cfg.blocks if b.name == "http" for k, v in b.child("tls").attrs.items()
                             if k.endswith("_file")]
        push = [_alloy_write_endpoint(cfg).child("tls_config").attrs["ca_file"]]
    else:
        reads["promtail"] = list(_file_refs(cfg["server"]["http_tls_config"]))
        push = [cfg["clients"][0]["tls_config"]["ca_file"]]
    for c, files in reads.items():
        obj, cont = _workload(m, c, collector)
        mounted = _mounted_files(m, obj, cont)
        assert len(files) == 2, (c, files)
        for f in files:
            assert f in mounted, f"{c} reads {f}; mounted: {sorted(mounted)}"
        vols = {v["name"]: v for v in pod_spec(obj)["volumes"]}
        assert vols["web-tls"]["secret"]["secretName"] == f"{c}-tls"
    # The clients: the collector's push, Grafana's Loki datasource, Prometheus' jobs; the CA only.
    obj, cont = _workload(m, "promtail", collector)
    assert push[0] in _mounted_files(m, obj, cont)
    obj, cont = _workload(m, "grafana")
    ca = gf.datasources(m, expand=False)["loki"]["secureJsonData"]["tlsCACert"]
    assert ca.startswith("$__file{") and ca[len("$__file{"):-1] in _mounted_files(m, obj, cont), ca
    obj, cont = _container(m, "StatefulSet", f"{REL}-prometheus", "prometheus")
    prom_files = _mounted_files(m, obj, cont)
    jobs = _jobs(m)
    for name in ("loki", "grafana", "alloy", "promtail"):
        for f in _file_refs(jobs[f"monitoring-stack-{name}"]):
            assert f in prom_files, f"Prometheus' monitoring-stack-{name} job reads {f}; mounted: {sorted(prom_files)}"
    for o in m:
        for v in (pod_spec(o) or {}).get("volumes") or [] if o["kind"] in ("StatefulSet", "Deployment", "DaemonSet", "Pod") else []:
            for s in (v.get("projected") or {}).get("sources", []):
                if s.get("secret", {}).get("name") in {f"{c}-tls" for c in TLS_ONLY}:
                    assert [i["key"] for i in s["secret"]["items"]] == ["ca.crt"], f"{ident(o)}: a client gets the key"


def test_prometheus_scrapes_each_over_https_verifying_the_name_its_certificate_holds():
    """One job per component, keeping its own Service, https with the CA and the Service's DNS
    name, which the cert-manager Certificate lists; the collector gets one job per program (the
    Prometheus subchart cannot read promtail.collector), each verifying its own Service's name:
    the running one's Service and Certificate match its job. The plain monitoring-stack job
    leaves all of them out, so nothing is scraped twice or over http."""
    for collector in COLLECTORS:
        m = _render(collector=collector, **tls_on(cert_manager=True))
        jobs = _jobs(m)
        drop = next(r for r in jobs["monitoring-stack"]["relabel_configs"]
                    if r.get("action") == "drop" and r["source_labels"] == ["__meta_kubernetes_service_name"])
        for name, c in (("loki", "loki"), ("grafana", "grafana"), ("alloy", "promtail"), ("promtail", "promtail")):
            job = jobs[f"monitoring-stack-{name}"]
            svc = f"{REL}-{name}"
            assert job["scheme"] == "https" and "basic_auth" not in job, job
            assert job["tls_config"] == {"ca_file": f"/etc/phase5-web/{c}/ca.crt", "server_name": f"{svc}.{NS}.svc"}
            keep = [r for r in job["relabel_configs"] if r.get("source_labels") == ["__meta_kubernetes_service_name"]
                    and r.get("action") in ("keep", "drop")]
            assert keep == [{"source_labels": ["__meta_kubernetes_service_name"], "regex": svc, "action": "keep"}]
            assert {"target_label": "job", "replacement": "monitoring-stack"} in job["relabel_configs"]
            assert svc in drop["regex"].split("|"), drop
            if name in ("loki", "grafana", collector):
                assert m.find("Service", svc) is not None, svc
                cert = m.get("Certificate", f"{REL}-{c}-web-tls")
                assert job["tls_config"]["server_name"] in cert["spec"]["dnsNames"], cert["spec"]["dnsNames"]
                assert cert["spec"]["issuerRef"] == {"name": "ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
            else:
                assert m.find("Service", svc) is None, f"{svc}: both collectors rendered"


def test_probes_and_helm_test_pods_use_https():
    for collector in COLLECTORS:
        m = _render(collector=collector, **tls_on())
        for c in TLS_ONLY:
            _, cont = _workload(m, c, collector)
            for probe in ("readinessProbe", "livenessProbe"):
                if "httpGet" in cont.get(probe, {}):
                    assert cont[probe]["httpGet"]["scheme"] == "HTTPS", (c, probe, cont[probe])
            pod = m.get("Pod", f"{REL}-test-{collector if c == 'promtail' else c}")
            cmd = pod["spec"]["containers"][0]["command"]
            assert cmd[0] == "wget" and cmd[-1].startswith(f"https://{REL}-"), cmd
            assert "volumes" not in pod["spec"], "busybox reads no CA: nothing to mount"


def test_same_ports_and_network_policies_with_tls_on():
    """TLS is served on the same ports, so the containers' ports, the Services and every
    NetworkPolicy render exactly as without it (README, NetworkPolicies)."""
    off, on = render(), render((), tls_on())
    for kind in ("NetworkPolicy", "Service"):
        assert [o for o in on if o["kind"] == kind] == [o for o in off if o["kind"] == kind], kind
    for c in TLS_ONLY:
        assert _workload(on, c)[1]["ports"] == _workload(off, c)[1]["ports"], c


def test_grafana_ingress_speaks_https_to_grafana_and_the_users_annotation_wins():
    ing = {"grafana.ingress": {"enabled": True, "hosts": ["g.example.com"]}}
    assert not (render((), ing).get("Ingress", f"{REL}-grafana")["metadata"].get("annotations"))
    m = render((), {**tls_on(("grafana",)), **ing})
    assert m.get("Ingress", f"{REL}-grafana")["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/backend-protocol": "HTTPS"}
    mine = {"grafana.ingress": {**ing["grafana.ingress"], "annotations": {
        "nginx.ingress.kubernetes.io/backend-protocol": "GRPCS", "a.example.com/x": "y"}}}
    ann = render((), {**tls_on(("grafana",)), **mine}).get("Ingress", f"{REL}-grafana")["metadata"]["annotations"]
    assert ann == {"nginx.ingress.kubernetes.io/backend-protocol": "GRPCS", "a.example.com/x": "y"}


def test_notes_say_https_for_grafana(tmp_path):
    from harness.render import NOTES_PROBE, notes, umbrella_copy
    chart = umbrella_copy(tmp_path, NOTES_PROBE)
    text = notes(chart, set_values=tls_on(("grafana",)))
    assert "-> https://localhost:3000" in text and "grafana-tls" in text, text
    assert "-> http://localhost:3000" in notes(chart)


def test_your_own_endpoints_are_left_as_written():
    """promtail.lokiUrl and grafana.datasources.loki.url are yours: no CA, no server name."""
    m = _render(**tls_on(("loki",)), **{"promtail.lokiUrl": "http://logs.example.com/loki/api/v1/push",
                                        "grafana.datasources.loki.url": "https://logs.example.com"})
    ep = _alloy_write_endpoint(_collector_config(m, "alloy"))
    assert ep.attrs["url"] == "http://logs.example.com/loki/api/v1/push" and not ep.children("tls_config")
    ds = gf.datasources(m, expand=False)["loki"]
    assert ds["url"] == "https://logs.example.com" and "secureJsonData" not in ds and "tlsAuthWithCACert" not in ds["jsonData"]
    for c in ("promtail", "grafana"):
        obj, _ = _workload(m, c)
        assert "web-client-loki" not in {v["name"] for v in pod_spec(obj)["volumes"]}, c


def test_one_components_tls_says_nothing_about_the_others():
    m = render((), tls_on(("loki",)))
    assert gf.grafana_ini(m)["server"]["protocol"] == "http"
    assert sorted(j for j in _jobs(m) if j.startswith("monitoring-stack-")) == ["monitoring-stack-loki"]
    _, prom = _container(m, "StatefulSet", f"{REL}-prometheus", "prometheus")
    assert [v["name"] for v in prom["volumeMounts"] if v["name"].startswith("web-")] == ["web-client-loki"]
    obj, _ = _workload(m, "promtail")
    assert "web-tls" not in {v["name"] for v in pod_spec(obj)["volumes"]}


def test_variants_valid_for_kubernetes():
    ingress = {"grafana.ingress": {"enabled": True, "hosts": ["g.example.com"]}}
    errors = kube_errors(obj for collector in COLLECTORS for obj in _render(collector=collector, **tls_on(), **ingress))
    assert not errors, "\n".join(errors)


def test_loki_and_the_collector_keep_their_tls_in_operator_mode_grafana_is_refused():
    """Loki and the collector run in operator mode too (their TLS is theirs); Grafana does not."""
    m = render((), {**tls_on(("loki", "promtail")), "global.operator.enabled": True})
    assert "http_tls_config" in _loki(m)["server"]
    msg = render_error(set_values={**tls_on(("grafana",)), "global.operator.enabled": True})
    assert "global.web.grafana: operator mode" in msg and "basicAuth" not in msg, msg


def _without_secret(c):
    return {"global.web": {c: {"tls": {"enabled": True, "secretName": ""}}}}


@pytest.mark.parametrize("overrides,named", [
    (_without_secret("loki"), "global.web.loki.tls.secretName"),
    (_without_secret("grafana"), "global.web.grafana.tls.secretName"),
    (_without_secret("promtail"), "global.web.promtail.tls.secretName"),
    ({"global.web": {"loki": {"basicAuth": {"enabled": True}}}}, "basicAuth"),
    ({**tls_on(("loki",)), "loki.enabled": False}, "loki.enabled is false"),
    ({**tls_on(("grafana",)), "grafana.enabled": False}, "grafana.enabled is false"),
    ({**tls_on(("promtail",)), "promtail.enabled": False}, "promtail.enabled is false"),
], ids=["loki-no-secret", "grafana-no-secret", "collector-no-secret", "no-basic-auth", "loki-off", "grafana-off",
        "collector-off"])
def test_bad_input_fails_naming_the_value(overrides, named):
    msg = render_error(set_values=overrides)
    assert named in msg, msg


def test_no_credential_or_key_in_a_configmap():
    """Only paths: the key pairs and the CA stay in their Secrets."""
    for obj in _render(**tls_on()):
        if obj["kind"] == "ConfigMap":
            body = yaml.safe_dump(obj.get("data") or {})
            assert "BEGIN" not in body and "PRIVATE KEY" not in body, ident(obj)
