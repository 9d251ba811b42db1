"""Run the real Jaeger v2 binary on a rendered configuration, on 127.0.0.1 only.

    cfg = rendered_config(render(values))              # the ConfigMap's config.yaml, parsed
    with run_jaeger(tools.require("jaeger"), cfg, tmp_path) as j:
        trace_id = send_otlp_span(j.url("http-otlp"), "phase5-backend")
        traces = wait_for_trace(j.url("http-query"), "phase5-backend", trace_id)

localize() rewrites every listener of the configuration (receivers, query, health check,
metrics reader, the span metrics' Prometheus exporter) to 127.0.0.1 on a free port, and the
Prometheus URL of the metrics backend (the Monitor tab's, jaeger.spanMetrics) to the one the
caller runs (`metrics_backend`), else to a 127.0.0.1 port nothing listens on; the process
(harness.process.Process, in the harness's one cleanup set) is always stopped on exit.
"""
import contextlib
import copy
import json
import os
import re
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

from .polling import wait_until
from .ports import free_port
from .process import Process

# Listener name (the chart's port names) -> where it sits in the configuration.
# (path of keys to the dict holding "endpoint", socket type)
LISTENERS = {
    "grpc-otlp": (("receivers", "otlp", "protocols", "grpc"), socket.SOCK_STREAM),
    "http-otlp": (("receivers", "otlp", "protocols", "http"), socket.SOCK_STREAM),
    "http-zipkin": (("receivers", "zipkin"), socket.SOCK_STREAM),
    "udp-compact": (("receivers", "jaeger", "protocols", "thrift_compact"), socket.SOCK_DGRAM),
    "udp-binary": (("receivers", "jaeger", "protocols", "thrift_binary"), socket.SOCK_DGRAM),
    "http-collector": (("receivers", "jaeger", "protocols", "thrift_http"), socket.SOCK_STREAM),
    "grpc-collector": (("receivers", "jaeger", "protocols", "grpc"), socket.SOCK_STREAM),
    "http-query": (("extensions", "jaeger_query", "http"), socket.SOCK_STREAM),
    "grpc-query": (("extensions", "jaeger_query", "grpc"), socket.SOCK_STREAM),
    "http-admin": (("extensions", "healthcheckv2", "http"), socket.SOCK_STREAM),
    "http-spm": (("exporters", "prometheus/spanmetrics"), socket.SOCK_STREAM),
}


class JaegerError(RuntimeError):
    """The process did not come up (its log is in the message)."""


def rendered_config(manifests, name="p5-jaeger"):
    """The collector configuration from a rendered Jaeger ConfigMap, parsed."""
    cm = manifests.get("ConfigMap", name)
    return yaml.safe_load(cm["data"]["config.yaml"])


def _node(cfg, path):
    for key in path:
        if not isinstance(cfg, dict) or cfg.get(key) is None:
            return None
        cfg = cfg[key]
    return cfg


def metric_backend_urls(config):
    """{backend name: endpoint} of the Prometheus metric backends (jaeger_storage.metric_backends)."""
    backends = _node(config, ("extensions", "jaeger_storage", "metric_backends")) or {}
    return {name: b["prometheus"]["endpoint"] for name, b in backends.items() if (b or {}).get("prometheus")}


def localize(config, metrics_backend=None):
    """A copy of the configuration with every listener on 127.0.0.1:<free port>, and the
    Prometheus metric backends' endpoint = `metrics_backend` (a URL on 127.0.0.1; default: a free
    port nothing listens on, for runs that do not query metrics).

    Returns (config, ports) where ports maps the chart's port names to the chosen ports
    (only listeners present in the configuration), plus "http-metrics".
    Raises ValueError for an endpoint it does not know how to rewrite, so a new listener
    in the chart cannot silently bind 0.0.0.0 in a test.
    """
    cfg = copy.deepcopy(config)
    for name in metric_backend_urls(cfg):
        cfg["extensions"]["jaeger_storage"]["metric_backends"][name]["prometheus"]["endpoint"] = (
            metrics_backend or f"http://127.0.0.1:{free_port()}")
    ports = {}
    for name, (path, kind) in LISTENERS.items():
        node = _node(cfg, path)
        if node is None:
            continue
        port = free_port(kind)
        node["endpoint"] = f"127.0.0.1:{port}"
        ports[name] = port
    for reader in _node(cfg, ("service", "telemetry", "metrics", "readers")) or []:
        prom = _node(reader, ("pull", "exporter", "prometheus"))
        if prom is not None:
            prom["host"] = "127.0.0.1"
            prom["port"] = ports["http-metrics"] = free_port()
    _check_no_wildcard(cfg)
    return cfg, ports


