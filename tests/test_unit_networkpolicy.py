"""Unit tier: the rendered NetworkPolicies deny by default and allow exactly the flows the
stack needs, evaluated with Kubernetes' NetworkPolicy semantics (harness/netpol.py).

The chart's endpoints are its rendered pods: a flow names a component (or the `helm test`
pods) and the test takes the labels of that component's pod template from the same render as
the policies, so a label the policies select on and the pods lack fails here."""
import pytest

from harness.manifests import component
from harness.netpol import External, Pod, allowed
from harness.render import render, render_raw

pytestmark = pytest.mark.unit

REL, NAMESPACE = "p5", "monitoring"

# The chart's endpoints, by component; resolved to the rendered pods by endpoints().
# The log collector by what runs by default (Alloy; its values key is still `promtail`).
PROM, AM, GRAFANA, LOKI, PROMTAIL, JAEGER, KSM = (
    "prometheus", "alertmanager", "grafana", "loki", "alloy", "jaeger", "kube-state-metrics")
THANOS = "thanos"           # Thanos Query (switched on in the render below)
STORE, COMPACT = "thanos-store", "thanos-compact"   # Store Gateway and Compactor (likewise)
HELM_TEST = "helm-test"     # the umbrella's `helm test` pods
APP = Pod({"app.kubernetes.io/name": "backend"}, namespace="phase5-tasks", namespace_labels={"phase5": "app"})
OTHER = Pod({"app": "random"}, namespace="default")
INTRUDER = Pod({"app": "intruder"}, namespace="monitoring")  # same namespace, not of the release
DNS = Pod({"k8s-app": "kube-dns"}, namespace="kube-system")
API = External("10.96.0.1")
SLACK = External("203.0.113.7")
BUCKET = External("198.51.100.9")   # object storage (S3-compatible), inside networkPolicy.storageCIDRs

# The flows the stack needs, written here by hand as the specification of what must work; the
# chart renders its policies from the flows of its component table (common.components), and
# test_every_flow_of_the_component_table_is_allowed checks the render against that table.
REQUIRED = [
    (PROM, KSM, 8080, "TCP"), (PROM, LOKI, 3100, "TCP"), (PROM, PROMTAIL, 3101, "TCP"),
    (PROM, GRAFANA, 3000, "TCP"), (PROM, AM, 9093, "TCP"), (PROM, JAEGER, 8888, "TCP"),
    (PROM, APP, 8080, "TCP"), (PROM, API, 443, "TCP"),
    (GRAFANA, PROM, 9090, "TCP"), (GRAFANA, LOKI, 3100, "TCP"), (GRAFANA, JAEGER, 16686, "TCP"),
    (GRAFANA, AM, 9093, "TCP"),
    (PROMTAIL, LOKI, 3100, "TCP"), (PROMTAIL, API, 443, "TCP"), (KSM, API, 6443, "TCP"),
    (APP, JAEGER, 4317, "TCP"), (APP, JAEGER, 4318, "TCP"), (APP, JAEGER, 9411, "TCP"),
    (APP, JAEGER, 6831, "UDP"), (APP, JAEGER, 6832, "UDP"), (APP, JAEGER, 14268, "TCP"),
    (AM, AM, 9094, "TCP"), (AM, AM, 9094, "UDP"), (AM, SLACK, 443, "TCP"), (AM, SLACK, 587, "TCP"),
    (HELM_TEST, GRAFANA, 3000, "TCP"), (HELM_TEST, JAEGER, 13133, "TCP"), (HELM_TEST, KSM, 8081, "TCP"),
    # Thanos Query: Grafana's datasource, scraped by Prometheus, reading the sidecars' StoreAPI.
    (GRAFANA, THANOS, 10902, "TCP"), (PROM, THANOS, 10902, "TCP"), (THANOS, PROM, 10901, "TCP"),
    (HELM_TEST, THANOS, 10902, "TCP"),
    # Object storage: Query reads the Store Gateway's StoreAPI; it and the Compactor read the
    # bucket; Prometheus scrapes both; the `helm test` pods ask both.
    (THANOS, STORE, 10901, "TCP"), (STORE, BUCKET, 443, "TCP"), (COMPACT, BUCKET, 443, "TCP"),
    (PROM, STORE, 10902, "TCP"), (PROM, COMPACT, 10902, "TCP"),
    (HELM_TEST, STORE, 10902, "TCP"), (HELM_TEST, COMPACT, 10902, "TCP"),
    # Prometheus scrapes the sidecars beside it (their uploads: ThanosSidecarUploadFailing).
    (PROM, PROM, 10902, "TCP"),
    # Loki's ruler sends the log alerts to every Alertmanager pod (issue 28; loki.ruler.enabled).
    (LOKI, AM, 9093, "TCP"),
    # Jaeger's Monitor tab (jaeger.spanMetrics, on by default): Prometheus scrapes the span
    # metrics, Jaeger queries them from the Prometheus Service (thanosQuery is not set here).
    (PROM, JAEGER, 8889, "TCP"), (JAEGER, PROM, 9090, "TCP"),
] + [(p, DNS, 53, proto) for p in (PROM, AM, GRAFANA, LOKI, PROMTAIL, JAEGER, KSM, THANOS, STORE, COMPACT)
     for proto in ("UDP", "TCP")]

