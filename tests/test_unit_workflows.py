"""Unit tier: the GitHub workflows, which cannot run here, are linted (actionlint) and the
release workflow publishes through `make release` with the checks a tag release needs."""
import subprocess

import pytest
import yaml

from harness import paths, tools

pytestmark = pytest.mark.unit

WORKFLOWS = sorted((paths.ROOT / ".github" / "workflows").glob("*.y*ml"))


def test_workflows_pass_actionlint():
    actionlint = tools.require("actionlint")
    # shellcheck/pyflakes integration off: the result must not depend on what else is on PATH.
    proc = subprocess.run([actionlint, "-no-color", "-shellcheck=", "-pyflakes=", *map(str, WORKFLOWS)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"actionlint:\n{proc.stdout}{proc.stderr}"


def test_release_workflow_runs_make_release_on_a_version_tag():
    wf = yaml.safe_load((paths.ROOT / ".github" / "workflows" / "release.yaml").read_text())
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads the key `on` as True
    assert on == {"push": {"tags": ["v*.*.*"]}}, on
    steps = [s for job in wf["jobs"].values() for s in job["steps"]]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "make release" in runs, runs
    for flag in ("--expect-version $GITHUB_REF_NAME", "--require-sign-key", "--repo-dir", "--oci", "--cosign-key"):
        assert flag in runs, f"the release workflow does not pass {flag}"
    assert "cosign verify" in runs and "--verify" in runs, "the workflow does not check what a user gets"
