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