# Flows that must never exist, whatever the table says.
FORBIDDEN = [
    (PROMTAIL, PROM, 9090, "TCP"), (GRAFANA, KSM, 8080, "TCP"), (KSM, PROM, 9090, "TCP"),
    (APP, LOKI, 3100, "TCP"), (APP, KSM, 8080, "TCP"), (OTHER, PROMTAIL, 3101, "TCP"),
    (LOKI, SLACK, 80, "TCP"), (GRAFANA, SLACK, 443, "TCP"),
    (AM, PROM, 9090, "TCP"), (PROMTAIL, SLACK, 443, "TCP"), (APP, JAEGER, 16686, "TCP"),
    (HELM_TEST, SLACK, 443, "TCP"), (PROMTAIL, GRAFANA, 3000, "TCP"),
    # Grafana calls the API server only when its dashboard sidecar runs (off by default).
    (GRAFANA, API, 443, "TCP"),
    (INTRUDER, KSM, 8080, "TCP"), (INTRUDER, LOKI, 3100, "TCP"), (INTRUDER, AM, 9094, "TCP"),
    (INTRUDER, PROMTAIL, 3101, "TCP"), (INTRUDER, PROM, 9090, "TCP"), (INTRUDER, GRAFANA, 3000, "TCP"),
    # Right peer, wrong port: rules name their ports.
    (GRAFANA, PROM, 22, "TCP"), (PROMTAIL, LOKI, 9095, "TCP"), (PROM, KSM, 22, "TCP"), (AM, SLACK, 80, "TCP"),
    # Thanos Query reads the sidecars, not Prometheus' own API, and nothing outside; only
    # Grafana, Prometheus and the UI namespaces reach it.
    (THANOS, PROM, 9090, "TCP"), (THANOS, SLACK, 443, "TCP"), (THANOS, LOKI, 3100, "TCP"),
    (APP, THANOS, 10902, "TCP"), (INTRUDER, THANOS, 10902, "TCP"), (INTRUDER, PROM, 10901, "TCP"),
    (PROMTAIL, THANOS, 10902, "TCP"), (THANOS, THANOS, 10901, "TCP"),
    # Only Query reads the Store Gateway's StoreAPI; Query itself never reaches the bucket; the
    # Store Gateway and the Compactor call no other component.
    (GRAFANA, STORE, 10901, "TCP"), (APP, STORE, 10901, "TCP"), (INTRUDER, STORE, 10901, "TCP"),
    (COMPACT, STORE, 10901, "TCP"), (PROM, STORE, 10901, "TCP"), (THANOS, BUCKET, 443, "TCP"),
    (STORE, PROM, 10901, "TCP"), (STORE, PROM, 9090, "TCP"), (COMPACT, PROM, 9090, "TCP"),
    (STORE, BUCKET, 80, "TCP"), (GRAFANA, COMPACT, 10902, "TCP"), (INTRUDER, COMPACT, 10902, "TCP"),
    # The sidecars' HTTP port is for Prometheus' scrape only.
    (GRAFANA, PROM, 10902, "TCP"), (THANOS, PROM, 10902, "TCP"), (INTRUDER, PROM, 10902, "TCP"),
    # Span metrics: only Prometheus scrapes them; Jaeger reads the Prometheus it is told to (here
    # the Service, not Thanos Query), on its web port only, and nothing outside.
    (APP, JAEGER, 8889, "TCP"), (GRAFANA, JAEGER, 8889, "TCP"), (INTRUDER, JAEGER, 8889, "TCP"),
    (JAEGER, THANOS, 10902, "TCP"), (JAEGER, PROM, 10901, "TCP"), (JAEGER, PROM, 10902, "TCP"),
    (JAEGER, SLACK, 443, "TCP"), (JAEGER, LOKI, 3100, "TCP"),
]


