"""scripts/install-tools.sh's own logic, on a fake `go` (the real builds take an hour cold and
run in every CI job through `make tools`): two builds at a time, longest first, the CRDs
generated after the controller-gen they need, a failed build reported while the others land,
and bad settings refused. The script runs from a copy in a temporary project root, so bin/ and
the tool cache are the test's own."""
import os
import re
import shutil
import stat
import subprocess
import textwrap

import pytest

from harness import paths

pytestmark = pytest.mark.unit

FAKE_GO = textwrap.dedent(r'''
    #!/usr/bin/env bash
    # A fake go: `install [flags] MODULE@VERSION` writes $GOBIN/<last path element> after
    # $FAKE_GO_SLEEP seconds, logging when it started and ended; modules named *broken* fail.
    # `mod download -json MODULE@VERSION` knows only pkg/apis/monitoring (the CRDs' source).
    set -euo pipefail
    log=$FAKE_GO_LOG
    case "$1" in
      install)
        shift
        while [[ $1 == -* ]]; do [[ $1 == -ldflags ]] && shift; shift; done
        target=$1 mod=${1%@*} bin=${1%@*}; bin=${bin##*/}
        echo "start $bin $(date +%s.%N)" >> "$log"
        sleep "$FAKE_GO_SLEEP"
        if [[ $mod == *broken* ]]; then echo "go: $target: no such module" >&2; exit 1; fi
        if [[ $bin == controller-gen ]]; then
          printf '#!/usr/bin/env bash\nfor a; do [[ $a == output:crd:dir=* ]] && d=${a#output:crd:dir=}; done\nmkdir -p "$d" && echo kind: CustomResourceDefinition > "$d/monitoring.coreos.com_prometheuses.yaml"\n' > "$GOBIN/$bin"
        else
          printf '#!/bin/sh\necho %s\n' "$target" > "$GOBIN/$bin"
        fi
        chmod +x "$GOBIN/$bin"
        echo "end $bin $(date +%s.%N)" >> "$log" ;;
      mod)
        mod=${*: -1}; mod=${mod%@*}
        [[ $mod == */pkg/apis/monitoring ]] || exit 1
        mkdir -p "$FAKE_GO_DIR/apis"
        printf '{\n\t"Dir": "%s",\n}\n' "$FAKE_GO_DIR/apis" ;;
      *) echo "fake go: $*: not faked" >&2; exit 1 ;;
    esac
''').lstrip()

VERSIONS = textwrap.dedent('''
    # name module version
    actionlint   example.com/rhysd/actionlint/cmd/actionlint   v1.0.0
    helm         example.com/helm/v3/cmd/helm                  v3.0.0
    broken       example.com/broken/cmd/broken                 v0.1.0
    controller-gen example.com/controller-tools/cmd/controller-gen v0.2.0
    prometheus-operator-crds github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring v0.3.0
    cosign       example.com/sigstore/cosign/v3/cmd/cosign     v3.0.0
    kwok         example.com/kwok/cmd/kwok                     v0.4.0
''').lstrip()


@pytest.fixture
def project(tmp_path):
    """A project root with the two scripts, a tools.versions of fake modules, a fake go."""
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    for script in ("install-tools.sh", "build-wrapped.sh"):
        shutil.copy2(paths.ROOT / "scripts" / script, root / "scripts" / script)
    (root / "tools.versions").write_text(VERSIONS)
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    go = fakebin / "go"
    go.write_text(FAKE_GO)
    go.chmod(go.stat().st_mode | stat.S_IXUSR)
    return root


def run(project, *tools, jobs=None, sleep="0.6"):
    tmp = project.parent
    env = dict(PATH=f"{tmp / 'fakebin'}:/usr/bin:/bin", HOME=str(tmp), XDG_CACHE_HOME=str(tmp / "cache"),
               FAKE_GO_LOG=str(tmp / "go.log"), FAKE_GO_DIR=str(tmp / "gosrc"), FAKE_GO_SLEEP=sleep)
    if jobs is not None:
        env["TOOLS_JOBS"] = jobs
    (tmp / "go.log").unlink(missing_ok=True)
    proc = subprocess.run(["bash", str(project / "scripts" / "install-tools.sh"), *tools],
                          env=env, capture_output=True, text=True, timeout=120)
    log = (tmp / "go.log").read_text().split("\n") if (tmp / "go.log").exists() else []
    spans = {}
    for entry in filter(None, log):
        what, name, at = entry.split()
        spans.setdefault(name, {})[what] = float(at)
    return proc, spans


def overlapping(spans):
    """Pairs of builds that ran at the same time."""
    done = [(n, s) for n, s in spans.items() if "end" in s]
    return [(a, b) for i, (a, sa) in enumerate(done) for b, sb in done[i + 1:]
            if sa["start"] < sb["end"] and sb["start"] < sa["end"]]


def test_two_builds_run_at_once_longest_first_and_a_failure_does_not_stop_the_others(project):
    proc, spans = run(project)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "FAILED to build broken v0.1.0" in out
    bindir = project / "bin"
    for tool in ("actionlint", "helm", "controller-gen", "cosign", "kwok"):
        assert os.access(bindir / tool, os.X_OK), f"{tool} not installed:\n{out}"
        assert (bindir / f".{tool}.version").read_text().split("@")[1].strip().startswith("v"), tool
    assert not (bindir / "broken").exists()
    # the CRDs come from the controller-gen built in the same run, after it
    assert (bindir / "prometheus-operator-crds" / "monitoring.coreos.com_prometheuses.yaml").is_file(), out
    assert overlapping(spans), f"no two builds ran at once: {spans}"
    # the two lanes start with cosign and helm (on the longest-first list), not with actionlint,
    # the first line of tools.versions
    starts = sorted(spans, key=lambda n: spans[n]["start"])
    assert set(starts[:2]) == {"cosign", "helm"}, starts


def test_one_job_builds_one_after_the_other_in_order(project):
    proc, spans = run(project, "helm", "kwok", "cosign", "actionlint", jobs="1", sleep="0.2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not overlapping(spans), spans
    # the script's longest-first list (re-measured now and then), then tools.versions' order
    script = (paths.ROOT / "scripts" / "install-tools.sh").read_text()
    longest = re.search(r"^longest=\((.*)\)$", script, re.M).group(1).split()
    asked = ["actionlint", "helm", "cosign", "kwok"]               # tools.versions' order
    assert {"cosign", "helm"} <= set(longest) and "actionlint" not in longest, longest
    expected = [t for t in longest if t in asked] + [t for t in asked if t not in longest]
    assert sorted(spans, key=lambda n: spans[n]["start"]) == expected


def test_a_second_run_takes_every_tool_from_the_cache(project):
    proc, _ = run(project, "helm", "cosign")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shutil.rmtree(project / "bin")
    proc, spans = run(project, "helm", "cosign")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert spans == {}, f"rebuilt instead of copied from the cache: {spans}"
    assert os.access(project / "bin" / "helm", os.X_OK)


@pytest.mark.parametrize("jobs", ["0", "two", "-1"])
def test_a_bad_job_count_is_refused_naming_it(project, jobs):
    proc, spans = run(project, "helm", jobs=jobs)
    assert proc.returncode == 2 and f"TOOLS_JOBS must be a positive number, not '{jobs}'" in proc.stderr
    assert spans == {}
