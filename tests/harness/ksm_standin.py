"""The kube-state-metrics stand-in: every metric family kube-state-metrics documents for the
pinned version (harness.ksm.DEFAULT_FAMILIES: the subchart's default collectors, opt-in ones left
out as the chart passes no --metric-opt-in-list), derived from the API server's objects (a
harness.simcluster.Snapshot) the way kube-state-metrics derives them.

kube-state-metrics itself cannot run here (not served by the Go module proxy), so this is a
stand-in, held to its documentation: names, types and label names come from the table
(data/ksm-metrics.tsv, parsed from docs/metrics/ of the release); tests/test_e2e_pipeline.py
compares what this serves with it, and tests/test_unit_ksm_standin.py that every default family is
derived from an ordinary cluster's objects.

Per-object cardinality as kube-state-metrics has it (read in its internal/store/*.go): one series
per phase (5 per pod) or per condition status (true/false/unknown), per container and resource,
per toleration, per owner reference, per address, per taint. Families whose source field is
unset are not emitted for that object (completion time of a running pod, deletion timestamp,
waiting reason of a running container, last termination of a container that never restarted),
as kube-state-metrics leaves them out. Where this approximates: timestamps of conditions are
their lastTransitionTime; kube_pod_status_reason/disruption_reason only when set (2.20's rule).

Entry point: `exposition(snapshot, allowlists)` -> bytes (the /metrics page), cheap on a
snapshot whose objects did not change (lines cached per object and resourceVersion)."""
import calendar
import time

from . import ksm
from .manifests import quantity
from .textformat import Page, labels as fmt_labels, num

COND = ("true", "false", "unknown")


