"""kube-state-metrics' documented metrics, for the series the e2e workload derives in its place.

Two tables: FAMILIES (data/ksm-metrics.tsv), every family kube-state-metrics VERSION documents
for the subchart's default collectors, with its type, labels, status and opt-in mark, written by
scripts/ksm_table.py from that release's docs/metrics/ (issue 27: the stand-in,
harness.ksm_standin, serves all of DEFAULT_FAMILIES so the cardinality benchmark compares full
pages); and KSM_METRICS below, the families the chart reads, which tests/test_unit_standins.py
holds to be a subset of FAMILIES with the same types and labels.

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
from pathlib import Path

VERSION = "v2.20.0"

# The subchart's `collectors` (--resources) -> the resource name of its docs/metrics/ page.
COLLECTOR_RESOURCE = {
    "pods": "pod", "deployments": "deployment", "replicasets": "replicaset", "statefulsets": "statefulset",
    "daemonsets": "daemonset", "horizontalpodautoscalers": "horizontalpodautoscaler", "jobs": "job",
    "cronjobs": "cronjob", "nodes": "node", "namespaces": "namespace",
    "persistentvolumeclaims": "persistentvolumeclaim", "persistentvolumes": "persistentvolume",
    "services": "service", "endpoints": "endpoint", "endpointslices": "endpointslice", "configmaps": "configmap",
    "secrets": "secret", "resourcequotas": "resourcequota", "limitranges": "limitrange",
    "replicationcontrollers": "replicationcontroller", "poddisruptionbudgets": "poddisruptionbudget",
    "ingresses": "ingress", "networkpolicies": "networkpolicy", "storageclasses": "storageclass", "leases": "lease",
}

TABLE = Path(__file__).resolve().parent / "data" / "ksm-metrics.tsv"


def _families():
    """name -> {"resource", "type", "status", "opt_in", "labels"} from data/ksm-metrics.tsv: every
    metric family kube-state-metrics VERSION documents (docs/metrics/) for the resources the
    chart's subchart collects by default, written by scripts/ksm_table.py from those docs."""
    out = {}
    for line in (TABLE.read_text() if TABLE.exists() else "").splitlines():
        if line.startswith("#") or line.startswith("resource\t") or not line.strip():
            continue
        resource, name, kind, status, opt_in, labels = line.split("\t")
        out[name] = {"resource": resource, "type": kind, "status": status, "opt_in": opt_in == "yes",
                     "labels": set(labels.split(",")) - {""}}
    return out


# Every documented family of the default collectors (stable, experimental, alpha; opt-in ones marked).
FAMILIES = _families()
# What kube-state-metrics VERSION emits with the chart's arguments (no --metric-opt-in-list):
# every documented family but the opt-in ones.
DEFAULT_FAMILIES = {name: f for name, f in FAMILIES.items() if not f["opt_in"]}

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


# Per family, labels from optional fields (a toleration without a value, a Service without an
# external name, an HPA metric of no container, a Job that did not fail, ...): empty, so dropped.
MAY_BE_EMPTY_IN = {
    "kube_pod_tolerations": {"key", "operator", "value", "effect", "toleration_seconds"},
    "kube_horizontalpodautoscaler_spec_target_metric": {"container"},
    "kube_horizontalpodautoscaler_status_target_metric": {"container"},
    "kube_job_status_failed": {"reason"},
    "kube_service_info": {"cluster_ip", "external_name", "external_traffic_policy", "load_balancer_ip"},
    "kube_service_status_load_balancer_ingress": {"ip", "hostname"},
    "kube_persistentvolumeclaim_info": {"storageclass", "volumename", "volumemode"},
    "kube_deployment_status_condition": {"reason"},
    "kube_node_spec_taint": {"value"},
    "kube_pod_resourceclaim_info": {"resourceclaim_name", "resourceclaim_template_name"},
    "kube_pod_init_container_info": {"restart_policy"},
    "kube_pod_container_status_last_terminated_reason": {"reason"},
    "kube_pod_init_container_status_last_terminated_reason": {"reason"},
    "kube_node_role": {"role"},
}


def label_problems(name, labels):
    """What is wrong with one scraped series' label names (target labels job/instance aside),
    against the documented families (FAMILIES; KSM_METRICS, the subset the chart reads, agrees)."""
    if name not in FAMILIES:
        return [f"{name}: not a documented kube-state-metrics {VERSION} metric"]
    want = FAMILIES[name]["labels"]
    got = set(labels) - {"__name__", "job", "instance"}
    if name.endswith("_labels"):
        got = {lab for lab in got if not lab.startswith("label_")}
    if name.endswith("_annotations"):
        got = {lab for lab in got if not lab.startswith("annotation_")}
    out = []
    if got - want:
        out.append(f"{name}: labels kube-state-metrics {VERSION} does not have: {sorted(got - want)}")
    missing = want - got - MAY_BE_EMPTY - MAY_BE_EMPTY_IN.get(name, set())
    if missing:
        out.append(f"{name}: missing labels: {sorted(missing)}")
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
