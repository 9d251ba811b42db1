#!/usr/bin/env python3
"""Render a profile of the chart to build/<profile>/ and summarise what it rendered:
objects per component, images, and summed resource requests.

Usage: scripts/render.py [--profile dev|production|...|defaults] [-f extra.yaml ...]
                         [--release p5] [--namespace monitoring] [--out build]
Runs with the project's venv (make render: the harness package is installed there). Uses the
same render adapter as the tests.
"""
import argparse
import collections
import sys
from pathlib import Path

import yaml

from harness import paths, tools
from harness.manifests import component, containers, quantity
from harness.render import RenderError, render_raw

ROOT = paths.ROOT


def replicas(obj):
    if obj["kind"] in ("Deployment", "StatefulSet"):
        return obj["spec"].get("replicas", 1)
    if obj["kind"] == "DaemonSet":
        return 1  # per node
    return 0  # hook pods and jobs are not steady-state


def summarise(docs):
    by_component = collections.defaultdict(collections.Counter)
    images = set()
    cpu = collections.Counter()
    mem = collections.Counter()
    for obj in docs:
        comp = component(obj, "(unlabelled)")
        by_component[comp][obj["kind"]] += 1
        for c in containers(obj):
            images.add(c["image"])
            req = (c.get("resources") or {}).get("requests") or {}
            n = replicas(obj)
            cpu[comp] += quantity(req.get("cpu", 0)) * n
            mem[comp] += quantity(req.get("memory", 0)) * n
    return by_component, images, cpu, mem


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="dev", help="a file in values/ without .yaml, or 'defaults'")
    ap.add_argument("-f", "--values", action="append", default=[], help="extra values file (repeatable)")
    ap.add_argument("--release", default="p5")
    ap.add_argument("--namespace", default="monitoring")
    ap.add_argument("--kube-version", default=paths.KUBE_MAX)
    ap.add_argument("--out", default=str(ROOT / "build"))
    args = ap.parse_args()

    files = []
    if args.profile != "defaults":
        prof = paths.PROFILES_DIR / f"{args.profile}.yaml"
        if not prof.exists():
            have = ", ".join(["defaults"] + [p.stem for p in paths.profiles()])
            sys.exit(f"render: no profile {args.profile!r} (values/{args.profile}.yaml); profiles: {have}")
        files.append(prof)
    files += [Path(f) for f in args.values]
    if not tools.find("helm"):
        sys.exit("render: helm not found: run `make tools` (or set $HELM)")
    try:
        docs, text = render_raw(files, release=args.release, namespace=args.namespace,
                                kube_version=args.kube_version)
    except RenderError as e:
        sys.exit(f"render: helm template failed:\n{e}")

    out = Path(args.out) / args.profile
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.yaml"):
        old.unlink()
    (out / "all.yaml").write_text(text)
    grouped = collections.defaultdict(list)
    for obj in docs:
        grouped[component(obj, "other")].append(obj)
    for comp, objs in grouped.items():
        (out / f"{comp}.yaml").write_text(yaml.safe_dump_all(objs, sort_keys=False))

    by_component, images, cpu, mem = summarise(docs)
    print(f"Rendered profile '{args.profile}' ({len(docs)} objects) to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}/")
    print(f"\n{'component':<22}{'objects':<9}{'cpu req':>9}{'mem req':>10}  kinds")
    for comp in sorted(by_component):
        kinds = ", ".join(f"{k}x{n}" if n > 1 else k for k, n in sorted(by_component[comp].items()))
        print(f"{comp:<22}{sum(by_component[comp].values()):<9}{cpu[comp] * 1000:>7.0f}m{mem[comp] / 2**20:>8.0f}Mi  {kinds}")
    print(f"{'total':<22}{len(docs):<9}{sum(cpu.values()) * 1000:>7.0f}m{sum(mem.values()) / 2**20:>8.0f}Mi"
          "  (DaemonSets counted once, per node)")
    print("\nImages:")
    for img in sorted(images):
        print(f"  {img}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
