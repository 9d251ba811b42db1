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


# The options chart-testing v3.14.0 reads from its config file (the mapstructure keys of
# pkg/config/config.go); viper ignores any other key, so a misspelt one would silently not apply.
CT_OPTIONS = {
    "remote", "target-branch", "since", "build-id", "lint-conf", "chart-yaml-schema", "validate-maintainers",
    "validate-chart-schema", "validate-yaml", "skip-helm-dependencies", "additional-commands",
    "check-version-increment", "all", "charts", "chart-repos", "chart-dirs", "excluded-charts", "helm-extra-args",
    "helm-extra-set-args", "helm-lint-extra-args", "helm-repo-extra-args", "helm-dependency-extra-args", "debug",
    "upgrade", "skip-missing-values", "skip-clean-up", "namespace", "release-name", "release-label",
    "exclude-deprecated", "kubectl-timeout", "print-logs", "github-groups", "use-helmignore",
}


def test_pull_requests_run_chart_testing_with_ci_ct_yaml():
    """ci/ct.yaml is what the workflow's chart-testing job runs on pull requests: `ct lint` with the
    version increment check over the target branch (full history checked out) and `ct install`
    on kind, which installs once per charts/phase5-monitoring/ci/*-values.yaml and runs `helm test`."""
    ct = yaml.safe_load((paths.ROOT / "ci" / "ct.yaml").read_text())
    assert set(ct) <= CT_OPTIONS, f"ci/ct.yaml: options chart-testing does not know: {sorted(set(ct) - CT_OPTIONS)}"
    assert ct["check-version-increment"] is True and ct["target-branch"] == "main", ct
    assert paths.UMBRELLA.parent.relative_to(paths.ROOT).as_posix() in ct["chart-dirs"], ct["chart-dirs"]
    assert sorted((paths.UMBRELLA / "ci").glob("*-values.yaml")), "no ci/*-values.yaml scenario for ct install"

    wf = yaml.safe_load((paths.ROOT / ".github" / "workflows" / "ci.yaml").read_text())
    on = wf.get("on", wf.get(True))
    assert "pull_request" in on, on
    job = wf["jobs"]["chart-testing"]
    assert job.get("if") == "github.event_name == 'pull_request'", job.get("if")
    steps = job["steps"]
    uses = [s.get("uses", "") for s in steps]
    runs = [s.get("run", "") for s in steps]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout.get("with", {}).get("fetch-depth") == 0, "ct needs the target branch's history"
    assert any(u.startswith("helm/chart-testing-action@") for u in uses), uses
    assert any("scripts/install-tools.sh helm" in r for r in runs), "helm for ct comes from tools.versions"
    lint = next(i for i, r in enumerate(runs) if r.startswith("ct lint"))
    install = next(i for i, r in enumerate(runs) if r.startswith("ct install"))
    kind = next(i for i, u in enumerate(uses) if u.startswith("helm/kind-action@"))
    for i in (lint, install):
        assert "--config ci/ct.yaml" in runs[i] and "--check-version-increment=false" not in runs[i], runs[i]
    assert lint < kind < install, "ct install runs on the kind cluster, after ct lint"
