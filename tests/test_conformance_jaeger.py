"""Conformance tier: the rendered Jaeger v2 configuration is accepted and run by the real
Jaeger binary (tools.versions pins it), on 127.0.0.1 only: `jaeger validate` for the
defaults, every profile and every storage backend; then a live process per profile that
listens on every configured port, answers its health check, takes a span over OTLP/HTTP
and Zipkin and returns it from the query API, and serves its own metrics."""
import re
import socket
import urllib.request

import pytest
import yaml

from harness import jaeger as jh
from harness import params, tools
from harness.polling import wait_until
from harness.render import render

pytestmark = pytest.mark.conformance

STORAGE_VARIANTS = [
    pytest.param({"jaeger.storage.type": "elasticsearch",
                  "jaeger.storage.elasticsearch.serverUrls": ["https://es.db.svc:9200"],
                  "jaeger.storage.auth.username": "jaeger", "jaeger.storage.auth.password": "x",
                  "jaeger.replicas": 2}, id="elasticsearch"),
    pytest.param({"jaeger.storage.type": "opensearch",
                  "jaeger.storage.opensearch.serverUrls": ["https://os.db.svc:9200"],
                  "jaeger.storage.auth.username": "jaeger", "jaeger.storage.auth.existingSecret": "os-creds"},
                 id="opensearch"),
    pytest.param({"jaeger.storage.type": "cassandra", "jaeger.storage.cassandra.servers": ["cassandra.db.svc:9042"],
                  "jaeger.storage.cassandra.localDC": "dc1",
                  "jaeger.storage.auth.username": "jaeger", "jaeger.storage.auth.password": "x"}, id="cassandra"),
    pytest.param({f"jaeger.receivers.{k}.enabled": False for k in
                  ("otlpGrpc", "jaegerCompact", "jaegerBinary", "jaegerThriftHttp", "jaegerGrpc")}, id="otlp-http-and-zipkin-only"),
    pytest.param({"jaeger.receivers.otlpHttp.corsAllowedOrigins": ["https://app.example.com"],
                  "jaeger.query.basePath": "/jaeger"}, id="cors-and-base-path"),
    # Service performance monitoring: dimensions and buckets of the values; Thanos Query; the
    # release's Prometheus behind TLS and basic auth (the basicauth extension, the CA file).
    pytest.param({"jaeger.spanMetrics.dimensions": ["http.request.method", "messaging.system"],
                  "jaeger.spanMetrics.histogramBuckets": ["1ms", "1.5s", "1m"],
                  "thanos.enabled": True, "prometheus.thanos.sidecar.enabled": True,
                  "grafana.datasources.prometheus.thanosQuery": True,
                  "jaeger.spanMetrics.prometheus.thanosQuery": True}, id="spm-dimensions-thanos"),
    pytest.param({"global.web.prometheus": {
        "tls": {"enabled": True, "secretName": "prometheus-tls"},
        "basicAuth": {"enabled": True, "users": {"p5": "$2b$10$" + "a" * 53},
                      "clientSecret": "prometheus-client"}}}, id="spm-prometheus-web-auth"),
    # Thanos Query behind its own web config (global.web.thanos): the same extension and CA file,
    # from Thanos' client Secret.
    pytest.param({"thanos.enabled": True, "prometheus.thanos.sidecar.enabled": True,
                  "grafana.datasources.prometheus.thanosQuery": True,
                  "jaeger.spanMetrics.prometheus.thanosQuery": True,
                  "global.web.thanos": {
                      "tls": {"enabled": True, "secretName": "thanos-tls"},
                      "basicAuth": {"enabled": True, "users": {"p5": "$2b$10$" + "a" * 53},
                                    "clientSecret": "thanos-client"}}}, id="spm-thanos-web-auth"),
    pytest.param({"jaeger.spanMetrics.enabled": False}, id="spm-off"),
]


@pytest.fixture(scope="module")
def binary():
    return tools.require("jaeger")


def _validate(binary, config, tmp_path):
    cfg, _ = jh.localize(config)
    path = tmp_path / "config.yaml"
    text = yaml.safe_dump(cfg, sort_keys=False)
    # ${file:...} references (the Prometheus login, mounted from a Secret in the pod) are resolved
    # by validate too: the same file names under tmp_path, with dummy content.
    for ref in sorted(set(re.findall(r"\$\{file:(/[^}]+)\}", text))):
        local = tmp_path / "files" / ref.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text("dummy")
        text = text.replace(f"${{file:{ref}}}", f"${{file:{local}}}")
    path.write_text(text)
    proc = jh.validate(binary, path, env={"JAEGER_STORAGE_PASSWORD": "from-secret"})
    assert proc.returncode == 0, f"jaeger validate rejected the rendered config:\n{proc.stderr}\n{path.read_text()}"