def _check_no_wildcard(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            local = v.split("://", 1)[-1] if isinstance(v, str) else v   # a client URL (metric backend)
            if k in ("endpoint", "host") and isinstance(v, str) and not local.startswith("127.0.0.1"):
                raise ValueError(f"localize: {path}/{k}={v!r} is not rewritten to 127.0.0.1")
            _check_no_wildcard(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_no_wildcard(v, f"{path}[{i}]")


class Jaeger:
    """A running Jaeger: its listeners' ports by the chart's port names, its Process, and the
    Popen object it ran as (kept after the stop, to read the exit code)."""

    def __init__(self, process, ports):
        self.process, self.ports = process, ports
        self.proc, self.log_path = process.proc, process.log_path

    def url(self, name):
        return f"http://127.0.0.1:{self.ports[name]}"

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def _get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


@contextlib.contextmanager
def run_jaeger(binary, config, tmp_path, env=None, health_timeout=60.0, metrics_backend=None):
    """Start `binary --config <localized config>` and yield a Jaeger once its health check
    answers 200; stop it on exit however the block ends. `config` is the parsed rendered
    configuration; `metrics_backend`: the Prometheus URL its metric backend queries (localize).
    The OTEL_* variables of this environment are not passed on."""
    cfg, ports = localize(config, metrics_backend)
    cfg_path = tmp_path / "jaeger-config.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    process = Process("jaeger", [os.path.abspath(binary), f"--config={cfg_path}"], tmp_path / "jaeger.log",
                      f"http://127.0.0.1:{ports['http-admin']}/status", cwd=tmp_path, env=env or {},
                      unset_prefixes=("OTEL_",))
    try:
        try:
            process.start(timeout=health_timeout)
        except RuntimeError as e:
            raise JaegerError(str(e)) from None
        yield Jaeger(process, ports)
    finally:
        process.stop(timeout=15)


def validate(binary, config_path, env=None, timeout=60):
    """`jaeger validate --config FILE`: unmarshal and validate every component, start
    nothing. Returns the CompletedProcess."""
    penv = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    penv.update(env or {})
    return subprocess.run([os.path.abspath(binary), "validate", f"--config={config_path}"], capture_output=True,
                          text=True, timeout=timeout, env=penv)


def otlp_span_json(service, span_name="GET /api/tasks", trace_id=None, attributes=None, error=False):
    """One SERVER span in OTLP/JSON (ids hex, times in ns as strings), 5 ms long; `error`: its
    status is STATUS_CODE_ERROR."""
    trace_id = trace_id or secrets.token_hex(16)
    now = time.time_ns()
    attrs = [{"key": k, "value": {"stringValue": str(v)}} for k, v in (attributes or {}).items()]
    return trace_id, {
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeSpans": [{
                "scope": {"name": "phase5-monitoring-tests"},
                "spans": [{
                    "traceId": trace_id,
                    "spanId": secrets.token_hex(8),
                    "name": span_name,
                    "kind": 2,
                    "startTimeUnixNano": str(now - 5_000_000),
                    "endTimeUnixNano": str(now),
                    "attributes": attrs,
                    "status": {"code": 2} if error else {},
                }],
            }],
        }],
    }


def send_otlp_span(otlp_http_url, service, span_name="GET /api/tasks", attributes=None):
    """POST one span to <otlp_http_url>/v1/traces (OTLP/HTTP JSON); returns its trace id."""
    return send_otlp_traces(otlp_http_url, service, 1, span_name, attributes)[0]


