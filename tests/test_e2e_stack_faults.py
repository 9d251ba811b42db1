"""e2e tier (issue 25): parts of the cluster and of the stack fail on the local control plane, and
the chart's rendered Prometheus and Alertmanager, run for real, page the monitoring team -
or hold back what the failure explains. One stack for the module (harness.stack: a real API
server with kwok nodes, the real node_exporter, the kube-state-metrics and kubelet stand-ins
derived from the API server's objects), with the monitoring team's Slack channel set
(alertmanager.slack.channels.monitoring).

- a node made NotReady through the API server (the kwok stage node-not-ready reports its Ready
  condition False; the node lifecycle controller taints it; its pods turn not ready, see
  SimCluster.set_node_not_ready for the one controller step the harness plays): NodeNotReady
  reaches the critical receivers and the monitoring channel, and PodDown of its pod is held back
  (inhibited on `node`);
- a claim's volume filling up (the synthetic kubelet reports the claims of the pods on its node,
  capacity from the claim on the API server, used share a knob): PersistentVolumeFillingUp
  names that claim;
- a component's pods gone (Prometheus' StatefulSet scaled to 0 on the API server): no target and
  no `up` series is left for MonitoringTargetDown, and MonitoringTargetMissing names the Service;
- the real node_exporter stopped: NodeExporterDown for the nodes' exporters;
- the kube-state-metrics stand-in stopped: KubeStateMetricsDown pages, and a PodDown that was
  paged before stays firing (inhibited) instead of being announced as resolved by silence.

`for` durations are shortened through the chart's per-alert values, keeping the chart's order
(NodeNotReady before PodDown); route timings are the chart's (critical group_wait 0 s) but for
the root and warning group wait, 10 s instead of 30 s (pipeline.scenario_values, as in
test_e2e_pipeline), and the critical routes' group_interval, 20 s instead of 1 m
(alertmanager.route.critical.groupInterval; test_conformance_alertmanager holds the rendered
1 m): the kube-state-metrics case waits one critical group_interval for a resolution that must
not come, and reads that interval from the running configuration.
"""
import time

import pytest

from harness import pipeline
from harness.manifests import quantity
from harness.pipeline import deliveries
from harness.stack import Stack
from harness.workload import NAMESPACE, Workload

pytestmark = pytest.mark.e2e

NODE = "kwok-node-not-ready"
NODE_TAINT = {"key": "phase5.test/not-ready-case", "value": "true", "effect": "NoSchedule"}
NODE_SERVICE = "e2e-on-the-failing-node"      # its one pod runs only on NODE
BLIND_SERVICE = "e2e-pod-down-before-blind"  # PodDown paged before kube-state-metrics stops
PLACEMENT = {NODE_SERVICE: {"nodeSelector": {"kubernetes.io/hostname": NODE},
                            "tolerations": [{"key": NODE_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}]}}
FOR = {"NodeNotReady": "4s", "PodDown": "12s", "KubeStateMetricsDown": "6s", "NodeExporterDown": "6s",
       "PersistentVolumeFillingUp": "4s", "MonitoringTargetMissing": "6s"}
MONITORING_CHANNEL = "#e2e-monitoring-team"
MONITORING = f"slack:{MONITORING_CHANNEL}@slack-webhook-url"   # no own webhook: the shared one
CRITICAL = {"webhook:webhook", pipeline.slack_destination("critical"), f"email:{pipeline.EMAIL_TO}", "pagerduty",
            MONITORING}
WARNING = {"webhook:webhook", pipeline.slack_destination("warnings"), MONITORING}
CRITICAL_GROUP_INTERVAL = 20   # s, alertmanager.route.critical.groupInterval of this stack (the chart's: 1m)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, request):
    values = {**pipeline.scenario_values(for_durations=FOR), "alertmanager.slack.channels.monitoring": MONITORING_CHANNEL,
              "alertmanager.route.critical.groupInterval": f"{CRITICAL_GROUP_INTERVAL}s"}
    wl = Workload(services=("backend", NODE_SERVICE, BLIND_SERVICE), placement=PLACEMENT,
                  replicas_of={NODE_SERVICE: 1, BLIND_SERVICE: 1})
    st = Stack(tmp_path_factory.mktemp("e2e-stack-faults"), set_values=values, workload=wl,
               extra_nodes=[{"name": NODE, "labels": {}, "taints": [NODE_TAINT]}])
    request.addfinalizer(st.stop)
    st.start()
    # Paged now, so that it has been delivered long before kube-state-metrics stops.
    wl.trigger("PodDown", BLIND_SERVICE)
    return st


