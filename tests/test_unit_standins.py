"""Unit tier, issue 27: the kube-state-metrics and kubelet/cAdvisor stand-ins serve the full
documented metric families of the pinned versions (not only what the chart reads), so the
cardinality benchmark compares honest pages.

- harness/data/ksm-metrics.tsv (scripts/ksm_table.py, from kube-state-metrics' docs/metrics/)
  covers the subchart's default collectors, and ksm.KSM_METRICS (what the chart reads) is a
  subset of it with the same types and labels;
- the kube-state-metrics stand-in (harness.ksm_standin) derives from an ordinary set of objects
  only documented families with their documented labels, one series per phase / condition value
  / container / resource as kube-state-metrics does;
- the kubelet stand-in's /metrics/cadvisor (harness.kubelet_standin) serves the cAdvisor families
  the kubelet enables, with cAdvisor's labels, per pod cgroup, sandbox ("POD") and container,
  and none of the metric sets the kubelet disables; its /metrics serves the documented kubelet
  table, which holds the series harness/upstream_metrics.py says the alerts read.
(e2e: tests/test_e2e_pipeline.py compares the pages served to the real Prometheus with the tables.)
"""
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from harness import ksm, ksm_standin, kubelet_standin as kls
from harness import upstream_metrics as um
from harness.paths import SUBCHARTS_DIR
from harness.simcluster import Snapshot

pytestmark = pytest.mark.unit

T0 = "2026-01-01T00:00:00Z"


def _pod(i, node="node-a", ns="phase5-prod"):
    cond = [{"type": t, "status": "True", "lastTransitionTime": T0}
            for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
    return {"metadata": {"name": f"api-{i}", "namespace": ns, "uid": f"uid-{i}", "resourceVersion": "7",
                         "creationTimestamp": T0, "labels": {"app": "api"},
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "api-rs", "controller": True}]},
            "spec": {"nodeName": node, "restartPolicy": "Always", "serviceAccountName": "api",
                     "schedulerName": "default-scheduler",
                     "containers": [{"name": "api", "image": "api:1", "resources": {
                         "limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}}}],
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
                     "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                      "effect": "NoExecute", "tolerationSeconds": 300}]},
            "status": {"phase": "Running", "qosClass": "Burstable", "podIP": "10.244.0.5",
                       "podIPs": [{"ip": "10.244.0.5"}], "hostIP": "10.0.0.1", "startTime": T0, "conditions": cond,
                       "containerStatuses": [{"name": "api", "ready": True, "restartCount": 1, "image": "api:1",
                                              "imageID": "sha256:1", "containerID": "containerd://1",
                                              "state": {"running": {"startedAt": T0}},
                                              "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                                                                           "finishedAt": T0}}}]}}


def _snapshot():
    md = lambda name, **kw: {"name": name, "namespace": "phase5-prod", "uid": f"u-{name}", "resourceVersion": "1",  # noqa: E731
                             "creationTimestamp": T0, "generation": 2, **kw}
    cond = lambda t: {"type": t, "status": "True", "reason": "Ok", "lastTransitionTime": T0}  # noqa: E731
    return Snapshot(
        pods=[_pod(0), _pod(1)],
        nodes=[{"metadata": {"name": "node-a", "uid": "n", "resourceVersion": "1", "creationTimestamp": T0,
                             "labels": {"node-role.kubernetes.io/worker": ""}},
                "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"],
                         "taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]},
                "status": {"capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
                           "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
                           "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                           "conditions": [{"type": "Ready", "status": "True"}],
                           "nodeInfo": {"kubeletVersion": "v1.37.2"}}}],
        namespaces=[{"metadata": {"name": "phase5-prod", "uid": "ns", "resourceVersion": "1", "creationTimestamp": T0},
                     "status": {"phase": "Active", "conditions": [{"type": "NamespaceDeletionContentFailure",
                                                                   "status": "False"}]}}],
        services=[{"metadata": md("api"), "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10"}}],
        deployments=[{"metadata": md("api"), "spec": {"replicas": 2, "strategy": {"rollingUpdate": {}}},
                      "status": {"replicas": 2, "readyReplicas": 2, "terminatingReplicas": 0,
                                 "conditions": [cond("Available")]}}],
        replicasets=[{"metadata": md("api-rs", ownerReferences=[{"kind": "Deployment", "name": "api", "controller": True}]),
                      "spec": {"replicas": 2}, "status": {"replicas": 2, "terminatingReplicas": 0}}],
        statefulsets=[{"metadata": md("db"), "spec": {"replicas": 1, "ordinals": {"start": 0},
                                                      "persistentVolumeClaimRetentionPolicy": {}},
                       "status": {"currentRevision": "db-1", "updateRevision": "db-1"}}],
        daemonsets=[{"metadata": md("agent"), "spec": {}, "status": {"desiredNumberScheduled": 1}}],
        hpas=[{"metadata": md("api"), "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}, "minReplicas": 2,
            "maxReplicas": 6, "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": 70}}}],
            "behavior": {"scaleUp": {"tolerance": "0.1"}, "scaleDown": {"tolerance": "0.1"}}},
            "status": {"currentReplicas": 2, "desiredReplicas": 2, "conditions": [cond("AbleToScale")],
                       "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {
                           "averageUtilization": 20}}},
                           {"type": ""}]}}],     # as the HPA controller writes it while it cannot read metrics
        jobs=[{"metadata": md("backup"), "spec": {"activeDeadlineSeconds": 600},
               "status": {"startTime": T0, "completionTime": T0, "succeeded": 1, "ready": 0,
                          "conditions": [cond("Complete"), {"type": "Failed", "status": "False"}]}}],
        pvcs=[{"metadata": md("data"), "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                                                "volumeName": "pv-1", "volumeMode": "Filesystem",
                                                "resources": {"requests": {"storage": "1Gi"}}},
               "status": {"phase": "Bound", "capacity": {"storage": "1Gi"},
                          "conditions": [{"type": "Resizing", "status": "False"}]}}])


