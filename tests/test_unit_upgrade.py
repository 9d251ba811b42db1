"""Unit tier: upgrading from the previous released chart version changes no immutable field.

The released package sits in ci/releases/ (the newest .tgz there is "previous"). Both
versions are rendered with the same values; for every object present in both, the fields
Kubernetes refuses to change on update must be equal, and no StatefulSet or PVC (data)
may disappear."""
import json
import re

import pytest

from harness import paths
from harness.manifests import ident
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
        out["volumeClaimTemplates"] = [
            {"name": t["metadata"]["name"], "accessModes": t["spec"].get("accessModes"),
             "storageClassName": t["spec"].get("storageClassName")}
            for t in spec.get("volumeClaimTemplates") or []]
    if kind == "PersistentVolumeClaim":
        out["accessModes"] = spec.get("accessModes")
        out["storageClassName"] = spec.get("storageClassName")
    if kind == "Service":
        out["clusterIP"] = spec.get("clusterIP")  # None (headless) must stay None
    return out


def test_previous_release_is_older_than_current():
    import yaml
    current = yaml.safe_load((paths.UMBRELLA / "Chart.yaml").read_text())["version"]
    prev = previous_release()
    assert _version(prev) <= tuple(int(x) for x in current.split(".")), f"{prev.name} is newer than the chart ({current})"


@pytest.mark.parametrize("profile", [None, "dev", "production"])
def test_no_immutable_field_changes(profile):
    values = (paths.PROFILES_DIR / f"{profile}.yaml",) if profile else ()
    old = render(values, chart=previous_release())
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
