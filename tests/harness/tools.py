"""Find the upstream tools: $NAME env var, then the repo's bin/, then PATH.

`require(name)` returns the path or, when the tool is missing, skips the test outside
CI and fails it in CI (CI=true): a missing tool must never pass as a skipped check.
"""
import os
import shutil

import pytest

from .paths import BIN, ROOT

TOOLS = ("helm", "helm4", "promtool", "prometheus", "amtool", "alertmanager", "jaeger", "checkov",
         "kubectl", "etcd", "kwok", "node_exporter", "registry", "cosign", "actionlint", "gpg",
         "controller-gen", "prometheus-operator", "thanos")


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def find(name):
    env = os.environ.get(name.upper().replace("-", "_"))
    if env:
        return env if os.access(env, os.X_OK) else None
    local = BIN / name
    if local.exists() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def require(name):
    path = find(name)
    if path:
        return path
    msg = f"{name} not found (set ${name.upper()}, run `make tools`, or put it on PATH)"
    if in_ci():
        pytest.fail(f"CI=true and {msg}", pytrace=False)
    pytest.skip(msg)


def pinned():
    """tools.versions as {name: (module, version)}: what `make tools` builds, one line per tool."""
    out = {}
    for line in (ROOT / "tools.versions").read_text().splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) == 3:
            out[parts[0]] = (parts[1], parts[2])
    return out