def _firing(stack, alertname, **labels):
    return [a for a in stack.prom_alerts("firing") if a["labels"]["alertname"] == alertname
            and all(a["labels"].get(k) == v for k, v in labels.items())]


def _delivered(stack, key, want, timeout):
    return stack.sinks.wait_for(lambda r: (lambda d: d if want <= set(d) else None)(deliveries(r).get(key, {})), timeout)


def _critical_group_interval(stack):
    """The group_interval (seconds) of the routes severity=critical alerts take, as the running
    Alertmanager reads it (the longest, if they differ)."""
    route = stack.am_config["route"]
    got = [pipeline.seconds(r.get("group_interval", route["group_interval"])) for r in route.get("routes") or []
           if 'severity="critical"' in (r.get("matchers") or [])]
    assert got, f"no severity=critical route in the running configuration: {route}"
    return max(got)


def _am(stack, alertname, **labels):
    return [a for a in stack.am_alerts() if a["labels"]["alertname"] == alertname
            and all(a["labels"].get(k) == v for k, v in labels.items())]


def test_a_not_ready_node_pages_and_holds_back_the_alerts_of_its_pods(stack):
    cluster = stack.cluster
    (pod,) = [p for p in cluster.refresh().pods if p["metadata"]["namespace"] == NAMESPACE
              and p["metadata"]["name"].startswith(NODE_SERVICE)]
    assert pod["spec"]["nodeName"] == NODE, f"{NODE_SERVICE}'s pod runs on {pod['spec'].get('nodeName')}"
    name = pod["metadata"]["name"]
    stack.wait(lambda: stack.query(f'pod:kube_pod_info:node_workload{{pod="{name}", node="{NODE}"}}'), 30,
               what=f"{name} placed on {NODE} in pod:kube_pod_info:node_workload")
    assert not _firing(stack, "NodeNotReady"), "NodeNotReady fired on the baseline"

    cluster.set_node_not_ready(NODE)
    # The real node lifecycle controller reads the reported condition and taints the node.
    stack.wait(lambda: any(t["key"] == "node.kubernetes.io/not-ready"
                           for t in stack.cp.api(f"/api/v1/nodes/{NODE}")["spec"].get("taints") or []), 60,
               what=f"the node lifecycle controller tainting {NODE} not-ready")
    firing = stack.wait(lambda: _firing(stack, "NodeNotReady", node=NODE), 40, what=f"NodeNotReady for {NODE}")
    labels = firing[0]["labels"]
    assert (labels["severity"], labels["category"], labels["service"], labels["instance"]) == \
        ("critical", "monitoring", NODE, NODE), labels
    got = _delivered(stack, ("NodeNotReady", NODE), CRITICAL, 40)
    assert got, f"NodeNotReady of {NODE} reached {sorted(deliveries(stack.sinks.received).get(('NodeNotReady', NODE), {}))}, want {sorted(CRITICAL)}"

    # Its pod is not Ready (kube-state-metrics reads the API server): PodDown fires with the node ...
    pod_down = stack.wait(lambda: _firing(stack, "PodDown", pod=name), 60, what=f"PodDown for {name}")
    assert pod_down[0]["labels"].get("node") == NODE, pod_down[0]["labels"]
    # ... and Alertmanager holds it back: inhibited by NodeNotReady, never delivered.
    held = stack.wait(lambda: [a for a in _am(stack, "PodDown", pod=name) if a["status"]["inhibitedBy"]], 20,
                      what=f"PodDown of {name} inhibited in Alertmanager")
    assert held[0]["status"]["state"] == "suppressed", held[0]["status"]
    time.sleep(5)       # several resends (2 s) and a critical flush (group_wait 0 s) later
    sent = deliveries(stack.sinks.received).get(("PodDown", NODE_SERVICE))
    assert not sent, f"PodDown of {name} on the NotReady node was delivered to {sent}"


