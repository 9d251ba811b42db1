"""e2e: node-exporter and kube-state-metrics behind their web config (global.web.node-exporter,
global.web.kube-state-metrics: TLS and basic auth), with the real node_exporter and a real
Prometheus running the node-exporter and kube-state-metrics jobs the chart renders
(harness.exporter_tls says what is swapped). kube-state-metrics cannot run here: a real
node_exporter is its STAND-IN, serving the web config file the chart renders for it through the
exporter-toolkit version kube-state-metrics v2.20.0 reads it with; the flag and that version
are held to kube-state-metrics v2.20.0 below.

Proves: the rendered jobs scrape over https with the rendered tls_config (CA, server name) and
credentials; the same job over plain http, with another CA, another server name or without
credentials gets nothing; the endpoints refuse plain HTTP, a client trusting another CA and a
request without credentials; the `helm test` pod's command succeeds against the real process."""
import socket
import ssl
import subprocess

import pytest
import yaml

from harness import tools
from harness.exporter_tls import BROKEN, EXPORTERS, KSM_WEB, ExporterTLSStack
from harness.webstack import USER, assert_wrong_password_refused, wget_env

pytestmark = pytest.mark.e2e


def _need_tools():
    for t in ("prometheus", "node_exporter", "helm"):
        tools.require(t)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, request):
    _need_tools()
    st = ExporterTLSStack(tmp_path_factory.mktemp("e2e-exporter-tls"))
    request.addfinalizer(st.stop)
    return st.start()


@pytest.fixture(scope="module")
def targets(stack):
    """The active targets once every job has finished a scrape."""
    want = {f"{c}{s}" for c in EXPORTERS for s in ("", *(f"-{b}" for b in BROKEN))}

    def settled():
        t = stack.targets()
        return t if set(t) == want and all(h != "unknown" for h, _ in t.values()) else None
    return stack.wait(settled, 60, f"every job scraped once: {sorted(want)}")


@pytest.mark.parametrize("component", EXPORTERS)
def test_the_rendered_job_scrapes_over_https_with_the_ca_server_name_and_credentials(stack, targets, component):
    job = stack.rendered_jobs[component]
    assert job["scheme"] == "https" and job["tls_config"]["server_name"] == f"p5-{component}.monitoring.svc", job
    assert set(job["basic_auth"]) == {"username_file", "password_file"}, job
    health, err = targets[component]
    assert health == "up", f"{component}: the rendered job does not scrape: {err}"
    r = stack.prom().json(f'/api/v1/query?query=scrape_samples_scraped{{job="{component}"}}>0')["data"]["result"]
    assert r, f"the {component} job scraped no samples"
    if component == "node-exporter":       # a series the chart keeps (DiskSpaceLow), from this machine's disks
        r = stack.prom().json('/api/v1/query?query=node_filesystem_avail_bytes{job="node-exporter"}')["data"]["result"]
        assert r, "node_filesystem_avail_bytes not stored"


@pytest.mark.parametrize("component", EXPORTERS)
@pytest.mark.parametrize("broken,says", [("plain-http", "400"), ("other-ca", "x509"), ("other-name", "x509"),
                                         ("no-credentials", "401")])
def test_the_job_with_one_part_broken_gets_nothing(stack, targets, component, broken, says):
    health, err = targets[f"{component}-{broken}"]
    assert health == "down" and says in err, f"{component} job with {broken}: {health} {err!r}"


@pytest.mark.parametrize("component", EXPORTERS)
def test_plain_http_a_wrong_ca_and_no_credentials_get_no_metrics(stack, component):
    port = stack.ports[component]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = s.recv(4096)
    assert b"400 Bad Request" in reply and b"HTTP request to an HTTPS server" in reply, reply
    with pytest.raises(Exception) as err:
        stack.client(component).request("/metrics", ctx=ssl.create_default_context(cafile=str(stack.wrong_ca_file)))
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value), err.value
    c = stack.client(component)
    assert c.request("/metrics", auth=None)[0] == 401
    assert c.request("/metrics", auth=(USER, "wrong"))[0] == 401
    status, body = c.request("/metrics")
    assert status == 200 and b"node_exporter_build_info" in body, (status, body[:200])


