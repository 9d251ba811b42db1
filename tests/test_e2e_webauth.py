"""e2e: Prometheus and Alertmanager behind their web config (global.web: TLS and basic auth), the
real binaries on 127.0.0.1 with the web config, alerting block, scrape jobs and client config the
chart renders (harness.webstack says what is swapped). Proves that the endpoints refuse who has
no credentials or the wrong CA, and that every client the chart configures still gets through:
Prometheus delivers alerts to Alertmanager and scrapes both, the `helm test` pods' commands and
the probe's promtool succeed, amtool with the rendered client config creates a silence."""
import socket
import ssl

import pytest
import yaml

from harness import tools
from harness.webstack import PASSWORD, USER, WebStack

pytestmark = pytest.mark.e2e


def _need_tools():
    for t in ("prometheus", "alertmanager", "promtool", "amtool", "helm"):
        tools.require(t)


@pytest.fixture(scope="module")
def web(tmp_path_factory, request):
    _need_tools()
    st = WebStack(tmp_path_factory.mktemp("e2e-webauth"))
    request.addfinalizer(st.stop)
    return st.start()


@pytest.mark.parametrize("component,path", [
    ("prometheus", "/api/v1/query?query=up"), ("prometheus", "/-/ready"),
    ("alertmanager", "/api/v2/silences"), ("alertmanager", "/-/ready")])
def test_without_credentials_or_with_a_wrong_password_401(web, component, path):
    c = web.client(component)
    assert c.request(path, auth=None)[0] == 401, f"{component}{path} answered without credentials"
    assert c.request(path, auth=(USER, "wrong"))[0] == 401, f"{component}{path} took a wrong password"
    assert c.request(path, auth=("nobody", PASSWORD))[0] == 401, f"{component}{path} took an unknown user"
    status, body = c.request(path)
    assert status == 200, f"{component}{path} with the client Secret's credentials: {status} {body[:200]!r}"


@pytest.mark.parametrize("component", ["prometheus", "alertmanager"])
def test_plain_http_and_a_wrong_ca_get_no_answer(web, component):
    port = web.ports[component]
    # Plain HTTP to the TLS port: Go's TLS server answers a plain request with a 400 and no API.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = s.recv(4096)
    assert b"400 Bad Request" in reply and b"HTTP request to an HTTPS server" in reply, reply
    # A client that trusts another CA fails the handshake.
    wrong = ssl.create_default_context(cafile=str(web.wrong_ca_file))
    with pytest.raises(Exception) as err:
        web.client(component).request("/-/ready", ctx=wrong)
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value), err.value


def test_prometheus_delivers_alerts_to_alertmanager_with_the_rendered_credentials(web):
    am = web.client("alertmanager")
    alerts = web.wait(lambda: [a for a in am.json("/api/v2/alerts") if a["labels"]["alertname"] == "Watchdog"],
                      60, "Watchdog delivered to Alertmanager over TLS with basic auth")
    assert alerts
    prom = web.client("prometheus")
    ams = prom.json("/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
    assert [a["url"] for a in ams] == [f"https://127.0.0.1:{web.ports['alertmanager']}/api/v2/alerts"], ams


def test_prometheus_scrapes_itself_and_alertmanager_through_their_web_config(web):
    prom = web.client("prometheus")

    def up():
        r = prom.json("/api/v1/query?query=up")["data"]["result"]
        got = {x["metric"]["service"]: x["value"][1] for x in r}
        return got if len(got) == 2 and set(got.values()) == {"1"} else None
    got = web.wait(up, 60, "up == 1 for Prometheus and Alertmanager")
    assert got == {f"{web.release}-prometheus": "1", f"{web.release}-alertmanager": "1"}
    jobs = {x["metric"]["job"] for x in prom.json("/api/v1/query?query=up")["data"]["result"]}
    assert jobs == {"monitoring-stack"}, "the web jobs keep the job label of the monitoring-stack job"


@pytest.mark.parametrize("component", ["prometheus", "alertmanager"])
def test_the_helm_test_pods_commands_succeed(web, component):
    argv, _ = web.test_pod(component)
    assert argv[0] in ("promtool", "amtool"), argv
    r = web.run_tool(argv)
    assert r.returncode == 0, f"{argv}: {r.stdout}{r.stderr}"


def test_prometheus_probe_command_succeeds(web):
    probe = web.prom_pod.container["readinessProbe"]["exec"]["command"]
    argv = [a.replace("localhost:9090", f"127.0.0.1:{web.ports['prometheus']}") for a in probe]
    argv = [f"{a.split('=', 1)[0]}={web.prom_pod.reroot(a.split('=', 1)[1])}" if "=" in a else a for a in argv]
    r = web.run_tool(argv)
    assert r.returncode == 0, f"{argv}: {r.stdout}{r.stderr}"
    assert web.am_pod.container["readinessProbe"] == {"tcpSocket": {"port": "http-web"}, "initialDelaySeconds": 5,
                                                        "timeoutSeconds": 5}


def test_amtool_with_the_rendered_client_config_creates_a_silence(web):
    cfg = web.prom_pod.local("/etc/phase5-web/alertmanager/client.yml")
    assert yaml.safe_load(cfg.read_text())["basic_auth"]["password_file"].endswith("/alertmanager/password")
    url = f"--alertmanager.url={web.url('alertmanager')}"
    r = web.run_tool(["amtool", url, f"--http.config.file={cfg}", "silence", "add", "alertname=WebAuthE2E",
                      "--comment=e2e", "--author=webauth", "--duration=5m"])
    assert r.returncode == 0, r.stdout + r.stderr
    sid = r.stdout.strip()
    silences = web.client("alertmanager").json("/api/v2/silences")
    assert [s for s in silences if s["id"] == sid and s["status"]["state"] == "active"], silences
    # Without the client config, amtool is refused.
    r = web.run_tool(["amtool", url, "silence", "query"])
    assert r.returncode != 0


def test_without_the_rendered_client_credentials_nothing_is_delivered(tmp_path_factory, request):
    """The break the delivery test must catch: the alerting block without its basic_auth.
    Prometheus' notifications then fail (401) and Alertmanager never gets the Watchdog."""
    _need_tools()

    def drop_basic_auth(cfg):
        for am in cfg["alerting"]["alertmanagers"]:
            assert am.pop("basic_auth"), "the rendered alerting block has basic_auth"
        return cfg
    st = WebStack(tmp_path_factory.mktemp("e2e-webauth-broken"), prometheus_config=drop_basic_auth)
    request.addfinalizer(st.stop)
    st.start()
    prom = st.client("prometheus")

    def errors():
        r = prom.json("/api/v1/query?query=sum(prometheus_notifications_errors_total)")["data"]["result"]
        return r and float(r[0]["value"][1]) > 0
    st.wait(errors, 60, "notification errors counted")
    assert not [a for a in st.client("alertmanager").json("/api/v2/alerts")
                if a["labels"]["alertname"] == "Watchdog"]