def _name(flow):
    src, dst, port, proto = flow
    n = lambda e: e if isinstance(e, str) else e.ip if isinstance(e, External) else e.labels.get(
        "app.kubernetes.io/name", e.labels.get("k8s-app", e.labels.get("app", "?")))
    return f"{n(src)}->{n(dst)}:{port}/{proto}"


@pytest.fixture(scope="module")
def rendered():
    return render(set_values={"networkPolicy.enabled": True,
                              # Thanos Query with the two values its switch needs.
                              "thanos.enabled": True, "prometheus.thanos.sidecar.enabled": True,
                              "grafana.datasources.prometheus.thanosQuery": True,
                              # Its Store Gateway and Compactor on object storage.
                              "thanos.objstoreSecret": "bucket", "thanos.storeGateway.enabled": True,
                              "thanos.compactor.enabled": True,
                              "networkPolicy.ingressNamespaceSelector": {"phase5-monitoring/ui": "allowed"},
                              # As a user narrows it: the default 0.0.0.0/0 lets API clients reach any :443.
                              "networkPolicy.apiServerCIDRs": ["10.96.0.1/32"]}, namespace=NAMESPACE)


@pytest.fixture(scope="module")
def policies(rendered):
    pols = rendered.of_kind("NetworkPolicy")
    for p in pols:
        p["metadata"].setdefault("namespace", NAMESPACE)
    return pols


