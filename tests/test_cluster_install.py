"""Cluster tier: what happens at install time, judged by a real Kubernetes API server.

Runs against the cluster in KUBECONFIG when one answers (kind in the GitHub workflow), else
against the local control plane (harness.controlplane: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler from bin/, kwok for three simulated nodes). On
simulated nodes no container runs: a pod is Ready once scheduled, so what these tests prove is
everything the API server and the controllers decide - admission (Pod Security), RBAC
objects, defaulting, immutable fields, scheduling (host ports, PDBs), Helm's lookup, volume
binding and expansion - not that images start (the e2e tier and kind prove that).
"""
import concurrent.futures
import json
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from harness import paths, tools
from harness.cluster import DEPLOY_SCRIPT_PSS, workloads_ready
from harness.manifests import component
from harness.render import render

pytestmark = pytest.mark.cluster

UMBRELLA = paths.UMBRELLA
RELEASES = paths.ROOT / "ci" / "releases"
DEPLOY = paths.ROOT / "scripts" / "deploy-monitoring.sh"

# Every profile a user installs: values files and --set-json pairs.
PROFILES = {
    "defaults": ([], {}),
    "dev": ([paths.PROFILES_DIR / "dev.yaml"], {}),
    "production": ([paths.PROFILES_DIR / "production.yaml"], {}),
    "kind": ([UMBRELLA / "ci" / "kind-values.yaml"], {}),
    # The end-of-life collector, still selectable: the kind values with Promtail instead of the
    # default Alloy (a --set, not a values file per collector).
    "promtail": ([UMBRELLA / "ci" / "kind-values.yaml"], {"promtail.collector": "promtail"}),
    # NetworkPolicies are on in every profile above; the one path without them, explicitly off.
    "no-networkpolicy": ([], {"networkPolicy.enabled": False}),
}
# How the API server refuses a volumeClaimTemplate change (the wording differs by version).
IMMUTABLE = re.compile(r"spec\.volumeClaimTemplates: Invalid value: .*field is immutable|"
                       r"Forbidden: updates to statefulset spec for fields other than")
# The host collectors: the only pods the baseline and restricted Pod Security levels reject (and,
# refusing the install there, the umbrella keys that switch them off).
HOST_COLLECTORS = {"node-exporter", "promtail"}


def host_collectors(profile):
    """The host collectors' workloads, the log collector named for what it runs
    (promtail.collector: Alloy by default)."""
    return {"node-exporter", "promtail"} if profile == "promtail" else {"node-exporter", "alloy"}


def values_args(profile, previous=False):
    """--values/--set-json of a profile; previous: as the previous release takes it (harness.previous)."""
    from harness.previous import previous_values
    files, sets = PROFILES[profile]
    if previous:
        files = previous_values(files)
    args = []
    for f in files:
        args += ["-f", str(f)]
    for k, v in sets.items():
        args += ["--set-json", f"{k}={json.dumps(v)}"]
    return args


def previous_release():
    def version(p):
        return tuple(int(x) for x in re.search(r"-(\d+)\.(\d+)\.(\d+)\.tgz$", p.name).groups())
    return sorted(RELEASES.glob("phase5-monitoring-*.tgz"), key=version)[-1]


def _namespace(cluster, request):
    """A fresh namespace with the deploy script's Pod Security labels, deleted afterwards
    (with every release in it uninstalled first, so cluster-scoped objects go too)."""
    name = cluster.new_namespace(re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-"),
                                 DEPLOY_SCRIPT_PSS)
    yield name
    helm = tools.require("helm")  # Helm 3 and 4 keep releases in the same Secrets
    for rel in cluster.helm(helm, "list", "-n", name, "-q", check=False).stdout.split():
        cluster.helm(helm, "uninstall", rel, "-n", name, "--timeout", "2m", check=False)
    cluster.delete_namespace(name)


@pytest.fixture
def ns(cluster, request):
    yield from _namespace(cluster, request)


@pytest.fixture
def local_ns(local_cluster, request):
    yield from _namespace(local_cluster, request)


def install(cluster, helm, release, namespace, profile, *extra, chart=UMBRELLA, wait=True, check=True):
    args = ["upgrade", "--install", release, str(chart), "-n", namespace,
            *values_args(profile, previous=chart != UMBRELLA), *extra]
    if wait:
        args += ["--wait", "--timeout", "5m"]
    return cluster.helm(helm, *args, check=check)


def assert_ready(cluster, namespace, timeout=180):
    bad = []

    def ready():
        bad[:] = workloads_ready(cluster, namespace)
        return not bad
    try:
        cluster.wait(ready, timeout, f"workloads in {namespace} ready")
    except TimeoutError:
        pytest.fail(f"not ready in {namespace} after {timeout}s: {bad}")


