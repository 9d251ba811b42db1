"""Unit tier: the chart renders for every profile, every object is valid for the oldest
and newest supported Kubernetes, and every object carries the standard labels."""
import pytest

from harness import params, paths
from harness.manifests import ident, pod_spec
from harness.render import render, render_error
from harness.schema import kube_errors

pytestmark = pytest.mark.unit

STANDARD_LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
}
SELECTOR_LABELS = {"app.kubernetes.io/name", "app.kubernetes.io/instance"}


@pytest.mark.parametrize("values", params.profiles())
def test_profile_renders_objects(values):
    objs = render(values)
    assert len(objs) > 0, f"{values or 'defaults'} rendered no objects"
    names = [ident(o) for o in objs]
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes, f"objects rendered twice: {sorted(dupes)}"


@pytest.mark.parametrize("kube_version", params.kube_versions())
@pytest.mark.parametrize("values", params.profiles())
def test_objects_valid_for_kubernetes(values, kube_version):
    """Strict schema validation: unknown fields and wrong types are errors."""
    errors = kube_errors(render(values, kube_version=kube_version), versions=(kube_version,))
    assert not errors, "\n".join(errors)


def test_kube_version_floor_enforced():
    """Below the stated floor the chart refuses to render, naming the requirement."""
    msg = render_error(kube_version="1.29.15")
    assert "kubeVersion: >=1.30" in msg, msg


def test_kube_version_floor_is_the_oldest_tested_kubernetes():
    """The floor every Chart.yaml states is the minor of the oldest Kubernetes the cluster tier
    installs on (tools.versions), and KUBE_MIN of the unit tier's schema checks."""
    import yaml

    from harness.controlplane import kubernetes_versions
    from harness.paths import KUBE_MIN, UMBRELLA, subcharts
    oldest = kubernetes_versions()[-1].lstrip("v").split(".")
    want = f">={oldest[0]}.{oldest[1]}.0-0"
    floors = {c.name: yaml.safe_load((c / "Chart.yaml").read_text()).get("kubeVersion")
              for c in [UMBRELLA, *subcharts()] if yaml.safe_load((c / "Chart.yaml").read_text()).get("type") != "library"}
    assert set(floors.values()) == {want}, floors
    assert KUBE_MIN == f"{oldest[0]}.{oldest[1]}.0"


@pytest.mark.parametrize("values", params.profiles())
def test_standard_labels_on_every_object(values):
    missing = []
    for obj in render(values):
        labels = obj["metadata"].get("labels") or {}
        lacking = STANDARD_LABELS - labels.keys()
        if lacking:
            missing.append(f"{ident(obj)}: missing labels {sorted(lacking)}; labels={labels}")
        elif labels["app.kubernetes.io/part-of"] != "phase5-monitoring":
            missing.append(f"{ident(obj)}: part-of={labels['app.kubernetes.io/part-of']}")
        if pod_spec(obj) is not None and obj["kind"] != "Pod":
            pod_labels = obj["spec"]["template"]["metadata"].get("labels") or {}
            lacking = STANDARD_LABELS - pod_labels.keys()
            if lacking:
                missing.append(f"{ident(obj)} pod template: missing labels {sorted(lacking)}")
    assert not missing, "\n".join(missing)


def _selectors(obj):
    kind = obj["kind"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        sel = obj["spec"]["selector"]
        assert set(sel) == {"matchLabels"}, f"{ident(obj)}: selector uses {sorted(sel)}"
        yield sel["matchLabels"], obj["spec"]["template"]["metadata"]["labels"]
    elif kind == "Service" and obj["spec"].get("selector"):
        yield obj["spec"]["selector"], None
    elif kind == "PodDisruptionBudget":
        yield obj["spec"]["selector"]["matchLabels"], None


@pytest.mark.parametrize("values", params.profiles())
def test_selectors_use_only_selector_labels(values):
    """Selectors are immutable: they may use name + instance only, and must match the pods."""
    objs = render(values)
    problems = []
    pods = {}
    for obj in objs:
        for selector, pod_labels in _selectors(obj):
            if set(selector) != SELECTOR_LABELS:
                problems.append(f"{ident(obj)}: selector keys {sorted(selector)}, want {sorted(SELECTOR_LABELS)}")
            if pod_labels is not None:
                pods[tuple(sorted(selector.items()))] = ident(obj)
                if any(pod_labels.get(k) != v for k, v in selector.items()):
                    problems.append(f"{ident(obj)}: selector {selector} does not match pod labels {pod_labels}")
    for svc in objs.of_kind("Service"):
        sel = svc["spec"].get("selector")
        if sel and tuple(sorted(sel.items())) not in pods:
            problems.append(f"{ident(svc)}: selector {sel} matches no rendered workload")
    assert not problems, "\n".join(problems)


# Components on the host network: no NetworkPolicy of their own (it would not apply).
HOST_NETWORK = {r["key"] for r in paths.component_table() if (r.get("networkPolicy") or {}).get("hostNetwork")}


def test_each_component_switches_off():
    """Every component renders with the defaults, and `<name>.enabled: false` removes every
    object of that component and nothing else."""
    full = render()
    # thanos (Query, Store Gateway, Compactor) is off by default and switched with two values of
    # other subcharts: test_unit_thanos.py and test_unit_thanos_objstore.py.
    for key, component in ((k, c) for k, c in paths.COMPONENT_NAMES.items() if not k.startswith("thanos")):
        assert full.by_component(component), f"{component} renders nothing with the defaults (enabled by default)"
        without = render(set_values={f"{key}.enabled": False})
        assert not without.by_component(component), f"{key}.enabled=false still renders it"
        # Everything else stays, except the component's own `helm test` pod and its own
        # NetworkPolicy (the umbrella's, on by default), which go with it.
        own = {f"Pod/p5-test-{component}"} | ({f"NetworkPolicy/p5-{component}"} if key not in HOST_NETWORK else set())
        assert own <= {ident(o) for o in full}, f"{component}: no {own - {ident(o) for o in full}} with the defaults"
        others = {ident(o) for o in full if o not in full.by_component(component)} - own
        assert others <= {ident(o) for o in without}, \
            f"disabling {component} removed other objects: {sorted(others - {ident(o) for o in without})}"
        assert not own & {ident(o) for o in without}, f"{key}.enabled=false keeps {own & {ident(o) for o in without}}"


def test_global_common_labels_reach_every_object():
    objs = render(set_values={"global.commonLabels": {"team": "platform"}})
    lacking = [ident(o) for o in objs if (o["metadata"].get("labels") or {}).get("team") != "platform"]
    assert not lacking, f"global.commonLabels missing on: {lacking}"
