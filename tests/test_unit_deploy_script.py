"""Unit tier: scripts/deploy-monitoring.sh, driven with fake kubectl and helm that record
their calls, for the paths a real API server with simulated nodes cannot produce: no
cluster at all, and `helm test` (its pods need running containers). The real script
against a real API server (namespace labels, install, rollout waits, storage changes,
--uninstall) is the cluster tier's test_cluster_install.py."""
import os
import subprocess
import textwrap

import pytest

from harness import paths, tools

pytestmark = pytest.mark.unit

SCRIPT = paths.ROOT / "scripts" / "deploy-monitoring.sh"

FAKE_KUBECTL = textwrap.dedent("""\
    #!/usr/bin/env bash
    echo "kubectl $*" >> "$FAKE_LOG"
    case "$*" in
      version*) [ "${FAKE_CLUSTER:-up}" = up ] ;;
      "config current-context") echo kind-fake ;;
      "create namespace"*) echo "apiVersion: v1"; echo "kind: Namespace" ;;
      "apply -f -") cat >/dev/null ;;
      *"get deployment -l"*) echo deployment.apps/p5-grafana ;;
      *"get statefulset -l"*) echo statefulset.apps/p5-prometheus ;;
      *"get daemonset -l"*) echo daemonset.apps/p5-node-exporter ;;
      *) exit 0 ;;
    esac
    """)
FAKE_HELM = textwrap.dedent("""\
    #!/usr/bin/env bash
    echo "helm $*" >> "$FAKE_LOG"
    case "$*" in
      status*) exit 1 ;;
      upgrade*) echo "NOTES: from helm upgrade" ;;
      test*) [ "${FAKE_HELM_TEST:-pass}" = pass ] || { echo "Error: pod p5-test-loki failed" >&2; exit 1; } ;;
      "get notes"*) echo "FAKE NOTES of $3" ;;
    esac
    """)


@pytest.fixture
def fakes(tmp_path):
    for name, body in (("kubectl", FAKE_KUBECTL), ("helm", FAKE_HELM)):
        f = tmp_path / name
        f.write_text(body)
        f.chmod(0o755)
    log = tmp_path / "calls.log"
    log.touch()

    def run(*args, cluster="up", fake_helm=True, helm_test="pass"):
        env = {**os.environ, "FAKE_LOG": str(log), "FAKE_CLUSTER": cluster, "KUBECTL": str(tmp_path / "kubectl"),
               "FAKE_HELM_TEST": helm_test}
        if fake_helm:
            env["HELM"] = str(tmp_path / "helm")
        else:
            env["HELM"] = tools.require("helm")
        proc = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300)
        return proc, log.read_text().splitlines()

    return run


def test_help_and_bad_arguments(fakes):
    proc, _ = fakes("--help")
    assert proc.returncode == 0 and "--profile" in proc.stdout and "--uninstall" in proc.stdout
    proc, _ = fakes("--frobnicate")
    assert proc.returncode != 0 and "unknown argument: --frobnicate" in proc.stderr
    proc, _ = fakes("--profile", "nope")
    assert proc.returncode != 0 and "no profile 'nope'" in proc.stderr and "production" in proc.stderr


def test_health_by_helm_test_and_access_by_helm_get_notes(fakes, tmp_path):
    """The script keeps no copy of the health checks or of NOTES: `helm test` runs the chart's
    test pods and `helm get notes` prints the chart's NOTES (once: the upgrade's own copy is
    not shown)."""
    extra = tmp_path / "mine.yaml"
    extra.write_text("{}\n")
    proc, calls = fakes("--profile", "production", "--values", str(extra), "--namespace", "obs")
    assert proc.returncode == 0, proc.stderr
    assert any("label namespace obs --overwrite pod-security.kubernetes.io/enforce=privileged "
               "pod-security.kubernetes.io/warn=restricted pod-security.kubernetes.io/audit=restricted" in c
               for c in calls), calls
    helm = [c for c in calls if c.startswith("helm upgrade --install p5 ")]
    assert helm and f"-f {paths.PROFILES_DIR / 'production.yaml'} -f {extra}" in helm[0] and "--wait" in helm[0], helm
    for obj in ("deployment.apps/p5-grafana", "statefulset.apps/p5-prometheus", "daemonset.apps/p5-node-exporter"):
        assert any(f"rollout status {obj}" in c for c in calls), f"no rollout wait for {obj}"
    upgrade = calls.index(helm[0])
    tests = [i for i, c in enumerate(calls) if c.startswith("helm test p5 --namespace obs")]
    notes = [i for i, c in enumerate(calls) if c.startswith("helm get notes p5 --namespace obs")]
    assert tests and tests[0] > upgrade, f"no helm test after the upgrade: {calls}"
    assert notes and notes[0] > tests[0], f"no helm get notes after helm test: {calls}"
    assert not any("/proxy/" in c for c in calls), f"a health check of its own: {calls}"
    assert "FAKE NOTES of p5" in proc.stdout and "Phase 5 monitoring is running" in proc.stdout, proc.stdout
    assert "NOTES: from helm upgrade" not in proc.stdout, "NOTES printed twice"
    assert "\x1b[" not in proc.stdout, "colour codes written to a pipe"


def test_a_failing_helm_test_fails_the_script(fakes):
    proc, calls = fakes(helm_test="fail")
    assert proc.returncode != 0, proc.stdout
    assert "helm test failed" in proc.stderr and "app.kubernetes.io/component=helm-test" in proc.stderr, proc.stderr
    assert not any(c.startswith("helm get notes") for c in calls), calls


def test_no_health_check_skips_helm_test_and_says_so(fakes):
    proc, calls = fakes("--no-health-check")
    assert proc.returncode == 0, proc.stderr
    assert not any(c.startswith("helm test") for c in calls), calls
    assert "--no-health-check: helm test was skipped" in proc.stderr
    assert any(c.startswith("helm get notes p5") for c in calls), calls


def test_the_script_keeps_no_copy_of_the_charts_facts():
    """Ports, health paths and the NOTES text live in the chart (phase5-monitoring.components,
    NOTES.txt): the script must not grow its own copies again."""
    text = SCRIPT.read_text()
    for fact in ("9090", "9093", "3000", "3100", "13133", "/-/ready", "/api/health", "port-forward",
                 "admin-password", "jsonpath"):
        assert fact not in text, f"deploy-monitoring.sh repeats {fact!r}: read it from helm test / helm get notes"


def test_without_a_cluster_it_renders_instead(fakes, tmp_path):
    out = tmp_path / "out"
    proc, calls = fakes("--out", str(out), cluster="down", fake_helm=False)
    assert proc.returncode == 0, proc.stderr
    assert "no reachable cluster" in proc.stderr and "rendering profile 'dev'" in proc.stdout
    assert (out / "dev" / "all.yaml").stat().st_size > 0 and "Images:" in proc.stdout
    assert not any(c.startswith("helm upgrade") for c in calls)