# ------------------------------------------------------------------------ the cluster itself
def test_cluster_reports_the_pinned_version(local_cluster):
    """helm's kubeVersion check reads this: a build without the version stamp says v0.0.0."""
    assert local_cluster.version() == local_cluster.cp.version


def test_control_plane_stops_everything_also_when_start_fails(tmp_path):
    """A start that fails half-way (kwok refuses its stages) stops what it started: no
    process of it runs and the API server's port is free (stop() is the same code at the end
    of every run)."""
    import socket

    from harness.controlplane import ControlPlane

    def listening(port):
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    bad = tmp_path / "bad-stages.yaml"
    bad.write_text("apiVersion: kwok.x-k8s.io/v1alpha1\nkind: Stage\nmetadata: {name: broken}\nspec: {resourceRef: 42}\n")
    workdir = tmp_path / "cp"
    cp = ControlPlane(workdir=workdir, stages=bad)
    with pytest.raises(RuntimeError, match="kwok exited"):
        cp.start(timeout=60)
    assert not cp.processes, "processes left after a failed start"
    port = int(cp.server.rsplit(":", 1)[1])
    assert not listening(port), f"the API server port {port} is still open"
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    left = [line for line in ps.splitlines() if str(workdir) in line]
    assert not left, f"processes of the failed control plane still run: {left}"


