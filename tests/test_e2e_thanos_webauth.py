"""e2e: Thanos behind its web config (global.web.thanos: TLS and basic auth through
`--http.config`), with the real thanos binary (sidecar, query, store, compact, as rendered) and a
real Prometheus running the monitoring-stack-thanos job the chart renders (harness.thanos_tls says
what is swapped).

Proves: the pinned thanos takes `--http.config` on all four commands; the rendered job scrapes
every Thanos server over https with the rendered tls_config (CA, the Query Service's name) and
credentials; the same job over plain http, with another CA, another server name or without
credentials gets nothing; the servers refuse plain HTTP, a client trusting another CA and a
request without (or with wrong) credentials, on /metrics and the health paths alike (hence the
TCP probes); Query answers the query API with the client settings Grafana's datasource is
rendered with (and reads Prometheus through the sidecar's plain gRPC); the real Jaeger's Monitor
tab reads Query with the rendered metric backend (https, Query's name, the login files of the
mounted client Secret) and a wrong password there gets Query's 401; the `helm test` pods'
commands succeed against the real processes."""
import base64
import http.client
import json
import socket
import ssl
import subprocess
import urllib.error
import urllib.parse

import pytest
import yaml

from harness import jaeger as jh
from harness import tools
from harness.podfiles import PodFiles
from harness.exporter_tls import BROKEN
from harness.render import render
from harness.thanos_tls import JOB, SERVERS, TEST_PODS, ThanosTLSStack, thanos_values
from harness.webstack import PASSWORD, USER, assert_wrong_password_refused, wget_env

pytestmark = pytest.mark.e2e

SERVICES = {s: f"p5-{v[3]}" for s, v in SERVERS.items()}
SERVER_NAME = "p5-thanos-query.monitoring.svc"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, request):
    for t in ("prometheus", "thanos", "helm", "jaeger"):
        tools.require(t)
    st = ThanosTLSStack(tmp_path_factory.mktemp("e2e-thanos-webauth"))
    request.addfinalizer(st.stop)
    return st.start()


@pytest.fixture(scope="module")
def targets(stack):
    """The active targets once every job has finished a scrape of every Thanos server."""
    want = {(j, svc) for j in (JOB, *(f"{JOB}-{b}" for b in BROKEN)) for svc in SERVICES.values()}

    def settled():
        t = stack.targets()
        return t if set(t) == want and all(h != "unknown" for h, _ in t.values()) else None
    return stack.wait(settled, 60, f"every job scraped every Thanos server once: {sorted(want)}")


@pytest.mark.parametrize("command", ["sidecar", "query", "store", "compact"])
def test_the_pinned_thanos_takes_http_config_on_every_command(command):
    """The flag the chart renders (common.web's configFlag for thanos), in the pinned binary's
    own --help: a Thanos bump that renamed it would fail here, not in a cluster."""
    out = subprocess.run([tools.require("thanos"), command, "--help"], capture_output=True, text=True, timeout=30)
    text = out.stdout + out.stderr
    assert "--http.config=" in text and "TLS or authentication" in text, text[-2000:]


@pytest.mark.parametrize("server", SERVERS)
def test_the_rendered_job_scrapes_every_server_over_https_with_the_ca_server_name_and_credentials(stack, targets, server):
    job = stack.rendered_jobs[JOB]
    assert job["scheme"] == "https" and job["tls_config"]["server_name"] == SERVER_NAME, job
    assert set(job["basic_auth"]) == {"username_file", "password_file"}, job
    health, err = targets[(JOB, SERVICES[server])]
    assert health == "up", f"{server}: the rendered job does not scrape: {err}"
    q = urllib.parse.quote(f'scrape_samples_scraped{{job="monitoring-stack",service="{SERVICES[server]}"}}>0')
    r = stack.prom().json(f"/api/v1/query?query={q}")["data"]["result"]
    assert r, f"the {JOB} job scraped no samples from {server}"


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("broken,says", [("plain-http", "400"), ("other-ca", "x509"), ("other-name", "x509"),
                                         ("no-credentials", "401")])
def test_the_job_with_one_part_broken_gets_nothing(stack, targets, server, broken, says):
    health, err = targets[(f"{JOB}-{broken}", SERVICES[server])]
    assert health == "down" and says in err, f"{server} with {broken}: {health} {err!r}"


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("path", ["/metrics", "/-/healthy", "/-/ready"])
def test_plain_http_a_wrong_ca_and_no_credentials_get_nothing(stack, server, path):
    port = stack.ports[server]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        reply = s.recv(4096)
    assert b"400 Bad Request" in reply and b"HTTP request to an HTTPS server" in reply, reply
    with pytest.raises(Exception) as err:
        stack.client(server).request(path, ctx=ssl.create_default_context(cafile=str(stack.wrong_ca_file)))
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value), err.value
    c = stack.client(server)
    assert c.request(path, auth=None)[0] == 401
    assert c.request(path, auth=(USER, "wrong"))[0] == 401
    if path == "/metrics":
        status, body = c.request(path)
        assert status == 200 and b"thanos_build_info" in body, (status, body[:200])
    else:
        # Past TLS and the credentials: Thanos' own answer (200, or 503 while a server is not yet ready).
        assert c.request(path)[0] in (200, 503)