def _parse(body):
    """[(sample name, labels)], {family name: type} of a text-format page (prometheus_client's
    parser, with the family types as the page declares them: it renames a counter without _total)."""
    samples, types = [], {}
    text = body.decode()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            name = s.name if s.name in types or not s.name.endswith("_total") else s.name[:-len("_total")]
            samples.append((name, s.labels))
    for name in list(types):
        if types[name] in ("histogram", "summary"):
            for suffix in ("_bucket", "_sum", "_count"):
                types[name + suffix] = types[name]
    return samples, types


def test_ksm_table_covers_the_default_collectors():
    collectors = yaml.safe_load((SUBCHARTS_DIR / "kube-state-metrics" / "values.yaml").read_text())["collectors"]
    assert {f["resource"] for f in ksm.FAMILIES.values()} == {ksm.COLLECTOR_RESOURCE[c] for c in collectors}
    assert len(ksm.FAMILIES) >= 150, len(ksm.FAMILIES)
    assert {f["status"] for f in ksm.FAMILIES.values()} <= {"stable", "experimental", "alpha", "deprecated"}
    assert not ksm.FAMILIES["kube_pod_status_phase"]["opt_in"] and ksm.FAMILIES["kube_pod_nodeselectors"]["opt_in"]
    assert "kube_pod_nodeselectors" not in ksm.DEFAULT_FAMILIES


def test_what_the_chart_reads_of_ksm_is_a_subset_of_the_documented_families():
    problems = []
    for name, (kind, labels) in ksm.KSM_METRICS.items():
        doc = ksm.FAMILIES.get(name)
        if doc is None:
            problems.append(f"{name}: not documented")
        elif (doc["type"], doc["labels"]) != (kind, labels):
            problems.append(f"{name}: read as {kind} {sorted(labels)}, documented {doc['type']} {sorted(doc['labels'])}")
    assert not problems, "\n".join(problems)


