"""Unit tier: the log collector (promtail subchart) for the defaults and every profile, with
both collectors: Promtail (default) and Grafana Alloy (`promtail.collector: alloy`).

Neither Promtail nor Alloy can be installed here (Promtail is AGPL and end of life; Alloy's
module does not `go install`), so the rendered configurations are parsed (YAML for
Promtail, harness.logs' parser for Alloy) and their structure is the proof: namespace
selection, the labels namespace/pod/container/app/component/level, the JSON stage with
traceID as structured metadata, the /var/log job, positions on a hostPath, least-privilege
RBAC, and the push URL of the release's Loki. Both collectors must yield the same view.
"""
import re

import pytest
import yaml

from harness import params
from harness.logs import Call, Concat, Ref, alloy_view, components, parse_alloy, promtail_view, references
from harness.manifests import containers, ident, pod_spec
from harness.render import render, render_error
from harness.schema import kube_errors

pytestmark = pytest.mark.unit

NAME = "p5-promtail"  # the default collector; every object is named for what it runs
COLLECTORS = ("promtail", "alloy")
SPEC_LABELS = {"namespace", "pod", "container", "app", "component"}
PUSH_URL = "http://p5-loki:3100/loki/api/v1/push"


def _render(values=(), collector="promtail", **extra):
    sets = {"promtail.collector": collector, **extra}
    return render(values, set_values=sets)


def _name(collector):
    """The collector's objects are named for what it runs: p5-promtail or p5-alloy."""
    return f"p5-{collector}"


def _config(objs, collector):
    name = _name(collector)
    cm = objs.get("ConfigMap", name)
    data = cm["data"]
    if collector == "alloy":
        assert set(data) == {"config.alloy"}, f"ConfigMap/{name}: keys {sorted(data)}, want config.alloy only"
        return parse_alloy(data["config.alloy"])
    assert set(data) == {"promtail.yaml"}, f"ConfigMap/{name}: keys {sorted(data)}, want promtail.yaml only"
    return yaml.safe_load(data["promtail.yaml"])


def _view(objs, collector):
    cfg = _config(objs, collector)
    return alloy_view(cfg) if collector == "alloy" else promtail_view(cfg)


def _container(objs, collector="promtail"):
    ds = objs.get("DaemonSet", _name(collector))
    (c,) = containers(ds)
    return ds, c


def _rules_by_target(view):
    out = {}
    for r in view["rules"]:
        if r["target_label"]:
            out.setdefault(r["target_label"], []).append(r)
    return out


BOTH = [pytest.param(v, c, id=f"{p.id}-{c}") for p in params.profiles() for v in p.values for c in COLLECTORS]


@pytest.mark.parametrize("values,collector", BOTH)
def test_spec_labels_come_from_pod_metadata(values, collector):
    view = _view(_render(values, collector), collector)
    targets = _rules_by_target(view)
    missing = SPEC_LABELS - targets.keys()
    assert not missing, f"{collector}: relabel rules set no {sorted(missing)}; targets={sorted(targets)}"
    sources = {
        "namespace": ("__meta_kubernetes_namespace",),
        "pod": ("__meta_kubernetes_pod_name",),
        "container": ("__meta_kubernetes_pod_container_name",),
        "app": ("__meta_kubernetes_pod_label_app", "__meta_kubernetes_pod_label_app_kubernetes_io_name"),
        "component": ("__meta_kubernetes_pod_label_component",
                      "__meta_kubernetes_pod_label_app_kubernetes_io_component"),
    }
    for label, want in sources.items():
        (rule,) = targets[label]
        assert rule["source_labels"] == want and rule["action"] == "replace", f"{collector}: {label} rule {rule}"
    assert view["sd_roles"] == ["pod"], f"{collector}: kubernetes discovery roles {view['sd_roles']}"


