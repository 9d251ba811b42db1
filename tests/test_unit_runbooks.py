"""Unit tier: every alert the chart renders links to a runbook that exists under docs/runbooks,
and each runbook states the alert's rendered facts (expression, threshold, severity, for)."""
import re

import promql_parser
import pytest
import yaml

from harness import prometheus as prom
from harness import spec
from harness.paths import ROOT
from harness.render import render

pytestmark = pytest.mark.unit

RUNBOOKS = ROOT / "docs" / "runbooks"
VALUES = ROOT / "charts" / "phase5-monitoring" / "charts" / "prometheus" / "values.yaml"
LOKI_VALUES = ROOT / "charts" / "phase5-monitoring" / "charts" / "loki" / "values.yaml"
COMPARISONS = {">", "<", ">=", "<=", "==", "!="}


@pytest.fixture(scope="module")
def base_url():
    return yaml.safe_load(VALUES.read_text())["rules"]["runbookBaseUrl"].rstrip("/")


@pytest.fixture(scope="module")
def alerts():
    _, rules = prom.rendered()
    found = prom.alerts(rules["phase5-alerts.yaml"])
    assert set(found) == set(spec.ALERTS), f"rendered alerts {sorted(found)} != {sorted(spec.ALERTS)}"
    return found


def thresholds(expr):
    """The numbers an expression compares a series with (`x > 0.8`), formatted as in the docs."""
    found = []

    def pre(node):
        if isinstance(node, promql_parser.BinaryExpr) and str(node.op) in COMPARISONS:
            for side, other in ((node.lhs, node.rhs), (node.rhs, node.lhs)):
                if isinstance(side, promql_parser.NumberLiteral) and not isinstance(other, promql_parser.NumberLiteral):
                    found.append(f"{side.val:g}")

    promql_parser.walk(promql_parser.parse(expr), pre)
    return sorted(set(found))


def fact(text, name):
    """The first backticked value of the runbook's `| <name> | ... |` table row."""
    m = re.search(rf"^\|\s*{name}\s*\|\s*(.*?)\s*\|\s*$", text, re.M)
    if not m:
        return None
    value = re.match(r"`([^`]*)`", m.group(1))
    return value.group(1) if value else m.group(1).split()[0]


def squash(text):
    return " ".join(text.split())


def test_thresholds_helper_reads_comparisons():
    assert thresholds("a > 0.05") == ["0.05"]
    assert thresholds("label_replace((max(a) == 0) * b, 'x', '$1', 'y', '(.+)')") == ["0"]
    assert thresholds("a >= b") == [] and thresholds("vector(1)") == []


@pytest.fixture(scope="module")
def loki_alerts():
    """Every alert of the Loki ruler's rendered rule files (LogQL; issue 28)."""
    cm = render().get("ConfigMap", "p5-loki-rules")
    found = {}
    for text in (cm.get("data") or {}).values():
        for g in yaml.safe_load(text)["groups"]:
            found.update({r["alert"]: r for r in g["rules"] if "alert" in r})
    assert found, "the Loki ruler renders no alert"
    return found


@pytest.fixture(scope="module")
def all_alerts(loki_alerts):
    """Every alert of every rendered rule file (the SLO file's ErrorBudgetBurn included), the
    Loki ruler's log alerts too."""
    _, rules = prom.rendered()
    found = {name: rule for text in rules.values() for name, rule in prom.alerts(text).items()}
    clash = set(found) & set(loki_alerts)
    assert not clash, f"alert names used by Prometheus and by Loki's ruler: {sorted(clash)}"
    return {**found, **loki_alerts}


def test_every_alert_links_to_an_existing_runbook(all_alerts, base_url):
    problems = []
    for name, rule in all_alerts.items():
        url = rule["annotations"].get("runbook_url", "")
        if not url.startswith(base_url + "/"):
            problems.append(f"{name}: runbook_url {url!r} does not start with {base_url}/")
            continue
        path = url.removeprefix(base_url + "/")
        if path != f"{name}.md":
            problems.append(f"{name}: runbook_url {url!r} should end in /{name}.md")
        if not (RUNBOOKS / path).is_file():
            problems.append(f"{name}: runbook_url {url!r}: no file docs/runbooks/{path}")
    assert not problems, "\n".join(problems)


