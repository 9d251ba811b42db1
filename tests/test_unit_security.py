"""Unit tier: safe by default, for the defaults and every profile.

Every pod meets Pod Security Standards "restricted" plus the chart's own rules
(read-only root filesystem, requests and limits, pinned images, no API token unless the
pod calls the API), except the documented host collectors, whose exceptions are listed
here one by one and allowed nowhere else."""
import pytest

from harness import params
from harness.manifests import component, containers, ident, pod_spec
from harness.render import render

pytestmark = pytest.mark.unit

# Pods that call the Kubernetes API and so mount their ServiceAccount token.
API_CLIENTS = {"prometheus", "promtail", "alloy", "kube-state-metrics"}
# The documented host-access exceptions, per component.
HOST_EXCEPTIONS = {
    "node-exporter": {"hostNetwork", "hostPID", "hostPath"},
    "promtail": {"hostPath", "root"},
    "alloy": {"hostPath", "root"},  # the same log collector, named for what it runs (promtail.collector)
}


def violations(obj):
    """PSS restricted + chart rules, as (rule, detail) pairs."""
    spec = pod_spec(obj)
    pod_sc = spec.get("securityContext") or {}
    out = []
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            out.append((flag, f"spec.{flag}: true"))
    for vol in spec.get("volumes") or []:
        if "hostPath" in vol:
            out.append(("hostPath", f"volume {vol['name']}: hostPath {vol['hostPath']['path']}"))
    for c in containers(obj):
        sc = c.get("securityContext") or {}
        name = c["name"]
        if sc.get("privileged"):
            out.append(("privileged", f"{name}: privileged"))
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(("allowPrivilegeEscalation", f"{name}: allowPrivilegeEscalation not false"))
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(("capabilities", f"{name}: does not drop ALL"))
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(("capabilities", f"{name}: adds {caps['add']}"))
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
        if not non_root or uid == 0:
            out.append(("root", f"{name}: runAsNonRoot={non_root} runAsUser={uid}"))
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(("seccomp", f"{name}: seccompProfile {seccomp}"))
        if sc.get("readOnlyRootFilesystem") is not True:
            out.append(("readOnlyRootFilesystem", f"{name}: root filesystem writable"))
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (res.get(kind) or {}):
                    out.append(("resources", f"{name}: no {kind}.{r}"))
        image = c["image"]
        last = image.rsplit("/", 1)[-1]
        if "@sha256:" not in image and (":" not in last or last.endswith(":latest")):
            out.append(("image", f"{name}: unpinned image {image}"))
    if obj["kind"] != "Pod" and component(obj) not in API_CLIENTS and spec.get("automountServiceAccountToken") is not False:
        out.append(("token", "automountServiceAccountToken not false (the pod does not call the API)"))
    return out