def test_a_filling_claim_pages_with_its_name(stack):
    cluster, wl = stack.cluster, stack.workload
    snap = cluster.refresh()
    (prom_pod,) = [p for p in snap.pods if p["metadata"]["namespace"] == stack.namespace
                   and p["metadata"]["name"] == f"{stack.release}-prometheus-0"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in prom_pod["spec"].get("volumes") or []
              if v.get("persistentVolumeClaim")]
    assert claims, f"{stack.release}-prometheus-0 mounts no claim: {prom_pod['spec'].get('volumes')}"
    claim = claims[0]
    size = quantity(cluster.snapshot.pvc(stack.namespace, claim)["status"]["capacity"]["storage"])
    sel = f'namespace="{stack.namespace}", persistentvolumeclaim="{claim}"'
    got = stack.wait(lambda: stack.query(f"kubelet_volume_stats_capacity_bytes{{{sel}}}"), 30,
                     what=f"the kubelet's volume stats of {claim}")
    assert float(got[0]["value"][1]) == size, f"{claim}: capacity {got[0]['value'][1]}, the claim says {size}"
    assert not _firing(stack, "PersistentVolumeFillingUp"), "a claim filling up on the baseline"
    # The volume fills: 25 % used to 96 % within 8 s, then stays there.
    t0 = time.monotonic()
    wl.volume_used[(stack.namespace, claim)] = lambda: min(0.96, 0.25 + (time.monotonic() - t0) * 0.09)
    firing = stack.wait(lambda: _firing(stack, "PersistentVolumeFillingUp", persistentvolumeclaim=claim), 60,
                        what=f"PersistentVolumeFillingUp for {claim}")
    labels = firing[0]["labels"]
    assert (labels["service"], labels["namespace"], labels["severity"]) == (claim, stack.namespace, "critical"), labels
    assert claim in firing[0]["annotations"]["summary"], firing[0]["annotations"]
    others = [a["labels"]["persistentvolumeclaim"] for a in _firing(stack, "PersistentVolumeFillingUp")
              if a["labels"]["persistentvolumeclaim"] != claim]
    assert not others, f"claims that did not fill fire too: {others}"
    got = _delivered(stack, ("PersistentVolumeFillingUp", claim), CRITICAL, 40)
    assert got, f"PersistentVolumeFillingUp of {claim} reached {deliveries(stack.sinks.received).get(('PersistentVolumeFillingUp', claim))}"


def test_a_component_whose_pods_are_gone_pages_with_its_service(stack):
    """Prometheus' StatefulSet scaled to 0 through the API server: the real controller-manager
    deletes its pod, the EndpointSlice controller empties the Service's slices, and the rendered
    monitoring-stack job (kubernetes_sd against the API server) loses the target - no `up`
    series at all, so MonitoringTargetDown cannot fire. MonitoringTargetMissing, from the
    kube-state-metrics stand-in's kube_service_annotations of the Service that stays, names it and
    reaches the critical receivers and the monitoring channel. The Prometheus process is the
    harness's judge and keeps running, as the other replica of a pair would."""
    cluster = stack.cluster
    svc, sts = f"{stack.release}-prometheus", f"{stack.release}-prometheus"
    sel = f'job="monitoring-stack", namespace="{stack.namespace}", service="{svc}"'
    stack.wait(lambda: stack.query(f"up{{{sel}}} == 1"), 30, what=f"{svc} scraped up")
    assert not _firing(stack, "MonitoringTargetMissing"), \
        f"MonitoringTargetMissing fires with every pod in place: {_firing(stack, 'MonitoringTargetMissing')}"
    scale = f"/apis/apps/v1/namespaces/{stack.namespace}/statefulsets/{sts}/scale"
    cluster.patch(scale, {"spec": {"replicas": 0}})
    try:
        stack.wait(lambda: not stack.query(f"up{{{sel}}}") or None, 60, what=f"{svc}'s target gone")
        firing = stack.wait(lambda: _firing(stack, "MonitoringTargetMissing", service=svc), 60,
                            what=f"MonitoringTargetMissing for {svc}")
        labels = firing[0]["labels"]
        assert (labels["namespace"], labels["severity"], labels["category"]) == (stack.namespace, "critical", "monitoring"), labels
        others = [a["labels"]["service"] for a in _firing(stack, "MonitoringTargetMissing") if a["labels"]["service"] != svc]
        assert not others, f"Services whose pods are in place fire too: {others}"
        assert not _firing(stack, "MonitoringTargetDown", service=svc), "MonitoringTargetDown of a target that is gone"
        got = _delivered(stack, ("MonitoringTargetMissing", svc), CRITICAL, 40)
        assert got, (f"MonitoringTargetMissing of {svc} reached "
                     f"{deliveries(stack.sinks.received).get(('MonitoringTargetMissing', svc))}, want {sorted(CRITICAL)}")
    finally:
        cluster.patch(scale, {"spec": {"replicas": 1}})
    stack.wait(lambda: stack.query(f"up{{{sel}}} == 1"), 60, what=f"{svc} scraped again once its pod is back")
    stack.wait(lambda: not _firing(stack, "MonitoringTargetMissing") or None, 30, what="MonitoringTargetMissing resolved")