def test_no_runbook_without_an_alert(all_alerts):
    orphans = sorted(p.name for p in RUNBOOKS.glob("*.md") if p.stem not in all_alerts)
    assert not orphans, f"runbooks for alerts the chart does not render: {orphans}"


def _runbook_facts(name, rule, problems):
    """The facts every alert's runbook states, metric or log alert: its title, the rule's
    severity and `for`, the rendered expression quoted. Appends what is wrong to `problems`;
    returns the runbook's text (None without a runbook)."""
    path = RUNBOOKS / f"{name}.md"
    if not path.is_file():
        problems.append(f"{name}: no runbook")
        return None
    text = path.read_text()
    if not text.startswith(f"# {name}\n"):
        problems.append(f"{name}: runbook does not start with '# {name}'")
    severity = rule["labels"]["severity"]
    if fact(text, "Severity") != severity:
        problems.append(f"{name}: Severity row says {fact(text, 'Severity')!r}, the rule has {severity!r}")
    duration = rule.get("for", "none")
    if fact(text, "For") != duration:
        problems.append(f"{name}: For row says {fact(text, 'For')!r}, the rule has {duration!r}")
    if squash(rule["expr"]) not in squash(text):
        problems.append(f"{name}: runbook does not quote the rendered expression: {squash(rule['expr'])}")
    return text


def test_runbooks_state_the_rendered_threshold_severity_and_duration(alerts):
    problems = []
    for name, rule in alerts.items():
        text = _runbook_facts(name, rule, problems)
        if text is None:
            continue
        want = thresholds(rule["expr"])
        got = fact(text, "Threshold")
        if want and got not in want:
            problems.append(f"{name}: Threshold row says {got!r}, the rendered expression compares with {want}")
        if not want and got != "none":
            problems.append(f"{name}: Threshold row says {got!r}, the rendered expression has no threshold (want 'none')")
    assert not problems, "\n".join(problems)


def test_runbooks_name_the_alert_values(alerts):
    """The Tune section shows the prometheus.alerts.<Name> keys the values file has."""
    values = yaml.safe_load(VALUES.read_text())["alerts"]
    problems = []
    for name in alerts:
        text = (RUNBOOKS / f"{name}.md").read_text()
        block = re.search(rf"^    {name}:\n((?:      .*\n)+)", text, re.M)
        if not block:
            problems.append(f"{name}: no `prometheus.alerts.{name}` block in the runbook")
            continue
        keys = set(re.findall(r"^      (\w+):", block.group(1), re.M))
        if keys != set(values[name]):
            problems.append(f"{name}: runbook tunes {sorted(keys)}, values.yaml has {sorted(values[name])}")
    assert not problems, "\n".join(problems)


def test_log_alert_runbooks_state_the_rendered_facts(loki_alerts):
    """The Loki ruler's alerts (LogQL): the same facts as the metric alerts' runbooks (severity,
    for, the rendered expression; the threshold the expression compares with), and a Tune block
    with the loki.ruler.alerts.<Name> keys the values file has."""
    values = yaml.safe_load(LOKI_VALUES.read_text())["ruler"]["alerts"]
    problems = []
    for name, rule in loki_alerts.items():
        text = _runbook_facts(name, rule, problems)
        if text is None:
            continue
        compared = re.findall(r"\)\s*(?:>|<|>=|<=|==|!=)\s*([0-9.]+)", rule["expr"])
        if [f"{float(c):g}" for c in compared] != [fact(text, "Threshold")]:
            problems.append(f"{name}: Threshold row says {fact(text, 'Threshold')!r}, the expression compares with {compared}")
        block = re.search(rf"^      {name}:\n((?:        .*\n)+)", text, re.M)
        if not block:
            problems.append(f"{name}: no `loki.ruler.alerts.{name}` block in the runbook")
        else:
            keys = set(re.findall(r"^        (\w+):", block.group(1), re.M))
            if keys != set(values[name]):
                problems.append(f"{name}: runbook tunes {sorted(keys)}, values.yaml has {sorted(values[name])}")
    assert not problems, "\n".join(problems)
