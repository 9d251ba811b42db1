"""Conformance tier: every Grafana panel query and trace-to-metrics query is accepted by
Prometheus's own parser (promtool), once Grafana's macros are substituted."""
import subprocess

import pytest

from harness import dashboards as dash
from harness import grafana as gf
from harness import tools
from harness.render import render

pytestmark = pytest.mark.conformance


def promtool_parses(expr):
    promtool = tools.require("promtool")
    proc = subprocess.run([promtool, "--experimental", "promql", "format", expr],
                          capture_output=True, text=True, timeout=30)
    return proc.returncode == 0, (proc.stderr or proc.stdout).strip()


def test_panel_queries_parse_with_promtool():
    bad = []
    for uid, title, expr in dash.panel_queries():
        ok, msg = promtool_parses(expr)
        if not ok:
            bad.append(f"{uid}/{title}: {msg}: {expr}")
    assert not bad, "\n".join(bad)


def test_variable_selectors_parse_with_promtool():
    bad = [f"{uid}: ${var}: {msg}" for uid, var, sel, _ in dash.variable_queries() if sel
           for ok, msg in [promtool_parses(sel)] if not ok]
    assert not bad, "\n".join(bad)


def test_traces_to_metrics_queries_parse_with_promtool():
    jaeger = gf.datasources(render())["jaeger"]["jsonData"]["tracesToMetrics"]
    bad = []
    for q in jaeger["queries"]:
        expr = q["query"].replace("$__tags", 'service="backend"')
        ok, msg = promtool_parses(expr)
        if not ok:
            bad.append(f"{q['name']}: {msg}: {expr}")
    assert not bad, "\n".join(bad)


def test_promtool_rejects_a_broken_query():
    """The check above can fail: promtool refuses what Grafana would show as an error."""
    ok, _ = promtool_parses("sum by (service (rate(http_requests_total[5m]))")
    assert not ok
