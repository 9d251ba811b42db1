#!/usr/bin/env python3
"""Show what a change does to the rendered objects: render every profile and a set of feature
cases from two git revisions of the chart (default: HEAD and the work tree) and diff them
object by object.

Usage: scripts/render_diff.py [--base REV] [--head REV|WORKTREE] [--case NAME ...] [--full] [--parsed]
Exit status 1 when any object differs (added, removed or changed) or a case renders on neither
side (a stale case proves nothing), 0 when all are identical.
Uses bin/helm (or $HELM); a refactor that promises "behaviour unchanged" shows it here.
--parsed compares the configuration files inside ConfigMaps and Secrets (keys ending in .yaml,
.yml or .json) as the data they hold, and leaves out the pods' checksum/* annotations: for a
change that writes the same configuration as other text (key order, comments, quoting).
"""
import base64
import json
import argparse
import difflib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = "charts/phase5-monitoring"
KUBE = "1.35.0"

# Feature cases beside the profiles: each switches on what the defaults leave off, so the
# templates behind those switches are compared too.
WIDE = {
    "grafana": {"ingress": {"enabled": True, "className": "nginx", "hosts": ["g.example.org"],
                            "tls": [{"secretName": "g-tls", "hosts": ["g.example.org"]}]},
                "persistence": {"enabled": True}},
    "prometheus": {"ingress": {"enabled": True, "allowUnauthenticated": True, "hosts": ["p.example.org"],
                               "tls": [{"secretName": "p-tls", "hosts": ["p.example.org"]}]},
                   "thanos": {"sidecar": {"enabled": True}}},
    "jaeger": {"ingress": {"enabled": True, "tls": [{"secretName": "j-tls", "hosts": ["jaeger.phase5.local"]}]}},
    "alertmanager": {"pagerduty": {"enabled": True}, "webhook": {"enabled": True},
                     "watchdog": {"enabled": True}},
    "networkPolicy": {"ingressCIDRs": ["192.0.2.0/24"],
                      "extraEgress": {"grafana": [{"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}],
                                                   "ports": [{"protocol": "TCP", "port": 443}]}]}},
    "global": {"imageRegistry": "mirror.example.org", "imagePullSecrets": ["pull"],
               "commonLabels": {"team": "sre"}, "storageClass": "fast"},
}
CASES = {
    "defaults": [],
    "dev": ["values/dev.yaml"],
    "production": ["values/production.yaml"],
    "wide": [WIDE],
    "promtail": [{"promtail": {"collector": "promtail"}}],
    "operator": [{"global": {"operator": {"enabled": True}}}],
    "no-networkpolicy": [{"networkPolicy": {"enabled": False}}],
}


def export(rev, dest):
    """The chart and values/ of a git revision, or of the work tree (rev None)."""
    if rev is None:
        return ROOT
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, CHART, "values"],
                          check=True, capture_output=True).stdout
    tar = Path(dest) / "a.tar"
    tar.write_bytes(data)
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="data")
    return Path(dest)


def render(root, case, tmp):
    helm = os.environ.get("HELM") or str(ROOT / "bin" / "helm")
    cmd = [helm, "template", "p5", str(root / CHART), "--namespace", "monitoring", "--kube-version", KUBE]
    for i, v in enumerate(CASES[case]):
        if isinstance(v, dict):
            f = Path(tmp) / f"{case}-{i}.yaml"
            f.write_text(yaml.safe_dump(v))
            cmd += ["-f", str(f)]
        else:
            cmd += ["-f", str(root / v)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        # Helm may list several schema errors in any order.
        return {"(render error)": "\n".join(sorted(proc.stderr.strip().replace(str(tmp), "<tmp>").splitlines()))}
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in yaml.safe_load_all(proc.stdout) if d}


def random_fields(root, case, tmp):
    """(object, data key) pairs that differ between two renders of the same input: generated
    passwords (randAlphaNum). They are masked on both sides."""
    one, two = render(root, case, tmp), render(root, case, tmp)
    return {(k, f) for k, d in one.items() if isinstance(d, dict)
            for f, v in (d.get("data") or {}).items() if (two.get(k) or {}).get("data", {}).get(f) != v}


def parse_configs(d):
    """A ConfigMap's or Secret's configuration files as data; a pod template without checksums."""
    for field in ("data", "stringData"):
        for k, v in (d.get(field) or {}).items() if d.get("kind") in ("ConfigMap", "Secret") else ():
            if not k.endswith((".yaml", ".yml", ".json")) or not isinstance(v, str):
                continue
            text = base64.b64decode(v).decode() if field == "data" and d["kind"] == "Secret" else v
            try:
                d[field][k] = json.loads(text) if k.endswith(".json") else yaml.safe_load(text)
            except (ValueError, yaml.YAMLError):
                pass
    ann = (((d.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations") or {}
    for k in [k for k in ann if k.startswith("checksum/")]:
        del ann[k]


def dump(objects, masked, parsed=False):
    out = {}
    for key, d in objects.items():
        if isinstance(d, dict):
            if parsed:
                parse_configs(d)
            for k, f in masked:
                if k == key and f in (d.get("data") or {}):
                    d["data"][f] = "<random>"
            d = yaml.safe_dump(d, sort_keys=True, width=200)
        out[key] = d
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="HEAD")
    ap.add_argument("--head", default=None, help="a git revision (default: the work tree)")
    ap.add_argument("--case", action="append", choices=sorted(CASES))
    ap.add_argument("--full", action="store_true", help="print every changed object's diff in full")
    ap.add_argument("--parsed", action="store_true",
                    help="compare configuration files in ConfigMaps/Secrets as data, without checksum annotations")
    args = ap.parse_args()
    changed = 0
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        base, head = export(args.base, a), export(args.head, b)
        for case in args.case or CASES:
            masked = random_fields(base, case, a) | random_fields(head, case, b)
            old = dump(render(base, case, a), masked, args.parsed)
            new = dump(render(head, case, b), masked, args.parsed)
            if "(render error)" in old and "(render error)" in new:
                changed += 1
                print(f"[{case}] renders on neither side: {new['(render error)'].splitlines()[0]}")
                continue
            for key in sorted(set(old) | set(new)):
                if old.get(key) == new.get(key):
                    continue
                changed += 1
                state = "added" if key not in old else "removed" if key not in new else "changed"
                print(f"[{case}] {state}: {key}")
                if state == "changed" or args.full:
                    diff = list(difflib.unified_diff(old.get(key, "").splitlines(), new.get(key, "").splitlines(),
                                                     "base", "head", lineterm="", n=1))
                    print("\n".join(diff if args.full else diff[:40]))
    print(f"{changed} object(s) differ" if changed else "every rendered object is identical")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