@pytest.mark.parametrize("server", SERVERS)
def test_probes_with_basic_auth_connect_to_the_port_served(stack, server):
    """The kubelet cannot send credentials without writing them in the pod spec: with basic auth
    on, the rendered probes connect on the HTTP port, which the real process listens on."""
    cont = stack.pods[server].container
    for probe in ("livenessProbe", "readinessProbe"):
        assert cont[probe]["tcpSocket"] == {"port": SERVERS[server][4]}, (server, cont[probe])
    socket.create_connection(("127.0.0.1", stack.ports[server]), timeout=5).close()


def test_query_answers_with_the_datasource_settings_grafana_is_rendered_with(stack, targets):
    """Grafana cannot run here (AGPL, not built). Its datasource as the chart renders it with the
    same global.web.thanos (thanosQuery on): url, serverName, the CA and login files; a Python
    client uses exactly those against the real Query (address -> the local port), which reads the
    Prometheus beside the sidecar over the sidecar's StoreAPI: the Thanos targets' `up` comes back."""
    m = render(set_values={"global.web.thanos": thanos_values("p5", "$2b$10$" + "a" * 53), **{
        k: v for k, v in stack.values.items() if not k.startswith(("grafana.", "global.web"))},
        "grafana.datasources.prometheus.thanosQuery": True})
    ds = next(d for d in yaml.safe_load(m.get("ConfigMap", "p5-grafana")["data"]["datasources.yaml"])["datasources"]
              if d["uid"] == "prometheus")
    assert ds["url"] == "https://p5-thanos-query:10902" and ds["jsonData"]["serverName"] == SERVER_NAME, ds
    assert ds["jsonData"]["tlsAuthWithCACert"] is True and ds["basicAuth"] is True, ds
    ctx = ssl.create_default_context(cafile=str(stack.ca_file))
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    def ask():
        # Connect by address, verify the name Grafana asks for (serverName), as Grafana does.
        conn = http.client.HTTPSConnection("127.0.0.1", stack.ports["query"], context=ctx, timeout=10)
        conn.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", stack.ports["query"]), timeout=10),
                                    server_hostname=ds["jsonData"]["serverName"])
        conn.request("GET", "/api/v1/query?" + urllib.parse.urlencode({"query": 'up{job="monitoring-stack"}'}),
                     headers={"Authorization": auth})
        r = conn.getresponse()
        body = json.loads(r.read())
        assert r.status == 200, body
        got = {s["metric"]["service"]: s["value"][1] for s in body["data"]["result"]}
        return got if set(got) == set(SERVICES.values()) else None
    got = stack.wait(ask, 60, "up of the four Thanos servers through Query")
    assert set(got.values()) == {"1"}, got


@pytest.mark.parametrize("component", TEST_PODS)
def test_the_helm_test_pods_command_succeeds(stack, component, tmp_path):
    """The rendered `sh -c 'wget ... --header "Authorization: Basic $(...)" https://<svc>:10902/-/ready'`,
    run by this machine's sh and GNU wget with the Service address pointed at the process. The
    pod's busybox wget does not verify certificates; GNU wget does, so it is given the CA
    (WGETRC ca_certificate): stricter than the pod, same command line."""
    env = wget_env(stack.ca_file, tmp_path)
    argv, pod = stack.test_pod(component)
    assert argv[:2] == ["sh", "-c"] and "https://127.0.0.1:" in argv[2] and argv[2].endswith("/-/ready"), argv
    server = TEST_PODS[component]
    stack.wait(lambda: stack.client(server).request("/-/ready")[0] == 200, 60, f"{server} ready")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode == 0, f"{argv}: {r.returncode} {r.stdout}{r.stderr}"
    assert_wrong_password_refused(argv, pod, env)


def _jaeger_config(stack, root, password=None):
    """The rendered Jaeger config with its pod's mounts laid out under root (jh.web_metric_backend)."""
    pod = PodFiles(stack.manifests, None, "jaeger", root, obj=stack.manifests.get("Deployment", "p5-jaeger"))
    return jh.web_metric_backend(pod, password)


@pytest.mark.parametrize("password,ok", [(None, True), ("not-the-password", False)], ids=["login", "wrong-password"])
def test_jaegers_monitor_tab_reads_query_with_thanos_tls_and_basic_auth(stack, tmp_path, password, ok):
    """The real Jaeger with the rendered config (thanosQuery): its metric backend speaks https to
    Query (address -> the local port), verifies Query's name with the mounted CA and logs in
    with the mounted client Secret's files; a wrong password in that file gets Query's 401."""
    cfg, be = _jaeger_config(stack, tmp_path / "root", password)
    assert be["endpoint"] == "https://p5-thanos-query:10902" and be["tls"]["server_name_override"] == SERVER_NAME, be
    with jh.run_jaeger(tools.require("jaeger"), cfg, tmp_path,
                       metrics_backend=f"https://127.0.0.1:{stack.ports['query']}") as j:
        status, body = jh.monitor_calls(j)
    if ok:
        assert status == 200 and body.get("name") == "service_call_rate", f"through Query: {status} {body}"
    else:
        assert status == 500 and "401" in json.dumps(body), f"{status} {body}"
