"""Conformance tier: `helm lint --strict` on the umbrella with the log variants the profiles
do not cover: Loki on S3-compatible storage and the Alloy collector."""
import subprocess

import pytest

from harness import paths, tools

pytestmark = pytest.mark.conformance


@pytest.mark.parametrize("sets", [
    pytest.param(["loki.storage.type=s3", "loki.storage.s3.bucket=phase5-logs",
                  "loki.storage.s3.existingSecret=loki-bucket"], id="loki-s3-existing-secret"),
    pytest.param(["loki.storage.type=s3", "loki.storage.s3.bucket=phase5-logs",
                  "loki.storage.s3.accessKeyId=id", "loki.storage.s3.secretAccessKey=key"], id="loki-s3-keys"),
    pytest.param(["promtail.collector=promtail"], id="promtail"),
])
def test_lint_log_variants(sets):
    helm = tools.require("helm")
    args = [a for s in sets for a in ("--set", s)]
    proc = subprocess.run([helm, "lint", "--strict", "--kube-version", paths.KUBE_MAX, str(paths.UMBRELLA), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"helm lint --strict {' '.join(sets)}:\n{proc.stdout}{proc.stderr}"
