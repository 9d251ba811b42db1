"""Unit tier: a fast model of what an upgrade from the previous released chart changes.

The released package sits in ci/releases/ (the newest .tgz there is "previous"). Both
versions are rendered with the same values; for every object present in both, the fields
Kubernetes refuses to change on update are compared, and no StatefulSet or PVC (data) may
disappear. This is a pre-check only: the API server is the judge, and the cluster tier
(tests/test_cluster_install.py::test_upgrade_from_previous_release) checks that it refuses a
plain `helm upgrade` exactly where vct_changes() predicts and nowhere else."""
import json
import re

import pytest

from harness import paths
from harness.manifests import ident
from harness.previous import previous_values
from harness.render import render

pytestmark = pytest.mark.unit

RELEASES = paths.ROOT / "ci" / "releases"


def _version(p):
    return tuple(int(x) for x in re.search(r"-(\d+)\.(\d+)\.(\d+)\.tgz$", p.name).groups())


def previous_release():
    tgzs = sorted(RELEASES.glob("phase5-monitoring-*.tgz"), key=_version)
    assert tgzs, "no released chart in ci/releases/ (helm package the last release there)"
    return tgzs[-1]


def immutable(obj):
    """The fields of obj that an update may not change."""
    kind, spec = obj["kind"], obj.get("spec") or {}
    out = {}
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        out["selector"] = spec.get("selector")
    if kind == "StatefulSet":
        out["serviceName"] = spec.get("serviceName")
        out["podManagementPolicy"] = spec.get("podManagementPolicy", "OrderedReady")
    if kind == "PersistentVolumeClaim":
        out["accessModes"] = spec.get("accessModes")
        out["storageClassName"] = spec.get("storageClassName")
    if kind == "Service":
        out["clusterIP"] = spec.get("clusterIP")  # None (headless) must stay None
    return out


def volume_claim_templates(sts):
    """What a user sets in a StatefulSet's volumeClaimTemplates (all of it is immutable)."""
    return [{"name": t["metadata"]["name"], "labels": t["metadata"].get("labels") or {},
             "annotations": t["metadata"].get("annotations") or {},
             "accessModes": t["spec"].get("accessModes"), "storageClassName": t["spec"].get("storageClassName"),
             "size": t["spec"].get("resources", {}).get("requests", {}).get("storage")}
            for t in sts["spec"].get("volumeClaimTemplates") or []]


def vct_changes(values_files=(), set_values=None):
    """Names of the StatefulSets whose volumeClaimTemplates differ between the previous
    release and the working tree: a plain `helm upgrade` fails on each (deploy-monitoring.sh
    re-creates them with --cascade=orphan, keeping the PVCs)."""
    old = render(previous_values(values_files), set_values, chart=previous_release())
    new = render(values_files, set_values)
    return sorted(o["metadata"]["name"] for o in old.of_kind("StatefulSet")
                  if new.find("StatefulSet", o["metadata"]["name"]) is not None
                  and volume_claim_templates(o) != volume_claim_templates(new.get("StatefulSet", o["metadata"]["name"])))


# volumeClaimTemplate changes since each released package, with the reason. Nothing else may
# change one: a template is immutable, so each entry costs users an orphan re-create
# (deploy-monitoring.sh does it; README "Upgrading" says how by hand).
KNOWN_VCT_CHANGES = {
    "phase5-monitoring-0.1.0.tgz": {
        "p5-loki": "0.1.0 labelled Loki's claims with helm.sh/chart and app.kubernetes.io/version, "
                   "which change with every release; 0.3.0 keeps selector labels only",
    },
}


@pytest.mark.parametrize("profile", [None, "dev", "production"])
def test_volume_claim_template_changes_are_the_known_ones(profile):
    values = (paths.PROFILES_DIR / f"{profile}.yaml",) if profile else ()
    known = KNOWN_VCT_CHANGES.get(previous_release().name, {})
    changed = vct_changes(values)
    unexpected = [n for n in changed if n not in known]
    assert not unexpected, (f"upgrading from {previous_release().name} changes the volumeClaimTemplates of "
                            f"{unexpected}: immutable, so a plain helm upgrade fails there")


@pytest.mark.parametrize("profile", [None, "production"])
def test_claim_template_labels_never_change_with_the_chart_version(profile):
    """Only selector labels on volumeClaimTemplates: chart/version labels would make every
    release an immutable-field change."""
    values = (paths.PROFILES_DIR / f"{profile}.yaml",) if profile else ()
    bad = []
    for sts in render(values).of_kind("StatefulSet"):
        selector = sts["spec"]["selector"]["matchLabels"]
        for t in volume_claim_templates(sts):
            extra = {k: v for k, v in t["labels"].items() if selector.get(k) != v}
            if extra:
                bad.append(f"StatefulSet/{sts['metadata']['name']} template {t['name']}: {extra}")
    assert not bad, "volumeClaimTemplate labels beyond the selector:\n" + "\n".join(bad)


def test_previous_release_is_older_than_current():
    import yaml
    current = yaml.safe_load((paths.UMBRELLA / "Chart.yaml").read_text())["version"]
    prev = previous_release()
    assert _version(prev) <= tuple(int(x) for x in current.split(".")), f"{prev.name} is newer than the chart ({current})"


@pytest.mark.parametrize("profile", [None, "dev", "production"])
def test_no_immutable_field_changes(profile):
    values = (paths.PROFILES_DIR / f"{profile}.yaml",) if profile else ()
    old = render(previous_values(values), chart=previous_release())
    new = render(values)
    new_by_id = {ident(o): o for o in new}
    changed, lost = [], []
    for o in old:
        n = new_by_id.get(ident(o))
        if n is None:
            if o["kind"] in ("StatefulSet", "PersistentVolumeClaim"):
                lost.append(ident(o))
            continue
        a, b = immutable(o), immutable(n)
        for field in a:
            if a[field] != b.get(field):
                changed.append(f"{ident(o)}: {field} {json.dumps(a[field])} -> {json.dumps(b.get(field))}")
    assert not changed, f"upgrade from {previous_release().name} would fail on immutable fields:\n" + "\n".join(changed)
    assert not lost, f"upgrade from {previous_release().name} deletes stateful objects: {lost}"
