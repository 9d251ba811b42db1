"""Unit tier: the monitoring-stack alerts (category `monitoring`: the stack, storage and nodes)
read only series the pinned upstream versions expose, with label matchers on labels those
series have. The names come from harness/ksm.py (kube-state-metrics) and
harness/upstream_metrics.py (Loki, Promtail, Alloy, the kubelet, and Prometheus, Alertmanager
and Jaeger, whose real binaries the conformance tier scrapes to keep these tables honest)."""
import pytest
import yaml

from harness import ksm
from harness import prometheus as prom
from harness import upstream_metrics as um
from harness.paths import SUBCHARTS_DIR
from harness.promql import selectors

pytestmark = pytest.mark.unit


def known_series():
    """{series name: label names a selector may match on} for every documented source; the
    kube_<resource>_labels / _annotations series also carry the label_<key> / annotation_<key>
    labels the chart's rendered --metric-labels-allowlist / --metric-annotations-allowlist allow."""
    out = {name: labels | um.TARGET_LABELS for name, (_, labels) in um.documented().items()}
    for name, (_, labels) in ksm.KSM_METRICS.items():
        out[name] = labels | {"job", "instance"}   # honor_labels: its own namespace/pod, the target's job/instance
    for kind, per_resource in ksm.allowlists(_ksm_args()).items():
        for resource, keys in per_resource.items():
            name = f"kube_{resource.rstrip('s')}_{kind}"
            assert name in out, f"the allowlist names {resource}, whose {name} is not a documented series"
            out[name] |= {f"{kind[:-1]}_{ksm.sanitize(k)}" for k in keys}
    return out


def _ksm_args():
    """The rendered kube-state-metrics container's arguments (defaults)."""
    from harness.render import render_raw
    for doc in render_raw((), {})[0]:
        if doc and doc["kind"] == "Deployment" and doc["metadata"]["name"].endswith("kube-state-metrics"):
            return doc["spec"]["template"]["spec"]["containers"][0]["args"]
    raise AssertionError("no kube-state-metrics Deployment rendered")


def problems(expr, known):
    """What an alert expression reads that no documented source has."""
    out = []
    for name, labels in selectors(expr):
        if name not in known:
            out.append(f"{name}: not a documented series of any pinned component")
        elif labels - known[name]:
            out.append(f"{name}: matches on {sorted(labels - known[name])}, which it does not have")
    return out


def monitoring_alerts():
    _, rules = prom.rendered()
    return {name: rule for name, rule in prom.alerts(rules["phase5-alerts.yaml"]).items()
            if rule["labels"].get("category") == "monitoring"}


def test_the_check_catches_a_wrong_name_and_a_wrong_label():
    known = known_series()
    assert problems('rate(loki_request_duration_seconds_count{status_code="500"}[5m])', known) == []
    assert problems("rate(loki_request_duration_seconds_total[5m])", known)          # not its name
    assert problems('rate(otelcol_receiver_refused_spans[5m])', known)               # the name without _total
    assert problems('loki_discarded_samples_total{user="fake"}', known)              # Loki 2's label, 3 has tenant
    assert problems('kube_daemonset_status_number_available{node="n"}', known)


@pytest.mark.parametrize("alertname", sorted(monitoring_alerts()))
def test_monitoring_alert_reads_only_documented_series(alertname):
    rule = monitoring_alerts()[alertname]
    found = problems(rule["expr"], known_series())
    assert not found, f"{alertname}:\n" + "\n".join(found)


def test_there_are_monitoring_alerts_to_check():
    assert len(monitoring_alerts()) >= 20, sorted(monitoring_alerts())


def _chart_version(spec):
    chart, _, value = spec.partition(":")
    if value:
        node = yaml.safe_load((SUBCHARTS_DIR / chart / "values.yaml").read_text())
        for key in value.split("."):
            node = node[key]
        return str(node)
    return str(yaml.safe_load((SUBCHARTS_DIR / chart / "Chart.yaml").read_text())["appVersion"])


@pytest.mark.parametrize("source", sorted(s for s, v in um.SOURCES.items() if v["chart"]))
def test_documented_tables_describe_the_pinned_versions(source):
    """Bumping a component's version means checking its metric names again: the table says
    which version it describes, and it must be the one the chart deploys."""
    want = _chart_version(um.SOURCES[source]["chart"])
    assert um.SOURCES[source]["version"] == want, (
        f"harness/upstream_metrics.py describes {source} {um.SOURCES[source]['version']}, the chart "
        f"deploys {want}: check the metric names of {want} and update the table")