@pytest.fixture(scope="module")
def stopped(stack):
    """The real node_exporter and the kube-state-metrics stand-in stopped at one moment (their
    alerts do not explain each other), after the PodDown paged at the start was delivered."""
    first = _delivered(stack, ("PodDown", BLIND_SERVICE), CRITICAL - {MONITORING}, 60)
    assert first, f"PodDown of {BLIND_SERVICE} was never delivered: {deliveries(stack.sinks.received).get(('PodDown', BLIND_SERVICE))}"
    assert _firing(stack, "PodDown", service=BLIND_SERVICE)
    stack.node_exporter.stop()
    stack.workload.stop_ksm()
    return time.monotonic()


def test_stopping_node_exporter_pages_the_monitoring_team(stack, stopped):
    healthy = {n for n in stack.cp.nodes if n != NODE}

    def instances():
        got = {a["labels"].get("instance") for a in _firing(stack, "NodeExporterDown")}
        return got if healthy <= got else None
    stack.wait(instances, 40, what=f"NodeExporterDown firing for every Ready node's exporter {sorted(healthy)}")
    # (The NotReady node's exporter is not judged here: kube-state-metrics stops at the same
    # moment, so NodeNotReady, which reads it, resolves; the real Alertmanager holds that
    # inhibition in test_conformance_alertmanager.py.)
    got = _delivered(stack, ("NodeExporterDown", "node-exporter"), WARNING, pipeline.GROUP_WAIT + 40)
    assert got, f"NodeExporterDown reached {deliveries(stack.sinks.received).get(('NodeExporterDown', 'node-exporter'))}, want {sorted(WARNING)}"


def test_stopping_kube_state_metrics_pages_and_nothing_reads_as_resolved(stack, stopped):
    firing = stack.wait(lambda: _firing(stack, "KubeStateMetricsDown"), 40, what="KubeStateMetricsDown firing")
    assert firing[0]["labels"]["severity"] == "critical", firing[0]["labels"]
    got = _delivered(stack, ("KubeStateMetricsDown", "kube-state-metrics"), CRITICAL, 30)
    assert got, f"KubeStateMetricsDown reached {deliveries(stack.sinks.received).get(('KubeStateMetricsDown', 'kube-state-metrics'))}"
    # A resolution would be announced at the PodDown group's next flush, within one critical
    # group_interval of the stop: wait that long, then it must still be firing and held back.
    interval = _critical_group_interval(stack)
    assert interval == CRITICAL_GROUP_INTERVAL, f"critical group_interval {interval}s, the stack set {CRITICAL_GROUP_INTERVAL}s"
    time.sleep(max(0.0, stopped + interval + 10 - time.monotonic()))
    assert not stack.query('kube_pod_status_ready{job="kube-state-metrics"}'), "kube-state-metrics' series are still there"
    assert _firing(stack, "PodDown", service=BLIND_SERVICE), \
        f"PodDown of {BLIND_SERVICE} resolved in Prometheus while kube-state-metrics was down"
    am = _am(stack, "PodDown", service=BLIND_SERVICE)
    assert am and all(a["status"]["inhibitedBy"] for a in am), f"PodDown of {BLIND_SERVICE} in Alertmanager: {[a['status'] for a in am]}"
    resolved = deliveries(stack.sinks.received, status="resolved").get(("PodDown", BLIND_SERVICE))
    assert not resolved, f"PodDown of {BLIND_SERVICE} announced as resolved while kube-state-metrics was down: {resolved}"


def test_the_harness_followed_the_api_server_without_errors(stack, stopped):
    assert not stack.cluster.errors, "harness errors:\n" + "\n".join(stack.cluster.errors)
    assert not stack.route_conflicts, f"pod network conflicts: {stack.route_conflicts}"
