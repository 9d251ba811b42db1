"""Unit tier: the umbrella's one component list (phase5-monitoring.components, templates/_components.tpl)
is what the NetworkPolicies, the `helm test` pods and NOTES read, and its port numbers come from
common.ports, the table the subcharts' containers, Services and configs read too: a port changed
there, or in the subchart value it comes from, shows everywhere; its ports are the ports the subcharts'
Services really have; and the log collector is named for what it runs."""
import re

import pytest

from harness.manifests import containers
from harness.render import NOTES_PROBE, render, render_error, render_raw, umbrella_copy
from harness.render import notes as render_notes

pytestmark = pytest.mark.unit

# The Thanos switch is three values (thanos.enabled and the two it needs, templates/thanos-switch.yaml).
THANOS_ON = {"thanos.enabled": True, "prometheus.thanos.sidecar.enabled": True,
             "grafana.datasources.prometheus.thanosQuery": True}
# Thanos' Store Gateway and Compactor: rows of their own (thanos-store, thanos-compact; chart thanos).
OBJSTORE_ON = {"thanos.objstoreSecret": "bucket", "thanos.storeGateway.enabled": True, "thanos.compactor.enabled": True}
ALL_ON = {"networkPolicy.enabled": True, "alertmanager.replicas": 2, **THANOS_ON, **OBJSTORE_ON}


def _scratch(root):
    """A copy of the umbrella with two scratch templates: the component table and NOTES."""
    return umbrella_copy(root, ("zz-components.yaml", 'components: {{ include "phase5-monitoring.components" . }}\n'),
                         NOTES_PROBE)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return _scratch(tmp_path_factory.mktemp("components"))


def table(chart, **set_values):
    docs, _ = render_raw((), set_values, chart=chart, show_only=("templates/zz-components.yaml",))
    return docs[0]["components"]


def notes(chart, **set_values):
    return render_notes(chart, (), set_values)


def np_ports(objs, name):
    """{(port, protocol)} of every ingress rule of NetworkPolicy `name`."""
    pol = objs.get("NetworkPolicy", name)
    return {(p["port"], p.get("protocol", "TCP")) for rule in pol["spec"].get("ingress", [])
            for p in rule.get("ports", [])}


def _pod_url(objs, name):
    (c,) = objs.get("Pod", name)["spec"]["containers"]
    return c["command"][-1]


def test_every_component_is_listed(scratch):
    assert set(table(scratch)) == {"prometheus", "alertmanager", "grafana", "loki", "promtail", "jaeger",
                                   "kube-state-metrics", "node-exporter", "thanos", "thanos-store", "thanos-compact"}


def test_listed_ports_are_the_services_ports(scratch):
    """The table cannot drift from the subcharts: each of its ports (and Jaeger's enabled
    receivers) is a port of that component's Services, with the same protocol."""
    t = table(scratch, **ALL_ON)
    objs = render(set_values=ALL_ON)
    for key, c in t.items():
        services = [s for s in objs.of_kind("Service")
                    if s["metadata"]["labels"].get("app.kubernetes.io/name") == c["name"]]
        assert any(s["metadata"]["name"] == c["service"] for s in services), f"{key}: no Service {c['service']}"
        have = {(p["port"], p.get("protocol", "TCP")) for s in services for p in s["spec"]["ports"]}
        want = set()
        for pkey, p in c["ports"].items():
            for proto in p["protocol"].split("+"):
                want.add((p["port"], proto))
        want |= {(r["port"], r["protocol"]) for r in c.get("receivers", [])}
        assert want <= have, f"{key}: listed {sorted(want - have)} not on its Services {sorted(have)}"
        assert c["health"]["port"] in c["ports"], f"{key}: health port {c['health']['port']} is not one of its ports"


