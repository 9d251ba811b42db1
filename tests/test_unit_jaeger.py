"""Unit tier: the Jaeger v2 subchart. The rendered collector configuration, Service and
container agree on every port of the stack's contract; receivers switch off cleanly;
storage renders as configured with credentials only through a Secret; pods are hardened."""
import base64

import pytest
import yaml

from harness import params
from harness.manifests import containers, ident, pod_spec
from harness.render import render, render_error
from harness.schema import kube_errors

pytestmark = pytest.mark.unit

NAME = "p5-jaeger"  # <release>-<component>, the contract's Service name

# The contract's port table: Service port name -> (port, protocol).
QUERY = {"http-query": (16686, "TCP")}
ADMIN = {"http-admin": (13133, "TCP"), "http-metrics": (8888, "TCP")}
# receiver value key -> (port name, port, protocol, collector receiver id, protocol key or None)
RECEIVERS = {
    "otlpGrpc": ("grpc-otlp", 4317, "TCP", "otlp", "grpc"),
    "otlpHttp": ("http-otlp", 4318, "TCP", "otlp", "http"),
    "zipkin": ("http-zipkin", 9411, "TCP", "zipkin", None),
    "jaegerCompact": ("udp-compact", 6831, "UDP", "jaeger", "thrift_compact"),
    "jaegerBinary": ("udp-binary", 6832, "UDP", "jaeger", "thrift_binary"),
    "jaegerThriftHttp": ("http-collector", 14268, "TCP", "jaeger", "thrift_http"),
    "jaegerGrpc": ("grpc-collector", 14250, "TCP", "jaeger", "grpc"),
}
ALL_PORTS = {**QUERY, **{v[0]: (v[1], v[2]) for v in RECEIVERS.values()}, **ADMIN}
SENTINEL = "s3cr3t-sentinel-pw"


class Jaeger:
    """The Jaeger objects of one render, with the parsed collector configuration."""

    def __init__(self, values_files=(), set_values=None):
        self.objs = render(values_files, set_values)
        self.configmap = self.objs.get("ConfigMap", NAME)
        self.config = yaml.safe_load(self.configmap["data"]["config.yaml"])
        self.deployment = self.objs.get("Deployment", NAME)
        self.service = self.objs.get("Service", NAME)
        (self.container,) = [c for c in containers(self.deployment) if c["name"] == "jaeger"]
        self.pod = pod_spec(self.deployment)

    def service_ports(self):
        return {p["name"]: (p["port"], p.get("protocol", "TCP")) for p in self.service["spec"]["ports"]}

    def container_ports(self):
        return {p["name"]: (p["containerPort"], p.get("protocol", "TCP")) for p in self.container["ports"]}

    def endpoint(self, receiver_id, proto):
        rcv = (self.config.get("receivers") or {}).get(receiver_id)
        if rcv is None:
            return None
        if proto is None:
            return rcv.get("endpoint")
        return ((rcv.get("protocols") or {}).get(proto) or {}).get("endpoint")

    def pipeline(self):
        return self.config["service"]["pipelines"]["traces"]

    def backends(self):
        return self.config["extensions"]["jaeger_storage"]["backends"]


_cache = {}


def jaeger(values_files=(), set_values=None):
    key = (tuple(values_files), repr(sorted((set_values or {}).items())))
    if key not in _cache:
        _cache[key] = Jaeger(values_files, set_values)
    return _cache[key]


def profile_value(values_files, *path, default=None):
    """A jaeger value as the profile sets it (None: the chart default applies)."""
    node = {}
    for f in values_files:
        node = yaml.safe_load(open(f)) or {}
    node = node.get("jaeger", {})
    for p in path:
        if not isinstance(node, dict) or p not in node:
            return default
        node = node[p]
    return node


# --- ports -------------------------------------------------------------------------------