def send_otlp_traces(otlp_http_url, service, count, span_name="GET /api/tasks", attributes=None, errors=0):
    """POST `count` one-span traces in one OTLP/HTTP JSON request, the first `errors` of them
    failed (status ERROR); returns their trace ids."""
    ids, body = [], None
    for i in range(count):
        trace_id, one = otlp_span_json(service, span_name, attributes=attributes, error=i < errors)
        ids.append(trace_id)
        if body is None:
            body = one
        else:
            body["resourceSpans"][0]["scopeSpans"][0]["spans"] += one["resourceSpans"][0]["scopeSpans"][0]["spans"]
    req = urllib.request.Request(otlp_http_url + "/v1/traces", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200, f"OTLP/HTTP answered {r.status}: {r.read()[:500]!r}"
    return ids


def send_zipkin_span(zipkin_url, service, span_name="reminder.deliver"):
    """POST one Zipkin v2 JSON span to <zipkin_url>/api/v2/spans; returns its trace id."""
    trace_id = secrets.token_hex(16)
    span = [{"traceId": trace_id, "id": secrets.token_hex(8), "name": span_name, "kind": "SERVER",
             "timestamp": time.time_ns() // 1000 - 5000, "duration": 5000,
             "localEndpoint": {"serviceName": service}}]
    req = urllib.request.Request(zipkin_url + "/api/v2/spans", data=json.dumps(span).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status in (200, 202), f"Zipkin answered {r.status}"
    return trace_id


def get_trace(query_url, trace_id):
    """GET <query_url>/api/traces/<id>: the trace, or None when the store does not have it."""
    try:
        _, body = _get(f"{query_url}/api/traces/{trace_id}", timeout=10)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise
    data = json.loads(body).get("data") or []
    return data[0] if data else None


def query_traces(query_url, service, limit=20):
    """GET <query_url>/api/traces?service=...: the query API's `data` list. Jaeger's memory
    store refuses a search whose limit is not below its max_traces (HTTP 500)."""
    status, body = _get(f"{query_url}/api/traces?service={urllib.request.quote(service)}&limit={limit}&lookback=1h",
                        timeout=10)
    return json.loads(body).get("data") or []


def wait_for_trace(query_url, service, trace_id, timeout=20.0):
    """Poll the query API until the trace shows up (the batch processor delays writes)."""
    seen = []

    def found():
        try:
            seen[:] = query_traces(query_url, service)
        except urllib.error.HTTPError as e:
            if e.code != 404:  # 404: service not yet known
                raise
        return next((t for t in seen if t.get("traceID", "").lstrip("0") == trace_id.lstrip("0")), None)
    trace = wait_until(found, timeout, every=0.3, retry=(), on_timeout=None)
    if trace:
        return trace
    raise AssertionError(f"trace {trace_id} of {service} not returned by {query_url}/api/traces "
                         f"within {timeout}s; got {[t.get('traceID') for t in seen]}")


def metrics_api(query_url, kind, services, **params):
    """GET <query_url>/api/metrics/<kind> (calls, latencies, errors, minstep: the Monitor tab's
    calls), with service=<each of services> and the other params; returns the decoded JSON
    (a MetricFamily: {"name", "type", "help", "metrics": [{"labels", "metricPoints"}]})."""
    q = [("service", s) for s in services] + [(k, str(v)) for k, v in params.items()]
    status, body = _get(f"{query_url}/api/metrics/{kind}?{urllib.parse.urlencode(q)}", timeout=10)
    return json.loads(body)


FILE_REF = re.compile(r"\$\{file:(/[^}]+)\}")


def web_metric_backend(pod, password=None):
    """The rendered Jaeger config of `pod` (harness.podfiles, its mounts laid out) with every
    ${file:...} login and the metric backend's CA re-rooted into them: (config, the Monitor tab's
    Prometheus backend). `password`: overwrite the mounted password file (a wrong login)."""
    text = pod.local("/etc/jaeger/config.yaml").read_text()
    refs = set(FILE_REF.findall(text))
    assert refs, f"no ${{file:...}} login in the rendered config:\n{text}"
    for ref in refs:
        local = pod.local(ref)
        assert local.exists(), f"{ref}: not a file of the pod's mounts"
        if password is not None and ref.endswith("/password"):
            local.chmod(0o600)
            local.write_text(password)
        text = text.replace(f"${{file:{ref}}}", f"${{file:{local}}}")
    cfg = yaml.safe_load(text)
    be = cfg["extensions"]["jaeger_storage"]["metric_backends"]["prometheus"]["prometheus"]
    be["tls"]["ca_file"] = str(pod.local(be["tls"]["ca_file"]))
    return cfg, be


def monitor_calls(j):
    """(HTTP status, body) of the Monitor tab's "calls" query for phase5-backend over the last minute."""
    q = {"endTs": int(time.time() * 1000), "lookback": 60_000, "step": 5_000, "ratePer": 60_000}
    try:
        return 200, metrics_api(j.url("http-query"), "calls", ["phase5-backend"], **q)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
