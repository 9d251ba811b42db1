"""Unit tier: each alert's `dashboard` annotation opens a dashboard that shows what the
alert measures: a panel there reads one of the alert's metrics or the recording rules
they feed (DiskSpaceLow once pointed at the overview, which has no disk panel)."""
import pytest

from harness import dashboards as dash
from harness import prometheus as prom
from harness.promql import metric_names

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def rules():
    _, files = prom.rendered()
    return prom.alerts(files["phase5-alerts.yaml"]), prom.records(files["recording-rules.yaml"])


def related(metrics, records):
    """The metrics plus what they feed or are fed by through the recording rules."""
    out = set(metrics)
    for name, rule in records.items():
        inputs = set(metric_names(rule["expr"]))
        if name in out:
            out |= inputs
        if inputs & out:
            out.add(name)
    return out


@pytest.mark.parametrize("alertname", sorted(set(prom.alerts(prom.rendered()[1]["phase5-alerts.yaml"])) - {"Watchdog"}))
def test_dashboard_link_shows_the_alerts_signal(rules, alertname):
    alerts, records = rules
    rule = alerts[alertname]
    uid = rule["annotations"]["dashboard"].rsplit("/d/", 1)[-1]
    wanted = related(metric_names(rule["expr"]), records)
    shown = {m for d_uid, _, expr in dash.panel_queries() if d_uid == uid for m in metric_names(expr)}
    assert wanted & shown, (f"{alertname} links to /d/{uid}, whose panels read none of {sorted(wanted)}; "
                            f"dashboards reading them: "
                            f"{sorted({d for d, _, e in dash.panel_queries() if wanted & set(metric_names(e))})}")
