"""Unit tier: Thanos Query (the thanos subchart) as the production profile renders it, and its
switch. Query must deduplicate on the very label the Prometheus replicas carry, find every
replica's sidecar through a Service that really lists each pod's StoreAPI port, and be what
Grafana's Prometheus datasource points at; half a switch is refused naming the missing value;
operator mode renders no Thanos (kube-prometheus-stack users run their own)."""
import json
import re

import pytest
import yaml

from harness import paths
from harness.manifests import containers, pod_spec
from harness.render import NOTES_PROBE, notes, render, render_error, umbrella_copy

pytestmark = pytest.mark.unit

PRODUCTION = (paths.PROFILES_DIR / "production.yaml",)
THANOS_ON = {"thanos.enabled": True, "prometheus.thanos.sidecar.enabled": True,
             "grafana.datasources.prometheus.thanosQuery": True}


@pytest.fixture(scope="module")
def prod():
    return render(PRODUCTION)


def _query(objs):
    (c,) = containers(objs.get("Deployment", "p5-thanos-query"))
    return c


def _flag(container, name):
    values = [a.split("=", 1)[1] for a in container["args"] if a.startswith(f"--{name}=")]
    assert len(values) == 1, f"--{name} given {len(values)} times: {container['args']}"
    return values[0]


def test_production_runs_two_query_replicas_with_a_pdb(prod):
    dep = prod.get("Deployment", "p5-thanos-query")
    assert dep["spec"]["replicas"] == 2
    pdb = prod.get("PodDisruptionBudget", "p5-thanos-query")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert _query(prod)["args"][0] == "query"


def test_one_replica_has_no_pdb():
    objs = render(set_values=THANOS_ON)
    assert objs.get("Deployment", "p5-thanos-query")["spec"]["replicas"] == 1
    assert not objs.find("PodDisruptionBudget", "p5-thanos-query")


def test_query_deduplicates_on_the_label_the_replicas_carry(prod):
    """The replica label is the one external label the prometheus subchart adds per replica
    (not one of the user's externalLabels): Query drops exactly it when merging."""
    plain = yaml.safe_load(render().get("ConfigMap", "p5-prometheus")["data"]["prometheus.yml"])
    ha = yaml.safe_load(prod.get("ConfigMap", "p5-prometheus")["data"]["prometheus.yml"])
    per_replica = set(ha["global"].get("external_labels", {})) - set(plain["global"].get("external_labels", {}))
    assert len(per_replica) == 1, f"expected one per-replica external label, got {per_replica}"
    (label,) = per_replica
    assert ha["global"]["external_labels"][label] == "${POD_NAME}"
    assert _flag(_query(prod), "query.replica-label") == label


def test_query_finds_each_sidecar_through_the_headless_service(prod):
    """dnssrv+_<port name>._tcp.<Service>.<namespace>.svc.<domain>: the Service is headless (one
    SRV record per pod, not one ClusterIP balancing between replicas), selects the Prometheus
    pods and names the port the sidecar listens on."""
    config = json.loads(_flag(_query(prod), "endpoint.sd-config"))
    (endpoint,) = config["endpoints"]
    m = re.fullmatch(r"dnssrv\+_([a-z0-9-]+)\._tcp\.([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local", endpoint["address"])
    assert m, endpoint
    port_name, svc_name, namespace = m.groups()
    assert namespace == "monitoring"
    svc = prod.get("Service", svc_name)
    assert svc["spec"].get("clusterIP") == "None", f"{svc_name} is not headless: SRV gives one ClusterIP"
    sts = prod.get("StatefulSet", "p5-prometheus")
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items(), (svc["spec"]["selector"], pod_labels)
    (port,) = [p for p in svc["spec"]["ports"] if p["name"] == port_name]
    sidecar = next(c for c in containers(sts) if c["name"] == "thanos-sidecar")
    (cport,) = [p for p in sidecar["ports"] if p["name"] == port["targetPort"]]
    assert cport["containerPort"] == port["port"]
    assert _flag(sidecar, "grpc-address").endswith(f":{port['port']}")


def test_extra_endpoints_are_added():
    objs = render(set_values={**THANOS_ON, "thanos.query.extraEndpoints": ["store.example:10901"]})
    addresses = [e["address"] for e in json.loads(_flag(_query(objs), "endpoint.sd-config"))["endpoints"]]
    assert addresses[1:] == ["store.example:10901"], addresses


def test_grafana_queries_thanos_query(prod):
    ds = yaml.safe_load(prod.get("ConfigMap", "p5-grafana")["data"]["datasources.yaml"])
    (prom,) = [d for d in ds["datasources"] if d["uid"] == "prometheus"]
    svc = prod.get("Service", "p5-thanos-query")
    (http,) = [p for p in svc["spec"]["ports"] if p["name"] == "http"]
    assert prom["url"] == f"http://p5-thanos-query:{http['port']}"
    assert _flag(_query(prod), "http-address").endswith(f":{http['port']}")
    # Without the switch: the Prometheus Service, as before.
    ds = yaml.safe_load(render().get("ConfigMap", "p5-grafana")["data"]["datasources.yaml"])
    assert [d["url"] for d in ds["datasources"] if d["uid"] == "prometheus"] == ["http://p5-prometheus:9090"]


def test_probes_ask_thanos_own_health_paths(prod):
    c = _query(prod)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert c["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "http"}
    assert ports["http"] == 10902


def test_scraped_by_the_stack_job_on_its_http_port(prod):
    ann = prod.get("Service", "p5-thanos-query")["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "10902", ann


def test_pod_is_hardened_and_mounts_no_token(prod):
    dep = prod.get("Deployment", "p5-thanos-query")
    spec = pod_spec(dep)
    assert spec["automountServiceAccountToken"] is False
    sc = _query(prod)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert spec["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("missing, named", [
    ("prometheus.thanos.sidecar.enabled", "prometheus.thanos.sidecar.enabled=true"),
    ("grafana.datasources.prometheus.thanosQuery", "grafana.datasources.prometheus.thanosQuery=true"),
    ("thanos.enabled", "needs thanos.enabled=true"),
])
def test_half_a_switch_is_refused_naming_the_missing_value(missing, named):
    err = render_error(set_values={**THANOS_ON, missing: False})
    assert named in err, err


def test_switch_off_renders_no_thanos_query():
    objs = render()
    assert not [o for o in objs if o["metadata"]["labels"].get("app.kubernetes.io/name") == "thanos"]
    assert not objs.find("Service", "p5-prometheus-headless")


def test_operator_mode_renders_no_thanos(tmp_path):
    values = {**THANOS_ON, "global.operator.enabled": True}
    objs = render(set_values=values)
    assert not [o for o in objs if o["metadata"]["labels"].get("app.kubernetes.io/name") == "thanos"]
    text = notes(umbrella_copy(tmp_path, NOTES_PROBE), (), values)
    assert re.search(r"thanos\s+not rendered in operator mode", text), text


def test_sidecars_missing_alert_expects_every_prometheus_replica(prod):
    """ThanosQuerySidecarsMissing compares Query's sidecar connections with prometheus.replicas:
    production's two replicas, not the default one (tests/rules covers the default's behaviour)."""
    from harness import prometheus as prom
    rules = prod.get("ConfigMap", "p5-prometheus-rules")["data"]["phase5-alerts.yaml"]
    expr = prom.alerts(rules)["ThanosQuerySidecarsMissing"]["expr"]
    assert re.search(r"\)\s*<\s*2\s*$", expr), expr
