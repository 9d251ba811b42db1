"""Where things are in the repository."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UMBRELLA = ROOT / "charts" / "phase5-monitoring"
SUBCHARTS_DIR = UMBRELLA / "charts"
PROFILES_DIR = ROOT / "values"
BIN = ROOT / "bin"



def component_table(chart=UMBRELLA):
    """The rows of the stack's one component table, common.components in the common library
    chart (charts/common/templates/_components.tpl), in their order: the same JSON the chart's
    templates parse, read here from the template file so the harness cannot list other
    components than the chart does."""
    text = (chart / "charts" / "common" / "templates" / "_components.tpl").read_text()
    opening = '{{- define "common.components" -}}'
    body = text[text.index(opening) + len(opening):]
    return json.loads(body[:body.index("{{- end -}}")])


# Every component subchart, switched by `<key>.enabled` in the umbrella (common.components; a
# row with "chart" is a second workload of that subchart, e.g. thanos-store of thanos).
COMPONENTS = tuple(dict.fromkeys(row.get("chart", row["key"]) for row in component_table()))
# Each component's app.kubernetes.io/name with the defaults (the log collector, key `promtail`,
# runs Alloy: `alloy`), one per row (thanos, thanos-store, thanos-compact).
COMPONENT_NAMES = {row["key"]: row["name"] for row in component_table()}


# The Kubernetes versions every render is validated against: the chart's floor and the newest.
KUBE_MIN = "1.30.0"
KUBE_MAX = "1.37.0"


def profiles():
    """The ready profiles in values/ (sorted), as paths."""
    return sorted(PROFILES_DIR.glob("*.yaml"))


def ci_values():
    """The chart-testing / cluster-tier scenarios in the umbrella's ci/ directory."""
    return sorted((UMBRELLA / "ci").glob("*-values.yaml"))


def subcharts():
    """Every chart directory under the umbrella's charts/, library included."""
    return sorted(p for p in SUBCHARTS_DIR.iterdir() if (p / "Chart.yaml").exists())


def script(name):
    """scripts/<name>.py loaded as a module, a fresh one per call (a test may patch its globals)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
