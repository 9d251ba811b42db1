"""Unit tier: what the umbrella chart itself renders (helm test pods, NOTES)."""
import pytest

from harness import paths
from harness.render import render

pytestmark = pytest.mark.unit

HEALTH = {
    "prometheus": ":9090/-/ready",
    "alertmanager": ":9093/-/ready",
    "grafana": ":3000/api/health",
    "loki": ":3100/ready",
    "alloy": ":3101/-/ready",       # the log collector (promtail subchart), Alloy by default
    "jaeger": ":13133/status",
    "kube-state-metrics": ":8081/readyz",
    "node-exporter": ":9100/metrics",
    # Thanos Query's Service is <release>-thanos-query; off by default, rendered with its switch.
    "thanos": "-query:10902/-/ready",
}
THANOS_ON = {"thanos.enabled": True, "prometheus.thanos.sidecar.enabled": True,
             "grafana.datasources.prometheus.thanosQuery": True}


def test_helm_test_pod_per_enabled_component():
    assert set(HEALTH) - {"alloy"} | {"promtail"} == set(paths.COMPONENTS)
    pods = {p["metadata"]["name"]: p for p in render(set_values=THANOS_ON).of_kind("Pod")}
    for component, suffix in HEALTH.items():
        pod = pods.get(f"p5-test-{component}")
        assert pod, f"no helm test pod for {component}; pods: {sorted(pods)}"
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        url = pod["spec"]["containers"][0]["command"][-1]
        assert url == f"http://p5-{component}{suffix}", f"{component}: test pod checks {url}"
        image = pod["spec"]["containers"][0]["image"]
        assert not image.endswith((":latest",)) and ":" in image.rsplit("/", 1)[-1], f"unpinned image {image}"


def test_helm_test_pods_follow_enabled_and_switch():
    pods = {p["metadata"]["name"] for p in render(set_values={"grafana.enabled": False}).of_kind("Pod")}
    assert "p5-test-grafana" not in pods and "p5-test-prometheus" in pods
    assert not render(set_values={"tests.enabled": False}).of_kind("Pod")


def test_artifacthub_images_match_what_the_chart_runs():
    """Chart.yaml's artifacthub.io/images lists exactly the images the chart can run: the
    defaults (Alloy the log collector), Promtail, the Thanos sidecar and Grafana's dashboard sidecar."""
    import yaml
    from harness.manifests import containers
    chart = yaml.safe_load((paths.UMBRELLA / "Chart.yaml").read_text())
    listed = {i["image"] for i in yaml.safe_load(chart["annotations"]["artifacthub.io/images"])}
    rendered = set()
    for overrides in ({}, {"promtail.collector": "promtail", "prometheus.thanos.sidecar.enabled": True,
                                    "grafana.sidecar.dashboards.enabled": True}):
        rendered |= {c["image"] for o in render(set_values=overrides) for c in containers(o)}
    assert listed == rendered, f"listed but not run: {sorted(listed - rendered)}; run but not listed: {sorted(rendered - listed)}"