def test_one_edit_of_a_port_reaches_every_place_that_uses_it(tmp_path):
    """Change Prometheus' port once, in common.ports: its container, listen flag, Service,
    scrape annotation, NetworkPolicy, Grafana's egress and datasource, its helm test pod and
    NOTES all follow, and the old port is left nowhere in the rendered release."""
    chart = _scratch(tmp_path)
    tpl = chart / "charts" / "common" / "templates" / "_ports.tpl"
    text = tpl.read_text()
    edited = text.replace('"prometheus": {"web": 9090,', '"prometheus": {"web": 9191,', 1)
    assert edited != text, "common.ports no longer spells Prometheus' port as expected: update this test"
    tpl.write_text(edited)
    values = {"networkPolicy.enabled": True, "prometheus.thanos.sidecar.enabled": True}
    objs, raw = render(set_values=values, chart=chart), render_raw((), values, chart=chart)[1]
    # 10901/10902: the Thanos sidecar's StoreAPI and its metrics (scraped by Prometheus).
    assert np_ports(objs, "p5-prometheus") == {(9191, "TCP"), (10901, "TCP"), (10902, "TCP")}, np_ports(objs, "p5-prometheus")
    egress = objs.get("NetworkPolicy", "p5-grafana")["spec"]["egress"]
    to_prom = [p["port"] for rule in egress for peer in rule.get("to", [])
               if peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "prometheus"
               for p in rule["ports"]]
    assert to_prom == [9191], f"Grafana's egress to Prometheus: {to_prom}"
    assert _pod_url(objs, "p5-test-prometheus") == "http://p5-prometheus:9191/-/ready"
    svc = objs.get("Service", "p5-prometheus")
    assert svc["metadata"]["annotations"]["prometheus.io/port"] == "9191"
    assert [p["port"] for p in svc["spec"]["ports"] if p["name"] == "http-web"] == [9191]
    sts = objs.get("StatefulSet", "p5-prometheus")["spec"]["template"]["spec"]["containers"]
    assert [p["containerPort"] for p in sts[0]["ports"]] == [9191]
    assert "--web.listen-address=:9191" in sts[0]["args"]
    assert "--prometheus.url=http://localhost:9191" in sts[1]["args"], sts[1]["args"]
    assert "url: http://p5-prometheus:9191" in objs.get("ConfigMap", "p5-grafana")["data"]["datasources.yaml"]
    text = notes(chart)
    assert "port-forward svc/p5-prometheus 9191:9191" in text and "9090" not in text, text
    # (checksum annotations are sha256 hex digests: any digit run can occur in one by chance)
    left = [line for line in raw.splitlines() if "9090" in line and "checksum/" not in line]
    assert not left, left


@pytest.mark.parametrize("collector", ["promtail", "alloy"])
def test_one_edit_of_the_health_paths_reaches_every_probe_and_test_pod(tmp_path, collector):
    """Every path in common.healthPaths moved under /edited: every HTTP probe of every workload
    (liveness, readiness, startup, the Thanos sidecar's), every `helm test` pod and the path
    Jaeger's healthcheck extension serves follow. A probe path written as a literal anywhere
    would keep its old path and fail here."""
    chart = _scratch(tmp_path)
    tpl = chart / "charts" / "common" / "templates" / "_ports.tpl"
    text = tpl.read_text()
    head, sep, rest = text.partition('{{- define "common.healthPaths" -}}')
    table, end, tail = rest.partition("{{- end -}}")
    edited = table.replace('": "/', '": "/edited/')
    assert sep and edited.count("/edited/") >= 15, "common.healthPaths is not spelled as expected: update this test"
    tpl.write_text(head + sep + edited + end + tail)
    values = {"prometheus.thanos.sidecar.enabled": True, "promtail.collector": collector,
              "grafana.sidecar.dashboards.enabled": True}
    objs = render(set_values=values, chart=chart)
    probes = {}
    for w in objs.workloads():
        for c in containers(w):
            for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
                get = (c.get(kind) or {}).get("httpGet")
                if get:
                    probes[f"{w['metadata']['name']}/{c['name']}/{kind}"] = get["path"]
    assert len(probes) >= 17, sorted(probes)
    assert "p5-prometheus/thanos-sidecar/readinessProbe" in probes, sorted(probes)
    assert "p5-grafana/dashboards-sidecar/livenessProbe" in probes, sorted(probes)
    stale = {k: v for k, v in probes.items() if not v.startswith("/edited/")}
    assert not stale, f"probes that ignore common.healthPaths: {stale}"
    tests = {p["metadata"]["name"]: _pod_url(objs, p["metadata"]["name"]) for p in objs.of_kind("Pod")}
    assert len(tests) == 8, sorted(tests)
    stale = {k: v for k, v in tests.items() if "/edited/" not in v}
    assert not stale, f"helm test pods that ignore common.healthPaths: {stale}"
    assert "path: /edited/status" in objs.get("ConfigMap", "p5-jaeger")["data"]["config.yaml"]


def test_node_exporter_port_value_reaches_the_test_pod_and_notes(scratch):
    objs = render(set_values={"node-exporter.port": 9101})
    assert _pod_url(objs, "p5-test-node-exporter") == "http://p5-node-exporter:9101/metrics"
    assert "holds host port 9101 on every node" in notes(scratch, **{"node-exporter.port": 9101})


def test_jaeger_networkpolicy_admits_only_enabled_receivers():
    on = np_ports(render(set_values={"networkPolicy.enabled": True}), "p5-jaeger")
    assert {(4317, "TCP"), (9411, "TCP"), (6831, "UDP"), (14250, "TCP")} <= on, on
    off = np_ports(render(set_values={"networkPolicy.enabled": True, "jaeger.receivers.zipkin.enabled": False,
                                      "jaeger.receivers.jaegerCompact.enabled": False}), "p5-jaeger")
    assert on - off == {(9411, "TCP"), (6831, "UDP")}, f"removed: {sorted(on - off)}"