@pytest.mark.parametrize("values", params.profiles())
def test_pods_restricted_except_documented_exceptions(values):
    problems = []
    for obj in render(values).workloads():
        allowed = HOST_EXCEPTIONS.get(component(obj), set())
        for rule, detail in violations(obj):
            if rule not in allowed:
                problems.append(f"{ident(obj)}: {detail}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("values", params.profiles())
def test_host_mounts_read_only_except_collector_positions(values):
    """Host paths are mounted read-only; the one writable one is the log collector's
    positions directory (so it resumes after a restart)."""
    problems = []
    for obj in render(values).workloads():
        spec = pod_spec(obj)
        host_vols = {v["name"]: v["hostPath"]["path"] for v in spec.get("volumes") or [] if "hostPath" in v}
        for c in containers(obj):
            for m in c.get("volumeMounts") or []:
                if m["name"] in host_vols and not m.get("readOnly"):
                    if component(obj) in ("promtail", "alloy") and "positions" in m["mountPath"] + m["name"]:
                        continue
                    problems.append(f"{ident(obj)}: {c['name']} mounts host {host_vols[m['name']]} writable at {m['mountPath']}")
    assert not problems, "\n".join(problems)


def test_exceptions_are_really_needed():
    """Each listed exception is used by its component: the list cannot silently go stale."""
    used = {}
    for objs in (render(), render(set_values={"promtail.collector": "promtail"})):
        for obj in objs.workloads():
            used.setdefault(component(obj), set()).update(rule for rule, _ in violations(obj))
    for comp, allowed in HOST_EXCEPTIONS.items():
        assert allowed <= used.get(comp, set()), f"{comp}: exceptions {allowed - used.get(comp, set())} not used"


@pytest.mark.parametrize("values", params.profiles())
def test_rbac_has_no_wildcards(values):
    problems = []
    for obj in render(values):
        if obj["kind"] not in ("Role", "ClusterRole"):
            continue
        for rule in obj.get("rules") or []:
            for key in ("verbs", "resources", "apiGroups"):
                if "*" in (rule.get(key) or []):
                    problems.append(f"{ident(obj)}: wildcard in {key}: {rule}")
            if set(rule.get("verbs") or []) - {"get", "list", "watch"}:
                problems.append(f"{ident(obj)}: write verbs {rule['verbs']}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("values", params.profiles())
def test_replicated_components_have_disruption_budgets(values):
    objs = render(values)
    pdb_selectors = [p["spec"]["selector"]["matchLabels"] for p in objs.of_kind("PodDisruptionBudget")]
    missing = []
    for obj in objs.workloads():
        if obj["kind"] in ("Deployment", "StatefulSet") and obj["spec"].get("replicas", 1) > 1:
            sel = obj["spec"]["selector"]["matchLabels"]
            if sel not in pdb_selectors:
                missing.append(f"{ident(obj)} ({obj['spec']['replicas']} replicas)")
            spec = pod_spec(obj)
            if not (spec.get("affinity", {}).get("podAntiAffinity") or spec.get("topologySpreadConstraints")):
                missing.append(f"{ident(obj)}: replicas not spread (no anti-affinity or topology spread)")
    assert not missing, "replicated without a PodDisruptionBudget or spread: " + ", ".join(missing)


def test_dashboard_sidecar_is_restricted_and_its_rbac_reads_only():
    """Grafana's dashboard sidecar (off by default, so no profile renders it) meets the same rules:
    restricted, read-only root, requests and limits, a pinned image; its Roles and ClusterRole
    hold no wildcard and no write verb."""
    for mode in ({"grafana.sidecar.dashboards.namespaces": ["phase5-tasks"]},
                 {"grafana.sidecar.dashboards.allNamespaces": True}):
        objs = render(set_values={"grafana.sidecar.dashboards.enabled": True, **mode})
        (grafana,) = [o for o in objs.workloads() if component(o) == "grafana"]
        assert "dashboards-sidecar" in [c["name"] for c in containers(grafana)]
        assert not violations(grafana), violations(grafana)
        roles = [o for o in objs if o["kind"] in ("Role", "ClusterRole") and "dashboards-sidecar" in o["metadata"]["name"]]
        assert roles, f"{mode}: no Role or ClusterRole for the sidecar"
        for role in roles:
            for rule in role["rules"]:
                assert "*" not in str(rule) and set(rule["verbs"]) <= {"list", "watch"}, f"{ident(role)}: {rule}"


def test_kube_state_metrics_rbac_covers_every_collector_it_accepts():
    """Every collector kube-state-metrics' schema accepts renders a list/watch rule in its API
    group (endpointslices, the default since kube-state-metrics 2.18, in discovery.k8s.io), and
    nothing else is granted."""
    import json
    from harness import paths
    schema = json.loads((paths.SUBCHARTS_DIR / "kube-state-metrics" / "values.schema.json").read_text())
    accepted = schema["properties"]["collectors"]["items"]["enum"]
    role = next(o for o in render(set_values={"kube-state-metrics.collectors": accepted}).of_kind("ClusterRole")
                if component(o) == "kube-state-metrics")
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert {r for _, r in granted} == set(accepted), sorted(set(accepted) ^ {r for _, r in granted})
    assert ("discovery.k8s.io", "endpointslices") in granted and ("", "endpoints") in granted, sorted(granted)
