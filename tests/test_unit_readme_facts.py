"""Unit tier: statements of the READMEs that the chart itself decides, held to what it renders
(the profile table's persistent volumes, the number of dashboards, which pods mount their
ServiceAccount token), so a changed default cannot leave the documentation behind."""
import json
import re

import pytest

from harness import params, paths
from harness.manifests import component, pod_spec
from harness.render import render

pytestmark = pytest.mark.unit

README = paths.ROOT / "README.md"
# README names of the components (the table says "Prometheus, Alertmanager, Loki").
NAMES = {"prometheus": "Prometheus", "alertmanager": "Alertmanager", "loki": "Loki", "grafana": "Grafana",
         "jaeger": "Jaeger", "promtail": "the log collector", "kube-state-metrics": "kube-state-metrics",
         "node-exporter": "node-exporter"}


def _profile_rows():
    """{profile cell: persistent-volumes cell} of README's Profiles table."""
    text = README.read_text().split("## Profiles", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|") and not line.startswith("|---")]
    header, body = rows[0], rows[1:]
    col = header.index("persistent volumes")
    return {r[0].strip("`"): r[col] for r in body}


def _volumes(objs):
    """The components that get a PersistentVolumeClaim (their own or a StatefulSet's template)."""
    out = {component(o) for o in objs.of_kind("PersistentVolumeClaim")}
    out |= {component(o) for o in objs.of_kind("StatefulSet") if o["spec"].get("volumeClaimTemplates")}
    return out


@pytest.mark.parametrize("values", params.profiles())
def test_profile_table_states_the_volumes_each_profile_creates(values):
    rows = _profile_rows()
    name = str(values[0].relative_to(paths.ROOT)) if values else "(chart defaults)"
    assert name in rows, f"README's Profiles table has no row for {name}; rows: {sorted(rows)}"
    stated = set() if rows[name] == "none" else {n.strip() for n in rows[name].split(",")}
    rendered = {NAMES[c] for c in _volumes(render(values))}
    assert stated == rendered, f"{name}: README says persistent volumes {sorted(stated)}; the render creates {sorted(rendered)}"


def test_architecture_counts_the_dashboards_the_chart_ships():
    dashboards = sorted((paths.SUBCHARTS_DIR / "grafana" / "files" / "dashboards").glob("*.json"))
    m = re.search(r'graf\["Grafana<br/>(\d+) dashboards"\]', README.read_text())
    assert m, "README's architecture diagram no longer says how many dashboards Grafana gets"
    assert int(m.group(1)) == len(dashboards), \
        f"README says {m.group(1)} dashboards; the chart ships {len(dashboards)}: {[json.loads(d.read_text())['title'] for d in dashboards]}"


def test_only_the_pods_that_read_the_api_mount_a_token_as_the_ksm_readme_says():
    readme = (paths.SUBCHARTS_DIR / "kube-state-metrics" / "README.md").read_text()
    assert "as Prometheus and the log\n  collector do" in readme, "the kube-state-metrics README changed its token statement"
    objs = render()
    mounted = {component(w) for w in objs.workloads() if pod_spec(w).get("automountServiceAccountToken") is not False}
    assert mounted == {"prometheus", "alloy", "kube-state-metrics"}, \
        f"pods mounting their ServiceAccount token: {sorted(mounted)}; the kube-state-metrics README names three"


# README's NetworkPolicies table: row -> the component key of common.components.
NP_ROWS = {"Prometheus": "prometheus", "Alertmanager": "alertmanager", "Grafana": "grafana", "Loki": "loki",
           "the log collector (Alloy or Promtail)": "alloy", "Jaeger": "jaeger", "kube-state-metrics": "kube-state-metrics",
           "Thanos Query": "thanos", "Thanos Store Gateway": "thanos-store", "Thanos Compactor": "thanos-compact"}


def _np_rows():
    text = README.read_text().split("\n## NetworkPolicies\n", 1)[1].split("\n## ", 1)[0]
    table = text.split("| pods |", 1)[1].split("\n\n", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.splitlines()[2:]
            if line.startswith("|")]
    return {r[0]: (r[1], r[2]) for r in rows}


def _numbers(cell):
    return {int(n) for n in re.findall(r"\b\d{2,5}\b", cell)}


def test_networkpolicy_table_states_the_rendered_ports():
    """Each row of README's NetworkPolicies table names exactly the ports its component's
    rendered policy admits (everything switched on: the Thanos components, the dashboard
    sidecar), and the ports it names for egress are the rendered ones (the API server's,
    from networkPolicy.apiServerPorts, stand as "the API server")."""
    objs = render(set_values={"thanos.enabled": True, "prometheus.thanos.sidecar.enabled": True,
                              "grafana.datasources.prometheus.thanosQuery": True, "thanos.objstoreSecret": "bucket",
                              "thanos.storeGateway.enabled": True, "thanos.compactor.enabled": True,
                              "grafana.sidecar.dashboards.enabled": True})
    rows = _np_rows()
    assert set(NP_ROWS) <= set(rows), f"README's NetworkPolicies table lacks rows {set(NP_ROWS) - set(rows)}"
    api = {443, 6443}
    for row, key in NP_ROWS.items():
        spec = objs.get("NetworkPolicy", f"p5-{key}")["spec"]
        ports = lambda d: {p["port"] for rule in spec.get(d) or [] for p in rule.get("ports") or [] if "port" in p}
        admit, reach = rows[row]
        assert _numbers(admit) == ports("ingress"), \
            f"README row {row!r} admits {sorted(_numbers(admit))}, the policy {sorted(ports('ingress'))}"
        assert _numbers(reach) <= ports("egress") and ports("egress") - api <= _numbers(reach), \
            f"README row {row!r} reaches {sorted(_numbers(reach))}, the policy {sorted(ports('egress'))}"