def _ts(value):
    """An RFC 3339 timestamp of the API server as Unix seconds (0 when unset)."""
    if not value:
        return 0
    return calendar.timegm(time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S"))


def _unit(resource):
    return {"cpu": "core", "memory": "byte", "ephemeral-storage": "byte", "storage": "byte"}.get(resource, "integer")


class _Lines:
    """Sample lines of one object, by family."""

    def __init__(self):
        self.by = {}

    def add(self, name, names, values, value):
        assert name in ksm.FAMILIES, name
        self.by.setdefault(name, []).append(f"{name}{fmt_labels(names, values)} {num(value)}")

    def cond(self, name, names, values, status, extra=()):
        """Three series, condition/status true, false, unknown, 1 on the one `status` is."""
        status = (status or "").lower()
        for c in COND:
            self.add(name, names + extra, values + (c,), 1 if status == c else 0)


def _meta(out, singular, ident, md, allow, extra_names=(), extra_values=()):
    """kube_<resource>_labels / _annotations: the allowlisted keys as label_*/annotation_*."""
    plural = singular + "s" if not singular.endswith("s") else singular + "es"
    if singular == "horizontalpodautoscaler":
        plural = "horizontalpodautoscalers"
    for kind, prefix, field in (("labels", "label_", "labels"), ("annotations", "annotation_", "annotations")):
        keys = allow[kind].get(plural, [])
        names = ident[0] + tuple(extra_names) + tuple(prefix + ksm.sanitize(k) for k in keys)
        values = ident[1] + tuple(extra_values) + tuple((md.get(field) or {}).get(k, "") for k in keys)
        out.add(f"kube_{singular}_{kind}", names, values, 1)


def _common(out, singular, ident, md):
    out.add(f"kube_{singular}_created", *ident, _ts(md.get("creationTimestamp")))
    if md.get("deletionTimestamp"):
        out.add(f"kube_{singular}_deletion_timestamp", *ident, _ts(md["deletionTimestamp"]))


def _owner(out, name, ident, md, controller_label=True):
    refs = md.get("ownerReferences") or []
    extra = ("owner_kind", "owner_name") + (("owner_is_controller",) if controller_label else ())
    if not refs:
        out.add(name, ident[0] + extra, ident[1] + ("<none>", "<none>") + (("<none>",) if controller_label else ()), 1)
    for r in refs:
        ctl = (str(bool(r.get("controller"))).lower(),) if controller_label else ()
        out.add(name, ident[0] + extra, ident[1] + (r["kind"], r["name"]) + ctl, 1)


def _containers(out, prefix, ident, node, spec_containers, statuses, init=False):
    cl = ident[0] + ("container",)
    specs = {c["name"]: c for c in spec_containers}
    for cs in statuses:
        c = cs["name"]
        v = ident[1] + (c,)
        state, last = cs.get("state") or {}, (cs.get("lastState") or {}).get("terminated")
        spec = specs.get(c, {})
        info_names = cl + ("image_spec", "image", "image_id", "container_id")
        info_values = v + (spec.get("image", ""), cs.get("image", ""), cs.get("imageID", ""), cs.get("containerID", ""))
        if init:
            info_names += ("restart_policy",)
            info_values += (spec.get("restartPolicy", ""),)
        out.add(f"{prefix}_info", info_names, info_values, 1)
        waiting, running, terminated = state.get("waiting"), state.get("running"), state.get("terminated")
        out.add(f"{prefix}_status_waiting", cl, v, 1 if waiting else 0)
        if waiting and waiting.get("reason"):
            out.add(f"{prefix}_status_waiting_reason", cl + ("reason",), v + (waiting["reason"],), 1)
        out.add(f"{prefix}_status_running", cl, v, 1 if running else 0)
        if running and running.get("startedAt"):
            out.add(f"{prefix}_state_started", cl, v, _ts(running["startedAt"]))
        out.add(f"{prefix}_status_terminated", cl, v, 1 if terminated else 0)
        if terminated and terminated.get("reason"):
            out.add(f"{prefix}_status_terminated_reason", cl + ("reason",), v + (terminated["reason"],), 1)
        if last:
            out.add(f"{prefix}_status_last_terminated_reason", cl + ("reason",), v + (last.get("reason", ""),), 1)
            out.add(f"{prefix}_status_last_terminated_exitcode", cl, v, last.get("exitCode", 0))
            out.add(f"{prefix}_status_last_terminated_timestamp", cl, v, _ts(last.get("finishedAt")))
        out.add(f"{prefix}_status_ready", cl, v, 1 if cs.get("ready") else 0)
        out.add(f"{prefix}_status_restarts_total", cl, v, cs.get("restartCount", 0))
    rl = cl + ("node", "resource", "unit")
    for c in spec_containers:
        res = c.get("resources") or {}
        for which in ("limits", "requests"):
            for rname, q in (res.get(which) or {}).items():
                out.add(f"{prefix}_resource_{which}", rl, ident[1] + (c["name"], node, rname, _unit(rname)), quantity(q))


def pod_lines(p, allow):
    out = _Lines()
    md, spec, st = p["metadata"], p["spec"], p.get("status", {})
    ns, pod, uid, node = md["namespace"], md["name"], md["uid"], spec.get("nodeName", "")
    ident = (("namespace", "pod", "uid"), (ns, pod, uid))
    n, v = ident
    _meta(out, "pod", ident, md, allow)
    refs = [r for r in md.get("ownerReferences") or [] if r.get("controller")]
    kind, owner = (refs[0]["kind"], refs[0]["name"]) if refs else ("<none>", "<none>")
    out.add("kube_pod_info", n + ("node", "host_ip", "pod_ip", "created_by_kind", "created_by_name", "priority_class",
                                  "host_network"),
            v + (node, st.get("hostIP", ""), st.get("podIP", ""), kind, owner, spec.get("priorityClassName", ""),
                 str(bool(spec.get("hostNetwork"))).lower()), 1)
    for ip in st.get("podIPs") or []:
        out.add("kube_pod_ips", n + ("ip", "ip_family"), v + (ip["ip"], "6" if ":" in ip["ip"] else "4"), 1)
    if st.get("startTime"):
        out.add("kube_pod_start_time", n, v, _ts(st["startTime"]))
    _owner(out, "kube_pod_owner", ident, {"ownerReferences": refs})
    for phase in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
        out.add("kube_pod_status_phase", n + ("phase",), v + (phase,), 1 if st.get("phase") == phase else 0)
    if st.get("qosClass"):
        for q in ("BestEffort", "Burstable", "Guaranteed"):
            out.add("kube_pod_status_qos_class", n + ("qos_class",), v + (q,), 1 if st["qosClass"] == q else 0)
    conds = {c["type"]: c for c in st.get("conditions") or []}
    for ctype, fam in (("Ready", "kube_pod_status_ready"), ("PodScheduled", "kube_pod_status_scheduled")):
        if ctype in conds:
            out.cond(fam, n, v, conds[ctype]["status"], extra=("condition",))
    for ctype, fam in (("Initialized", "kube_pod_status_initialized_time"), ("Ready", "kube_pod_status_ready_time"),
                       ("ContainersReady", "kube_pod_status_container_ready_time"),
                       ("PodScheduled", "kube_pod_status_scheduled_time")):
        if conds.get(ctype, {}).get("status") == "True":
            out.add(fam, n, v, _ts(conds[ctype].get("lastTransitionTime")))
    sched = conds.get("PodScheduled", {})
    if sched.get("status") == "False" and sched.get("reason") == "Unschedulable":
        out.add("kube_pod_status_unschedulable", n, v, 1)
        out.add("kube_pod_status_unscheduled_time", n, v, _ts(sched.get("lastTransitionTime")))
    if st.get("phase") in ("Succeeded", "Failed"):
        ends = [_ts((cs.get("state") or {}).get("terminated", {}).get("finishedAt"))
                for cs in st.get("containerStatuses") or []]
        if ends and all(ends):
            out.add("kube_pod_completion_time", n, v, max(ends))
    _containers(out, "kube_pod_container", ident, node, spec.get("containers") or [], st.get("containerStatuses") or [])
    _containers(out, "kube_pod_init_container", ident, node, spec.get("initContainers") or [],
                st.get("initContainerStatuses") or [], init=True)
    overhead = spec.get("overhead") or {}
    if "cpu" in overhead:
        out.add("kube_pod_overhead_cpu_cores", n, v, quantity(overhead["cpu"]))
    if "memory" in overhead:
        out.add("kube_pod_overhead_memory_bytes", n, v, quantity(overhead["memory"]))
    if spec.get("runtimeClassName"):
        out.add("kube_pod_runtimeclass_name_info", n, v, 1)
    out.add("kube_pod_created", n, v, _ts(md.get("creationTimestamp")))
    if md.get("deletionTimestamp"):
        out.add("kube_pod_deletion_timestamp", n, v, _ts(md["deletionTimestamp"]))
    out.add("kube_pod_restart_policy", n + ("type",), v + (spec.get("restartPolicy", "Always"),), 1)
    for vol in spec.get("volumes") or []:
        claim = (vol.get("persistentVolumeClaim") or {})
        eph = "ephemeral" in vol
        if claim or eph:
            name = claim.get("claimName") or f"{pod}-{vol['name']}"
            vn = n + ("volume", "persistentvolumeclaim", "ephemeral")
            vv = v + (vol["name"], name, str(eph).lower())
            out.add("kube_pod_spec_volumes_persistentvolumeclaims_info", vn, vv, 1)
            out.add("kube_pod_spec_volumes_persistentvolumeclaims_readonly", vn, vv, 1 if claim.get("readOnly") else 0)
    if st.get("reason"):
        known = {"Evicted", "NodeAffinity", "NodeLost", "PreemptionByScheduler", "SchedulingGated", "Shutdown",
                 "TerminationByKubelet", "UnexpectedAdmissionError"}
        out.add("kube_pod_status_reason", n + ("reason",), v + (st["reason"] if st["reason"] in known else "Other",), 1)
    if "DisruptionTarget" in conds:
        out.add("kube_pod_status_disruption_reason", n + ("reason",), v + (conds["DisruptionTarget"].get("reason", "Other"),), 1)
    for t in spec.get("tolerations") or []:
        secs = t.get("tolerationSeconds")
        out.add("kube_pod_tolerations", n + ("key", "operator", "value", "effect", "toleration_seconds"),
                v + (t.get("key", ""), t.get("operator", ""), t.get("value", ""), t.get("effect", ""),
                     "" if secs is None else str(secs)), 1)
    out.add("kube_pod_service_account", n + ("service_account",), v + (spec.get("serviceAccountName", ""),), 1)
    out.add("kube_pod_scheduler", n + ("name",), v + (spec.get("schedulerName", "default-scheduler"),), 1)
    for rc in spec.get("resourceClaims") or []:
        out.add("kube_pod_resourceclaim_info", n + ("claim_name", "resourceclaim_name", "resourceclaim_template_name"),
                v + (rc["name"], rc.get("resourceClaimName", ""), rc.get("resourceClaimTemplateName", "")), 1)
    return out.by


def _intorpercent(value, replicas, round_up):
    if value is None:
        return None
    if isinstance(value, str) and value.endswith("%"):
        x = int(value[:-1]) * replicas / 100
        return int(-(-x // 1)) if round_up else int(x)
    return int(value)


def deployment_lines(d, allow):
    out = _Lines()
    md, spec, st = d["metadata"], d["spec"], d.get("status", {})
    ident = (("namespace", "deployment"), (md["namespace"], md["name"]))
    n, v = ident
    _meta(out, "deployment", ident, md, allow)
    for fam, field in (("status_replicas", "replicas"), ("status_replicas_ready", "readyReplicas"),
                       ("status_replicas_available", "availableReplicas"),
                       ("status_replicas_unavailable", "unavailableReplicas"),
                       ("status_replicas_updated", "updatedReplicas"),
                       ("status_observed_generation", "observedGeneration")):
        out.add(f"kube_deployment_{fam}", n, v, st.get(field, 0))
    if st.get("terminatingReplicas") is not None:
        out.add("kube_deployment_status_terminating_replicas", n, v, st["terminatingReplicas"])
    for c in st.get("conditions") or []:
        out.cond("kube_deployment_status_condition", n + ("reason", "condition"), v + (c.get("reason", ""), c["type"]),
                 c["status"], extra=("status",))
    replicas = spec.get("replicas", 1)
    out.add("kube_deployment_spec_replicas", n, v, replicas)
    out.add("kube_deployment_spec_paused", n, v, 1 if spec.get("paused") else 0)
    ru = (spec.get("strategy") or {}).get("rollingUpdate")
    if ru is not None:
        out.add("kube_deployment_spec_strategy_rollingupdate_max_unavailable", n, v,
                _intorpercent(ru.get("maxUnavailable", "25%"), replicas, False))
        out.add("kube_deployment_spec_strategy_rollingupdate_max_surge", n, v,
                _intorpercent(ru.get("maxSurge", "25%"), replicas, True))
    out.add("kube_deployment_metadata_generation", n, v, md.get("generation", 0))
    _common(out, "deployment", ident, md)
    _owner(out, "kube_deployment_owner", ident, md, controller_label=False)
    return out.by


def replicaset_lines(r, allow):
    out = _Lines()
    md, spec, st = r["metadata"], r["spec"], r.get("status", {})
    ident = (("namespace", "replicaset"), (md["namespace"], md["name"]))
    n, v = ident
    _meta(out, "replicaset", ident, md, allow)
    for fam, field in (("status_replicas", "replicas"), ("status_fully_labeled_replicas", "fullyLabeledReplicas"),
                       ("status_ready_replicas", "readyReplicas"), ("status_observed_generation", "observedGeneration")):
        out.add(f"kube_replicaset_{fam}", n, v, st.get(field, 0))
    if st.get("terminatingReplicas") is not None:
        out.add("kube_replicaset_status_terminating_replicas", n, v, st["terminatingReplicas"])
    out.add("kube_replicaset_spec_replicas", n, v, spec.get("replicas", 1))
    out.add("kube_replicaset_metadata_generation", n, v, md.get("generation", 0))
    out.add("kube_replicaset_created", n, v, _ts(md.get("creationTimestamp")))
    _owner(out, "kube_replicaset_owner", ident, md)
    return out.by


def statefulset_lines(t, allow):
    out = _Lines()
    md, spec, st = t["metadata"], t["spec"], t.get("status", {})
    ident = (("namespace", "statefulset"), (md["namespace"], md["name"]))
    n, v = ident
    _meta(out, "statefulset", ident, md, allow)
    for fam, field in (("status_replicas", "replicas"), ("status_replicas_current", "currentReplicas"),
                       ("status_replicas_ready", "readyReplicas"), ("status_replicas_available", "availableReplicas"),
                       ("status_replicas_updated", "updatedReplicas"),
                       ("status_observed_generation", "observedGeneration")):
        out.add(f"kube_statefulset_{fam}", n, v, st.get(field, 0))
    out.add("kube_statefulset_replicas", n, v, spec.get("replicas", 1))
    if spec.get("ordinals"):
        out.add("kube_statefulset_ordinals_start", n, v, spec["ordinals"].get("start", 0))
    out.add("kube_statefulset_metadata_generation", n, v, md.get("generation", 0))
    pol = spec.get("persistentVolumeClaimRetentionPolicy")
    if pol is not None:
        out.add("kube_statefulset_persistentvolumeclaim_retention_policy", n + ("when_deleted", "when_scaled"),
                v + (pol.get("whenDeleted", "Retain"), pol.get("whenScaled", "Retain")), 1)
    _common(out, "statefulset", ident, md)
    for fam, field in (("status_current_revision", "currentRevision"), ("status_update_revision", "updateRevision")):
        if st.get(field):
            out.add(f"kube_statefulset_{fam}", n + ("revision",), v + (st[field],), 1)
    return out.by


def daemonset_lines(d, allow):
    out = _Lines()
    md, st = d["metadata"], d.get("status", {})
    ident = (("namespace", "daemonset"), (md["namespace"], md["name"]))
    n, v = ident
    _meta(out, "daemonset", ident, md, allow)
    _common(out, "daemonset", ident, md)
    for fam, field in (("status_current_number_scheduled", "currentNumberScheduled"),
                       ("status_desired_number_scheduled", "desiredNumberScheduled"),
                       ("status_number_available", "numberAvailable"),
                       ("status_number_misscheduled", "numberMisscheduled"),
                       ("status_number_ready", "numberReady"), ("status_number_unavailable", "numberUnavailable"),
                       ("status_observed_generation", "observedGeneration"),
                       ("status_updated_number_scheduled", "updatedNumberScheduled")):
        out.add(f"kube_daemonset_{fam}", n, v, st.get(field, 0))
    out.add("kube_daemonset_metadata_generation", n, v, md.get("generation", 0))
    return out.by


def _hpa_metric(m, current=False):
    """(metric_name, [(metric_target_type, value)], container) of one spec/status metric."""
    field = {"Resource": "resource", "ContainerResource": "containerResource", "Pods": "pods",
             "Object": "object", "External": "external"}.get(m.get("type", ""))
    body = m.get(field) or {} if field else {}      # the HPA controller writes type "" while it cannot read metrics
    name = body.get("name") or (body.get("metric") or {}).get("name", "")
    vals = body.get("current" if current else "target") or {}
    out = []
    for field, label in (("averageUtilization", "utilization"), ("averageValue", "average"), ("value", "value")):
        if field in vals:
            out.append((label, quantity(vals[field]) if isinstance(vals[field], str) else vals[field]))
    return name, out, body.get("container", "")


def hpa_lines(h, allow):
    out = _Lines()
    md, spec, st = h["metadata"], h["spec"], h.get("status", {})
    ident = (("namespace", "horizontalpodautoscaler"), (md["namespace"], md["name"]))
    n, v = ident
    ref = spec["scaleTargetRef"]
    out.add("kube_horizontalpodautoscaler_info", n + ("scaletargetref_api_version", "scaletargetref_kind",
                                                      "scaletargetref_name"),
            v + (ref.get("apiVersion", ""), ref["kind"], ref["name"]), 1)
    _meta(out, "horizontalpodautoscaler", ident, md, allow)
    out.add("kube_horizontalpodautoscaler_metadata_generation", n, v, md.get("generation", 0))
    out.add("kube_horizontalpodautoscaler_spec_max_replicas", n, v, spec["maxReplicas"])
    out.add("kube_horizontalpodautoscaler_spec_min_replicas", n, v, spec.get("minReplicas", 1))
    mn = n + ("metric_name", "metric_target_type", "container")
    for fam, metrics, current in (("spec_target_metric", spec.get("metrics") or [], False),
                                  ("status_target_metric", st.get("currentMetrics") or [], True)):
        for m in metrics:
            name, vals, container = _hpa_metric(m, current)
            if not name:
                continue
            for target_type, value in vals:
                out.add(f"kube_horizontalpodautoscaler_{fam}", mn, v + (name, target_type, container), value)
    behavior = spec.get("behavior") or {}
    for direction, fam in (("scaleDown", "spec_behavior_scale_down_tolerance"),
                           ("scaleUp", "spec_behavior_scale_up_tolerance")):
        tol = (behavior.get(direction) or {}).get("tolerance")
        if tol is not None:
            out.add(f"kube_horizontalpodautoscaler_{fam}", n, v, quantity(tol) if isinstance(tol, str) else tol)
    for c in st.get("conditions") or []:
        out.cond("kube_horizontalpodautoscaler_status_condition", n + ("condition",), v + (c["type"],), c["status"],
                 extra=("status",))
    # status.currentReplicas as the HPA controller wrote it; before its first pass, none.
    if st.get("currentReplicas") is not None:
        out.add("kube_horizontalpodautoscaler_status_current_replicas", n, v, st["currentReplicas"])
        out.add("kube_horizontalpodautoscaler_status_desired_replicas", n, v, st.get("desiredReplicas", st["currentReplicas"]))
    _common(out, "horizontalpodautoscaler", ident, md)
    return out.by


def job_lines(j, allow):
    out = _Lines()
    md, spec, st = j["metadata"], j["spec"], j.get("status", {})
    ident = (("namespace", "job_name"), (md["namespace"], md["name"]))
    n, v = ident
    for kind, prefix, field in (("labels", "label_", "labels"), ("annotations", "annotation_", "annotations")):
        keys = allow[kind].get("jobs", [])
        out.add(f"kube_job_{kind}", n + tuple(prefix + ksm.sanitize(k) for k in keys),
                v + tuple((md.get(field) or {}).get(k, "") for k in keys), 1)
    out.add("kube_job_info", n, v, 1)
    _owner(out, "kube_job_owner", ident, md)
    out.add("kube_job_spec_parallelism", n, v, spec.get("parallelism", 1))
    out.add("kube_job_spec_completions", n, v, spec.get("completions", 1))
    if spec.get("activeDeadlineSeconds") is not None:
        out.add("kube_job_spec_active_deadline_seconds", n, v, spec["activeDeadlineSeconds"])
    out.add("kube_job_status_active", n, v, st.get("active", 0))
    out.add("kube_job_status_succeeded", n, v, st.get("succeeded", 0))
    conds = {c["type"]: c for c in st.get("conditions") or []}
    out.add("kube_job_status_failed", n + ("reason",), v + (conds.get("Failed", {}).get("reason", ""),), st.get("failed", 0))
    if st.get("startTime"):
        out.add("kube_job_status_start_time", n, v, _ts(st["startTime"]))
    if st.get("completionTime"):
        out.add("kube_job_status_completion_time", n, v, _ts(st["completionTime"]))
    for ctype, fam in (("Complete", "kube_job_complete"), ("Failed", "kube_job_failed")):
        if ctype in conds:
            out.cond(fam, n, v, conds[ctype]["status"], extra=("condition",))
    out.add("kube_job_created", n, v, _ts(md.get("creationTimestamp")))
    out.add("kube_job_status_suspended", n, v, 1 if spec.get("suspend") else 0)
    if st.get("ready") is not None:
        out.add("kube_job_status_ready", n, v, st["ready"])
    return out.by


def node_lines(nd, allow, internal_ip):
    out = _Lines()
    md, spec, st = nd["metadata"], nd["spec"], nd.get("status", {})
    name = md["name"]
    ident = (("node",), (name,))
    n, v = ident
    _meta(out, "node", ident, md, allow)
    info = st.get("nodeInfo") or {}
    out.add("kube_node_info", n + ("kernel_version", "os_image", "container_runtime_version", "kubelet_version",
                                   "kubeproxy_version", "pod_cidr", "provider_id", "system_uuid", "internal_ip"),
            v + (info.get("kernelVersion", ""), info.get("osImage", ""), info.get("containerRuntimeVersion", ""),
                 info.get("kubeletVersion", ""), info.get("kubeProxyVersion", ""), spec.get("podCIDR", ""),
                 spec.get("providerID", ""), info.get("systemUUID", ""), internal_ip), 1)
    for key in md.get("labels") or {}:
        if key.startswith("node-role.kubernetes.io/"):
            out.add("kube_node_role", n + ("role",), v + (key.split("/", 1)[1],), 1)
    for cidr in spec.get("podCIDRs") or []:
        out.add("kube_node_spec_pod_cidrs", n + ("pod_cidr",), v + (cidr,), 1)
    out.add("kube_node_spec_unschedulable", n, v, 1 if spec.get("unschedulable") else 0)
    for t in spec.get("taints") or []:
        out.add("kube_node_spec_taint", n + ("key", "value", "effect"), v + (t["key"], t.get("value", ""), t["effect"]), 1)
    for fam, field in (("kube_node_status_capacity", "capacity"), ("kube_node_status_allocatable", "allocatable")):
        for rname, q in (st.get(field) or {}).items():
            out.add(fam, n + ("resource", "unit"), v + (rname.replace("-", "_").replace(".", "_").replace("/", "_"),
                                                        _unit(rname)), quantity(q))
    for a in st.get("addresses") or []:
        out.add("kube_node_status_addresses", n + ("type", "address"), v + (a["type"], a["address"]), 1)
    for c in st.get("conditions") or []:
        out.cond("kube_node_status_condition", n + ("condition",), v + (c["type"],), c["status"], extra=("status",))
    _common(out, "node", ident, md)
    return out.by


def namespace_lines(ns, allow):
    out = _Lines()
    md, st = ns["metadata"], ns.get("status", {})
    ident = (("namespace",), (md["name"],))
    n, v = ident
    _meta(out, "namespace", ident, md, allow)
    out.add("kube_namespace_created", n, v, _ts(md.get("creationTimestamp")))
    for c in st.get("conditions") or []:
        out.cond("kube_namespace_status_condition", n + ("condition",), v + (c["type"],), c["status"], extra=("status",))
    phase = st.get("phase", "Active")
    for ph in ("Active", "Terminating"):
        out.add("kube_namespace_status_phase", n + ("phase",), v + (ph,), 1 if phase == ph else 0)
    return out.by


def pvc_lines(c, allow):
    out = _Lines()
    md, spec, st = c["metadata"], c["spec"], c.get("status", {})
    ident = (("namespace", "persistentvolumeclaim"), (md["namespace"], md["name"]))
    n, v = ident
    _meta(out, "persistentvolumeclaim", ident, md, allow)
    for mode in spec.get("accessModes") or []:
        out.add("kube_persistentvolumeclaim_access_mode", n + ("access_mode",), v + (mode,), 1)
    out.add("kube_persistentvolumeclaim_info", n + ("storageclass", "volumename", "volumemode"),
            v + (spec.get("storageClassName", ""), spec.get("volumeName", ""), spec.get("volumeMode", "")), 1)
    req = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if req:
        out.add("kube_persistentvolumeclaim_resource_requests_storage_bytes", n, v, quantity(req))
    for cond in st.get("conditions") or []:
        out.cond("kube_persistentvolumeclaim_status_condition", n + ("type",), v + (cond["type"],), cond["status"],
                 extra=("status",))
    phase = st.get("phase", "Pending")
    for ph in ("Lost", "Bound", "Pending"):
        out.add("kube_persistentvolumeclaim_status_phase", n + ("phase",), v + (ph,), 1 if phase == ph else 0)
    _common(out, "persistentvolumeclaim", ident, md)
    return out.by


def service_lines(s, allow):
    out = _Lines()
    md, spec, st = s["metadata"], s["spec"], s.get("status", {})
    ident = (("namespace", "service", "uid"), (md["namespace"], md["name"], md.get("uid", "")))
    n, v = ident
    _meta(out, "service", ident, md, allow)
    out.add("kube_service_info", n + ("cluster_ip", "external_name", "external_traffic_policy", "load_balancer_ip"),
            v + (spec.get("clusterIP", ""), spec.get("externalName", ""), spec.get("externalTrafficPolicy", ""),
                 spec.get("loadBalancerIP", "")), 1)
    _common(out, "service", ident, md)
    out.add("kube_service_spec_type", n + ("type",), v + (spec.get("type", "ClusterIP"),), 1)
    for ip in spec.get("externalIPs") or []:
        out.add("kube_service_spec_external_ip", n + ("external_ip",), v + (ip,), 1)
    for ing in (st.get("loadBalancer") or {}).get("ingress") or []:
        out.add("kube_service_status_load_balancer_ingress", n + ("ip", "hostname"),
                v + (ing.get("ip", ""), ing.get("hostname", "")), 1)
    return out.by


# snapshot list -> (resource of the table, lines function); the order kube-state-metrics' stores
# are listed in when it writes its page does not matter to Prometheus.
RESOURCES = (
    ("pods", "pod", pod_lines), ("deployments", "deployment", deployment_lines),
    ("replicasets", "replicaset", replicaset_lines), ("statefulsets", "statefulset", statefulset_lines),
    ("daemonsets", "daemonset", daemonset_lines), ("hpas", "horizontalpodautoscaler", hpa_lines),
    ("jobs", "job", job_lines), ("namespaces", "namespace", namespace_lines),
    ("pvcs", "persistentvolumeclaim", pvc_lines), ("services", "service", service_lines),
)

_KINDS = {name: (f["type"], f"kube-state-metrics {ksm.VERSION} stand-in") for name, f in ksm.FAMILIES.items()}


def page(snapshot, allowlists=None, cache=None):
    """A textformat.Page of every default family derived from the snapshot's objects. `cache`: a
    dict the caller keeps between calls ((resource, uid, resourceVersion, allowlists) -> lines),
    so an unchanged object costs a lookup."""
    _CACHE = {} if cache is None else cache
    allow = allowlists or {"labels": {}, "annotations": {}}
    akey = repr(sorted((k, sorted(v.items())) for k, v in allow.items()))
    out = Page()
    for name, f in ksm.DEFAULT_FAMILIES.items():      # the table's order, families declared once
        out.family(name, f["type"], _KINDS[name][1])
    seen = set()
    for attr, _, fn in RESOURCES + (("nodes", "node", None),):
        for obj in getattr(snapshot, attr):
            md = obj["metadata"]
            key = (attr, md.get("uid", md["name"]), md.get("resourceVersion", ""), akey)
            if attr == "nodes":
                key += (snapshot.node_ip(md["name"]),)
            lines = _CACHE.get(key)
            if lines is None:
                lines = (node_lines(obj, allow, snapshot.node_ip(md["name"])) if attr == "nodes"
                         else fn(obj, allow))
                _CACHE[key] = lines
            seen.add(key)
            out.extend(lines, _KINDS)
    for key in [k for k in _CACHE if k not in seen]:       # objects gone or changed
        del _CACHE[key]
    return out


def exposition(snapshot, allowlists=None, cache=None):
    """kube-state-metrics' /metrics page for the snapshot, as bytes (cache: as page())."""
    return page(snapshot, allowlists, cache).render()
