"""Unit tier of the chart-repository consumer tests (shared parts: harness/release_consumer.py):
what the package holds and what the release script refuses, needing only git, helm and gpg."""
import fnmatch
import re
import tarfile
from pathlib import Path

import pytest
import yaml

from harness import paths, tools
from harness.release_consumer import (
    CHART_FILES, CURRENT, NAME, PACKAGE_BUDGET, commit_all, copy_work_tree, git, gpg_key,
    previous_package, previous_version, refused, release, repo_from_package, run, work_copy)


# ------------------------------------------------------------------------------ package (unit)
@pytest.mark.unit
def test_package_holds_only_what_a_chart_needs(tmp_path, record_property):
    """helm package of the work tree: every file is part of a chart (no tests, CI values,
    build output, nested packages), every subchart is inside, and the size is recorded."""
    helm = tools.require("helm")
    out = run([helm, "package", paths.UMBRELLA, "-d", tmp_path]).stdout
    tgz = Path(out.strip().rsplit(": ", 1)[-1])
    with tarfile.open(tgz) as t:
        names = [m.name for m in t.getmembers() if m.isfile()]
    subcharts = {p.name for p in paths.subcharts()}
    stray = []
    for name in names:
        rel = name.split("/", 1)[1]
        m = re.match(r"^charts/([^/]+)/(.*)$", rel)
        if m and m.group(1) in subcharts:
            rel = m.group(2)
        if not any(fnmatch.fnmatch(rel, pattern) for pattern in CHART_FILES):
            stray.append(name)
    assert not stray, f"the package holds files a chart does not need (.helmignore): {stray}"
    packaged = {n.split("/")[2] for n in names if n.split("/")[1] == "charts"}
    assert packaged == subcharts, f"subcharts packaged {sorted(packaged)}, in the work tree {sorted(subcharts)}"
    size = tgz.stat().st_size
    record_property("package_size_bytes", size)
    print(f"{tgz.name}: {size} bytes, {len(names)} files")
    assert size < PACKAGE_BUDGET, f"{tgz.name} is {size} bytes (budget {PACKAGE_BUDGET}): what grew?"


@pytest.mark.unit
def test_chart_yaml_says_what_changed_in_this_version():
    """Artifact Hub shows artifacthub.io/changes per version: present, well-formed kinds."""
    chart = yaml.safe_load((paths.UMBRELLA / "Chart.yaml").read_text())
    changes = yaml.safe_load(chart["annotations"].get("artifacthub.io/changes", "") or "[]")
    assert changes, "Chart.yaml has no artifacthub.io/changes for this version"
    kinds = {"added", "changed", "deprecated", "removed", "fixed", "security"}
    for c in changes:
        assert c.get("kind") in kinds and c.get("description"), f"bad artifacthub.io/changes entry: {c}"


# ------------------------------------------------------------------------------ refusals (unit)

@pytest.mark.unit
def test_release_publishes_signed_and_keeps_older_versions_in_the_index(gpg_key, tmp_path):
    """The previous version, then the work tree's, into one repository: both in index.yaml,
    each with its package and a .prov that verifies with the public key."""
    helm, repo_dir = tools.require("helm"), tmp_path / "repo"
    prev = repo_from_package(previous_package(), tmp_path / "prev")
    release(prev, gpg_key, tmp_path / "r1", "--repo-dir", repo_dir)
    release(copy_work_tree(tmp_path / "src"), gpg_key, tmp_path / "r2", "--repo-dir", repo_dir)
    index = yaml.safe_load((repo_dir / "index.yaml").read_text())
    versions = sorted(e["version"] for e in index["entries"][NAME])
    assert versions == sorted([previous_version(), CURRENT]), versions
    for v in versions:
        tgz = repo_dir / f"{NAME}-{v}.tgz"
        assert (repo_dir / f"{tgz.name}.prov").exists(), f"no provenance for {v}"
        out = run([helm, "verify", tgz, "--keyring", gpg_key.pubring]).stdout
        assert gpg_key.fingerprint in out, out


@pytest.mark.unit
def test_release_refuses_a_dirty_work_tree_naming_the_files(gpg_key, work_copy, tmp_path):
    (work_copy / "charts" / NAME / "values.yaml").write_text("# changed\n", encoding="utf-8")
    (work_copy / "notes.txt").write_text("untracked\n")
    repo_dir = tmp_path / "repo"
    proc = release(work_copy, gpg_key, tmp_path, "--repo-dir", repo_dir, check=False)
    refused(proc, "dirty", f"charts/{NAME}/values.yaml", "notes.txt")
    assert not repo_dir.exists(), "a refused release published something"