# -------------------------------------------------------------------------- every profile
@pytest.mark.parametrize("helm_name", ["helm", "helm4"])
@pytest.mark.parametrize("profile", list(PROFILES))
def test_profile_installs_and_gets_ready(cluster, ns, profile, helm_name):
    helm = tools.require(helm_name)
    install(cluster, helm, "p5", ns, profile)
    assert_ready(cluster, ns)
    status = json.loads(cluster.helm(helm, "status", "p5", "-n", ns, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed", status["info"]


@pytest.mark.parametrize("profile", list(PROFILES))
def test_server_side_dry_run_accepts_every_object(cluster, ns, profile):
    """Every rendered object (helm test pods included), as the API server validates and
    defaults it: unknown fields fail here (kubectl's strict field validation)."""
    text = cluster.helm(tools.require("helm"), "template", "p5", str(UMBRELLA), "-n", ns,
                        "--kube-version", cluster.version(), *values_args(profile)).stdout
    proc = cluster.kubectl("apply", "--dry-run=server", "--validate=strict", "-n", ns, "-f", "-",
                           input=text, check=False)
    assert proc.returncode == 0, f"{profile}: the API server refused:\n{proc.stderr}"
    n = len([d for d in yaml.safe_load_all(text) if d])
    accepted = [line for line in proc.stdout.splitlines() if "(server dry run)" in line]
    assert len(accepted) == n, f"{profile}: {len(accepted)} of {n} objects accepted:\n{proc.stdout}"


# -------------------------------------------------------------------------- Pod Security
def refused_collector(proc, ns, level):
    """The host collector whose Pod Security check refused the install (its fix named)."""
    assert proc.returncode != 0, f"installed into a namespace enforcing {level}:\n{proc.stdout}"
    named = [k for k in HOST_COLLECTORS if f'{k}: namespace {ns} enforces Pod Security level "{level}"' in proc.stderr]
    assert len(named) == 1, f"the refusal names no host collector (or several):\n{proc.stderr}"
    for fix in (f"kubectl label --overwrite namespace {ns} pod-security.kubernetes.io/enforce=privileged",
                f"{named[0]}.enabled=false"):
        assert fix in proc.stderr, f"the refusal does not name the fix {fix!r}:\n{proc.stderr}"
    return named[0]


@pytest.mark.parametrize("level", ["baseline", "restricted"])
@pytest.mark.parametrize("profile", ["defaults", "promtail"])
def test_namespace_forbidding_host_access_refuses_the_host_collectors(cluster, profile, level):
    """enforce=baseline or restricted forbids the host collectors' host namespaces and hostPath
    volumes: the release used to install and their DaemonSets never created a pod (only
    FailedCreate events said why). Now each host collector refuses the install in turn (lookup of
    the namespace's labels), naming the fix; with both disabled the level admits every other pod."""
    helm = tools.require("helm")
    ns = cluster.new_namespace(f"pss-{level}-{profile}", {"pod-security.kubernetes.io/enforce": level})
    try:
        disabled = []
        while len(disabled) < len(HOST_COLLECTORS):
            off = [arg for key in disabled for arg in ("--set-json", f"{key}.enabled=false")]
            proc = install(cluster, helm, "p5", ns, profile, *off, wait=False, check=False)
            key = refused_collector(proc, ns, level)
            assert key not in disabled, f"{key} refused although disabled"
            assert not cluster.get("daemonsets", "-n", ns)["items"], "a refused install created DaemonSets"
            cluster.helm(helm, "uninstall", "p5", "-n", ns, check=False)  # if a record was left
            disabled.append(key)
        install(cluster, helm, "p5", ns, profile, *off, "--set-json", f"{key}.enabled=false", wait=False)
        assert_ready(cluster, ns)
        assert not cluster.get("daemonsets", "-n", ns)["items"]
    finally:
        cluster.helm(helm, "uninstall", "p5", "-n", ns, check=False)
        cluster.delete_namespace(ns)


@pytest.mark.parametrize("profile", ["production", "promtail"])
def test_deploy_script_labels_admit_everything_and_warn_only_for_host_collectors(cluster, ns, profile):
    """The deploy script's labels (enforce=privileged, warn=restricted): each workload is
    admitted, and the API server's warnings name only the two host collectors."""
    docs = render([*PROFILES[profile][0]], PROFILES[profile][1] or None, namespace=ns)
    warned = set()
    for obj in docs.workloads():
        proc = cluster.kubectl("apply", "--dry-run=server", "-n", ns, "-f", "-", input=json.dumps(obj), check=False)
        assert proc.returncode == 0, f"{obj['kind']}/{obj['metadata']['name']} refused:\n{proc.stderr}"
        if "would violate PodSecurity" in proc.stderr:
            warned.add(component(obj))
    assert warned == host_collectors(profile), warned


# -------------------------------------------------------------- upgrades, data, rollback
def _sts_changed_by_model(profile):
    """The fast model (tests/test_unit_upgrade.py): StatefulSets whose volumeClaimTemplates
    differ between the previous release and the working tree."""
    from test_unit_upgrade import vct_changes
    files, sets = PROFILES[profile]
    return set(vct_changes(files, sets or None))


def _pvcs(cluster, ns):
    return {p["metadata"]["name"]: p for p in cluster.get("pvc", "-n", ns)["items"]}


def deploy_script(cluster, *args, check=True):
    env = cluster.env(HELM=tools.require("helm"), KUBECTL=cluster.kubectl_bin)
    return cluster.run(["bash", str(DEPLOY), *args], check=check, env=env, timeout=900)


def deploy_args(profile, ns, workdir=None):
    """The deploy script's arguments for a profile. The script takes values files only: a
    profile's --set-json pairs go into a values file written in `workdir` (the test's tmp_path)."""
    files, sets = PROFILES[profile]
    if sets:
        assert workdir is not None, f"{profile}: its --set values need a workdir to become a values file"
        extra = Path(workdir) / f"{profile}-sets.yaml"
        tree = {}
        for key, value in sets.items():
            node = tree
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        extra.write_text(yaml.safe_dump(tree))
        files = [*files, extra]
    args = ["--namespace", ns, "--release", "p5", "--timeout", "3m", "--no-health-check"]
    if files and files[0].parent == paths.PROFILES_DIR:
        args += ["--profile", files[0].stem]
        files = files[1:]
    else:
        args += ["--profile", "defaults"]
    for f in files:
        args += ["--values", str(f)]
    return args


def server_refuses(cluster, ns, profile):
    """The API server's verdict on updating each live StatefulSet to the working tree's
    render (server-side apply, dry run): {name: error} of those it refuses."""
    files, sets = PROFILES[profile]
    refused = {}
    for sts in render(files, sets or None, namespace=ns).of_kind("StatefulSet"):
        proc = cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=helm",
                               "--dry-run=server", "-n", ns, "-f", "-", input=json.dumps(sts), check=False)
        if proc.returncode != 0:
            refused[sts["metadata"]["name"]] = proc.stderr.strip()
    return refused


@pytest.mark.parametrize("profile", ["defaults", "dev", "production", "kind", "promtail"])
def test_upgrade_from_previous_release(cluster, ns, profile, tmp_path):
    """From the released package in ci/releases/: the API server refuses the StatefulSet
    updates exactly where the model says a volumeClaimTemplate changes, and
    deploy-monitoring.sh upgrades every profile keeping every PVC."""
    helm = tools.require("helm")
    install(cluster, helm, "p5", ns, profile, chart=previous_release())
    assert_ready(cluster, ns)
    before = {n: p["metadata"]["uid"] for n, p in _pvcs(cluster, ns).items()}

    predicted, refused = _sts_changed_by_model(profile), server_refuses(cluster, ns, profile)
    assert set(refused) == predicted, f"the API server refuses {sorted(refused)}, the model predicted {sorted(predicted)}: {refused}"
    for name, err in refused.items():
        assert IMMUTABLE.search(err), f"{name}: {err}"

    out = deploy_script(cluster, *deploy_args(profile, ns, tmp_path)).stdout
    for sts in predicted:
        assert f"StatefulSet {sts}: volumeClaimTemplates change" in out, out
    assert_ready(cluster, ns)
    after = {n: p["metadata"]["uid"] for n, p in _pvcs(cluster, ns).items()}
    assert {n: after.get(n) for n in before} == before, f"PVCs replaced or lost: {before} -> {after}"
    # 0.6.0 runs Alloy by default: the upgrade replaces the Promtail DaemonSet by p5-alloy (a
    # DaemonSet's selector is immutable) and leaves no collector behind; `promtail` keeps it.
    collector = "promtail" if profile == "promtail" else "alloy"
    daemonsets = {d["metadata"]["name"] for d in cluster.get("daemonsets", "-n", ns)["items"]}
    assert f"p5-{collector}" in daemonsets and not ({"p5-promtail", "p5-alloy"} - {f"p5-{collector}"}) & daemonsets, daemonsets
    (rel,) = json.loads(cluster.helm(helm, "list", "-n", ns, "-o", "json").stdout)
    current = yaml.safe_load((UMBRELLA / "Chart.yaml").read_text())["version"]
    assert rel["chart"] == f"phase5-monitoring-{current}" and rel["status"] == "deployed", rel
    left = [r["metadata"]["name"] for r in cluster.get("clusterroles", "-l", "app.kubernetes.io/instance=p5")["items"]
            if r["metadata"]["name"].startswith("p5-")]
    assert not left, f"the upgrade left the previous release's ClusterRoles behind: {left}"


def test_storage_growth_defaults_to_production(cluster, ns):
    """defaults -> production grows Prometheus', Alertmanager's and Loki's volumes: plain
    helm refuses (immutable volumeClaimTemplates); the deploy script grows the PVCs on an
    expandable StorageClass, re-creates the StatefulSets orphaning their pods, and upgrades."""
    helm = tools.require("helm")
    deploy_script(cluster, *deploy_args("defaults", ns))
    before = _pvcs(cluster, ns)
    assert before, "the defaults keep data on PVCs"
    sts_before = {s["metadata"]["name"]: s["metadata"]["uid"] for s in cluster.get("statefulsets", "-n", ns)["items"]}

    raw = install(cluster, helm, "p5", ns, "production", check=False)
    assert raw.returncode != 0 and IMMUTABLE.search(raw.stderr), raw.stderr

    out = deploy_script(cluster, *deploy_args("production", ns)).stdout
    assert "growing to" in out, out
    assert_ready(cluster, ns)
    prod = yaml.safe_load((paths.PROFILES_DIR / "production.yaml").read_text())
    after = _pvcs(cluster, ns)
    for name, pvc in before.items():
        assert after[name]["metadata"]["uid"] == pvc["metadata"]["uid"], f"{name} was replaced"
    for comp in ("prometheus", "alertmanager", "loki"):
        want = prod[comp]["persistence"]["size"]
        claims = [p for n, p in after.items() if n.startswith(f"storage-p5-{comp}-")]
        assert claims, f"no PVC of {comp}: {sorted(after)}"
        for p in claims:
            assert p["spec"]["resources"]["requests"]["storage"] == want, (p["metadata"]["name"], p["spec"])

        def grown(name=p["metadata"]["name"]):
            return cluster.get("pvc", name, "-n", ns)["status"].get("capacity", {}).get("storage") == want
        for p in claims:
            cluster.wait(lambda p=p: grown(p["metadata"]["name"]), 60, f"{p['metadata']['name']} capacity {want}")
    sts_after = {s["metadata"]["name"]: s["metadata"]["uid"] for s in cluster.get("statefulsets", "-n", ns)["items"]}
    assert all(sts_after[n] != u for n, u in sts_before.items()), "StatefulSets were not re-created"


def test_storage_growth_on_a_fixed_class_stops_before_any_change(cluster, ns, tmp_path):
    """On a StorageClass without allowVolumeExpansion the script stops, changes nothing and
    says what to do."""
    helm = tools.require("helm")
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text("global:\n  storageClass: fixed\n")
    deploy_script(cluster, *deploy_args("defaults", ns), "--values", str(fixed))
    before = {n: (p["metadata"]["uid"], p["spec"]["resources"]["requests"]["storage"]) for n, p in _pvcs(cluster, ns).items()}
    sts_before = {s["metadata"]["name"]: s["metadata"]["uid"] for s in cluster.get("statefulsets", "-n", ns)["items"]}
    rev = json.loads(cluster.helm(helm, "status", "p5", "-n", ns, "-o", "json").stdout)["version"]

    proc = deploy_script(cluster, *deploy_args("production", ns), "--values", str(fixed), check=False)
    assert proc.returncode != 0
    assert "does not" in proc.stderr and "allowVolumeExpansion" in proc.stderr and "nothing was changed" in proc.stderr, proc.stderr
    for name in before:
        assert f"PVC {name}:" in proc.stderr, f"{name} not named:\n{proc.stderr}"
    assert {n: (p["metadata"]["uid"], p["spec"]["resources"]["requests"]["storage"]) for n, p in _pvcs(cluster, ns).items()} == before
    assert {s["metadata"]["name"]: s["metadata"]["uid"] for s in cluster.get("statefulsets", "-n", ns)["items"]} == sts_before
    assert json.loads(cluster.helm(helm, "status", "p5", "-n", ns, "-o", "json").stdout)["version"] == rev


def test_rollback_and_uninstall(cluster, ns):
    """Rollback to the previous revision succeeds; uninstall removes every object of the
    release, the cluster-scoped ClusterRoles and ClusterRoleBindings too, and keeps the PVCs."""
    helm = tools.require("helm")
    install(cluster, helm, "p5", ns, "defaults")
    install(cluster, helm, "p5", ns, "defaults", "--set-json", 'global.commonLabels={"rolled":"forward"}')
    dep = cluster.get("deployment", "p5-grafana", "-n", ns)
    assert dep["metadata"]["labels"].get("rolled") == "forward"
    cluster.helm(helm, "rollback", "p5", "1", "-n", ns, "--wait", "--timeout", "3m")
    assert "rolled" not in cluster.get("deployment", "p5-grafana", "-n", ns)["metadata"]["labels"]
    assert_ready(cluster, ns)

    pvcs = set(_pvcs(cluster, ns))
    assert pvcs
    manifest = cluster.helm(helm, "get", "manifest", "p5", "-n", ns).stdout
    objects = [(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in yaml.safe_load_all(manifest) if d]
    cluster_scoped = [o for o in objects if o[0] in ("ClusterRole", "ClusterRoleBinding")]
    assert cluster_scoped, "the release has ClusterRoles"
    cluster.helm(helm, "uninstall", "p5", "-n", ns, "--wait", "--timeout", "3m")
    namespaced = [f"{k.lower()}/{n}" for k, n, _ in objects if (k, n, _) not in cluster_scoped and k != "PersistentVolumeClaim"]
    left = cluster.kubectl("get", "-n", ns, "--ignore-not-found", "-o", "name", *namespaced).stdout.split()
    left += cluster.kubectl("get", "--ignore-not-found", "-o", "name", *[f"{k.lower()}/{n}" for k, n, _ in cluster_scoped]).stdout.split()
    assert not left, f"left after uninstall: {left}"
    assert set(_pvcs(cluster, ns)) == pvcs, "uninstall must keep the PVCs"


# ----------------------------------------------------------------------------- Grafana
def test_grafana_password_survives_upgrade(cluster, ns):
    """The first install generates a random password and secret_key; `helm upgrade` finds
    them with `lookup` on the API server and keeps them."""
    import base64
    helm = tools.require("helm")
    install(cluster, helm, "p5", ns, "dev")

    def secret():
        return cluster.get("secret", "p5-grafana", "-n", ns)["data"]
    first = secret()
    assert len(base64.b64decode(first["admin-password"])) >= 32 and first["secret-key"], first.keys()
    install(cluster, helm, "p5", ns, "dev", "--set-json", 'global.commonLabels={"upgraded":"yes"}')
    assert cluster.get("deployment", "p5-grafana", "-n", ns)["metadata"]["labels"]["upgraded"] == "yes"
    assert secret() == first, "helm upgrade generated a new Grafana password or secret_key (lookup did not find the Secret)"


def test_grafana_existing_secret_creates_no_password_secret(cluster, ns):
    helm = tools.require("helm")
    cluster.kubectl("-n", ns, "create", "secret", "generic", "my-grafana-admin",
                    "--from-literal=admin-user=admin", "--from-literal=admin-password=not-in-values")
    install(cluster, helm, "p5", ns, "dev", "--set-json", 'grafana.admin.existingSecret="my-grafana-admin"')
    assert not cluster.exists("secret", "p5-grafana", "-n", ns)
    refs = json.dumps(cluster.get("deployment", "p5-grafana", "-n", ns)["spec"]["template"]["spec"])
    assert "my-grafana-admin" in refs


def _review(cluster, obj, impersonate=None):
    """Create an authorization review object on the API server and return its status."""
    # No client-side validation: it lists CRDs, which the impersonated account may not.
    args = ["create", "--validate=false", "-f", "-", "-o", "json"] + ([f"--as={impersonate}"] if impersonate else [])
    return json.loads(cluster.kubectl(*args, input=json.dumps(obj)).stdout)["status"]


def _allowed(cluster, sa, verb, resource, namespace=""):
    """SubjectAccessReview: may ServiceAccount `sa` ("<namespace>:<name>") do it? (namespace ""
    asks cluster-wide, as NAMESPACE=ALL lists)."""
    ns, name = sa.split(":")
    status = _review(cluster, {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": f"system:serviceaccount:{ns}:{name}",
                 "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"],
                 "resourceAttributes": {"verb": verb, "resource": resource, "namespace": namespace}}})
    return status["allowed"]


