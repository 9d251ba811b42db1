"""Unit tier: NOTES.txt gives access information and the right warnings.

`helm template` does not render NOTES.txt, so the test renders the same define
(phase5-monitoring.notes) through a scratch template in a copy of the chart."""

import pytest

from harness import paths
from harness.render import NOTES_PROBE, umbrella_copy
from harness.render import notes as render_notes

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def notes_chart(tmp_path_factory):
    return umbrella_copy(tmp_path_factory.mktemp("notes"), NOTES_PROBE)


def notes(chart, values=(), **set_values):
    return render_notes(chart, values, set_values)


def test_notes_txt_uses_the_define():
    assert (paths.UMBRELLA / "templates" / "NOTES.txt").read_text().strip() == '{{ include "phase5-monitoring.notes" . }}'


def test_access_commands_for_every_ui(notes_chart):
    text = notes(notes_chart)
    for svc, port in (("p5-grafana", "3000:3000"), ("p5-prometheus", "9090:9090"),
                      ("p5-alertmanager", "9093:9093"), ("p5-jaeger", "16686:16686")):
        assert f"port-forward svc/{svc} {port}" in text, f"no port-forward for {svc}:\n{text}"
    assert "get secret p5-grafana -o jsonpath='{.data.admin-password}'" in text
    assert "admin123" not in text


def test_grafana_existing_secret_named(notes_chart):
    text = notes(notes_chart, **{"grafana.admin.existingSecret": "my-grafana"})
    assert "Secret my-grafana" in text and "get secret p5-grafana" not in text


def test_promtail_end_of_life_warning(notes_chart):
    """The default (Alloy) says nothing; choosing the end-of-life Promtail warns."""
    assert "end of life" not in notes(notes_chart)
    assert "Promtail, which reached end of life on 2026-03-02" in notes(notes_chart, **{"promtail.collector": "promtail"})


def test_disabled_component_has_no_access_line(notes_chart):
    text = notes(notes_chart, **{"grafana.enabled": False})
    assert "port-forward svc/p5-grafana" not in text and "grafana             disabled" in text


def test_warnings_follow_profile(notes_chart):
    dev = notes(notes_chart, (paths.PROFILES_DIR / "dev.yaml",))
    prod = notes(notes_chart, (paths.PROFILES_DIR / "production.yaml",))
    assert "Prometheus keeps its data in an emptyDir" in dev
    assert "emptyDir" not in prod and "NetworkPolicies are off" not in prod


def test_networkpolicies_off_warns(notes_chart):
    """NetworkPolicies are on by default (and in every profile): NOTES says nothing; turned off,
    it warns and names what any pod can then reach."""
    assert "NetworkPolicies are off" not in notes(notes_chart)
    assert "NetworkPolicies are off" not in notes(notes_chart, (paths.PROFILES_DIR / "dev.yaml",))
    text = notes(notes_chart, **{"networkPolicy.enabled": False})
    assert "WARNING: NetworkPolicies are off (networkPolicy.enabled=false)" in text, text
    for svc in ("p5-prometheus", "p5-alertmanager", "p5-grafana", "p5-loki", "p5-jaeger"):
        assert svc in text.split("NetworkPolicies are off")[1], f"the warning does not name {svc}:\n{text}"
    assert "p5-node-exporter" not in text.split("NetworkPolicies are off")[1], "node-exporter runs on the host network"


def test_host_port_note_for_a_second_release(notes_chart):
    assert "node-exporter holds host port 9100 on every node" in notes(notes_chart)
    assert "holds host port 9101" in notes(notes_chart, **{"node-exporter.port": 9101})
    assert "host port" not in notes(notes_chart, **{"node-exporter.enabled": False})
