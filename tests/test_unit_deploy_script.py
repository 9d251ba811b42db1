"""Unit tier: scripts/deploy-monitoring.sh, driven with fake kubectl and helm that record
their calls, for the paths a real API server with simulated nodes cannot produce: no
cluster at all, and the HTTP health probes (they need running containers). The real script
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
FAKE_HELM = '#!/usr/bin/env bash\necho "helm $*" >> "$FAKE_LOG"\ncase "$1" in status) exit 1 ;; esac\n'


@pytest.fixture
def fakes(tmp_path):
    for name, body in (("kubectl", FAKE_KUBECTL), ("helm", FAKE_HELM)):
        f = tmp_path / name
        f.write_text(body)
        f.chmod(0o755)
    log = tmp_path / "calls.log"
    log.touch()

    def run(*args, cluster="up", fake_helm=True):
        env = {**os.environ, "FAKE_LOG": str(log), "FAKE_CLUSTER": cluster, "KUBECTL": str(tmp_path / "kubectl")}
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


def test_health_probes_through_the_service_proxy(fakes, tmp_path):
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
    for path in ("p5-prometheus:9090/proxy/-/ready", "p5-grafana:3000/proxy/api/health",
                 "p5-loki:3100/proxy/ready", "p5-jaeger:13133/proxy/status", "p5-alertmanager:9093/proxy/-/ready"):
        assert any(path in c for c in calls), f"no health check {path}"
    assert "port-forward svc/p5-grafana 3000:3000" in proc.stdout
    assert "\x1b[" not in proc.stdout, "colour codes written to a pipe"


def test_no_health_check_skips_the_probes_and_says_so(fakes):
    proc, calls = fakes("--no-health-check")
    assert proc.returncode == 0, proc.stderr
    assert not any("/proxy/" in c for c in calls), calls
    assert "--no-health-check: the HTTP health probes were skipped" in proc.stderr


def test_without_a_cluster_it_renders_instead(fakes, tmp_path):
    out = tmp_path / "out"
    proc, calls = fakes("--out", str(out), cluster="down", fake_helm=False)
    assert proc.returncode == 0, proc.stderr
    assert "no reachable cluster" in proc.stderr and "rendering profile 'dev'" in proc.stdout
    assert (out / "dev" / "all.yaml").stat().st_size > 0 and "Images:" in proc.stdout
    assert not any(c.startswith("helm upgrade") for c in calls)