def _rules(cluster, sa, namespace):
    """What ServiceAccount `sa` may do in `namespace`, as the API server lists it
    (SelfSubjectRulesReview as that account): {(apiGroup, resource, verb)} of its resource rules."""
    ns, name = sa.split(":")
    status = _review(cluster, {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                               "spec": {"namespace": namespace}}, impersonate=f"system:serviceaccount:{ns}:{name}")
    return {(g, r, v) for rule in status["resourceRules"] for g in rule.get("apiGroups") or [""]
            for r in rule.get("resources") or [] for v in rule["verbs"]}


def test_dashboard_sidecar_may_list_and_watch_configmaps_where_it_reads_and_nothing_else(cluster, ns):
    """Asked of the API server, not modelled: Grafana's ServiceAccount, with the dashboard sidecar
    reading two Phase 5 namespaces, may list and watch ConfigMaps in those and the release namespace
    and do nothing else anywhere (its rules in every namespace, minus those of an account with no
    binding, are exactly that); with allNamespaces it may list and watch them cluster-wide (the
    ClusterRole), still nothing else, and the Roles are gone."""
    helm = tools.require("helm")
    listed = [cluster.new_namespace("phase5-dash-a"), cluster.new_namespace("phase5-dash-b")]
    unlisted = [cluster.new_namespace("phase5-dash-unlisted"), cluster.new_namespace("dash-elsewhere"), "default"]
    sa, nobody = f"{ns}:p5-grafana", f"{ns}:p5-nobody"
    cluster.kubectl("create", "serviceaccount", "p5-nobody", "-n", ns)
    configmaps = {("", "configmaps", "list"), ("", "configmaps", "watch")}
    try:
        install(cluster, helm, "p5", ns, "defaults", "--set-json", "grafana.sidecar.dashboards.enabled=true",
                "--set-json", f"grafana.sidecar.dashboards.namespaces={json.dumps(listed)}")
        assert_ready(cluster, ns)
        for where in [ns, *listed, *unlisted]:
            extra = _rules(cluster, sa, where) - _rules(cluster, nobody, where)
            want = configmaps if where in [ns, *listed] else set()
            assert extra == want, f"in {where}: Grafana's ServiceAccount may {sorted(extra)}, expected {sorted(want)}"
        for where in [ns, *listed]:
            assert _allowed(cluster, sa, "list", "configmaps", where) and _allowed(cluster, sa, "watch", "configmaps", where)
            for verb, resource in [("get", "configmaps"), ("create", "configmaps"), ("list", "secrets"), ("list", "pods")]:
                assert not _allowed(cluster, sa, verb, resource, where), f"{verb} {resource} in {where} allowed"
        for where in unlisted:
            assert not _allowed(cluster, sa, "list", "configmaps", where), f"list configmaps in {where} allowed"
        assert not _allowed(cluster, sa, "list", "configmaps"), "list configmaps cluster-wide allowed without allNamespaces"

        install(cluster, helm, "p5", ns, "defaults", "--set-json", "grafana.sidecar.dashboards.enabled=true",
                "--set-json", "grafana.sidecar.dashboards.allNamespaces=true")
        assert not cluster.get("roles", "-A", "-l", "app.kubernetes.io/instance=p5,app.kubernetes.io/name=grafana")["items"]
        assert _allowed(cluster, sa, "list", "configmaps") and _allowed(cluster, sa, "watch", "configmaps")
        for verb, resource in [("get", "configmaps"), ("list", "secrets"), ("update", "configmaps")]:
            assert not _allowed(cluster, sa, verb, resource), f"{verb} {resource} cluster-wide allowed"
        for where in [ns, *listed, *unlisted]:
            extra = _rules(cluster, sa, where) - _rules(cluster, nobody, where)
            assert extra == configmaps, f"in {where}: Grafana's ServiceAccount may {sorted(extra)}"
    finally:
        cluster.helm(helm, "uninstall", "p5", "-n", ns, "--wait", "--timeout", "2m", check=False)
        for name in listed + unlisted[:2]:
            cluster.delete_namespace(name)


