"""e2e tier: Jaeger's Monitor tab reads the release's Prometheus behind its web config
(global.web.prometheus: TLS and basic auth, issue 28). The real Prometheus runs with the web
config the chart renders (harness.webstack: a throwaway CA, the user's TLS and client Secrets as
the README's example makes them); the real Jaeger runs the rendered configuration with its pod's
volumes laid out as mounted (the projected web-client volume: the CA from the TLS Secret, the
login from the client Secret), so its metric backend speaks HTTPS, verifies Prometheus'
certificate for the Service name, and logs in with the basicauth extension reading those files.

What is swapped (besides harness.webstack's own swaps and harness.jaeger.localize's listeners):
every absolute path into a mount of the Jaeger pod is re-rooted under its local tree (the CA
file, the ${file:...} login files); the metric backend's endpoint -> the local Prometheus
(https://127.0.0.1:<port>, the certificate names the Service name the config verifies). One
WebStack per module.
"""
import json

import pytest

from harness import jaeger as jh
from harness import tools
from harness.podfiles import PodFiles
from harness.webstack import WebStack

pytestmark = pytest.mark.e2e

@pytest.fixture(scope="module")
def web(tmp_path_factory, request):
    for t in ("prometheus", "alertmanager", "helm", "jaeger"):
        tools.require(t)
    st = WebStack(tmp_path_factory.mktemp("e2e-spm-web"), set_values={"jaeger.enabled": True})
    request.addfinalizer(st.stop)
    return st.start()


def _jaeger_config(web, root, password=None):
    """The rendered Jaeger config with its pod's mounts laid out under root (jh.web_metric_backend)."""
    pod = PodFiles(web.manifests, "jaeger", "jaeger", root)
    return jh.web_metric_backend(pod, password)


def test_the_metric_backend_follows_prometheus_tls_and_basic_auth(web, tmp_path):
    cfg, be = _jaeger_config(web, tmp_path / "root")
    assert be["endpoint"] == "https://p5-prometheus:9090", be
    assert be["tls"]["server_name_override"] == "p5-prometheus.monitoring.svc", be
    with jh.run_jaeger(tools.require("jaeger"), cfg, tmp_path, metrics_backend=web.url("prometheus")) as j:
        status, body = jh.monitor_calls(j)
    assert status == 200, f"Jaeger's metrics API through TLS and basic auth: {status} {body}"
    assert body.get("name") == "service_call_rate", body


def test_a_wrong_login_is_refused_by_prometheus(web, tmp_path):
    """The break the test above guards: the same configuration with a wrong password in the
    mounted file gets Prometheus' 401 (the login is really sent, from that file)."""
    cfg, _ = _jaeger_config(web, tmp_path / "root", password="not-the-password")
    with jh.run_jaeger(tools.require("jaeger"), cfg, tmp_path, metrics_backend=web.url("prometheus")) as j:
        status, body = jh.monitor_calls(j)
    assert status == 500 and "401" in json.dumps(body), f"{status} {body}"