# ---------------------------------------------------------------- the log collector's name
@pytest.mark.parametrize("collector", ["promtail", "alloy"])
def test_log_collector_is_named_for_what_it_runs(scratch, collector):
    objs = render(set_values={"promtail.collector": collector, "networkPolicy.enabled": True})
    other = {"promtail": "alloy", "alloy": "promtail"}[collector]
    mine = [o for o in objs if o["metadata"]["labels"].get("helm.sh/chart", "").startswith("promtail-")]
    assert {o["kind"] for o in mine} >= {"DaemonSet", "ServiceAccount", "ConfigMap", "Service", "ClusterRole",
                                        "ClusterRoleBinding"}, sorted({o["kind"] for o in mine})
    for o in mine:
        name, label = o["metadata"]["name"], o["metadata"]["labels"]["app.kubernetes.io/name"]
        assert name in (f"p5-{collector}", f"monitoring-p5-{collector}"), f"{o['kind']}/{name}"
        assert label == collector, f"{o['kind']}/{name}: app.kubernetes.io/name={label}"
    ds = objs.get("DaemonSet", f"p5-{collector}")
    assert ds["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == collector
    assert ds["spec"]["template"]["spec"]["serviceAccountName"] == f"p5-{collector}"
    assert not [f"{o['kind']}/{o['metadata']['name']}" for o in objs if other in o["metadata"]["name"]]
    # Whatever selects the collector follows: its own NetworkPolicy, Loki's ingress, the test pod.
    pol = objs.get("NetworkPolicy", f"p5-{collector}")
    assert pol["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == collector
    loki_from = [peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                 for rule in objs.get("NetworkPolicy", "p5-loki")["spec"]["ingress"] for peer in rule["from"]
                 if "podSelector" in peer]
    assert collector in loki_from and other not in loki_from, loki_from
    ready = {"promtail": "/ready", "alloy": "/-/ready"}[collector]
    assert _pod_url(objs, f"p5-test-{collector}") == f"http://p5-{collector}:3101{ready}"
    assert re.search(rf"promtail\s+p5-{collector}\n", notes(scratch, **{"promtail.collector": collector}))


# ---------------------------------------------------------------- name overrides are gone
@pytest.mark.parametrize("component", ["prometheus", "alertmanager", "grafana", "loki", "promtail", "jaeger",
                                       "kube-state-metrics", "node-exporter", "thanos"])
@pytest.mark.parametrize("key", ["nameOverride", "fullnameOverride"])
def test_name_overrides_are_rejected_by_key(component, key):
    """Components address each other by fixed names (<release>-<component>) that no subchart
    could see overridden: the keys are gone and a render that sets them fails naming them."""
    err = render_error(set_values={f"{component}.{key}": "mine"})
    assert f"'/{component}'" in err and f"'{key}' not allowed" in err, err


@pytest.mark.parametrize("component", ["prometheus", "alertmanager", "grafana", "loki", "promtail", "jaeger",
                                       "kube-state-metrics", "node-exporter", "thanos"])
def test_a_disabled_component_leaves_no_empty_selector(component):
    """A disabled subchart's values are not merged into the umbrella's: the list must still
    give every selector a name (the policies of the others still mention it)."""
    objs = render(set_values={"networkPolicy.enabled": True, f"{component}.enabled": False})
    empty = []
    for pol in objs.of_kind("NetworkPolicy"):
        spec = pol["spec"]
        selectors = [spec["podSelector"]] + [peer["podSelector"] for rule in spec.get("ingress", []) + spec.get("egress", [])
                                             for peer in rule.get("from", []) + rule.get("to", []) if "podSelector" in peer]
        empty += [f"{pol['metadata']['name']}: {s}" for s in selectors for v in (s.get("matchLabels") or {}).values() if not v]
    assert not empty, empty


# ---------------------------------------------------------------- a ninth component
FAKE_ROW = ('{"key": "fake", "name": "fake", "ports": {"web": "TCP"}, "health": {"port": "web", "path": "ready"},'
            ' "operator": "replaced", "scrapeJob": "fake",'
            ' "networkPolicy": {"ingress": [{"peers": ["prometheus", "grafana"], "ports": ["web"]}],'
            ' "egress": [{"peers": ["loki"], "ports": ["web"]}]}},\n')
FAKE_SERVICE = """{{- if not (include "common.replaced" .) }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "common.componentFullname" (dict "context" . "component" "fake") }}
  labels:
    {{- include "common.labels" (dict "context" . "component" "fake") | nindent 4 }}
spec:
  ports:
    - name: http-web
      port: {{ include "common.port" (list "fake" "web") }}
  selector:
    app.kubernetes.io/name: fake
{{- end }}
"""


def _with_fake_component(root):
    """An umbrella copy with a ninth component added the way the house plan says one is added:
    its row in common.components (with its port and health path in common.ports and
    common.healthPaths, the tables beside it), its subchart (here one Service, switched off in
    operator mode through common.replaced), its dependency entry and its values section (with the
    schema entry `make schemas` would write). Nothing else of the chart is edited."""
    chart = _scratch(root)
    common = chart / "charts" / "common" / "templates"
    tpl = common / "_components.tpl"
    text = tpl.read_text()
    anchor = ' {"key": "node-exporter",'
    assert text.count(anchor) == 1, "common.components no longer spells node-exporter's row as expected: update this test"
    tpl.write_text(text.replace(anchor, " " + FAKE_ROW + anchor))
    ports = common / "_ports.tpl"
    text = ports.read_text()
    for before, after in (('\n "alertmanager": {"web": 9093,', '\n "fake": {"web": 7777},\n "alertmanager": {"web": 9093,'),
                          ('\n "alertmanager": {"live":', '\n "fake": {"ready": "/healthz"},\n "alertmanager": {"live":')):
        assert text.count(before) == 1, f"common.ports/healthPaths changed shape ({before!r}): update this test"
        text = text.replace(before, after)
    ports.write_text(text)
    sub = chart / "charts" / "fake"
    (sub / "templates").mkdir(parents=True)
    (sub / "Chart.yaml").write_text("apiVersion: v2\nname: fake\nversion: 0.1.0\ndependencies:\n"
                                    "  - name: common\n    version: 0.6.0\n    repository: file://../common\n")
    (sub / "values.yaml").write_text("enabled: true\n")
    (sub / "templates" / "service.yaml").write_text(FAKE_SERVICE)
    with (chart / "Chart.yaml").open("a") as f:
        f.write("  - name: fake\n    version: 0.1.0\n    repository: file://charts/fake\n    condition: fake.enabled\n")
    with (chart / "values.yaml").open("a") as f:
        f.write("\nfake:\n  enabled: true\n")
    import json
    schema = json.loads((chart / "values.schema.json").read_text())
    schema["properties"]["fake"] = {"type": "object", "properties": {"enabled": {"type": "boolean"}}}
    (chart / "values.schema.json").write_text(json.dumps(schema))
    return chart


def test_a_ninth_component_reaches_every_consumer_from_its_table_row(tmp_path):
    """A component added as one row of common.components (plus its subchart) shows up in every
    place that lists components, with no other edit: the harness's component list, NOTES, the
    `helm test` pods, the NetworkPolicies (its own, from the row's flows), Prometheus'
    monitoring-stack job (which leaves it to its own job), and operator mode (replaced: its
    workload and test pod go, NOTES says the existing stack runs it)."""
    from harness import paths
    chart = _with_fake_component(tmp_path)
    keys = [r["key"] for r in paths.component_table(chart)]
    assert keys[keys.index("node-exporter") - 1] == "fake" and len(keys) == len(paths.component_table()) + 1, keys
    assert table(chart)["fake"]["service"] == "p5-fake"

    objs = render(set_values={"networkPolicy.enabled": True}, chart=chart)
    assert objs.get("Service", "p5-fake")
    assert _pod_url(objs, "p5-test-fake") == "http://p5-fake:7777/healthz"
    pol = objs.get("NetworkPolicy", "p5-fake")
    assert pol["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "fake"
    assert np_ports(objs, "p5-fake") == {(7777, "TCP")}
    sources = {peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
               for rule in pol["spec"]["ingress"] for peer in rule["from"]}
    assert sources == {"prometheus", "grafana"}, sources
    (egress,) = pol["spec"]["egress"]
    assert egress["ports"] == [{"protocol": "TCP", "port": 3100}], egress
    prom = objs.get("ConfigMap", "p5-prometheus")["data"]["prometheus.yml"]
    assert 'regex: "p5-kube-state-metrics|p5-fake|p5-node-exporter"' in prom, \
        [line for line in prom.splitlines() if "p5-kube-state-metrics|" in line]
    assert re.search(r"\n  - fake\s+p5-fake\n  - node-exporter ", notes(chart)), notes(chart)

    operator = {"global.operator.enabled": True}
    objs = render(set_values=operator, chart=chart)
    assert not [o for o in objs if o["metadata"]["name"] == "p5-fake"]
    assert "p5-test-fake" not in {p["metadata"]["name"] for p in objs.of_kind("Pod")}
    assert re.search(r"\n  - fake\s+the existing kube-prometheus-stack's \(operator mode\)\n", notes(chart, **operator))