def test_ksm_stand_in_serves_every_default_family_with_its_documented_labels():
    allow = {"labels": {"pods": ["app"]}, "annotations": {}}
    samples, types = _parse(ksm_standin.exposition(_snapshot(), allow))
    names = {n for n, _ in samples}
    problems = [f"{n}: served, not a default documented family" for n in names - set(ksm.DEFAULT_FAMILIES)]
    for name, labels in samples:     # Prometheus drops a label whose value is empty
        problems += ksm.label_problems(name, {k: v for k, v in labels.items() if v != ""})
    problems += [f"{n}: type {types.get(n)}, documented {ksm.FAMILIES[n]['type']}" for n in names
                 if n in ksm.FAMILIES and types.get(n) != ksm.FAMILIES[n]["type"]]
    # every default family is derived from these objects, but those whose field they leave unset
    unset = {"kube_pod_completion_time", "kube_pod_deletion_timestamp", "kube_pod_overhead_cpu_cores",
             "kube_pod_overhead_memory_bytes", "kube_pod_runtimeclass_name_info", "kube_pod_status_reason",
             "kube_pod_status_disruption_reason", "kube_pod_status_unschedulable", "kube_pod_status_unscheduled_time",
             "kube_pod_resourceclaim_info", "kube_pod_container_status_waiting_reason",
             "kube_pod_container_status_terminated_reason", "kube_service_spec_external_ip",
             "kube_service_status_load_balancer_ingress"}
    missing = {n for n in ksm.DEFAULT_FAMILIES if not n.startswith("kube_pod_init_container")
               and not n.endswith("_deletion_timestamp")} - unset - names
    problems += [f"{n}: no series from the objects" for n in sorted(missing)]
    assert not problems, "\n".join(problems[:40])
    phases = [lab for n, lab in samples if n == "kube_pod_status_phase" and lab["pod"] == "api-0"]
    assert sorted(lab["phase"] for lab in phases) == ["Failed", "Pending", "Running", "Succeeded", "Unknown"]
    assert len([1 for n, lab in samples if n == "kube_pod_status_ready" and lab["pod"] == "api-0"]) == 3
    assert {(lab["resource"], lab["unit"]) for n, lab in samples if n == "kube_pod_container_resource_limits"
            and lab["pod"] == "api-0"} == {("cpu", "core"), ("memory", "byte")}
    assert any(lab.get("label_app") == "api" for n, lab in samples if n == "kube_pod_labels")


def test_ksm_stand_in_caches_unchanged_objects_and_drops_gone_ones():
    cache, snap = {}, _snapshot()
    first = ksm_standin.exposition(snap, None, cache)
    assert ksm_standin.exposition(snap, None, cache) == first
    snap.pods.pop()
    assert b'pod="api-1"' not in ksm_standin.exposition(snap, None, cache)
    assert not any(k[1] == "uid-1" for k in cache)


def test_cadvisor_table_leaves_out_what_the_kubelet_disables():
    assert kls.KUBELET_DISABLED == {"cpuLoad", "sched", "hugetlb", "resctrl", "cpuset", "memory_numa", "advtcp",
                                    "tcp", "udp", "perf_event", "referenced_memory", "cpu_topology"}
    assert not any(v[1] in kls.KUBELET_DISABLED for v in kls.SERVED.values())