@pytest.mark.parametrize("values", params.profiles())
def test_every_contract_port_on_service_and_container(values):
    j = jaeger(values)
    svc, ctr = j.service_ports(), j.container_ports()
    problems = []
    for name, (port, proto) in ALL_PORTS.items():
        if svc.get(name) != (port, proto):
            problems.append(f"Service/{NAME}: port {name} is {svc.get(name)}, want {(port, proto)}")
        if ctr.get(name) != (port, proto):
            problems.append(f"Deployment/{NAME} container: port {name} is {ctr.get(name)}, want {(port, proto)}")
    for p in j.service["spec"]["ports"]:
        if p["targetPort"] != p["name"] or p["name"] not in ctr:
            problems.append(f"Service/{NAME}: port {p['name']} targets {p['targetPort']!r}, not a named container port")
    extra = set(svc) - set(ALL_PORTS)
    if extra:
        problems.append(f"Service/{NAME}: ports outside the contract: {sorted(extra)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("values", params.profiles())
def test_service_carries_metrics_annotations(values):
    ann = jaeger(values).service["metadata"].get("annotations") or {}
    want = {"prometheus.io/scrape": "true", "prometheus.io/port": "8888", "prometheus.io/path": "/metrics"}
    got = {k: ann.get(k) for k in want}
    assert got == want, f"Service/{NAME}: scrape annotations {got}, want {want}"


@pytest.mark.parametrize("values", params.profiles())
def test_config_listens_where_the_ports_say(values):
    """Every enabled receiver binds 0.0.0.0:<contract port> (the collector default is localhost,
    unreachable through a Service); query, health and metrics likewise."""
    j = jaeger(values)
    cfg = j.config
    problems = []
    for key, (name, port, _, rid, proto) in RECEIVERS.items():
        ep = j.endpoint(rid, proto)
        if ep != f"0.0.0.0:{port}":
            problems.append(f"ConfigMap/{NAME}: receiver {rid}/{proto or '-'} ({key}) endpoint {ep!r}, want 0.0.0.0:{port}")
    q = cfg["extensions"]["jaeger_query"]["http"]["endpoint"]
    if q != "0.0.0.0:16686":
        problems.append(f"jaeger_query http endpoint {q!r}")
    h = cfg["extensions"]["healthcheckv2"]["http"]["endpoint"]
    if h != "0.0.0.0:13133":
        problems.append(f"healthcheckv2 http endpoint {h!r}")
    prom = cfg["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    if (prom.get("host"), prom.get("port")) != ("0.0.0.0", 8888):
        problems.append(f"telemetry prometheus reader {prom}")
    assert not problems, "\n".join(problems)


# --- pipeline ------------------------------------------------------------------------------

@pytest.mark.parametrize("values", params.profiles())
def test_pipeline_wiring(values):
    """Every configured receiver feeds the traces pipeline (and nothing else does); the
    exporter writes to the backend the query extension reads; extensions are enabled."""
    j = jaeger(values)
    cfg, pipe = j.config, j.pipeline()
    assert sorted(pipe["receivers"]) == sorted(cfg["receivers"]), (
        f"ConfigMap/{NAME}: pipeline receivers {pipe['receivers']} != configured {sorted(cfg['receivers'])}")
    assert set(pipe["processors"]) <= set(cfg["processors"]), f"undefined processors in {pipe['processors']}"
    assert pipe["processors"][0] == "memory_limiter", f"memory_limiter must run first: {pipe['processors']}"
    assert pipe["exporters"][0] == "jaeger_storage_exporter", pipe["exporters"]
    assert set(pipe["exporters"]) <= {"jaeger_storage_exporter", "spanmetrics"}, pipe["exporters"]
    store = cfg["exporters"]["jaeger_storage_exporter"]["trace_storage"]
    assert store in j.backends(), f"exporter writes to {store!r}, backends are {sorted(j.backends())}"
    assert cfg["extensions"]["jaeger_query"]["storage"]["traces"] == store, "query reads another store"
    assert set(cfg["service"]["extensions"]) == set(cfg["extensions"]), (
        f"service.extensions {cfg['service']['extensions']} != defined {sorted(cfg['extensions'])}")


@pytest.mark.parametrize("key", list(RECEIVERS))
def test_receiver_switches_off(key):
    """One receiver off: gone from the config, the Service and the container; the rest stay."""
    name, port, _, rid, proto = RECEIVERS[key]
    j = jaeger(set_values={f"jaeger.receivers.{key}.enabled": False})
    assert j.endpoint(rid, proto) is None, f"{key}=false: {rid}/{proto} still configured"
    assert name not in j.service_ports(), f"{key}=false: Service still has port {name}"
    assert name not in j.container_ports(), f"{key}=false: container still has port {name}"
    for other, (oname, oport, _, orid, oproto) in RECEIVERS.items():
        if other == key:
            continue
        assert j.endpoint(orid, oproto) == f"0.0.0.0:{oport}", f"{key}=false also removed {other}"
        assert oname in j.service_ports() and oname in j.container_ports(), f"{key}=false removed port {oname}"
    assert sorted(j.pipeline()["receivers"]) == sorted(j.config["receivers"])


@pytest.mark.parametrize("group,keys", [
    ("otlp", ["otlpGrpc", "otlpHttp"]),
    ("zipkin", ["zipkin"]),
    ("jaeger", ["jaegerCompact", "jaegerBinary", "jaegerThriftHttp", "jaegerGrpc"]),
])
def test_receiver_family_off_leaves_pipeline(group, keys):
    """With all of a receiver's protocols off, the receiver leaves the config and the pipeline
    (a receiver without protocols, or a pipeline naming an undefined one, fails at start)."""
    j = jaeger(set_values={f"jaeger.receivers.{k}.enabled": False for k in keys})
    assert group not in j.config["receivers"], f"{group} still in receivers: {j.config['receivers']}"
    assert group not in j.pipeline()["receivers"], f"{group} still in pipeline: {j.pipeline()['receivers']}"


def test_every_receiver_off_fails():
    msg = render_error(set_values={f"jaeger.receivers.{k}.enabled": False for k in RECEIVERS})
    assert "every receiver is disabled" in msg, msg


def test_otlp_http_cors():
    j = jaeger(set_values={"jaeger.receivers.otlpHttp.corsAllowedOrigins": ["https://app.example.com"]})
    cors = j.config["receivers"]["otlp"]["protocols"]["http"].get("cors")
    assert cors == {"allowed_origins": ["https://app.example.com"]}, cors
    assert "cors" not in jaeger().config["receivers"]["otlp"]["protocols"]["http"], "CORS on by default"


# --- storage -------------------------------------------------------------------------------

def test_memory_storage_keeps_10000_traces_by_default():
    b = jaeger().backends()
    assert list(b) == ["primary"] and list(b["primary"]) == ["memory"], f"default backends: {b}"
    assert b["primary"]["memory"]["max_traces"] == 10000, b


@pytest.mark.parametrize("values", params.profiles())
def test_profile_trace_limit(values):
    st = profile_value(values, "storage", default={})
    kind = st.get("type", "memory")
    b = jaeger(values).backends()["primary"]
    assert list(b) == [kind], f"{values or 'defaults'}: backend {list(b)}, want {kind}"
    if kind == "memory":
        want = (st.get("memory") or {}).get("maxTraces", 10000)
        assert b["memory"]["max_traces"] == want, f"{values or 'defaults'}: max_traces {b['memory']['max_traces']}, want {want}"


def test_trace_limit_follows_values():
    assert jaeger(set_values={"jaeger.storage.memory.maxTraces": 123456}).backends()["primary"]["memory"]["max_traces"] == 123456


ES_LIKE = [
    pytest.param("elasticsearch", {"jaeger.storage.elasticsearch.serverUrls": ["https://es.db.svc:9200"]}, id="elasticsearch"),
    pytest.param("opensearch", {"jaeger.storage.opensearch.serverUrls": ["https://os.db.svc:9200"]}, id="opensearch"),
]


def _auth(password=SENTINEL, existing=""):
    return {"jaeger.storage.auth.username": "jaeger", "jaeger.storage.auth.password": password,
            "jaeger.storage.auth.existingSecret": existing}


def _no_sentinel(j):
    leaks = [ident(o) for o in j.objs if SENTINEL in yaml.safe_dump(o) and o["kind"] != "Secret"]
    assert not leaks, f"the storage password appears in plain text in {leaks}"


@pytest.mark.parametrize("kind,urls", ES_LIKE)
def test_es_like_storage_reads_password_from_secret_file(kind, urls):
    j = jaeger(set_values={"jaeger.storage.type": kind, "jaeger.replicas": 2, **urls, **_auth()})
    be = j.backends()["primary"][kind]
    assert be["server_urls"] == list(urls.values())[0], be
    basic = be["auth"]["basic"]
    assert basic["username"] == "jaeger" and "password" not in basic, f"{kind} auth: {basic}"
    secret = j.objs.get("Secret", f"{NAME}-storage")
    assert base64.b64decode(secret["data"]["password"]).decode() == SENTINEL
    vols = {v["name"]: v for v in j.pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in j.container["volumeMounts"]}
    pw_dir, pw_file = basic["password_file"].rsplit("/", 1)
    assert pw_dir in mounts, f"password_file {basic['password_file']} is not under a mount: {mounts}"
    vol = vols[mounts[pw_dir]]
    assert vol.get("secret", {}).get("secretName") == f"{NAME}-storage", f"{pw_dir} mounts {vol}"
    assert pw_file in [i["path"] for i in vol["secret"].get("items", [])] or not vol["secret"].get("items")
    assert j.deployment["spec"]["replicas"] == 2
    _no_sentinel(j)


def test_cassandra_storage_reads_password_from_env():
    j = jaeger(set_values={"jaeger.storage.type": "cassandra", "jaeger.storage.cassandra.servers": ["cassandra.db.svc:9042"],
                           **_auth()})
    c = j.backends()["primary"]["cassandra"]
    assert c["connection"]["servers"] == ["cassandra.db.svc:9042"], c
    assert c["schema"]["keyspace"] == "jaeger_v1_phase5", c
    pw = c["connection"]["auth"]["basic"]["password"]
    assert pw.startswith("${env:") and pw.endswith("}"), f"cassandra password {pw!r} is not an ${{env:...}} reference"
    var = pw[len("${env:"):-1]
    env = {e["name"]: e for e in j.container.get("env") or []}
    assert var in env, f"container has no env {var}: {sorted(env)}"
    ref = env[var].get("valueFrom", {}).get("secretKeyRef")
    assert ref == {"name": f"{NAME}-storage", "key": "password"}, f"env {var}: {env[var]}"
    assert "value" not in env[var], f"env {var} carries a literal value"
    j.objs.get("Secret", f"{NAME}-storage")
    _no_sentinel(j)


@pytest.mark.parametrize("kind,extra", ES_LIKE + [
    pytest.param("cassandra", {"jaeger.storage.cassandra.servers": ["c.db.svc"]}, id="cassandra")])
def test_existing_secret_is_used_and_none_is_created(kind, extra):
    j = jaeger(set_values={"jaeger.storage.type": kind, **extra, **_auth(password="", existing="my-es-creds")})
    secrets = [o for o in j.objs.by_component("jaeger") if o["kind"] == "Secret"]
    assert not secrets, f"{kind}: chart created {[ident(s) for s in secrets]}"
    text = yaml.safe_dump(j.deployment)
    assert "my-es-creds" in text, f"{kind}: Deployment does not reference existingSecret"


@pytest.mark.parametrize("kind,urls", ES_LIKE)
def test_storage_without_user_has_no_auth(kind, urls):
    j = jaeger(set_values={"jaeger.storage.type": kind, **urls})
    assert "auth" not in j.backends()["primary"][kind]
    assert not [o for o in j.objs.by_component("jaeger") if o["kind"] == "Secret"]


@pytest.mark.parametrize("values", params.profiles())
def test_no_credential_in_configmap(values):
    text = jaeger(values).configmap["data"]["config.yaml"]
    for line in text.splitlines():
        if "password:" in line:
            assert "${env:" in line or "${file:" in line, f"ConfigMap/{NAME}: literal password line {line.strip()!r}"


@pytest.mark.parametrize("overrides,needle", [
    pytest.param({"jaeger.replicas": 2}, "storage.type=memory", id="replicas-with-memory"),
    pytest.param({"jaeger.storage.type": "elasticsearch"}, "elasticsearch.serverUrls", id="es-without-urls"),
    pytest.param({"jaeger.storage.type": "cassandra"}, "cassandra.servers", id="cassandra-without-servers"),
    pytest.param({"jaeger.storage.type": "opensearch", "jaeger.storage.opensearch.serverUrls": ["http://os:9200"],
                  "jaeger.storage.auth.username": "u"}, "auth.existingSecret", id="user-without-password"),
    pytest.param({"jaeger.storage.type": "mysql"}, "/storage/type", id="unknown-backend"),
    pytest.param({"jaeger.storage.memory.maxTraces": 20}, "/storage/memory/maxTraces", id="too-few-traces"),
    pytest.param({"jaeger.processors.batch.timeout": "1d"}, "/processors/batch/timeout", id="non-go-duration"),
    pytest.param({"jaeger.receivers.zipkin.enabeld": False}, "enabeld", id="receiver-typo"),
])
def test_bad_values_fail_naming_key(overrides, needle):
    msg = render_error(set_values=overrides)
    assert needle in msg, msg


# --- pod -------------------------------------------------------------------------------------

@pytest.mark.parametrize("values", params.profiles())
def test_pod_is_hardened(values):
    j = jaeger(values)
    sc = j.container["securityContext"]
    problems = []
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if "ALL" not in (sc.get("capabilities") or {}).get("drop", []):
        problems.append("capabilities do not drop ALL")
    if not (sc.get("runAsNonRoot") or j.pod["securityContext"].get("runAsNonRoot")):
        problems.append("runAsNonRoot is not set")
    if j.pod.get("automountServiceAccountToken") is not False:
        problems.append("service account token is mounted")
    mounts = {m["mountPath"]: m["name"] for m in j.container["volumeMounts"]}
    vols = {v["name"]: v for v in j.pod["volumes"]}
    if "emptyDir" not in vols.get(mounts.get("/tmp"), {}):
        problems.append("/tmp is not an emptyDir (the root fs is read-only)")
    res = j.container.get("resources") or {}
    if not (res.get("requests") and res.get("limits")):
        problems.append(f"resources {res}")
    image = j.container["image"]
    if not image.startswith("docker.io/jaegertracing/jaeger:2."):
        problems.append(f"image {image} is not a pinned jaegertracing/jaeger 2.x tag")
    assert not problems, f"Deployment/{NAME}: " + "; ".join(problems)


@pytest.mark.parametrize("values", params.profiles())
def test_probes_hit_the_health_extension(values):
    j = jaeger(values)
    hc = j.config["extensions"]["healthcheckv2"]["http"]
    path = hc["status"]["path"]
    assert hc["status"]["enabled"] is True
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = j.container[probe]["httpGet"]
        assert (get["path"], get["port"]) == (path, "http-admin"), f"{probe}: {get}, want {path} on http-admin"


def test_config_file_is_what_the_container_reads():
    j = jaeger()
    args = j.container["args"]
    assert "--config=/etc/jaeger/config.yaml" in args, args
    mounts = {m["mountPath"]: m["name"] for m in j.container["volumeMounts"]}
    vol = {v["name"]: v for v in j.pod["volumes"]}[mounts["/etc/jaeger"]]
    assert vol["configMap"]["name"] == NAME and "config.yaml" in j.configmap["data"]


def test_config_change_rolls_the_pod():
    a = jaeger().deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    b = jaeger(set_values={"jaeger.receivers.zipkin.enabled": False}).deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert a != b, "checksum/config did not change with the configuration"


# --- ingress ---------------------------------------------------------------------------------

@pytest.mark.parametrize("values", params.profiles())
def test_ingress_off_unless_asked(values):
    want = bool(profile_value(values, "ingress", "enabled", default=False))
    assert bool(jaeger(values).objs.find("Ingress", NAME)) == want


def test_ingress_with_tls_serves_the_ui():
    j = jaeger(set_values={"jaeger.ingress.enabled": True, "jaeger.ingress.hosts": ["jaeger.example.com"],
                           "jaeger.ingress.className": "nginx",
                           "jaeger.ingress.tls": [{"secretName": "jaeger-tls", "hosts": ["jaeger.example.com"]}]})
    ing = j.objs.get("Ingress", NAME)
    spec = ing["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"secretName": "jaeger-tls", "hosts": ["jaeger.example.com"]}], spec["tls"]
    (rule,) = spec["rules"]
    assert rule["host"] == "jaeger.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": NAME, "port": {"name": "http-query"}}, backend


def test_base_path_reaches_query_config():
    j = jaeger(set_values={"jaeger.query.basePath": "/jaeger"})
    assert j.config["extensions"]["jaeger_query"]["base_path"] == "/jaeger"


def test_query_self_tracing_off_by_default():
    """Jaeger v2 traces its own query API by default, into the same store (and, in the
    pod, through its own 4317): off unless asked, so the trace limit holds Phase 5 traces."""
    assert jaeger().config["extensions"]["jaeger_query"]["enable_tracing"] is False
    on = jaeger(set_values={"jaeger.query.selfTracing": True})
    assert on.config["extensions"]["jaeger_query"]["enable_tracing"] is True


@pytest.mark.parametrize("overrides", [
    pytest.param({"jaeger.storage.type": "elasticsearch", "jaeger.storage.elasticsearch.serverUrls": ["https://es:9200"],
                  **_auth()}, id="elasticsearch-secret"),
    pytest.param({"jaeger.storage.type": "cassandra", "jaeger.storage.cassandra.servers": ["c:9042"],
                  **_auth(password="", existing="cass-creds")}, id="cassandra-existing-secret"),
    pytest.param({"jaeger.ingress.enabled": True, "jaeger.ingress.tls": [{"secretName": "jaeger-tls"}]}, id="ingress-tls"),
])
def test_variants_valid_for_kubernetes(overrides):
    """The objects only variants render (Secret, env, secret volume, Ingress) pass strict
    Kubernetes schema validation too (the profile-wide test covers the defaults)."""
    errors = kube_errors(jaeger(set_values=overrides).objs.by_component("jaeger"))
    assert not errors, "\n".join(errors)


# --- service performance monitoring (spanMetrics, the Monitor tab) ----------------------------

HEADLESS = f"{NAME}-headless"
HASH = "$2b$10$" + "a" * 53
THANOS_ON = {"thanos.enabled": True, "prometheus.thanos.sidecar.enabled": True,
             "grafana.datasources.prometheus.thanosQuery": True}


def _backend(j):
    """The Prometheus metric backend the query extension reads (None when none)."""
    name = j.config["extensions"]["jaeger_query"]["storage"].get("metrics")
    if name is None:
        return None
    return j.config["extensions"]["jaeger_storage"]["metric_backends"][name]["prometheus"]


@pytest.mark.parametrize("values", params.profiles())
def test_span_metrics_connector_is_wired_into_the_pipelines(values):
    """The spanmetrics connector is an exporter of the traces pipeline (it sees every span that
    is stored) and the receiver of a metrics pipeline that ends in the Prometheus exporter on
    0.0.0.0:8889, the http-spm port of the container and of the headless Service the
    monitoring-stack job scrapes (its annotations name that port); the query extension reads a
    Prometheus metric backend."""
    j = jaeger(values)
    cfg = j.config
    assert "spanmetrics" in j.pipeline()["exporters"], j.pipeline()
    assert "spanmetrics" in cfg["connectors"], sorted(cfg.get("connectors") or {})
    mp = cfg["service"]["pipelines"]["metrics/spanmetrics"]
    assert mp == {"receivers": ["spanmetrics"], "exporters": ["prometheus/spanmetrics"]}, mp
    assert cfg["exporters"]["prometheus/spanmetrics"]["endpoint"] == "0.0.0.0:8889"
    assert j.container_ports()["http-spm"] == (8889, "TCP")
    assert "http-spm" not in j.service_ports(), "the main Service's ports are the contract's"
    svc = j.objs.get("Service", HEADLESS)
    assert [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [("http-spm", 8889, "http-spm")]
    ann = svc["metadata"]["annotations"]
    assert (ann["prometheus.io/scrape"], ann["prometheus.io/port"]) == ("true", "8889"), ann
    assert svc["spec"]["selector"] == j.service["spec"]["selector"]
    assert _backend(j) is not None, "jaeger_query reads no metrics backend"


def test_the_names_jaeger_reads_are_the_names_the_connector_writes():
    """Jaeger's Prometheus reader (reader.go, v1.76.0) asks for <metric_namespace>_calls_total
    and <metric_namespace>_duration_milliseconds_bucket with normalize_calls/normalize_duration
    and latency_unit ms; the connector's namespace, with the Prometheus exporter's translation
    (dots to underscores, _total on counters, the unit's long name on the histogram), gives the
    same names (the e2e tier sees them stored and read)."""
    j = jaeger()
    conn, be = j.config["connectors"]["spanmetrics"], _backend(j)
    exported = conn["namespace"].replace(".", "_")
    assert be["metric_namespace"] == exported, (be, conn)
    assert (conn["histogram"]["unit"], be["latency_unit"]) == ("ms", "ms")
    assert be["normalize_calls"] is True and be["normalize_duration"] is True
    from harness import series_inventory as inv
    names = {n for _, e in inv.jaeger_spm_expressions(j.objs) for s in inv.selectors(e) for n in s.names}
    assert names == {f"{exported}_calls_total", f"{exported}_duration_milliseconds_bucket"}, names


def test_dimensions_buckets_and_limits_follow_the_values():
    j = jaeger(set_values={"jaeger.spanMetrics.dimensions": ["http.request.method", "messaging.system"],
                           "jaeger.spanMetrics.histogramBuckets": ["1ms", "20ms", "1.5s", "1m"],
                           "jaeger.spanMetrics.cardinalityLimit": 200, "jaeger.spanMetrics.metricsExpiration": "2m",
                           "jaeger.spanMetrics.flushInterval": "30s"})
    conn = j.config["connectors"]["spanmetrics"]
    assert conn["dimensions"] == [{"name": "http.request.method"}, {"name": "messaging.system"}], conn
    assert conn["histogram"]["explicit"]["buckets"] == ["1ms", "20ms", "1.5s", "1m"], conn["histogram"]
    assert conn["aggregation_cardinality_limit"] == 200
    assert conn["metrics_expiration"] == "2m" and conn["metrics_flush_interval"] == "30s"
    assert j.config["exporters"]["prometheus/spanmetrics"]["metric_expiration"] == "2m"
    assert conn["aggregation_temporality"] == "AGGREGATION_TEMPORALITY_CUMULATIVE", "Prometheus needs cumulative"
    default = jaeger().config["connectors"]["spanmetrics"]
    assert "dimensions" not in default, "no dimension beyond the four unless asked"
    assert default["histogram"]["explicit"]["buckets"][0] == "5ms"


def test_metrics_backend_is_the_release_prometheus_or_thanos_query():
    assert _backend(jaeger())["endpoint"] == "http://p5-prometheus:9090"
    thanos = jaeger(set_values={**THANOS_ON, "jaeger.spanMetrics.prometheus.thanosQuery": True})
    assert _backend(thanos)["endpoint"] == "http://p5-thanos-query:10902"
    # thanos on, Jaeger not told: the Prometheus Service (one replica at a time), still valid
    assert _backend(jaeger(set_values=THANOS_ON))["endpoint"] == "http://p5-prometheus:9090"
    ext = jaeger(set_values={"jaeger.spanMetrics.prometheus.url": "https://prom.example.com:9443/"})
    assert _backend(ext)["endpoint"] == "https://prom.example.com:9443"


@pytest.mark.parametrize("values", params.profiles())
def test_profiles_read_through_thanos_when_they_run_it(values):
    thanos = any((yaml.safe_load(open(f)) or {}).get("thanos", {}).get("enabled") for f in values)
    want = "http://p5-thanos-query:10902" if thanos else "http://p5-prometheus:9090"
    assert _backend(jaeger(values))["endpoint"] == want


def test_off_leaves_no_connector_exporter_port_or_service():
    j = jaeger(set_values={"jaeger.spanMetrics.enabled": False})
    cfg = j.config
    assert "connectors" not in cfg and "prometheus/spanmetrics" not in cfg["exporters"]
    assert list(cfg["service"]["pipelines"]) == ["traces"] and "spanmetrics" not in j.pipeline()["exporters"]
    assert "metric_backends" not in cfg["extensions"]["jaeger_storage"]
    assert "metrics" not in cfg["extensions"]["jaeger_query"]["storage"]
    assert "http-spm" not in j.container_ports() and not j.objs.find("Service", HEADLESS)


def test_operator_mode_reads_only_a_given_prometheus():
    """In operator mode the existing kube-prometheus-stack's Prometheus has no name the chart
    knows: service performance monitoring stays off unless spanMetrics.prometheus.url names it."""
    op = {"global.operator.enabled": True}
    assert _backend(jaeger(set_values=op)) is None
    assert "connectors" not in jaeger(set_values=op).config
    url = "http://kube-prometheus-stack-prometheus.monitoring:9090"
    on = jaeger(set_values={**op, "jaeger.spanMetrics.prometheus.url": url})
    assert _backend(on)["endpoint"] == url and on.objs.find("Service", HEADLESS)


def test_prometheus_web_auth_is_followed():
    """global.web.prometheus (TLS and basic auth): the backend speaks HTTPS, verifies with the CA
    and the name of Prometheus' certificate, and logs in through the basicauth extension reading
    the client Secret's mounted files (Jaeger's Prometheus backend takes `tls` and an
    `auth.authenticator`; the basicauth extension of v0.140.1 takes username/password only, so they
    come from the collector's ${file:...} provider reading the mounted files).
    No credential in the ConfigMap."""
    web = {"prometheus": {"tls": {"enabled": True, "secretName": "prometheus-tls"},
                          "basicAuth": {"enabled": True, "users": {"p5": HASH}, "clientSecret": "prometheus-client"}}}
    j = jaeger(set_values={"global.web": web})
    be = _backend(j)
    assert be["endpoint"] == "https://p5-prometheus:9090", be
    assert be["tls"] == {"ca_file": "/etc/phase5-web/prometheus/ca.crt",
                         "server_name_override": "p5-prometheus.monitoring.svc"}, be["tls"]
    auth = be["auth"]["authenticator"]
    assert auth in j.config["service"]["extensions"] and auth.startswith("basicauth/")
    assert j.config["extensions"][auth] == {"client_auth": {
        "username": "${file:/etc/phase5-web/prometheus/username}",
        "password": "${file:/etc/phase5-web/prometheus/password}"}}
    mounts = {m["name"]: m["mountPath"] for m in j.container["volumeMounts"]}
    assert mounts.get("web-client-prometheus") == "/etc/phase5-web/prometheus", mounts
    vol = {v["name"]: v for v in j.pod["volumes"]}["web-client-prometheus"]
    secrets = {s["secret"]["name"]: {i["path"] for i in s["secret"]["items"]} for s in vol["projected"]["sources"]}
    assert secrets["prometheus-tls"] == {"ca.crt"} and secrets["prometheus-client"] == {"username", "password"}, secrets
    assert HASH not in j.configmap["data"]["config.yaml"]
    tls_only = jaeger(set_values={"global.web": {"prometheus": {"tls": {"enabled": True, "secretName": "prometheus-tls"}}}})
    assert "auth" not in _backend(tls_only) and not any(k.startswith("basicauth") for k in tls_only.config["extensions"])
    assert "web-client-prometheus" not in {v["name"] for v in jaeger().pod["volumes"]}


@pytest.mark.parametrize("overrides,needle", [
    pytest.param({"jaeger.spanMetrics.histogramBuckets": ["50ms", "10ms"]}, "jaeger.spanMetrics.histogramBuckets", id="descending"),
    pytest.param({"jaeger.spanMetrics.histogramBuckets": ["1s", "1000ms"]}, "jaeger.spanMetrics.histogramBuckets", id="equal"),
    pytest.param({"jaeger.spanMetrics.histogramBuckets": ["0ms", "10ms"]}, "jaeger.spanMetrics.histogramBuckets", id="zero"),
    pytest.param({"jaeger.spanMetrics.histogramBuckets": ["1h"]}, "/spanMetrics/histogramBuckets/0", id="hour-unit"),
    pytest.param({"jaeger.spanMetrics.histogramBuckets": []}, "/spanMetrics/histogramBuckets", id="no-bucket"),
    pytest.param({"jaeger.spanMetrics.dimensions": ["service.name"]}, "/spanMetrics/dimensions/0", id="reserved-dimension"),
    pytest.param({"jaeger.spanMetrics.dimensions": ["http method"]}, "/spanMetrics/dimensions/0", id="bad-dimension"),
    pytest.param({"jaeger.spanMetrics.cardinalityLimit": 0}, "/spanMetrics/cardinalityLimit", id="no-limit"),
    pytest.param({"jaeger.spanMetrics.metricsExpiration": "1d"}, "/spanMetrics/metricsExpiration", id="expiration-unit"),
    pytest.param({"jaeger.spanMetrics.prometheus.url": "prometheus:9090"}, "/spanMetrics/prometheus/url", id="url-no-scheme"),
    pytest.param({"jaeger.spanMetrics.namespace": "x"}, "namespace", id="unknown-key"),
    pytest.param({"jaeger.spanMetrics.prometheus.thanosQuery": True}, "thanos.enabled", id="thanos-query-without-thanos"),
])
def test_bad_span_metrics_values_fail_naming_key(overrides, needle):
    msg = render_error(set_values=overrides)
    assert needle in msg, msg


def test_without_the_release_prometheus_a_given_url_is_read():
    j = jaeger(set_values={"prometheus.enabled": False, "jaeger.spanMetrics.prometheus.url": "http://prom.example.com"})
    assert _backend(j)["endpoint"] == "http://prom.example.com"