def test_node_exporter_probe_with_basic_auth_connects_to_the_port_served(stack):
    """The kubelet cannot send credentials without writing them in the pod spec: with basic auth
    on, the rendered probes connect on the metrics port, which the real process listens on (TLS
    alone: HTTPS probes, test_unit_webauth)."""
    probe = stack.pods["node-exporter"].container["readinessProbe"]
    assert probe["tcpSocket"] == {"port": "http-metrics"}, probe
    socket.create_connection(("127.0.0.1", stack.ports["node-exporter"]), timeout=5).close()


@pytest.mark.parametrize("component", EXPORTERS)
def test_the_helm_test_pods_command_succeeds(stack, component, tmp_path):
    """The rendered `sh -c 'wget ... --header "Authorization: Basic $(...)" https://<svc>...'`,
    run by this machine's sh and GNU wget with the Service address pointed at the process. The
    pod's busybox wget does not verify certificates; GNU wget does, so it is given the CA
    (WGETRC ca_certificate): stricter than the pod, same command line. The path asked
    (kube-state-metrics' /readyz) is not served by the stand-in: there only the answer's
    authentication is judged (404 after TLS and credentials passed, 401 without)."""
    env = wget_env(stack.ca_file, tmp_path)
    argv, pod = stack.test_pod(component)
    assert argv[:2] == ["sh", "-c"] and "https://127.0.0.1:" in argv[2], argv
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    if component == "node-exporter":
        assert r.returncode == 0, f"{argv}: {r.returncode} {r.stdout}{r.stderr}"
    else:
        verbose = [argv[0], argv[1], argv[2].replace("wget -q ", "wget -S ")]
        r = subprocess.run(verbose, capture_output=True, text=True, timeout=30, env=env)
        assert "HTTP/1.1 404" in r.stderr and "401" not in r.stderr, r.stderr
    assert_wrong_password_refused(argv, pod, env)


def test_kube_state_metrics_flag_and_library_are_v2_20_0s(stack):
    """The stand-in's claim, held to kube-state-metrics v2.20.0 (the chart's image): the flag the
    chart renders is the one its docs name for the web config (KSM_WEB, from
    docs/developer/cli-arguments.md at v2.20.0), one file for both servers (so both probe ports
    use HTTPS), and the node_exporter that reads the file in its place links the same
    exporter-toolkit version (v0.17.1, kube-state-metrics v2.20.0's go.mod), read from the
    binary's own build information."""
    from harness.ksm import VERSION
    assert VERSION == KSM_WEB["version"], "the chart's kube-state-metrics moved: check its --tls-config anew"
    dep = stack.manifests.get("Deployment", "p5-kube-state-metrics")
    cont = dep["spec"]["template"]["spec"]["containers"][0]
    web = [a for a in cont["args"] if a.startswith(KSM_WEB["flag"] + "=")]
    assert len(web) == 1 and not [a for a in cont["args"] if a.startswith("--web.config.file")], cont["args"]
    body = yaml.safe_load(stack.manifests.get("Secret", "p5-kube-state-metrics-web")["stringData"]["web-config.yml"])
    assert set(body) == {"tls_server_config", "basic_auth_users"}, body
    assert {p["name"] for p in cont["ports"]} == {f"http-{s}" for s in KSM_WEB["servers"]}
    assert {cont[p]["tcpSocket"]["port"] for p in ("livenessProbe", "readinessProbe")} == \
        {f"http-{s}" for s in KSM_WEB["servers"]}
    go = tools.require("go")
    info = subprocess.run([go, "version", "-m", tools.require("node_exporter")], capture_output=True, text=True,
                          timeout=30).stdout
    dep_line = next((l.split() for l in info.splitlines() if "github.com/prometheus/exporter-toolkit" in l), None)
    assert dep_line and dep_line[2] == KSM_WEB["exporter_toolkit"], info
