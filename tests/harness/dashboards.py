"""The Phase 5 Grafana dashboards, read from the chart's files, and their PromQL queries
with Grafana's macros and template variables substituted so a real Prometheus (or
promql_parser) can take them.

    from harness.dashboards import panel_queries
    for uid, title, expr in panel_queries():
        ...  # GET /api/v1/query?query=expr

No Helm render is needed for the queries: the chart ships the files' queries verbatim. Only
the threshold steps that follow an alert ("${alerts.<Alert>.threshold}", see alert_steps) are
set at render time; rendered() reads the dashboards as a render ships them.
"""
import json
import re

from .paths import SUBCHARTS_DIR

DASHBOARDS_DIR = SUBCHARTS_DIR / "grafana" / "files" / "dashboards"

# What Grafana puts in place of its global macros (values fit a 15s scrape interval).
MACROS = {
    "__rate_interval": "1m",
    "__interval": "30s",
    "__interval_ms": "30000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
# The dashboards' template variables as Grafana fills them by default: namespace, service and
# cluster "All" (their allValue); datasource the chart's Prometheus datasource (its uid). A multi-value
# variable with includeAll whose query finds no value at all is set to All too (Grafana's scenes
# MultiValueVariable), so `cluster` is ".*" also where no series carries a cluster label: Prometheus
# adds prometheus.externalLabels.cluster only to what leaves it (Thanos sidecar, federation, remote
# write), and cluster=~".*" matches a series without the label.
# pod (the drill-down of the per-pod panels, issue 27) has no All: Grafana starts with the first pod
# of its list; ".*" here stands for "some pod" wherever a check needs data from a pod (the query
# benchmark pins the first pod, as Grafana does).
# node (the drill-down of the per-node panels) likewise.
VARIABLES = {"namespace": ".*", "service": ".*", "cluster": ".*", "datasource": "prometheus", "pod": ".*", "node": ".*"}
# The datasource every Prometheus panel, target and query variable names: the $datasource variable.
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

_VAR = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")


def load():
    """{uid: dashboard dict} for every JSON file the chart provisions."""
    out = {}
    for f in sorted(DASHBOARDS_DIR.glob("*.json")):
        d = json.loads(f.read_text())
        out[d["uid"]] = d
    return out


def rendered(objs, name="p5-grafana-dashboards"):
    """{uid: dashboard dict} as a render ships them (the chart's own Grafana's ConfigMap)."""
    out = {}
    for text in objs.get("ConfigMap", name)["data"].values():
        d = json.loads(text)
        out[d["uid"]] = d
    return out


# A threshold step that follows an alert's threshold (grafana.dashboards in the chart), or its
# complement (1 - threshold) on a panel that shows the other share.
ALERT_STEP = re.compile(r"^\$\{(?P<complement>1 - )?alerts\.(?P<alert>\w+)\.threshold\}$")


def threshold_sets(panel):
    """The threshold step lists of a panel: its defaults' and each override's, in order."""
    fc = panel.get("fieldConfig") or {}
    out = []
    t = (fc.get("defaults") or {}).get("thresholds")
    if t:
        out.append(t.get("steps") or [])
    for o in fc.get("overrides") or []:
        for prop in o.get("properties") or []:
            if prop.get("id") == "thresholds":
                out.append(prop["value"].get("steps") or [])
    return out


def alert_steps(dashboard):
    """[(panel title, set index, step index, alert, complement)] for every threshold step of a
    dashboard file that follows an alert (its value "${alerts.<Alert>.threshold}" or
    "${1 - alerts.<Alert>.threshold}")."""
    out = []
    for p in panels(dashboard):
        for i, steps in enumerate(threshold_sets(p)):
            for j, step in enumerate(steps):
                m = ALERT_STEP.match(step.get("value")) if isinstance(step.get("value"), str) else None
                if m:
                    out.append((p["title"], i, j, m["alert"], bool(m["complement"])))
    return out


def panels(dashboard):
    """Every panel, including those nested in collapsed rows."""
    out = []
    for p in dashboard.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


# A number a query compares with that follows an alert's threshold (grafana.exprThresholds in the
# chart): the render puts the alert's threshold there, or the default when there is no Prometheus.
ALERT_EXPR = re.compile(r"\$\{alerts\.(?P<alert>[A-Za-z0-9]+)\.threshold:(?P<default>[0-9][0-9.eE+-]*)\}")


def alert_exprs(dashboard):
    """[(panel title, alert, default)] for every query placeholder of a dashboard file."""
    return [(p["title"], m["alert"], m["default"]) for p, t in prometheus_targets(dashboard)
            for m in ALERT_EXPR.finditer(t["expr"])]


def with_expr_defaults(dashboard):
    """A copy of a dashboard file with each query placeholder as a default render writes it (the
    alert's default threshold): what the chart ships for it with the default values."""
    d = json.loads(json.dumps(dashboard))
    for _, t in prometheus_targets(d):
        t["expr"] = ALERT_EXPR.sub(lambda m: m["default"], t["expr"])
    return d


def substitute(expr, variables=None, macros=None):
    """expr with $var, ${var}, ${var:fmt}, [[var]] and $__macros replaced, and each alert
    threshold placeholder by its default (the alert's default threshold, as the render writes it).
    An unknown variable raises KeyError (a typo in a dashboard must not pass)."""
    values = {**MACROS, **VARIABLES, **(macros or {}), **(variables or {})}
    expr = ALERT_EXPR.sub(lambda m: m["default"], expr)

    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            raise KeyError(f"unknown Grafana variable ${name} in: {expr}")
        return values[name]

    return _VAR.sub(repl, expr)


def datasource_variable(dashboard):
    """The dashboard's datasource template variable (type datasource), or None."""
    return next((v for v in dashboard.get("templating", {}).get("list", []) if v.get("type") == "datasource"), None)


def resolve_datasource(dashboard, ds):
    """The datasource uid Grafana uses for a panel's or target's `datasource`: a "${var}"/"$var" uid is
    the default (current value) of that datasource variable; any other uid is itself."""
    uid = (ds or {}).get("uid")
    m = _VAR.fullmatch(uid or "")
    if not m:
        return uid
    name = m.group(1) or m.group(2) or m.group(3)
    var = next((v for v in dashboard.get("templating", {}).get("list", [])
                if v.get("name") == name and v.get("type") == "datasource"), None)
    if var is None:
        raise KeyError(f"{dashboard.get('uid')}: datasource {uid} names no datasource variable")
    return var["current"]["value"]


def prometheus_targets(dashboard):
    """(panel, target) for every Prometheus target of a dashboard."""
    out = []
    for p in panels(dashboard):
        for t in p.get("targets", []):
            ds = t.get("datasource") or p.get("datasource") or {}
            if ds.get("type") == "prometheus" and t.get("expr"):
                out.append((p, t))
    return out


def panel_queries(variables=None, macros=None):
    """[(dashboard uid, panel title, expr with macros and variables substituted)] for
    every Prometheus target of every provisioned dashboard, in file and panel order."""
    return [
        (uid, p["title"], substitute(t["expr"], variables, macros))
        for uid, d in load().items()
        for p, t in prometheus_targets(d)
    ]


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<sel>.+?)\s*,\s*)?(?P<label>\w+)\s*\)\s*$")


def variable_queries(variables=None):
    """[(dashboard uid, variable name, series selector or None, label)] for every
    label_values() query variable; the selector has its variables substituted."""
    out = []
    for uid, d in load().items():
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") != "query":
                continue
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            m = _LABEL_VALUES.match(q or "")
            if not m:
                raise ValueError(f"{uid}: variable {v['name']}: not a label_values() query: {q!r}")
            sel = m.group("sel")
            out.append((uid, v["name"], substitute(sel, variables) if sel else None, m.group("label")))
    return out