def test_cadvisor_page_serves_the_enabled_families_per_pod_sandbox_and_container():
    kubelet = kls.Kubelet("node-a")
    pods = [_pod(0), _pod(1)]
    samples, types = _parse(kubelet.cadvisor(pods))
    doc = kls.documented_series("cadvisor")
    problems = []
    for name, labels in samples:
        fam = name if name in doc else None
        if fam is None:
            problems.append(f"{name}: not a documented cAdvisor family the kubelet enables")
        elif set(labels) != doc[fam]:
            problems.append(f"{name}: labels {sorted(labels)}, documented {sorted(doc[fam])}")
    problems += [f"{n}: no series" for n in sorted(set(kls.SERVED) - {n for n, _ in samples})]
    problems += [f"{n}: type {types[n]}" for n in types if types[n] != kls.CADVISOR[n][0]]
    assert set(types) == set(kls.SERVED), sorted(set(types) ^ set(kls.SERVED))
    assert not problems, "\n".join(problems[:40])
    cpu = {(lab["pod"], lab["container"]) for n, lab in samples if n == "container_cpu_usage_seconds_total"}
    assert {("api-0", ""), ("api-0", "POD"), ("api-0", "api"), ("", "")} <= cpu
    per_pod = sum(1 for _, lab in samples if lab.get("pod") == "api-0")
    assert per_pod == kls.cadvisor_series_per_pod(1), per_pod
    net = {lab["container"] for n, lab in samples if n == "container_network_receive_bytes_total" and lab["pod"] == "api-0"}
    assert net == {"", "POD"}


def test_cadvisor_usage_drives_the_series_the_chart_reads_and_counters_grow():
    kubelet = kls.Kubelet("node-a")
    body = kubelet.cadvisor([_pod(0)], usage=lambda pod, c: (42.0, 1234.0)).decode()
    assert 'container_memory_working_set_bytes{container="api"' in body
    line = next(x for x in body.splitlines() if x.startswith('container_memory_working_set_bytes{container="api"'))
    assert line.endswith(" 1234"), line
    line = next(x for x in body.splitlines() if x.startswith('container_cpu_usage_seconds_total{container="",')
                and 'pod="api-0"' in x)
    assert line.endswith(" 42"), line        # the pod cgroup: its containers' sum


def test_kubelet_page_serves_its_documented_table():
    body = kls.Kubelet("node-a").metrics([_pod(0)], volumes=[("phase5-prod", "data", 2**30, 2**29)])
    samples, _ = _parse(body)
    doc = kls.documented_series("kubelet")
    problems = [f"{n}: {sorted(lab)} vs {sorted(doc.get(n, ['(undocumented)']))}"
                for n, lab in samples if set(lab) != doc.get(n)]
    names = {n for n, _ in samples}
    problems += [f"{n}: no series" for n in sorted(set(doc) - names)]
    assert not problems, "\n".join(problems[:40])
    # what the alerts read of the kubelet (harness/upstream_metrics.py) is in the table
    for name, labels in um.series("kubelet").items():
        assert doc.get(name) == labels, name



def test_probes_page_serves_one_worker_per_declared_probe_with_the_kubelets_labels():
    """/metrics/probes (which kube-prometheus-stack scrapes and the chart does not): per
    container and declared probe, prober_probe_total{result="successful"} and the duration
    histogram, labelled as the kubelet's prober labels them; a container without probes has
    no series."""
    probed = _pod(0)
    probed["spec"]["containers"][0].update(readinessProbe={"httpGet": {"path": "/health", "port": 8000}},
                                           livenessProbe={"httpGet": {"path": "/health", "port": 8000},
                                                          "periodSeconds": 20})
    body = kls.Kubelet("node-a").probes([probed, _pod(1)])
    samples, types = _parse(body)
    doc = kls.documented_series("probes")
    problems = [f"{n}: {sorted(lab)} vs {sorted(doc.get(n, ['(undocumented)']))}"
                for n, lab in samples if set(lab) != doc.get(n)]
    assert not problems, "\n".join(problems)
    assert {n: t for n, t in types.items() if not n.endswith(("_bucket", "_sum", "_count"))} \
        == {n: v[0] for n, v in kls.PROBES.items()}
    totals = sorted((lab["probe_type"], lab["result"], lab["pod"], lab["pod_uid"])
                    for n, lab in samples if n == "prober_probe_total")
    assert totals == [("Liveness", "successful", "api-0", "uid-0"), ("Readiness", "successful", "api-0", "uid-0")]
    buckets = [lab for n, lab in samples if n == "prober_probe_duration_seconds_bucket"]
    assert len(buckets) == 2 * (len(kls.DEFAULT_BUCKETS) + 1)
    assert not [lab for _, lab in samples if lab.get("pod") == "api-1"]