@pytest.mark.parametrize("collector", COLLECTORS)
def test_fallback_label_regex_picks_first_non_empty(collector):
    """app/component take the first non-empty of two pod labels (joined by ';')."""
    rule = _rules_by_target(_view(_render(collector=collector), collector))["app"][0]
    rx = re.compile(rule["regex"])
    cases = {"web;": "web", ";backend": "backend", "web;backend": "web", ";": None}
    for joined, want in cases.items():
        m = rx.fullmatch(joined)
        got = m.expand(re.sub(r"\$\{?(\d+)\}?", r"\\\1", rule["replacement"])) if m else None
        assert got == want, f"{collector}: app from {joined!r} -> {got!r}, want {want!r}"


@pytest.mark.parametrize("values,collector", BOTH)
def test_namespace_selection(values, collector):
    view = _view(_render(values, collector), collector)
    keeps = [r for r in view["rules"] if r["action"] == "keep"]
    assert keeps, f"{collector}: no keep rule: every namespace's logs would be collected"
    assert keeps[0] is view["rules"][0], f"{collector}: the namespace keep rule must come first"
    assert keeps[0]["source_labels"] == ("__meta_kubernetes_namespace",), keeps[0]
    rx = re.compile(keeps[0]["regex"])
    assert keeps[0]["regex"] == "phase5-.*", f"{collector}: namespace regex {keeps[0]['regex']!r}"
    assert rx.fullmatch("phase5-backend") and not rx.fullmatch("kube-system"), keeps[0]["regex"]


@pytest.mark.parametrize("collector", COLLECTORS)
def test_namespace_regex_is_configurable(collector):
    view = _view(_render(collector=collector, **{"global.phase5.namespaceRegex": "team-(a|b)"}), collector)
    keep = [r for r in view["rules"] if r["action"] == "keep"][0]
    assert keep["regex"] == "team-(a|b)", f"{collector}: namespaceRegex not applied: {keep}"


@pytest.mark.parametrize("values,collector", BOTH)
def test_json_stage_extracts_level_and_trace_id(values, collector):
    view = _view(_render(values, collector), collector)
    assert view["stages"][:2] == ["cri", "json"], f"{collector}: stages {view['stages']} (CRI first, then JSON)"
    assert view["json"].get("level") == "level", f"{collector}: json expressions {view['json']}"
    assert "traceID" in view["json"].get("traceID", ""), f"{collector}: json expressions {view['json']}"
    assert view["labels"] == {"level"}, f"{collector}: labels stage {view['labels']} (level only)"
    assert view["structured_metadata"] == {"traceID"}, (
        f"{collector}: traceID must be structured metadata, got {view['structured_metadata']}")
    assert "traceID" not in _rules_by_target(view), f"{collector}: traceID must never be a label"


@pytest.mark.parametrize("values,collector", BOTH)
def test_system_logs_job(values, collector):
    view = _view(_render(values, collector), collector)
    assert view["system"] == [{"job": "varlogs", "__path__": "/var/log/*log"}], f"{collector}: {view['system']}"
    off = _view(_render(values, collector, **{"promtail.systemLogs.enabled": False}), collector)
    assert off["system"] == [], f"{collector}: systemLogs.enabled=false still collects {off['system']}"


@pytest.mark.parametrize("values", [p.values[0] for p in params.profiles()], ids=[p.id for p in params.profiles()])
def test_both_collectors_produce_the_same_view(values):
    """Switching collector changes the program, not the streams: same relabelling, same
    labels, same stages, same system-log targets, same push URL."""
    promtail = _view(_render(values, "promtail"), "promtail")
    alloy = _view(_render(values, "alloy"), "alloy")
    for key in promtail:
        assert promtail[key] == alloy[key], f"{key}: promtail={promtail[key]!r} alloy={alloy[key]!r}"


