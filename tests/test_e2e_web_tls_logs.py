"""e2e: Loki, Grafana and the log collector (Alloy, and Promtail) serving TLS on their HTTP ports
(global.web.loki, global.web.grafana, global.web.promtail), scraped by a real Prometheus with the
monitoring-stack-<name> jobs the chart renders (harness.web_tls_logs says what is swapped).

The servers are STAND-INS: none of the three can run here (Loki and Grafana are AGPL, Alloy is not
on the Go module proxy, Promtail is end of life). A real node_exporter serves HTTPS from the key
pair at the paths each component's rendered setting names, laid out as its pod mounts them; the
settings themselves are held to the pinned versions' source and docs by
tests/test_unit_web_tls_logs.py.

Proves, with the real Prometheus as the TLS client: each rendered job is up over verified https
(its CA file as Prometheus' pod mounts it, the Service name as server_name, which the user's
certificate holds); the same job over plain http, with another CA or another server name gets
nothing; Loki's other clients (the collector's push, Grafana's Loki datasource) verify Loki with
the CA file of their own pods and their rendered server name; the endpoints refuse plain HTTP and
a client trusting another CA; the `helm test` pods' commands reach them over https."""
import os
import socket
import ssl
import subprocess

import pytest

from harness import tools
from harness.web_tls_logs import BROKEN, LogsTLSStack

pytestmark = pytest.mark.e2e

COLLECTORS = ("alloy", "promtail")


@pytest.fixture(scope="module", params=COLLECTORS)
def stack(tmp_path_factory, request):
    for t in ("prometheus", "node_exporter", "helm"):
        tools.require(t)
    st = LogsTLSStack(tmp_path_factory.mktemp(f"e2e-web-tls-{request.param}"), collector=request.param)
    request.addfinalizer(st.stop)
    return st.start()


@pytest.fixture(scope="module")
def targets(stack):
    """The active targets once every job has finished a scrape."""
    want = {f"monitoring-stack-{n}{s}" for n in stack.names for s in ("", *(f"-{b}" for b in BROKEN))}
    want |= {"collector-push", "grafana-datasource"}

    def settled():
        t = stack.targets()
        return t if set(t) == want and all(h != "unknown" for h, _ in t.values()) else None
    return stack.wait(settled, 60, f"every job scraped once: {sorted(want)}")


def test_the_rendered_jobs_scrape_over_verified_https(stack, targets):
    for name in stack.names:
        job = stack.rendered_jobs[f"monitoring-stack-{name}"]
        assert job["scheme"] == "https" and job["tls_config"]["server_name"] == f"p5-{name}.monitoring.svc", job
        health, err = targets[f"monitoring-stack-{name}"]
        assert health == "up", f"{name}: the rendered job does not scrape: {err}"
    r = stack.prom().json('/api/v1/query?query=up{job="monitoring-stack"}==1')["data"]["result"]
    assert {s["metric"]["service"] for s in r} == {f"p5-{n}" for n in stack.names}, r


@pytest.mark.parametrize("broken,says", [("plain-http", "400"), ("other-ca", "x509"), ("other-name", "x509")])
def test_the_job_with_one_part_broken_gets_nothing(stack, targets, broken, says):
    for name in stack.names:
        health, err = targets[f"monitoring-stack-{name}-{broken}"]
        assert health == "down" and says in err, f"{name} job with {broken}: {health} {err!r}"


def test_lokis_other_clients_verify_it_with_their_own_mounted_ca_and_name(stack, targets):
    """The collector's push and Grafana's Loki datasource: https, the CA file as THEIR pods mount
    it, Loki's Service name; a Go TLS client (Prometheus) with exactly those settings gets in."""
    for client, (url, ca, server_name) in stack.loki_clients().items():
        assert url.startswith("https://p5-loki:3100"), (client, url)
        assert server_name == "p5-loki.monitoring.svc" and os.path.isfile(ca), (client, ca)
        health, err = targets[client]
        assert health == "up", f"{client}: {err}"


def test_plain_http_and_a_wrong_ca_get_nothing(stack):
    for name in stack.names:
        with socket.create_connection(("127.0.0.1", stack.ports[name]), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = s.recv(4096)
        assert b"400 Bad Request" in reply, (name, reply)
        with pytest.raises(Exception) as err:
            stack.client(name).request("/metrics", auth=None,
                                       ctx=ssl.create_default_context(cafile=str(stack.wrong_ca_file)))
        assert "CERTIFICATE_VERIFY_FAILED" in str(err.value), err.value
        status, _ = stack.client(name).request("/metrics", auth=None)
        assert status == 200, name


def test_the_helm_test_pods_commands_reach_them_over_https(stack, tmp_path):
    """The rendered `wget -q -O /dev/null -T 10 https://<svc>:<port><path>` run by GNU wget with
    the Service address pointed at the process. The pod's busybox wget does not verify; GNU wget
    is given the CA (WGETRC ca_certificate): stricter than the pod, same command line. The health
    paths are not served by the stand-in, so what is judged is that TLS verified and an HTTP
    answer came back (404), and that plain http does not get one."""
    wget = tools.require("wget")
    rc = tmp_path / "wgetrc"
    rc.write_text(f"ca_certificate = {stack.ca_file}\n")
    env = {**os.environ, "WGETRC": str(rc)}
    for name in stack.names:
        argv = stack.test_pod(name)
        assert argv[0] == "wget" and argv[-1].startswith("https://127.0.0.1:"), argv
        verbose = [wget, "-S"] + argv[1:]
        r = subprocess.run(verbose, capture_output=True, text=True, timeout=30, env=env)
        assert "HTTP/1.1 " in r.stderr and "certificate" not in r.stderr.lower(), (name, r.stderr)
        plain = [wget, "-S"] + argv[1:-1] + [argv[-1].replace("https://", "http://")]
        r = subprocess.run(plain, capture_output=True, text=True, timeout=30, env=env)
        assert r.returncode != 0 and "HTTP/1.1 200" not in r.stderr, (name, r.stderr)
