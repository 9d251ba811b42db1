"""Conformance tier: `helm lint --strict` on the umbrella (defaults and every profile)
and on each subchart on its own (assembled with the common library beside it)."""
import shutil
import subprocess

import pytest

from harness import params, paths, tools

pytestmark = pytest.mark.conformance


def lint(chart, *args):
    helm = tools.require("helm")
    proc = subprocess.run([helm, "lint", "--strict", "--kube-version", paths.KUBE_MAX, str(chart), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"helm lint --strict {chart.name} {' '.join(map(str, args))}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


@pytest.mark.parametrize("values", params.profiles())
def test_lint_umbrella(values):
    args = [a for f in values for a in ("-f", str(f))]
    out = lint(paths.UMBRELLA, *args)
    assert "1 chart(s) linted, 0 chart(s) failed" in out


@pytest.mark.parametrize("sub", [p for p in paths.subcharts() if p.name != "common"], ids=lambda p: p.name)
def test_lint_subchart(sub, tmp_path):
    chart = tmp_path / sub.name
    shutil.copytree(sub, chart)
    shutil.copytree(paths.SUBCHARTS_DIR / "common", chart / "charts" / "common")
    lint(chart)