@pytest.mark.parametrize("values,collector", BOTH)
def test_pushes_to_release_loki(values, collector):
    objs = _render(values, collector)
    assert _view(objs, collector)["push_urls"] == [PUSH_URL], collector
    svc = objs.get("Service", "p5-loki")
    ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
    assert ports.get("http-web") == 3100, f"{ident(svc)}: ports {ports}"


@pytest.mark.parametrize("collector", COLLECTORS)
def test_push_url_and_tenant_override(collector):
    objs = _render(collector=collector, **{"promtail.lokiUrl": "https://logs.example:443/loki/api/v1/push",
                                           "promtail.tenantId": "phase5"})
    text = objs.get("ConfigMap", _name(collector))["data"]
    body = next(iter(text.values()))
    assert "https://logs.example:443/loki/api/v1/push" in body and "phase5" in body, body


@pytest.mark.parametrize("values,collector", BOTH)
def test_positions_survive_restarts_on_host_path(values, collector):
    objs = _render(values, collector)
    ds, c = _container(objs, collector)
    volumes = {v["name"]: v for v in pod_spec(ds)["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    if collector == "alloy":
        (path,) = [a.split("=", 1)[1] for a in c["args"] if a.startswith("--storage.path=")]
        directory = path
    else:
        directory = _config(objs, collector)["positions"]["filename"].rsplit("/", 1)[0]
    assert directory in mounts, f"{ident(ds)}: positions dir {directory} is not a mount ({sorted(mounts)})"
    vol = volumes[mounts[directory]["name"]]
    # One directory per release (<namespace>-<release>): two releases never share a positions file.
    assert vol.get("hostPath", {}).get("path") == "/var/lib/phase5-monitoring/log-collector/monitoring-p5", (
        f"{ident(ds)}: positions volume {vol} is not the release's hostPath")
    assert not mounts[directory].get("readOnly"), f"{ident(ds)}: positions mount is read-only"


@pytest.mark.parametrize("values,collector", BOTH)
def test_host_access_is_the_documented_exception_only(values, collector):
    objs = _render(values, collector)
    ds, c = _container(objs, collector)
    spec = pod_spec(ds)
    host_paths = {v["hostPath"]["path"]: v["name"] for v in spec["volumes"] if "hostPath" in v}
    assert set(host_paths) == {"/var/log", "/var/lib/phase5-monitoring/log-collector/monitoring-p5"}, host_paths
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts[host_paths["/var/log"]].get("readOnly") is True, f"{ident(ds)}: /var/log must be read-only"
    sc = c["securityContext"]
    assert sc["runAsUser"] == 0, f"{ident(ds)}: runs as {sc.get('runAsUser')}, root is needed to read logs"
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, sc
    assert sc["capabilities"] == {"drop": ["ALL"]} and not sc.get("privileged"), sc
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, spec["securityContext"]
    assert not spec.get("hostNetwork") and not spec.get("hostPID"), f"{ident(ds)}: host namespaces"
    assert spec["automountServiceAccountToken"] is True, f"{ident(ds)}: needs its token for pod discovery"
    env = {e["name"]: e for e in c["env"]}
    assert env["HOSTNAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName", env


@pytest.mark.parametrize("values", [p.values[0] for p in params.profiles()], ids=[p.id for p in params.profiles()])
def test_rbac_is_get_list_watch_on_pods_and_nodes(values):
    objs = _render(values)
    role = objs.get("ClusterRole", f"monitoring-{NAME}")  # cluster-scoped: <namespace>-<fullname>
    assert role["rules"] == [{"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["get", "list", "watch"]}], (
        f"{ident(role)}: rules {role['rules']}")
    binding = objs.get("ClusterRoleBinding", f"monitoring-{NAME}")
    assert binding["roleRef"]["name"] == f"monitoring-{NAME}", binding
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": "monitoring"}], binding
    assert pod_spec(objs.get("DaemonSet", NAME))["serviceAccountName"] == NAME


@pytest.mark.parametrize("collector", COLLECTORS)
def test_metrics_service_is_scraped(collector):
    objs = _render(collector=collector)
    svc = objs.get("Service", _name(collector))
    ann = svc["metadata"]["annotations"]
    assert ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "3101", ann
    assert ann.get("prometheus.io/path") == "/metrics", ann
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("http-metrics", 3101)], svc["spec"]["ports"]
    _, c = _container(objs, collector)
    assert {"name": "http-metrics", "containerPort": 3101, "protocol": "TCP"} in c["ports"], c["ports"]
    if collector == "alloy":
        assert "--server.http.listen-addr=0.0.0.0:3101" in c["args"], c["args"]
    else:
        assert _config(objs, collector)["server"]["http_listen_port"] == 3101


@pytest.mark.parametrize("collector,pattern", [
    ("promtail", r"^docker\.io/grafana/promtail:3\.\d+\.\d+$"),
    ("alloy", r"^docker\.io/grafana/alloy:v1\.\d+\.\d+$"),
])
def test_collector_image_pinned(collector, pattern):
    _, c = _container(_render(collector=collector), collector)
    assert re.match(pattern, c["image"]), f"{collector}: image {c['image']} is not pinned to {pattern}"
    assert c["name"] == collector


def test_collector_choice_is_validated():
    msg = render_error(set_values={"promtail.collector": "fluentbit"})
    assert "collector" in msg, msg


def test_config_change_rolls_the_daemonset():
    base = _render()
    other = _render(**{"global.phase5.namespaceRegex": "other-.*"})
    ck = [o.get("DaemonSet", NAME)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
          for o in (base, other)]
    assert ck[0] != ck[1], "checksum/config did not change with the collector config"


def test_alloy_config_is_wired():
    """Every component reference points at a declared component with that export, the node
    filter uses the HOSTNAME env, and every source reaches loki.write."""
    root = _config(_render(collector="alloy"), "alloy")
    comps = components(root)
    exports = {"discovery.kubernetes": {"targets"}, "discovery.relabel": {"output", "rules"},
               "local.file_match": {"targets"}, "loki.process": {"receiver"}, "loki.write": {"receiver"},
               "loki.source.file": set()}
    unknown = {name for name, _ in comps} - exports.keys()
    assert not unknown, f"components the test does not know: {unknown}"
    for (name, label), block in comps.items():
        for ref in references(block):
            parts = ref.path.split(".")
            target = (".".join(parts[:2]), parts[2]) if len(parts) == 4 else None
            assert target in comps, f"{name} {label!r}: reference {ref.path} to an undeclared component"
            assert parts[3] in exports[target[0]], f"{name} {label!r}: {ref.path}: {target[0]} exports no {parts[3]}"
    for (name, label), block in comps.items():
        if name == "loki.source.file":
            fwd = block.attrs["forward_to"]
            assert fwd and all(isinstance(r, Ref) for r in fwd), f"loki.source.file {label!r}: forward_to {fwd}"
    sel = comps[("discovery.kubernetes", "pods")].child("selectors")
    assert sel.attrs["role"] == "pod", sel.attrs
    field = sel.attrs["field"]
    assert isinstance(field, Concat) and field.parts[0] == "spec.nodeName=", field
    assert field.parts[1] == Call("sys.env", ["HOSTNAME"]), field
    assert comps[("loki.process", "pods")].attrs["forward_to"] == [Ref("loki.write.default.receiver")]


@pytest.mark.parametrize("kube_version", params.kube_versions())
def test_alloy_variant_valid_for_kubernetes(kube_version):
    """The profiles are validated with the default collector (test_unit_render); the Alloy
    variant's objects must be just as valid."""
    objs = render(set_values={"promtail.collector": "alloy"}, kube_version=kube_version).by_component("alloy")
    assert objs, "no alloy-component objects rendered"
    errors = kube_errors(objs, versions=(kube_version,))
    assert not errors, "\n".join(errors)