@pytest.mark.unit
def test_release_refuses_a_version_already_in_the_index(gpg_key, work_copy, tmp_path):
    repo_dir = tmp_path / "repo"
    release(work_copy, gpg_key, tmp_path / "first", "--repo-dir", repo_dir)
    before = (repo_dir / "index.yaml").read_bytes()
    proc = release(work_copy, gpg_key, tmp_path / "second", "--repo-dir", repo_dir, check=False)
    refused(proc, f"{NAME} {CURRENT} already exists in {repo_dir / 'index.yaml'}")
    assert (repo_dir / "index.yaml").read_bytes() == before, "the refused release changed index.yaml"


@pytest.mark.unit
def test_release_refuses_a_version_older_than_the_published_one(gpg_key, work_copy, tmp_path):
    repo_dir = tmp_path / "repo"
    repo_dir.mkdir()
    (repo_dir / "index.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "entries": {NAME: [
        {"name": NAME, "version": "99.0.0", "urls": [f"{NAME}-99.0.0.tgz"]}]}}))
    proc = release(work_copy, gpg_key, tmp_path, "--repo-dir", repo_dir, check=False)
    refused(proc, "version not bumped", "99.0.0", CURRENT)


@pytest.mark.unit
def test_release_refuses_a_chart_changed_since_its_version_was_tagged(gpg_key, work_copy, tmp_path):
    git(work_copy, "tag", f"v{CURRENT}")
    notes = work_copy / "charts" / NAME / "templates" / "NOTES.txt"
    notes.write_text(notes.read_text() + "\nchanged after the tag\n")
    commit_all(work_copy, "change the chart without a bump")
    proc = release(work_copy, gpg_key, tmp_path, "--repo-dir", tmp_path / "repo", check=False)
    refused(proc, "version not bumped", f"since tag v{CURRENT}", "templates/NOTES.txt")


@pytest.mark.unit
def test_release_refuses_without_its_keys(gpg_key, work_copy, tmp_path):
    proc = release(work_copy, gpg_key, tmp_path, "--repo-dir", tmp_path / "repo", sign=False, check=False)
    refused(proc, "--gpg-key", "--gpg-keyring")
    proc = release(work_copy, gpg_key, tmp_path, "--oci", "oci://127.0.0.1:1/charts", "--plain-http", check=False)
    refused(proc, "--cosign-key")
    proc = release(work_copy, gpg_key, tmp_path, "--repo-dir", tmp_path / "repo", "--gpg-keyring",
                   tmp_path / "missing.gpg", check=False)
    refused(proc, "missing.gpg: no such file")
    assert not (tmp_path / "repo").exists()


@pytest.mark.unit
def test_release_signs_only_with_the_key_chart_yaml_names(gpg_key, work_copy, tmp_path):
    """artifacthub.io/signKey, once set, is the only key a release may be signed with."""
    chart_yaml = work_copy / "charts" / NAME / "Chart.yaml"
    original = chart_yaml.read_text()

    def with_fingerprint(fpr):
        text = original.replace("annotations:\n", "annotations:\n  artifacthub.io/signKey: |\n"
                                f"    fingerprint: {fpr}\n    url: https://example.invalid/pgp.asc\n", 1)
        chart_yaml.write_text(text)
        commit_all(work_copy, f"signKey {fpr}")

    proc = release(work_copy, gpg_key, tmp_path / "a", "--repo-dir", tmp_path / "repo", "--require-sign-key",
                   check=False)
    refused(proc, "no artifacthub.io/signKey", f"fingerprint: {gpg_key.fingerprint}")
    with_fingerprint("0" * 40)
    proc = release(work_copy, gpg_key, tmp_path / "a", "--repo-dir", tmp_path / "repo", check=False)
    refused(proc, "0" * 40, gpg_key.fingerprint)
    with_fingerprint(gpg_key.fingerprint)
    release(work_copy, gpg_key, tmp_path / "b", "--repo-dir", tmp_path / "repo", "--require-sign-key")


@pytest.mark.unit
def test_release_refuses_a_tag_that_is_not_the_chart_version(gpg_key, work_copy, tmp_path):
    """The release workflow passes its tag: v9.9.9 on a chart that says otherwise is refused."""
    proc = release(work_copy, gpg_key, tmp_path, "--repo-dir", tmp_path / "repo", "--expect-version", "v9.9.9",
                   check=False)
    refused(proc, f"Chart.yaml says {CURRENT}", "v9.9.9")