def test_dashboard_sidecar_pod_meets_restricted(cluster, ns):
    """The API server's PodSecurity check of Grafana's Deployment with the sidecar (the projected
    token volume, the second container): no warning at the restricted level."""
    docs = render(set_values={"grafana.sidecar.dashboards.enabled": True}, namespace=ns)
    dep = next(o for o in docs.workloads() if o["kind"] == "Deployment" and component(o) == "grafana")
    proc = cluster.kubectl("apply", "--dry-run=server", "--validate=strict", "-n", ns, "-f", "-",
                           input=json.dumps(dep), check=False)
    assert proc.returncode == 0, proc.stderr
    assert "would violate PodSecurity" not in proc.stderr, proc.stderr


# --------------------------------------------------------------------- two releases
def test_two_releases_on_one_cluster(cluster, ns):
    """The same release name in two namespaces: cluster-scoped names do not collide, and the
    second node-exporter, which would stay Pending on the taken host port, is refused at
    install time with what to set; with another port both stacks run."""
    helm = tools.require("helm")
    other = cluster.new_namespace("second-release", DEPLOY_SCRIPT_PSS)
    try:
        install(cluster, helm, "p5", ns, "dev")
        refused = install(cluster, helm, "p5", other, "dev", check=False)
        assert refused.returncode != 0
        assert "node-exporter.port: host port 9100 is already taken" in refused.stderr, refused.stderr
        assert f"{ns}/p5-node-exporter" in refused.stderr, refused.stderr
        cluster.helm(helm, "uninstall", "p5", "-n", other, check=False)  # a failed install leaves a record
        install(cluster, helm, "p5", other, "dev", "--set-json", "node-exporter.port=9101")
        assert_ready(cluster, ns)
        assert_ready(cluster, other)
        for namespace in (ns, other):
            for binding in cluster.get("clusterrolebindings", "-l", "app.kubernetes.io/instance=p5")["items"]:
                if binding["metadata"]["name"].startswith(f"{namespace}-"):
                    assert all(s["namespace"] == namespace for s in binding["subjects"]), binding
        names = [r["metadata"]["name"] for r in cluster.get("clusterroles", "-l", "app.kubernetes.io/instance=p5")["items"]]
        assert len([n for n in names if n.startswith(f"{ns}-")]) == len([n for n in names if n.startswith(f"{other}-")]) > 0, names
    finally:
        cluster.helm(helm, "uninstall", "p5", "-n", other, check=False)
        cluster.delete_namespace(other)


