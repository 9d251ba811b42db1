"""Unit tier: scripts/storage_plan.py, the deploy script's plan for a volumeClaimTemplate
change. A fast check of each branch; the cluster tier runs the script for real against the
API server (test_cluster_install.py: storage growth on an expandable and a fixed class,
upgrades from the released package)."""
import copy

import pytest

from harness import paths

pytestmark = pytest.mark.unit

storage_plan = paths.script("storage_plan")


def sts(size="50Gi", labels=None, sc=None, modes=("ReadWriteOnce",)):
    spec = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if sc:
        spec["storageClassName"] = sc
    return {"kind": "StatefulSet", "metadata": {"name": "p5-prometheus"}, "spec": {"volumeClaimTemplates": [
        {"metadata": {"name": "storage", "labels": labels or {"app.kubernetes.io/name": "prometheus"}}, "spec": spec}]}}


def pvc(size="50Gi", sc="standard", name="storage-p5-prometheus-0"):
    return {"metadata": {"name": name}, "spec": {"storageClassName": sc, "resources": {"requests": {"storage": size}}}}


CLASSES = {"items": [
    {"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
     "allowVolumeExpansion": True},
    {"metadata": {"name": "fixed"}}]}


def plan(live, new, pvcs):
    return storage_plan.plan({"items": [live]}, {"kind": "List", "items": [new]}, {"items": pvcs}, copy.deepcopy(CLASSES))


def test_no_template_change_plans_nothing():
    assert plan(sts(), sts(), [pvc()]) == []


def test_label_change_recreates_without_touching_claims():
    assert plan(sts(labels={"a": "1"}), sts(labels={"a": "2"}), [pvc()]) == ["recreate p5-prometheus"]


def test_growth_on_an_expandable_class_expands_every_claim_then_recreates():
    claims = [pvc(), pvc(name="storage-p5-prometheus-1"), pvc(name="storage-p5-prometheus-other-0")]
    assert plan(sts("50Gi"), sts("200Gi"), claims) == [
        "expand storage-p5-prometheus-0 200Gi", "expand storage-p5-prometheus-1 200Gi", "recreate p5-prometheus"]


def test_growth_on_a_fixed_class_stops_naming_the_claim_and_the_class():
    (line,) = plan(sts("50Gi"), sts("200Gi"), [pvc(sc="fixed")])
    assert line.startswith("stop PVC storage-p5-prometheus-0:") and "'fixed'" in line and "allowVolumeExpansion" in line


def test_a_claim_without_class_uses_the_default_class():
    claim = pvc("1Gi")
    del claim["spec"]["storageClassName"]
    assert plan(sts("1Gi"), sts("2Gi"), [claim])[0] == "expand storage-p5-prometheus-0 2Gi"


def test_shrinking_stops():
    (line,) = plan(sts("50Gi"), sts("10Gi"), [pvc("50Gi")])
    assert line.startswith("stop PVC storage-p5-prometheus-0:") and "never shrink" in line


@pytest.mark.parametrize("change", [{"sc": "fixed"}, {"modes": ("ReadWriteMany",)}])
def test_class_or_access_mode_change_stops(change):
    lines = plan(sts(), sts(**change), [pvc()])
    assert lines and all(line.startswith("stop StatefulSet p5-prometheus:") for line in lines), lines


def test_quantities_compare_by_value():
    assert storage_plan.quantity("1Gi") == 1024 ** 3 and storage_plan.quantity("1G") == 10 ** 9
    assert plan(sts("1024Mi"), sts("1Gi"), [pvc("1Gi")]) == ["recreate p5-prometheus"]


def test_main_reads_kubectl_output_documents_one_after_another(tmp_path, capsys):
    """`kubectl create --dry-run=client -o json -f` prints one document after another."""
    import json
    files = {"live": json.dumps({"items": [sts("1Gi")]}),
             "rendered": json.dumps({"kind": "Service"}) + "\n" + json.dumps(sts("2Gi"), indent=2) + "\n",
             "pvcs": json.dumps({"items": [pvc("1Gi")]}), "classes": json.dumps(CLASSES)}
    args = []
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        args += [f"--{name}", str(tmp_path / name)]
    assert storage_plan.main(args) == 0
    assert capsys.readouterr().out.splitlines() == ["expand storage-p5-prometheus-0 2Gi", "recreate p5-prometheus"]
