"""Unit tier: the rendered NetworkPolicies deny by default and allow exactly the flows the
stack needs, evaluated with Kubernetes' NetworkPolicy semantics (harness/netpol.py)."""
import pytest

from harness.netpol import External, Pod, allowed
from harness.render import render

pytestmark = pytest.mark.unit

REL = "p5"


def pod(name, component="server", **kw):
    return Pod({"app.kubernetes.io/name": name, "app.kubernetes.io/instance": REL,
                "app.kubernetes.io/part-of": "phase5-monitoring", "app.kubernetes.io/component": component}, **kw)


PROM, AM, GRAFANA, LOKI, PROMTAIL, JAEGER, KSM = (pod(n) for n in (
    "prometheus", "alertmanager", "grafana", "loki", "promtail", "jaeger", "kube-state-metrics"))
HELM_TEST = pod("phase5-monitoring", component="helm-test")
APP = Pod({"app.kubernetes.io/name": "backend"}, namespace="phase5-tasks", namespace_labels={"phase5": "app"})
OTHER = Pod({"app": "random"}, namespace="default")
INTRUDER = Pod({"app": "intruder"}, namespace="monitoring")  # same namespace, not of the release
DNS = Pod({"k8s-app": "kube-dns"}, namespace="kube-system")
API = External("10.96.0.1")
SLACK = External("203.0.113.7")

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
] + [(p, DNS, 53, proto) for p in (PROM, AM, GRAFANA, LOKI, PROMTAIL, JAEGER, KSM) for proto in ("UDP", "TCP")]

FORBIDDEN = [
    (PROMTAIL, PROM, 9090, "TCP"), (GRAFANA, KSM, 8080, "TCP"), (KSM, PROM, 9090, "TCP"),
    (APP, LOKI, 3100, "TCP"), (APP, KSM, 8080, "TCP"), (OTHER, PROMTAIL, 3101, "TCP"),
    (LOKI, SLACK, 80, "TCP"), (JAEGER, PROM, 9090, "TCP"), (GRAFANA, SLACK, 443, "TCP"),
    (AM, PROM, 9090, "TCP"), (PROMTAIL, SLACK, 443, "TCP"), (APP, JAEGER, 16686, "TCP"),
    (HELM_TEST, SLACK, 443, "TCP"), (PROMTAIL, GRAFANA, 3000, "TCP"),
    (INTRUDER, KSM, 8080, "TCP"), (INTRUDER, LOKI, 3100, "TCP"), (INTRUDER, AM, 9094, "TCP"),
    (INTRUDER, PROMTAIL, 3101, "TCP"), (INTRUDER, PROM, 9090, "TCP"), (INTRUDER, GRAFANA, 3000, "TCP"),
    # Right peer, wrong port: rules name their ports.
    (GRAFANA, PROM, 22, "TCP"), (PROMTAIL, LOKI, 9095, "TCP"), (PROM, KSM, 22, "TCP"), (AM, SLACK, 80, "TCP"),
]


def _name(flow):
    src, dst, port, proto = flow
    n = lambda e: e.ip if isinstance(e, External) else e.labels.get(
        "app.kubernetes.io/name", e.labels.get("k8s-app", e.labels.get("app", "?")))
    return f"{n(src)}->{n(dst)}:{port}/{proto}"


@pytest.fixture(scope="module")
def policies():
    objs = render(set_values={"networkPolicy.enabled": True,
                              "networkPolicy.ingressNamespaceSelector": {"phase5-monitoring/ui": "allowed"},
                              # As a user narrows it: the default 0.0.0.0/0 lets API clients reach any :443.
                              "networkPolicy.apiServerCIDRs": ["10.96.0.1/32"]})
    pols = objs.of_kind("NetworkPolicy")
    for p in pols:
        p["metadata"]["namespace"] = "monitoring"
    return pols


def test_off_by_default():
    assert not render().of_kind("NetworkPolicy")


@pytest.mark.parametrize("flow", REQUIRED, ids=_name)
def test_required_flow_allowed(policies, flow):
    assert allowed(policies, *flow), f"{_name(flow)} is blocked by the rendered NetworkPolicies"


@pytest.mark.parametrize("flow", FORBIDDEN, ids=_name)
def test_unneeded_flow_denied(policies, flow):
    assert not allowed(policies, *flow), f"{_name(flow)} is allowed but nothing needs it"


def test_ui_reachable_only_from_selected_namespaces(policies):
    ingress_ns = Pod({"app": "ingress-nginx"}, namespace="ingress", namespace_labels={"phase5-monitoring/ui": "allowed"})
    assert allowed(policies, ingress_ns, GRAFANA, 3000)
    assert not allowed(policies, OTHER, GRAFANA, 3000)


def test_every_release_pod_is_isolated(policies):
    """The default deny selects every pod of the release, in both directions."""
    deny = next(p for p in policies if p["metadata"]["name"] == f"{REL}-default-deny")
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert not deny["spec"].get("ingress") and not deny["spec"].get("egress")
    for p in (PROM, AM, GRAFANA, LOKI, PROMTAIL, JAEGER, KSM):
        assert not allowed([deny], OTHER, p, 1) and not allowed([deny], p, SLACK, 443)
