"""kube-state-metrics' documented metrics, for the series the e2e workload derives in its place.

kube-state-metrics is not served by the Go module proxy, so the e2e tier cannot run it; the
workload derives its series from the API server's objects instead (harness.workload). This
table holds, for the pinned version (the chart's kube-state-metrics appVersion), the name, type
and label names of each metric the chart's rules and dashboards read, as kube-state-metrics
documents them in docs/metrics/ of that release (workload/pod, workload/deployment,
workload/replicaset, workload/job, workload/statefulset, workload/daemonset, workload/horizontalpodautoscaler, cluster/node,
cluster/namespace, service/service). A test compares the series Prometheus scraped with it, so a misspelt name or
a missing or extra label of the stand-in fails; test_unit_versions.py keeps VERSION equal to the
image the chart runs. The metrics the chart read before issue 24 have at v2.20.0 the name, type
and labels they had at v2.17.0 (docs/metrics/ of both tags compared); the _labels/_annotations
series of services, deployments and statefulsets were read in v2.17.0's docs. 2.20 changed
kube_pod_status_reason, which the chart does not read, to emit only the reason that is set.
"""
import re

VERSION = "v2.20.0"

# name -> (type, label names). kube_<resource>_labels adds label_<name> for each label of the
# object allowed by --metric-labels-allowlist, kube_<resource>_annotations annotation_<name> for
# each annotation allowed by --metric-annotations-allowlist (<name>: every character outside
# [a-zA-Z0-9_] becomes "_"); both are emitted for every object, allowed keys or not.
KSM_METRICS = {
    "kube_pod_info": ("gauge", {"namespace", "pod", "uid", "node", "host_ip", "pod_ip", "created_by_kind",
                                "created_by_name", "priority_class", "host_network"}),
    "kube_pod_owner": ("gauge", {"namespace", "pod", "uid", "owner_kind", "owner_name", "owner_is_controller"}),
    "kube_pod_labels": ("gauge", {"namespace", "pod", "uid"}),
    "kube_pod_status_phase": ("gauge", {"namespace", "pod", "uid", "phase"}),
    "kube_pod_status_ready": ("gauge", {"namespace", "pod", "uid", "condition"}),
    "kube_pod_container_info": ("gauge", {"namespace", "pod", "uid", "container", "image", "image_id",
                                          "image_spec", "container_id"}),
    "kube_pod_container_status_ready": ("gauge", {"namespace", "pod", "uid", "container"}),
    "kube_pod_container_status_running": ("gauge", {"namespace", "pod", "uid", "container"}),
    "kube_pod_container_status_waiting": ("gauge", {"namespace", "pod", "uid", "container"}),
    "kube_pod_container_status_waiting_reason": ("gauge", {"namespace", "pod", "uid", "container", "reason"}),
    "kube_pod_container_status_restarts_total": ("counter", {"namespace", "pod", "uid", "container"}),
    "kube_pod_container_resource_limits": ("gauge", {"namespace", "pod", "uid", "container", "node", "resource", "unit"}),
    "kube_pod_container_resource_requests": ("gauge", {"namespace", "pod", "uid", "container", "node", "resource", "unit"}),
    "kube_deployment_labels": ("gauge", {"namespace", "deployment"}),
    "kube_deployment_annotations": ("gauge", {"namespace", "deployment"}),
    "kube_deployment_spec_replicas": ("gauge", {"namespace", "deployment"}),
    "kube_deployment_status_replicas": ("gauge", {"namespace", "deployment"}),
    "kube_deployment_status_replicas_available": ("gauge", {"namespace", "deployment"}),
    "kube_deployment_status_replicas_unavailable": ("gauge", {"namespace", "deployment"}),
    "kube_deployment_status_replicas_ready": ("gauge", {"namespace", "deployment"}),
    "kube_deployment_status_replicas_updated": ("gauge", {"namespace", "deployment"}),
    "kube_deployment_metadata_generation": ("gauge", {"namespace", "deployment"}),
    "kube_deployment_status_observed_generation": ("gauge", {"namespace", "deployment"}),
    "kube_job_owner": ("gauge", {"namespace", "job_name", "owner_kind", "owner_name", "owner_is_controller"}),
    "kube_replicaset_owner": ("gauge", {"namespace", "replicaset", "owner_kind", "owner_name", "owner_is_controller"}),
    "kube_replicaset_spec_replicas": ("gauge", {"namespace", "replicaset"}),
    "kube_statefulset_labels": ("gauge", {"namespace", "statefulset"}),
    "kube_statefulset_annotations": ("gauge", {"namespace", "statefulset"}),
    "kube_statefulset_replicas": ("gauge", {"namespace", "statefulset"}),
    "kube_statefulset_status_replicas_ready": ("gauge", {"namespace", "statefulset"}),
    "kube_statefulset_status_replicas_available": ("gauge", {"namespace", "statefulset"}),
    "kube_horizontalpodautoscaler_info": ("gauge", {"namespace", "horizontalpodautoscaler", "scaletargetref_api_version",
                                                    "scaletargetref_kind", "scaletargetref_name"}),
    "kube_horizontalpodautoscaler_spec_max_replicas": ("gauge", {"namespace", "horizontalpodautoscaler"}),
    "kube_horizontalpodautoscaler_spec_min_replicas": ("gauge", {"namespace", "horizontalpodautoscaler"}),
    "kube_horizontalpodautoscaler_status_current_replicas": ("gauge", {"namespace", "horizontalpodautoscaler"}),
    "kube_horizontalpodautoscaler_status_desired_replicas": ("gauge", {"namespace", "horizontalpodautoscaler"}),
    "kube_daemonset_status_desired_number_scheduled": ("gauge", {"namespace", "daemonset"}),
    "kube_daemonset_status_number_available": ("gauge", {"namespace", "daemonset"}),
    "kube_node_info": ("gauge", {"node", "kernel_version", "os_image", "container_runtime_version", "kubelet_version",
                                 "kubeproxy_version", "pod_cidr", "provider_id", "system_uuid", "internal_ip"}),
    "kube_node_status_condition": ("gauge", {"node", "condition", "status"}),
    "kube_node_status_allocatable": ("gauge", {"node", "resource", "unit"}),
    "kube_node_spec_unschedulable": ("gauge", {"node"}),
    "kube_namespace_status_phase": ("gauge", {"namespace", "phase"}),
    "kube_service_labels": ("gauge", {"namespace", "service", "uid"}),
    "kube_service_annotations": ("gauge", {"namespace", "service", "uid"}),
}


