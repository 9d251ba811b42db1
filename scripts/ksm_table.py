#!/usr/bin/env python3
"""Writes tests/harness/data/ksm-metrics.tsv, the table of kube-state-metrics' documented metric
families the e2e stand-in emits (harness.ksm.FAMILIES), from the docs/metrics/ Markdown of one
kube-state-metrics release.

Usage: scripts/ksm_table.py KSM_GIT_DIR [TAG]   (TAG: harness.ksm.VERSION)

KSM_GIT_DIR is a clone (or bare mirror) of github.com/kubernetes/kube-state-metrics; the docs are
read with `git show TAG:docs/metrics/<group>/<resource>-metrics.md` for the resources the chart's
kube-state-metrics subchart collects by default (its values.yaml `collectors`). Run it again when
the image's version changes (test_unit_versions.py fails until harness.ksm.VERSION follows it).
Columns: resource, name, type, status (stable/experimental/alpha as documented), opt_in
(yes: emitted only when named in --metric-opt-in-list), labels (comma-separated; the
label_<LABEL>/annotation_<ANNOTATION> placeholders of the _labels/_annotations families left out).
"""
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "harness" / "data" / "ksm-metrics.tsv"
SUBCHART = ROOT / "charts" / "phase5-monitoring" / "charts" / "kube-state-metrics" / "values.yaml"
STATUS = {"STABLE": "stable", "EXPERIMENTAL": "experimental", "EXPIREMENTAL": "experimental",
          "ALPHA": "alpha", "DEPRECATED": "deprecated"}


def _cells(line):
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def parse(text, resource):
    """[(resource, name, type, status, opt_in, labels)] of one docs/metrics page's tables."""
    out, header = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = header if line.strip() else None
            continue
        cells = _cells(line)
        if cells[0].lower().startswith("metric name"):
            header = [h.lower() for h in cells]
            continue
        name = cells[0].strip("`")
        if header is None or not re.fullmatch(r"kube_[a-z0-9_]+", name):
            continue
        row = dict(zip(header, cells))
        labels = [lab for lab in re.findall(r"`([a-zA-Z_][a-zA-Z0-9_]*)(?:`\s*=|=`)", row.get("labels/tags", ""))
                  if not re.search(r"[A-Z]", lab)]       # label_POD_LABEL and the like: placeholders
        status = STATUS[row["status"].strip().upper()]
        opt_in = "yes" if row.get("opt-in", "").strip().lower() == "opt-in" else "no"
        out.append((resource, name, row["metric type"].strip().lower(), status, opt_in,
                    ",".join(dict.fromkeys(labels))))
    return out


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    sys.path.insert(0, str(ROOT / "tests"))
    from harness import ksm
    git, tag = argv[1], argv[2] if len(argv) > 2 else ksm.VERSION
    files = subprocess.run(["git", "-C", git, "ls-tree", "-r", "--name-only", tag, "docs/metrics/"],
                           check=True, capture_output=True, text=True).stdout.split()
    by_resource = {Path(f).name[:-len("-metrics.md")]: f for f in files if f.endswith("-metrics.md")}
    rows = []
    for collector in yaml.safe_load(SUBCHART.read_text())["collectors"]:
        resource = ksm.COLLECTOR_RESOURCE[collector]
        text = subprocess.run(["git", "-C", git, "show", f"{tag}:{by_resource[resource]}"],
                              check=True, capture_output=True, text=True).stdout
        rows += parse(text, resource)
    lines = [f"# kube-state-metrics {tag}: docs/metrics/ of the default collectors (scripts/ksm_table.py)",
             "resource\tname\ttype\tstatus\topt_in\tlabels"]
    lines += ["\t".join(r) for r in rows]
    OUT.write_text("\n".join(lines) + "\n")
    print(f"{OUT.relative_to(ROOT)}: {len(rows)} families")


if __name__ == "__main__":
    main(sys.argv)