# ----------------------------------------------------------------------------- drain
def test_drain_honours_the_pdbs(local_cluster, local_ns):
    """With every replica on one node: evicting all of Prometheus' or Alertmanager's pods at
    once, the API server lets exactly their PodDisruptionBudget's allowance go and refuses the
    rest; `kubectl drain` of that node (which retries refused evictions) never takes them
    below the PDB floor, and the pods come back on the other nodes."""
    cluster, ns = local_cluster, local_ns   # three schedulable nodes, whatever KUBECONFIG holds
    helm = tools.require("helm")
    nodes = sorted(n["metadata"]["name"] for n in cluster.get("nodes")["items"] if not n["spec"].get("unschedulable"))
    assert len(nodes) >= 2, f"the local control plane has {len(nodes)} schedulable node(s), not three"
    target, others = nodes[0], nodes[1:]
    for node in others:  # every replica lands on the target: its drain must go through the PDBs
        cluster.kubectl("cordon", node)
    slow = {"kwok.phase5.test/slow-start": "true"}  # simulated pods otherwise start in no time
    try:
        install(cluster, helm, "p5", ns, "production", "--set-json", f"prometheus.podLabels={json.dumps(slow)}",
                "--set-json", f"alertmanager.podLabels={json.dumps(slow)}")
    finally:
        for node in others:
            cluster.kubectl("uncordon", node)
    pdbs = {component(p): p for p in cluster.get("pdb", "-n", ns)["items"]}
    floors = {}
    for comp in ("prometheus", "alertmanager"):
        assert comp in pdbs, f"production has no PDB for {comp}: {sorted(pdbs)}"
        replicas = cluster.get("statefulset", f"p5-{comp}", "-n", ns)["spec"]["replicas"]
        spec = pdbs[comp]["spec"]
        floors[comp] = spec["minAvailable"] if "minAvailable" in spec else replicas - spec["maxUnavailable"]
        assert 1 <= floors[comp] < replicas, f"{comp}: the PDB ({spec}) should keep at least one of {replicas} replicas and let one go"

    # The eviction API itself: every replica of a component evicted at once; the API server
    # lets exactly the budget go and refuses the rest (HTTP 429).
    for comp, floor in floors.items():
        replicas = cluster.get("statefulset", f"p5-{comp}", "-n", ns)["spec"]["replicas"]
        cluster.wait(lambda comp=comp, n=replicas - floor: cluster.get("pdb", pdbs[comp]["metadata"]["name"], "-n", ns)
                     ["status"].get("disruptionsAllowed") == n, 60, f"{comp} PDB allows {replicas - floor} disruption(s)")
        def evict(i, comp=comp):
            eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": f"p5-{comp}-{i}", "namespace": ns}}
            proc = cluster.kubectl("create", "--raw", f"/api/v1/namespaces/{ns}/pods/p5-{comp}-{i}/eviction", "-f", "-",
                                   input=json.dumps(eviction), check=False)
            return proc.returncode == 0 or proc.stderr.strip()
        with concurrent.futures.ThreadPoolExecutor(max_workers=replicas) as pool:
            verdicts = list(pool.map(evict, range(replicas)))
        accepted = [v for v in verdicts if v is True]
        refused = [v for v in verdicts if v is not True]
        assert len(accepted) == replicas - floor, f"{comp}: {len(accepted)} of {replicas} evictions accepted, budget {replicas - floor}: {verdicts}"
        assert refused and all("disruption budget" in v for v in refused), f"{comp}: {refused}"
        assert_ready(cluster, ns)

    lowest = dict.fromkeys(floors, 99)
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                now = cluster.get("pods", "-n", ns)["items"]
            except AssertionError:
                continue
            for comp in floors:
                ready = sum(1 for p in now if component(p) == comp and not p["metadata"].get("deletionTimestamp")
                            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])))
                lowest[comp] = min(lowest[comp], ready)
            time.sleep(0.05)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        drain = cluster.kubectl("drain", target, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=180s", timeout=240)
        assert_ready(cluster, ns)
    finally:
        stop.set()
        sampler.join(timeout=10)
        cluster.kubectl("uncordon", target, check=False)
    assert f"node/{target} drained" in drain.stdout, drain.stdout
    for comp, floor in floors.items():
        assert lowest[comp] >= floor, f"{comp}: {lowest[comp]} ready during the drain, PDB floor {floor}"
    pods = cluster.get("pods", "-n", ns)["items"]
    moved = [p["metadata"]["name"] for p in pods if p["spec"].get("nodeName") == target and component(p) in floors]
    assert not moved, f"still on the drained node {target}: {moved}"


# ---------------------------------------------------------------- deploy-monitoring.sh
def test_deploy_script_installs_and_uninstalls(cluster):
    """The real script with the real helm and kubectl: namespace and Pod Security labels,
    install, rollout waits, access information, --uninstall."""
    ns = f"p5-deploy-{int(time.time()) % 100000}"
    cluster.namespaces.append(ns)
    try:
        out = deploy_script(cluster, *deploy_args("dev", ns)).stdout
        labels = cluster.get("namespace", ns)["metadata"]["labels"]
        for k, v in DEPLOY_SCRIPT_PSS.items():
            assert labels.get(k) == v, labels
        for kind in ("deployment", "statefulset", "daemonset"):
            for obj in cluster.kubectl("-n", ns, "get", kind, "-l", "app.kubernetes.io/instance=p5", "-o", "name").stdout.split():
                assert f"ok {obj}" in out, f"no rollout line for {obj}:\n{out}"
        assert "Phase 5 monitoring is running" in out and f"-n {ns} port-forward svc/p5-grafana" in out, out
        gone = deploy_script(cluster, "--namespace", ns, "--release", "p5", "--uninstall")
        assert "uninstalling release p5" in gone.stdout
        assert "delete pvc" in gone.stdout
        assert not cluster.kubectl("-n", ns, "get", "deploy,sts,ds", "-o", "name").stdout.strip()
    finally:
        cluster.delete_namespace(ns)
