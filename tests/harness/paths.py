"""Where things are in the repository."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UMBRELLA = ROOT / "charts" / "phase5-monitoring"
SUBCHARTS_DIR = UMBRELLA / "charts"
PROFILES_DIR = ROOT / "values"
BIN = ROOT / "bin"

# Every component subchart, switched by `<name>.enabled` in the umbrella.
COMPONENTS = (
    "prometheus",
    "alertmanager",
    "grafana",
    "loki",
    "promtail",
    "jaeger",
    "kube-state-metrics",
    "node-exporter",
    "thanos",
)

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
