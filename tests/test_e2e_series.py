"""e2e tier, issue 27: what the rendered Prometheus stores and how it limits scrapes, on the real
Prometheus against the synthetic targets (harness.stack: discovery through a real API server,
the chart's relabelling and metric_relabel_configs unchanged).

test_e2e_pipeline.py proves the keep-lists with the chart's defaults (every rule and panel
returns data; each infrastructure job stores its keep-list and nothing else). This module runs
one stack with a pod of another team beside the Phase 5 workload and with small limits on three
jobs, and proves:
- cAdvisor's series of the other team's pod are not stored, those of the Phase 5 pods and the
  release namespace's pods are (the namespace filter of the cadvisor and kubelet jobs);
- a target over its sample limit (phase5-exporters), over its body size limit (phase5-services)
  and over its label limit (kube-state-metrics) fires ScrapeLimitExceeded with that `limit`, has
  nothing stored (up = 0), and the alert reaches Alertmanager.
"""
import time

import pytest

from harness.stack import Stack
from harness.workload import NAMESPACE, PHASE5_SERVICES, Workload

pytestmark = pytest.mark.e2e

OTHER_NS = "other-team"
LIMITS = {
    "phase5-exporters": {"sampleLimit": 3, "labelLimit": 64, "bodySizeLimit": "0"},
    "phase5-services": {"sampleLimit": 0, "labelLimit": 64, "bodySizeLimit": "1KB"},
    "kube-state-metrics": {"sampleLimit": 0, "labelLimit": 6, "bodySizeLimit": "0"},
}
WANT = {("phase5-exporters", "sample"), ("phase5-services", "body_size")}


def _other_team():
    """A namespace and a one-pod Deployment of a team outside Phase 5."""
    labels = {"app": "billing"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OTHER_NS}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "billing", "namespace": OTHER_NS},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [{"name": "billing", "image": "docker.io/library/busybox:1.37.0"}]}}}},
    ]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, request):
    values = {f"prometheus.scrape.jobs.{job}.limits": lim for job, lim in LIMITS.items()}
    values["prometheus.alerts.ScrapeLimitExceeded.for"] = "2s"
    st = Stack(tmp_path_factory.mktemp("e2e-series"), set_values=values,
               workload=Workload(services=PHASE5_SERVICES), extra_objects=_other_team())
    request.addfinalizer(st.stop)
    st.start()
    return st


def test_cadvisor_stores_the_pod_series_of_phase5_and_the_release_namespace_only(stack):
    def reported():
        """The synthetic cAdvisor reports the other team's pod (read through the pod network, as
        Prometheus scrapes it: https, the ServiceAccount token)."""
        pages = [stack.scrape(t) for t in stack.targets()
                 if t["labels"]["job"] == "cadvisor" and t["health"] == "up"]
        return any(f'namespace="{OTHER_NS}"' in page for page in pages)
    stack.wait(reported, 60, what=f"a cAdvisor target reporting the pod of {OTHER_NS}")
    # Five scrape intervals of cAdvisor answering with the pod: none of its series is stored.
    seen = set()
    deadline = time.monotonic() + 5 * 2
    while time.monotonic() < deadline:
        seen |= {s["metric"].get("namespace") for s in
                 stack.query('count by (namespace) (container_cpu_usage_seconds_total{job="cadvisor"})')}
        time.sleep(1)
    assert OTHER_NS not in seen, f"cAdvisor series of {OTHER_NS} stored: {sorted(seen)}"
    assert {NAMESPACE, stack.namespace} <= seen, f"cAdvisor series stored for {sorted(seen)}"
    assert not stack.query(f'{{job="cadvisor", namespace="{OTHER_NS}"}}')


def _limit_alerts(stack):
    return {(a["labels"].get("job"), a["labels"].get("limit")): a for a in stack.prom_alerts("firing")
            if a["labels"]["alertname"] == "ScrapeLimitExceeded"}


def test_targets_over_their_limits_fire_scrape_limit_exceeded_and_are_not_stored(stack):
    firing = stack.wait(lambda: (got := _limit_alerts(stack)) and
                        (WANT | {("monitoring-stack", "label")}) <= set(got) and got,
                        60, what="ScrapeLimitExceeded for the sample, body size and label limits")
    sample = firing[("phase5-exporters", "sample")]
    assert float(sample["value"]) > LIMITS["phase5-exporters"]["sampleLimit"], sample
    assert sample["labels"]["severity"] == "critical" and sample["labels"]["category"] == "monitoring", sample
    # the label limit: Prometheus' own counter, on its own target
    assert firing[("monitoring-stack", "label")]["labels"]["service"] == f"{stack.release}-prometheus"
    # nothing of those targets is stored: every scrape fails
    for job in ("phase5-exporters", "phase5-services", "kube-state-metrics"):
        ups = {s["value"][1] for s in stack.query(f'up{{job="{job}"}}')}
        assert ups == {"0"}, f"{job}: up {ups}"
        errors = {t["lastError"] for t in stack.targets() if t["labels"]["job"] == job}
        assert all(errors), f"{job}: a target without a scrape error: {errors}"
    assert not stack.query('kube_pod_status_ready{job="kube-state-metrics"}'), "kube-state-metrics series stored"
    # the jobs within their limits are untouched
    assert {s["value"][1] for s in stack.query('up{job="cadvisor"}')} == {"1"}
    # and Alertmanager has them
    got = stack.wait(lambda: {(a["labels"].get("job"), a["labels"].get("limit")) for a in stack.am_alerts()
                              if a["labels"]["alertname"] == "ScrapeLimitExceeded"} >= WANT or None,
                     30, what="ScrapeLimitExceeded in Alertmanager")
    assert got
