"""Unit tier: the rendered NetworkPolicies deny by default and allow exactly the flows the
stack needs, evaluated with Kubernetes' NetworkPolicy semantics (harness/netpol.py).

The chart's endpoints are its rendered pods: a flow names a component (or the `helm test`
pods) and the test takes the labels of that component's pod template from the same render as
the policies, so a label the policies select on and the pods lack fails here. The policies are
on by default (networkPolicy.enabled): every render here is the default-on one, and the flows
are checked for the chart defaults and every profile in values/ too."""
import pytest

from harness import params
from harness.manifests import component, pod_spec
from harness.netpol import External, Pod, allowed
from harness.render import render, render_error, render_raw
from harness.schema import kube_errors

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
    # The `helm test` pods ask the Services by name.
    (HELM_TEST, DNS, 53, "UDP"), (HELM_TEST, DNS, 53, "TCP"),
    # Prometheus' HA replicas scrape each other (the monitoring-stack job).
    (PROM, PROM, 9090, "TCP"),
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
    """networkPolicy.enabled at its default (on); beside the defaults: HA replicas (Prometheus
    scraping its peer, Alertmanager's gossip), Thanos with its object-storage components and
    narrowed selectors."""
    return render(set_values={"prometheus.replicas": 2, "alertmanager.replicas": 2,
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


def _open_pods(objs):
    """The release's pods the render's default deny leaves open (in either direction)."""
    deny = objs.get("NetworkPolicy", f"{REL}-default-deny")
    deny["metadata"].setdefault("namespace", NAMESPACE)
    return {name: p.labels for name, p in release_pods(objs).items()
            if allowed([deny], OTHER, p, 1) or allowed([deny], p, SLACK, 443)}


@pytest.mark.parametrize("values_files", params.profiles())
def test_on_by_default_in_every_profile(values_files):
    """The defaults and every profile (values/, ci/*-values.yaml) render the default deny and
    isolate every pod of the release: no profile loses the policies, dev only widens them."""
    objs = render(values_files, namespace=NAMESPACE)
    names = {p["metadata"]["name"] for p in objs.of_kind("NetworkPolicy")}
    assert {f"{REL}-default-deny", f"{REL}-allow-dns"} <= names, names
    open_pods = _open_pods(objs)
    assert not open_pods, f"pods no NetworkPolicy isolates: {open_pods}"


def test_off_only_when_asked():
    """networkPolicy.enabled: false renders none (NOTES warns, tests/test_unit_notes.py)."""
    assert not render(set_values={"networkPolicy.enabled": False}).of_kind("NetworkPolicy")


def _present(objs, e):
    """Endpoint e runs in this render (a component's pods, or the `helm test` pods)."""
    if not isinstance(e, str):
        return True
    if e == HELM_TEST:
        return bool(_test_pods(objs))
    return any(component(w) == e for w in objs.workloads() if w["kind"] in ("Deployment", "StatefulSet", "DaemonSet"))


def _listens(objs, e, port):
    """Endpoint e's pods declare a container listening on port (anything not a component of the
    release counts as listening): a profile without the Thanos sidecar needs no flow to 10902."""
    if not isinstance(e, str) or e == HELM_TEST:
        return True
    return any(p["containerPort"] == port for w in objs.workloads()
               if w["kind"] in ("Deployment", "StatefulSet", "DaemonSet") and component(w) == e
               for c in w["spec"]["template"]["spec"]["containers"] for p in c.get("ports") or [])


def _jaeger_queries(objs):
    """Where Jaeger's metric backend (jaeger.spanMetrics, the Monitor tab) sends its queries, as
    its rendered configuration says: "prometheus" (the release's Prometheus Service), "thanos"
    (Thanos Query's) or None (off, or another URL)."""
    cm = next((o for o in objs.of_kind("ConfigMap") if component(o) == JAEGER), None)
    body = "\n".join((cm or {}).get("data", {}).values())
    for key, svc in (("prometheus", f"{REL}-prometheus:9090"), ("thanos", f"{REL}-thanos-query:10902")):
        if f'endpoint: "http://{svc}"' in body or f'endpoint: "https://{svc}"' in body:
            return key
    return None


# Flows that exist only where Jaeger's Monitor tab reads from (test_span_metrics_flows_...):
# required / forbidden by the profile's rendered metric backend.
SPM_FLOWS = {(JAEGER, PROM, 9090, "TCP"): "prometheus", (JAEGER, THANOS, 10902, "TCP"): "thanos"}


@pytest.mark.parametrize("values_files", params.profiles())
def test_profile_flows(values_files):
    """Each profile's own default-on render: every required flow between the components it
    runs is allowed, and every forbidden flow between two pods of the release is denied.
    (Flows from other namespaces' pods or to external addresses are the main render's: the
    profiles keep ingressNamespaceSelector at every namespace and apiServerCIDRs at 0.0.0.0/0.)"""
    objs = render(values_files, namespace=NAMESPACE)
    pols = objs.of_kind("NetworkPolicy")
    for p in pols:
        p["metadata"].setdefault("namespace", NAMESPACE)
    for flow in REQUIRED:
        src, dst = flow[:2]
        if not (_present(objs, src) and _present(objs, dst) and _listens(objs, dst, flow[2])):
            continue
        if flow in SPM_FLOWS and _jaeger_queries(objs) != SPM_FLOWS[flow]:
            continue        # the profile's Monitor tab reads elsewhere
        for s_, d in _pairs(objs, flow):
            assert allowed(pols, s_, d, *flow[2:]), f"{_name(flow)} is blocked in this profile"
    for flow in FORBIDDEN:
        src, dst = flow[:2]
        if not (isinstance(src, str) and isinstance(dst, str) and _present(objs, src) and _present(objs, dst)):
            continue
        if flow in SPM_FLOWS and _jaeger_queries(objs) == SPM_FLOWS[flow]:
            flow_needed = True      # the profile's Monitor tab reads there: required, not forbidden
        else:
            flow_needed = False
        for s_, d in _pairs(objs, flow):
            assert allowed(pols, s_, d, *flow[2:]) == flow_needed, \
                f"{_name(flow)} is {'blocked' if flow_needed else 'allowed'} in this profile"


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
    objs = render(set_values={"networkPolicy.apiServerCIDRs": ["10.96.0.1/32"],
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
        docs, _ = render_raw((), {}, chart=chart, namespace=NAMESPACE,
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


def _render_policies(**set_values):
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
    objs, pols = _render_policies(**values)
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


def _policies(objs):
    pols = objs.of_kind("NetworkPolicy")
    for p in pols:
        p["metadata"].setdefault("namespace", NAMESPACE)
    return pols


# The UIs and APIs an ingress controller or a client outside the release may reach, and what
# stays inside: (endpoint, port, protocol).
UIS = [(GRAFANA, 3000, "TCP"), (PROM, 9090, "TCP"), (AM, 9093, "TCP"), (JAEGER, 16686, "TCP"), (THANOS, 10902, "TCP")]
INSIDE = [(LOKI, 3100, "TCP"), (KSM, 8080, "TCP"), (AM, 9094, "TCP"), (AM, 9094, "UDP"),
          (PROMTAIL, 3101, "TCP"), (JAEGER, 8888, "TCP"), (STORE, 10901, "TCP"), (COMPACT, 10902, "TCP")]
THANOS_ALL = {"thanos.enabled": True, "prometheus.thanos.sidecar.enabled": True,
              "grafana.datasources.prometheus.thanosQuery": True, "thanos.objstoreSecret": "bucket",
              "thanos.storeGateway.enabled": True, "thanos.compactor.enabled": True}


def test_ingress_cidrs_reach_the_uis_only():
    """networkPolicy.ingressCIDRs: an address outside the pod network (an ingress controller on
    the host network, a Grafana outside the cluster) reaches the UIs and APIs, nothing else;
    without it, it reaches none of them."""
    outside = External("192.0.2.10")
    for cidrs, want in (([], False), (["192.0.2.0/24"], True)):
        objs = render(set_values={**THANOS_ALL, "networkPolicy.ingressCIDRs": cidrs}, namespace=NAMESPACE)
        pols = _policies(objs)
        for e, port, proto in UIS:
            for d in endpoints(objs, e):
                assert allowed(pols, outside, d, port, proto) == want, \
                    f"{outside.ip} -> {e}:{port}/{proto} with ingressCIDRs {cidrs}: expected {'allowed' if want else 'denied'}"
        for e, port, proto in INSIDE:
            for d in endpoints(objs, e):
                assert not allowed(pols, outside, d, port, proto), f"{outside.ip} -> {e}:{port}/{proto} with ingressCIDRs {cidrs}"


# An identity provider on 8443: a port no policy of the chart opens to any address (443 is
# Loki's, the Store Gateway's and Alertmanager's, to storageCIDRs and receiverCIDRs).
EXTRA_EGRESS = [{"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}], "ports": [{"protocol": "TCP", "port": 8443}]}]
EXTRA_INGRESS = [{"from": [{"namespaceSelector": {"matchLabels": {"team": "logs"}}}], "ports": [{"protocol": "TCP", "port": 3100}]}]


def test_extra_rules_widen_one_component():
    """networkPolicy.extraEgress/extraIngress add the user's rules to the named component's
    policy (Grafana to its identity provider, a namespace reading Loki): that component gains
    exactly them, keeps the chart's flows, and no other component gains anything."""
    idp = External("198.51.100.20")
    logs = Pod({"app": "logcli"}, namespace="logs", namespace_labels={"team": "logs"})
    objs = render(set_values={"networkPolicy.extraEgress": {"grafana": EXTRA_EGRESS},
                              "networkPolicy.extraIngress": {"loki": EXTRA_INGRESS}}, namespace=NAMESPACE)
    pols = _policies(objs)
    base = _policies(render(namespace=NAMESPACE))
    for g in endpoints(objs, GRAFANA):
        assert not allowed(base, g, idp, 8443), "Grafana reaches the identity provider without the extra rule"
        assert allowed(pols, g, idp, 8443), "networkPolicy.extraEgress.grafana is not applied"
        assert not allowed(pols, g, idp, 80), "the extra rule's ports are not kept"
        for p in endpoints(objs, PROM):
            assert allowed(pols, g, p, 9090), "an extra rule removed the chart's own flow Grafana -> Prometheus"
    for lk in endpoints(objs, LOKI):
        assert not allowed(base, logs, lk, 3100)
        assert allowed(pols, logs, lk, 3100), "networkPolicy.extraIngress.loki is not applied"
        assert not allowed(pols, OTHER, lk, 3100)
        assert not allowed(pols, lk, idp, 8443), "Grafana's extra egress reached Loki's policy"
    for e in (AM, PROMTAIL, JAEGER, KSM):
        for s_ in endpoints(objs, e):
            assert not allowed(pols, s_, idp, 8443), f"Grafana's extra egress reached {e}"


@pytest.mark.parametrize("key", ["extraEgress.node-exporter", "extraIngress.grafanna"])
def test_extra_rules_name_a_component_with_a_policy(key):
    """A key that names no component with a policy (a typo, node-exporter on the host network)
    would widen nothing: the render fails naming it."""
    msg = render_error((), {f"networkPolicy.{key}": EXTRA_EGRESS if key.startswith("extraEgress") else EXTRA_INGRESS})
    assert f"networkPolicy.{key}" in msg and "grafana" in msg, msg


def test_extra_rule_fields_are_schema_checked():
    """A misspelt rule field (`form` for `from`) is refused at render time naming the value: a
    rule whose `from` went missing would admit its ports from everywhere."""
    msg = render_error((), {"networkPolicy.extraIngress": {"loki": [{"form": [{"podSelector": {}}], "ports": [{"port": 3100}]}]}})
    assert "networkPolicy" in msg and "extraIngress" in msg and "form" in msg, msg


def test_tls_ports_are_admitted():
    """With TLS and basic auth on Prometheus, Alertmanager and kube-state-metrics (global.web),
    the ports their containers listen on are the ones the chart's clients are admitted to, each
    from every client that uses it: the web config serves HTTPS on the same ports. A port the web
    config might add (an HTTPS listener beside the HTTP one) has no clients here and fails.
    node-exporter (global.web.node-exporter too) runs on the host network, where no policy
    applies: its port is held to the Service by test_unit_components."""
    hash_ = "$2b$10$" + "a" * 53
    web = {c: {"tls": {"enabled": True, "secretName": f"{c}-tls"},
               "basicAuth": {"enabled": True, "users": {"p5": hash_}, "clientSecret": f"{c}-client"}}
           for c in ("prometheus", "alertmanager", "kube-state-metrics", "node-exporter")}
    # Loki's ruler refuses Alertmanager basic auth (test_unit_loki_ruler.py): off here.
    objs = render(set_values={"global.web": web, "alertmanager.replicas": 2, "prometheus.replicas": 2,
                              "loki.ruler.enabled": False}, namespace=NAMESPACE)
    pols = _policies(objs)
    # (component, port, protocol) -> the clients that use it.
    clients = {(PROM, 9090, "TCP"): (GRAFANA, PROM, HELM_TEST),
               (AM, 9093, "TCP"): (PROM, GRAFANA, HELM_TEST),
               (AM, 9094, "TCP"): (AM,), (AM, 9094, "UDP"): (AM,),
               (KSM, 8080, "TCP"): (PROM,), (KSM, 8081, "TCP"): (PROM, HELM_TEST)}
    for e in (PROM, AM, KSM):
        w = next(w for w in objs.workloads() if component(w) == e and w["kind"] in ("StatefulSet", "Deployment"))
        listening = {(e, p["containerPort"], p.get("protocol", "TCP"))
                     for c in w["spec"]["template"]["spec"]["containers"] for p in c.get("ports") or []}
        assert listening == {k for k in clients if k[0] == e}, f"{e} with TLS on listens on {sorted(listening)}"
    for (e, port, proto), srcs in clients.items():
        for src in srcs:
            for a in endpoints(objs, src, peer=e):
                for d in endpoints(objs, e):
                    assert allowed(pols, a, d, port, proto), f"{src} -> {e}:{port}/{proto} (TLS on) is blocked"
    for d in endpoints(objs, AM):
        assert not allowed(pols, OTHER, d, 9094, "TCP"), "the gossip port is open to any pod"
        for src in (GRAFANA, PROM):
            for a in endpoints(objs, src):
                assert not allowed(pols, a, d, 9094, "TCP"), f"{src} reaches the gossip port"


def test_thanos_tls_ports_are_admitted():
    """With TLS and basic auth on Thanos (global.web.thanos), its servers listen on the ports
    they listened on (the web config serves HTTPS on the HTTP port) and every client of them is
    still admitted: Prometheus' monitoring-stack-thanos job to the four HTTP ports, Grafana and
    Jaeger (thanosQuery) and the `helm test` pods to Query's, Query to the StoreAPI ports."""
    hash_ = "$2b$10$" + "a" * 53
    web = {"tls": {"enabled": True, "secretName": "thanos-tls"},
           "basicAuth": {"enabled": True, "users": {"p5": hash_}, "clientSecret": "thanos-client"}}
    values = {**THANOS_ALL, "global.web.thanos": web, "jaeger.spanMetrics.prometheus.thanosQuery": True}
    objs = render(set_values=values, namespace=NAMESPACE)
    plain = render(set_values=THANOS_ALL, namespace=NAMESPACE)
    assert objs.find("Secret", f"{REL}-thanos-web") is not None, "the web config is not on in this render"
    for e in (THANOS, STORE, COMPACT, PROM):
        ports = [sorted((c["name"], p["containerPort"]) for c in pod_spec(w)["containers"] for p in c.get("ports") or [])
                 for m in (objs, plain) for w in m.workloads() if component(w) == e and w["kind"] in ("StatefulSet", "Deployment")]
        assert ports[0] == ports[1], f"{e}: with TLS on it listens on {ports[0]}, before {ports[1]}"
    pols = _policies(objs)
    flows = [(PROM, THANOS, 10902), (PROM, STORE, 10902), (PROM, COMPACT, 10902), (PROM, PROM, 10902),
             (GRAFANA, THANOS, 10902), (JAEGER, THANOS, 10902), (HELM_TEST, THANOS, 10902),
             (HELM_TEST, STORE, 10902), (HELM_TEST, COMPACT, 10902), (THANOS, PROM, 10901), (THANOS, STORE, 10901)]
    for src, dst, port in flows:
        for a in endpoints(objs, src, peer=dst):
            for d in endpoints(objs, dst):
                assert allowed(pols, a, d, port, "TCP"), f"{src} -> {dst}:{port} (Thanos TLS on) is blocked"


def test_operator_mode_guards_what_runs():
    """Operator mode (global.operator.enabled) keeps the policies on: Loki, the log collector and
    Jaeger (what the release still runs) get theirs, the replaced components none, and the
    existing kube-prometheus-stack's Prometheus and Grafana reach them from the namespaces of
    networkPolicy.ingressNamespaceSelector, on the ports the chart's own would use."""
    selector = {"monitoring.example.org/stack": "kps"}
    kps_prom = Pod({"app.kubernetes.io/name": "prometheus"}, namespace="kps", namespace_labels=selector)
    kps_grafana = Pod({"app.kubernetes.io/name": "grafana"}, namespace="kps", namespace_labels=selector)
    elsewhere = Pod({"app.kubernetes.io/name": "prometheus"}, namespace="team-a")
    objs = render(set_values={"global.operator.enabled": True, "networkPolicy.ingressNamespaceSelector": selector},
                  namespace=NAMESPACE)
    pols = _policies(objs)
    names = {p["metadata"]["name"] for p in pols}
    assert {f"{REL}-loki", f"{REL}-alloy", f"{REL}-jaeger", f"{REL}-default-deny"} <= names, names
    assert not names & {f"{REL}-{c}" for c in (PROM, AM, GRAFANA, KSM, THANOS)}, names
    for e, port, src in ((LOKI, 3100, kps_prom), (LOKI, 3100, kps_grafana), (PROMTAIL, 3101, kps_prom),
                         (JAEGER, 8888, kps_prom), (JAEGER, 16686, kps_grafana)):
        for d in endpoints(objs, e):
            assert allowed(pols, src, d, port), f"the existing stack's {src.labels} cannot reach {e}:{port}"
            assert not allowed(pols, elsewhere, d, port), f"{e}:{port} is open to namespaces outside the selector"
    for s_ in endpoints(objs, PROMTAIL):
        for d in endpoints(objs, LOKI):
            assert allowed(pols, s_, d, 3100), "the log collector cannot push to Loki in operator mode"


@pytest.mark.parametrize("values", [
    {"networkPolicy.ingressCIDRs": ["192.0.2.0/24"], "networkPolicy.extraEgress": {"grafana": EXTRA_EGRESS},
     "networkPolicy.extraIngress": {"loki": EXTRA_INGRESS}},
    {"global.operator.enabled": True, "networkPolicy.ingressNamespaceSelector": {"monitoring.example.org/stack": "kps"}},
], ids=["widened", "operator"])
def test_widened_policies_are_valid_kubernetes(values):
    """The policies with the user's rules and CIDRs appended, and operator mode's, are valid
    NetworkPolicies for Kubernetes (strict: an unknown field fails), as the profiles' are
    (tests/test_unit_render.py)."""
    errors = kube_errors(render(set_values=values).of_kind("NetworkPolicy"))
    assert not errors, "\n".join(errors)