def _test_pods(rendered):
    return [p for p in rendered.of_kind("Pod") if (p["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"]


def release_pods(rendered):
    """Every pod the release runs, as the rendered objects label them: each workload's pod
    template and each `helm test` pod, as {name: Pod}."""
    pods = {w["metadata"]["name"]: w["spec"]["template"]["metadata"].get("labels") or {}
            for w in rendered.workloads() if w["kind"] in ("Deployment", "StatefulSet", "DaemonSet")}
    pods.update({p["metadata"]["name"]: p["metadata"].get("labels") or {} for p in _test_pods(rendered)})
    return {name: Pod(labels, namespace=NAMESPACE) for name, labels in pods.items()}


def endpoints(rendered, e, peer=None):
    """The pods that play endpoint `e` in the render: a component's pod template, or the `helm
    test` pods (only the one that tests `peer` when a peer component is named); other
    endpoints (applications, external addresses) as they are."""
    if not isinstance(e, str):
        return [e]
    if e == HELM_TEST:
        pods = _test_pods(rendered)
        if isinstance(peer, str):
            pods = [p for p in pods if p["metadata"]["name"] == f"{REL}-test-{peer}"]
        labels = [p["metadata"].get("labels") or {} for p in pods]
    else:
        labels = [w["spec"]["template"]["metadata"].get("labels") or {} for w in rendered.workloads()
                  if w["kind"] in ("Deployment", "StatefulSet", "DaemonSet") and component(w) == e]
    assert labels, f"the render has no pod of {e}" + (f" testing {peer}" if peer else "")
    return [Pod(lb, namespace=NAMESPACE) for lb in labels]


def test_off_by_default():
    assert not render().of_kind("NetworkPolicy")


def _pairs(rendered, flow):
    src, dst, port, proto = flow
    return [(s, d) for s in endpoints(rendered, src, peer=dst) for d in endpoints(rendered, dst)]


@pytest.mark.parametrize("flow", REQUIRED, ids=_name)
def test_required_flow_allowed(rendered, policies, flow):
    for s, d in _pairs(rendered, flow):
        assert allowed(policies, s, d, *flow[2:]), \
            f"{_name(flow)} is blocked by the rendered NetworkPolicies ({s.labels} -> {getattr(d, 'labels', d)})"


@pytest.mark.parametrize("flow", FORBIDDEN, ids=_name)
def test_unneeded_flow_denied(rendered, policies, flow):
    for s, d in _pairs(rendered, flow):
        assert not allowed(policies, s, d, *flow[2:]), \
            f"{_name(flow)} is allowed but nothing needs it ({getattr(s, 'labels', s)} -> {getattr(d, 'labels', d)})"


def test_ui_reachable_only_from_selected_namespaces(rendered, policies):
    ingress_ns = Pod({"app": "ingress-nginx"}, namespace="ingress", namespace_labels={"phase5-monitoring/ui": "allowed"})
    for grafana in endpoints(rendered, GRAFANA):
        assert allowed(policies, ingress_ns, grafana, 3000)
        assert not allowed(policies, OTHER, grafana, 3000)
    # Alertmanager's UI and API (alertmanager.ingress, issue 28): the same namespaces, its web port only.
    for am in endpoints(rendered, AM):
        assert allowed(policies, ingress_ns, am, 9093)
        assert not allowed(policies, OTHER, am, 9093)
        assert not allowed(policies, ingress_ns, am, 9094), "the cluster port is for the peers only"


def test_every_release_pod_is_isolated(rendered, policies):
    """The default deny selects every pod of the release (each rendered pod template and
    `helm test` pod), in both directions."""
    deny = next(p for p in policies if p["metadata"]["name"] == f"{REL}-default-deny")
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert not deny["spec"].get("ingress") and not deny["spec"].get("egress")
    pods = release_pods(rendered)
    assert {PROM, AM, GRAFANA, LOKI, PROMTAIL, JAEGER, KSM} <= {component(p) for p in rendered.workloads()}
    for name, p in pods.items():
        assert not allowed([deny], OTHER, p, 1), f"{name}: reachable past the default deny; labels {p.labels}"
        assert not allowed([deny], p, SLACK, 443), f"{name}: can leave past the default deny; labels {p.labels}"


def test_dashboard_sidecar_reaches_the_api_server_and_nothing_more():
    """With Grafana's dashboard sidecar on, Grafana's pod may reach the API server (the sidecar
    lists and watches ConfigMaps), still not the outside world."""
    objs = render(set_values={"networkPolicy.enabled": True, "networkPolicy.apiServerCIDRs": ["10.96.0.1/32"],
                              "grafana.sidecar.dashboards.enabled": True}, namespace=NAMESPACE)
    pols = objs.of_kind("NetworkPolicy")
    for p in pols:
        p["metadata"].setdefault("namespace", NAMESPACE)
    for grafana in endpoints(objs, GRAFANA):
        assert allowed(pols, grafana, API, 443, "TCP"), "the dashboard sidecar cannot reach the API server"
        assert not allowed(pols, grafana, SLACK, 443, "TCP"), "Grafana reaches the outside world"
        assert not allowed(pols, grafana, API, 22, "TCP"), "API server rule without its ports"


def _table_flows(rendered):
    """The component-to-component flows of the component table (common.components, as the
    umbrella resolves it: pod names, port numbers, protocols), as (src, dst, port, protocol)
    with endpoints named by their pods' app.kubernetes.io/name."""
    from harness import paths
    from harness.render import umbrella_copy
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        chart = umbrella_copy(tmp, ("zz-components.yaml", 'components: {{ include "phase5-monitoring.components" . }}\n'))
        docs, _ = render_raw((), {"networkPolicy.enabled": True}, chart=chart, namespace=NAMESPACE,
                             show_only=("templates/zz-components.yaml",))
    resolved = docs[0]["components"]
    flows = []
    for row in paths.component_table():
        me = resolved[row["key"]]
        for direction in ("ingress", "egress"):
            for flow in (row.get("networkPolicy") or {}).get(direction, []):
                for peer in flow["peers"]:
                    if peer not in resolved or flow.get("when"):
                        continue
                    owner = resolved[row["key"] if direction == "ingress" else peer]
                    for port in flow["ports"]:
                        if not isinstance(port, str) or port not in owner["ports"]:
                            continue  # values-driven ports (receivers, apiServer) and conditional ones
                        p = owner["ports"][port]
                        src, dst = (resolved[peer]["name"], me["name"]) if direction == "ingress" else (me["name"], resolved[peer]["name"])
                        flows += [(src, dst, p["port"], proto) for proto in p["protocol"].split("+")]
    return flows


def test_every_flow_of_the_component_table_is_allowed(rendered, policies):
    """Each component-to-component flow the table states is allowed between the rendered pods,
    evaluated with Kubernetes' NetworkPolicy semantics (both the source's egress and the
    destination's ingress must admit it), and none of them is one of the forbidden flows."""
    flows = _table_flows(rendered)
    assert len(flows) >= 15, flows
    forbidden = {(s, d, port, proto) for s, d, port, proto in FORBIDDEN if isinstance(s, str) and isinstance(d, str)}
    for flow in flows:
        assert flow not in forbidden, f"the component table states a forbidden flow {_name(flow)}"
        for s, d in _pairs(rendered, flow):
            assert allowed(policies, s, d, *flow[2:]), f"{_name(flow)} from the component table is blocked"


def test_loki_reaches_alertmanager_only_while_its_ruler_runs():
    """Loki -> Alertmanager exists for the ruler's alerts (flow `when: loki.ruler.enabled` in the
    component table): with the ruler off it is denied again."""
    off = render(set_values={"networkPolicy.enabled": True, "loki.ruler.enabled": False}, namespace=NAMESPACE)
    pols = off.of_kind("NetworkPolicy")
    for p in pols:
        p["metadata"].setdefault("namespace", NAMESPACE)
    for s, d in [(s, d) for s in endpoints(off, LOKI) for d in endpoints(off, AM)]:
        assert not allowed(pols, s, d, 9093, "TCP"), "Loki reaches Alertmanager with its ruler off"


def _policies(**set_values):
    objs = render(set_values={"networkPolicy.enabled": True, **set_values}, namespace=NAMESPACE)
    pols = objs.of_kind("NetworkPolicy")
    for p in pols:
        p["metadata"].setdefault("namespace", NAMESPACE)
    return objs, pols


@pytest.mark.parametrize("case", ["thanos-query", "off", "external-url"])
def test_span_metrics_flows_follow_where_jaeger_reads(case):
    """jaeger.spanMetrics: through Thanos Query (thanosQuery) Jaeger reaches Query's HTTP port and
    no longer Prometheus; switched off, neither the query nor the scrape of 8889 is admitted;
    with an external url, Jaeger reaches that URL's port anywhere and no Prometheus of the release."""
    prom_url = External("192.0.2.10")
    values = {
        "thanos-query": {"thanos.enabled": True, "prometheus.thanos.sidecar.enabled": True,
                         "grafana.datasources.prometheus.thanosQuery": True,
                         "jaeger.spanMetrics.prometheus.thanosQuery": True},
        "off": {"jaeger.spanMetrics.enabled": False},
        "external-url": {"jaeger.spanMetrics.prometheus.url": "https://prom.example.com:9443"},
    }[case]
    objs, pols = _policies(**values)
    want = {
        "thanos-query": [((JAEGER, THANOS, 10902), True), ((JAEGER, PROM, 9090), False), ((PROM, JAEGER, 8889), True)],
        "off": [((JAEGER, PROM, 9090), False), ((PROM, JAEGER, 8889), False), ((PROM, JAEGER, 8888), True)],
        "external-url": [((JAEGER, prom_url, 9443), True), ((JAEGER, prom_url, 443), False),
                         ((JAEGER, PROM, 9090), False), ((PROM, JAEGER, 8889), True)],
    }[case]
    for (src, dst, port), expect in want:
        for s, d in _pairs(objs, (src, dst, port, "TCP")):
            assert allowed(pols, s, d, port, "TCP") == expect, \
                f"{case}: {_name((src, dst, port, 'TCP'))} is {'blocked' if expect else 'allowed'}"
