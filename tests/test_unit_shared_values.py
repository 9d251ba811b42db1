"""Unit tier: values several components must agree on live once, under `global`:
global.phase5.namespaceRegex (Prometheus' scrape jobs and alert rules, the log collector) and
global.grafanaUrl (Alertmanager's notification links). The old per-component keys are still
accepted for one release: when set they win for their own component, and NOTES warns."""

import pytest
import yaml

from harness import paths
from harness.render import NOTES_PROBE, render, render_error, umbrella_copy
from harness.render import notes as render_notes

pytestmark = pytest.mark.unit

PROM_CONFIG = ("ConfigMap", "p5-prometheus")
RULES = ("ConfigMap", "p5-prometheus-rules")
AM_CONFIG = ("Secret", "p5-alertmanager-config")


def namespace_keeps(objs):
    """The namespace regexes the Phase 5 scrape jobs keep (prometheus.yml, parsed)."""
    config = yaml.safe_load(objs.get(*PROM_CONFIG)["data"]["prometheus.yml"])
    return {r["regex"] for j in config["scrape_configs"] if j["job_name"].startswith("phase5-")
            for r in j["relabel_configs"] if r.get("source_labels") == ["__meta_kubernetes_namespace"]
            and r.get("action") == "keep"}


def collector_config(collector):
    return ("ConfigMap", f"p5-{collector}")


def text(objs, ref):
    """The file contents an object carries (data / stringData), joined."""
    obj = objs.get(*ref)
    return "\n".join(v for k in ("data", "stringData") for v in (obj.get(k) or {}).values())


@pytest.fixture(scope="module")
def notes_chart(tmp_path_factory):
    return umbrella_copy(tmp_path_factory.mktemp("shared"), NOTES_PROBE)


def notes(chart, **set_values):
    return render_notes(chart, (), set_values)


def test_umbrella_holds_each_shared_value_once():
    umbrella = yaml.safe_load((paths.UMBRELLA / "values.yaml").read_text())
    assert umbrella["global"]["phase5"]["namespaceRegex"] == "phase5-.*"
    assert umbrella["global"]["grafanaUrl"] == "http://localhost:3000"
    for sub, keys in (("prometheus", ["phase5", "namespaceRegex"]), ("promtail", ["namespaceRegex"]),
                      ("alertmanager", ["grafanaUrl"]), ("prometheus", ["rules", "grafanaUrl"])):
        v = yaml.safe_load((paths.UMBRELLA / "charts" / sub / "values.yaml").read_text())
        for k in keys:
            v = v[k]
        assert v == "", f"{sub}.{'.'.join(keys)} (deprecated) must default to empty, not {v!r}"
        # Standalone defaults of a subchart (helm lint of the subchart) equal the umbrella's.
        g = yaml.safe_load((paths.UMBRELLA / "charts" / sub / "values.yaml").read_text())["global"]
        if sub in ("prometheus", "promtail"):
            assert g["phase5"] == umbrella["global"]["phase5"], sub
        if sub == "alertmanager":
            assert g["grafanaUrl"] == umbrella["global"]["grafanaUrl"]
    g = yaml.safe_load((paths.UMBRELLA / "charts" / "kube-state-metrics" / "values.yaml").read_text())["global"]
    assert g["phase5"] == umbrella["global"]["phase5"], \
        "kube-state-metrics' standalone global.phase5 (its allowlists) differs from the umbrella's"


@pytest.mark.parametrize("collector", ["promtail", "alloy"])
def test_global_namespace_regex_reaches_prometheus_rules_and_the_collector(collector):
    objs = render(set_values={"global.phase5.namespaceRegex": "team-(a|b)", "promtail.collector": collector})
    assert namespace_keeps(objs) == {"team-(a|b)"}, namespace_keeps(objs)
    assert 'namespace=~"team-(a|b)"' in text(objs, RULES)
    assert "team-(a|b)" in text(objs, collector_config(collector))
    assert "phase5-.*" not in text(objs, PROM_CONFIG) + text(objs, RULES) + text(objs, collector_config(collector))


def test_global_namespace_regex_reaches_the_servicemonitors_in_operator_mode():
    objs = render(set_values={"global.phase5.namespaceRegex": "team-.*", "global.operator.enabled": True})
    monitors = objs.of_kind("ServiceMonitor")
    regexes = {r.get("regex") for m in monitors for e in m["spec"]["endpoints"] for r in e.get("relabelings", [])
               if r.get("sourceLabels") == ["__meta_kubernetes_namespace"] and r.get("action") == "keep"}
    assert regexes == {"team-.*"}, regexes


def test_deprecated_namespace_regex_keys_still_win_for_their_component(notes_chart):
    objs = render(set_values={"prometheus.phase5.namespaceRegex": "old-prom-.*",
                              "promtail.namespaceRegex": "old-logs-.*"})
    assert namespace_keeps(objs) == {"old-prom-.*"}, namespace_keeps(objs)
    assert 'namespace=~"old-prom-.*"' in text(objs, RULES)
    assert "old-logs-.*" in text(objs, collector_config("alloy"))
    out = notes(notes_chart, **{"prometheus.phase5.namespaceRegex": "old-prom-.*"})
    assert "WARNING: prometheus.phase5.namespaceRegex is deprecated" in out, out
    assert "set global.phase5.namespaceRegex" in out
    assert 'Prometheus watches the namespaces "old-prom-.*" but the log collector collects "phase5-.*"' in out, out
    out = notes(notes_chart, **{"promtail.namespaceRegex": "phase5-.*"})
    assert "WARNING: promtail.namespaceRegex is deprecated" in out and "disagree" not in out, out


def test_global_grafana_url_reaches_alertmanager_in_both_modes():
    objs = render(set_values={"global.grafanaUrl": "https://grafana.example.org/"})
    assert '{{ define "phase5.grafanaURL" }}https://grafana.example.org{{ end }}' in text(objs, AM_CONFIG)
    objs = render(set_values={"global.grafanaUrl": "https://grafana.example.org", "global.operator.enabled": True})
    (amc,) = objs.of_kind("AlertmanagerConfig")
    body = yaml.safe_dump(amc, width=10_000)
    assert "https://grafana.example.org{{ end" in body and "localhost:3000" not in body


def test_deprecated_grafana_url_keys_still_apply_and_warn(notes_chart):
    objs = render(set_values={"alertmanager.grafanaUrl": "https://old.example.org",
                              "prometheus.rules.grafanaUrl": "https://rules.example.org"})
    assert '{{ define "phase5.grafanaURL" }}https://old.example.org{{ end }}' in text(objs, AM_CONFIG)
    assert "dashboard: https://rules.example.org/d/phase5-overview" in text(objs, RULES)
    out = notes(notes_chart, **{"alertmanager.grafanaUrl": "https://old.example.org",
                                "prometheus.rules.grafanaUrl": "https://rules.example.org"})
    assert "WARNING: alertmanager.grafanaUrl is deprecated" in out and "set global.grafanaUrl" in out, out
    assert "WARNING: prometheus.rules.grafanaUrl is deprecated" in out, out


def test_defaults_warn_about_nothing_deprecated(notes_chart):
    out = notes(notes_chart)
    assert "deprecated" not in out and "disagree" not in out, out


def test_shared_values_are_checked_by_key():
    err = render_error(set_values={"global.phase5.namespaceRegex": ""})
    assert "namespaceRegex" in err, err
    err = render_error(set_values={"global.grafanaUrl": "grafana.example.org"})
    assert "grafanaUrl" in err, err
    err = render_error(set_values={"global.phase5.namespaces": "x"})
    assert "namespaces" in err, err