# Labels kube-state-metrics sets from fields a simulated object may leave empty (no container
# runtime, no pod CIDR allocation, no cloud provider); Prometheus drops a label whose value is
# empty, as it would from the real kube-state-metrics.
MAY_BE_EMPTY = {"container_id", "image_id", "pod_cidr", "provider_id", "system_uuid", "priority_class",
                "kernel_version", "os_image", "container_runtime_version", "kubeproxy_version", "host_ip"}


def label_problems(name, labels):
    """What is wrong with one scraped series' label names (target labels job/instance aside)."""
    if name not in KSM_METRICS:
        return [f"{name}: not a documented kube-state-metrics {VERSION} metric the chart reads"]
    want = KSM_METRICS[name][1]
    got = set(labels) - {"__name__", "job", "instance"}
    if name.endswith("_labels"):
        got = {lab for lab in got if not lab.startswith("label_")}
    if name.endswith("_annotations"):
        got = {lab for lab in got if not lab.startswith("annotation_")}
    out = []
    if got - want:
        out.append(f"{name}: labels kube-state-metrics {VERSION} does not have: {sorted(got - want)}")
    if want - got - MAY_BE_EMPTY:
        out.append(f"{name}: missing labels: {sorted(want - got - MAY_BE_EMPTY)}")
    return out


def sanitize(key):
    """A Kubernetes label or annotation key as kube-state-metrics (and Prometheus) spell it in a
    label name: every character outside [a-zA-Z0-9_] becomes "_"."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


def allowlists(args):
    """{"labels": {resource: [key, ...]}, "annotations": {...}} from kube-state-metrics' arguments
    --metric-labels-allowlist / --metric-annotations-allowlist ("resource=[k1,k2],resource2=[...]")."""
    out = {"labels": {}, "annotations": {}}
    for a in args:
        name, _, value = a.partition("=")
        kind = {"--metric-labels-allowlist": "labels", "--metric-annotations-allowlist": "annotations"}.get(name)
        if kind:
            for res, keys in re.findall(r"([a-z]+)=\[([^\]]*)\]", value):
                out[kind][res] = [k for k in keys.split(",") if k]
    return out