@pytest.mark.parametrize("values", params.profiles())
def test_profile_config_validates(binary, values, tmp_path):
    _validate(binary, jh.rendered_config(render(values)), tmp_path)


@pytest.mark.parametrize("overrides", STORAGE_VARIANTS)
def test_variant_config_validates(binary, overrides, tmp_path):
    _validate(binary, jh.rendered_config(render(set_values=overrides)), tmp_path)


def test_validate_catches_a_broken_config(binary, tmp_path):
    """The validate check can fail: a pipeline naming an undefined receiver is rejected."""
    cfg = jh.rendered_config(render())
    cfg["service"]["pipelines"]["traces"]["receivers"].append("kafka")
    cfg, _ = jh.localize(cfg)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = jh.validate(binary, path)
    assert proc.returncode != 0 and "kafka" in proc.stderr, proc.stderr


def test_validate_checks_the_span_metrics_connector(binary, tmp_path):
    """`jaeger validate` reads the connector's settings (the variants above are checked, not
    passed through): a key the spanmetrics connector does not have is rejected."""
    cfg = jh.rendered_config(render())
    cfg["connectors"]["spanmetrics"]["no_such_setting"] = 1
    cfg, _ = jh.localize(cfg)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = jh.validate(binary, path)
    assert proc.returncode != 0 and "no_such_setting" in proc.stderr, proc.stderr


def _bound(port, kind):
    """True when something already listens on 127.0.0.1:port (our bind fails)."""
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@pytest.mark.parametrize("values", params.profiles())
def test_spans_round_trip(binary, values, tmp_path):
    config = jh.rendered_config(render(values))
    with jh.run_jaeger(binary, config, tmp_path) as j:
        idle = [f"{name}:{j.ports[name]}" for name, (_, kind) in jh.LISTENERS.items()
                if name in j.ports and not _bound(j.ports[name], kind)]
        assert not idle, f"configured listeners nobody listens on: {idle}\n{j.log()[-3000:]}"

        otlp_trace = jh.send_otlp_span(j.url("http-otlp"), "phase5-backend", "POST /api/tasks")
        got = jh.wait_for_trace(j.url("http-query"), "phase5-backend", otlp_trace)
        names = [s["operationName"] for s in got["spans"]]
        assert names == ["POST /api/tasks"], f"trace {otlp_trace}: spans {names}"

        zipkin_trace = jh.send_zipkin_span(j.url("http-zipkin"), "phase5-reminder-agent")
        jh.wait_for_trace(j.url("http-query"), "phase5-reminder-agent", zipkin_trace)

        with urllib.request.urlopen(j.url("http-query") + "/api/services", timeout=10) as r:
            services = yaml.safe_load(r.read())["data"]
        assert {"phase5-backend", "phase5-reminder-agent"} <= set(services), services

        with urllib.request.urlopen(j.url("http-metrics") + "/metrics", timeout=10) as r:
            metrics = r.read().decode()
        assert "otelcol_receiver_accepted_spans" in metrics, (
            "Jaeger's own metrics lack otelcol_receiver_accepted_spans:\n" + metrics[:2000])
    assert j.proc.poll() is not None, "jaeger still running after the block"


def test_memory_store_evicts_beyond_max_traces(binary, tmp_path):
    """The trace limit is enforced by the binary: with max_traces 100 (the schema's floor),
    the first of 101 traces is evicted and the newest is kept."""
    config = jh.rendered_config(render(set_values={"jaeger.storage.memory.maxTraces": 100,
                                                   "jaeger.processors.batch.timeout": "10ms"}))
    query = None
    with jh.run_jaeger(binary, config, tmp_path) as j:
        query = j.url("http-query")
        first = jh.send_otlp_span(j.url("http-otlp"), "phase5-audit-agent", "write-first")
        jh.wait_for_trace(query, "phase5-audit-agent", first)
        rest = jh.send_otlp_traces(j.url("http-otlp"), "phase5-audit-agent", 100, "write")
        wait_until(lambda: jh.get_trace(query, rest[-1]) is not None, 20, every=0.2, retry=(), on_timeout=None)
        assert jh.get_trace(query, rest[-1]) is not None, f"newest trace {rest[-1]} never stored"
        assert jh.get_trace(query, first) is None, f"trace {first} still stored after 100 newer ones (max_traces 100)"
