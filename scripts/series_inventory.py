#!/usr/bin/env python3
"""The series the chart reads (tests/harness/series_inventory.py): every metric its rendered
rules, alerts, SLO rules and dashboard queries read, the labels they need and the job storing
it; and the keep-lists of the infrastructure jobs generated from it.

    .venv/bin/python scripts/series_inventory.py           # the inventory, one metric a line
    .venv/bin/python scripts/series_inventory.py --write   # rewrite prometheus/files/keep-lists.yaml
    .venv/bin/python scripts/series_inventory.py --check   # exit 1 when the file is stale
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from harness import series_inventory as inv  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="rewrite the chart's keep-lists file")
    ap.add_argument("--check", action="store_true", help="exit 1 when the keep-lists file is stale")
    args = ap.parse_args()
    items = inv.inventory()
    text = inv.keep_lists_text(inv.keep_lists(items))
    if args.write:
        inv.KEEP_LISTS_FILE.write_text(text)
        print(f"wrote {inv.KEEP_LISTS_FILE.relative_to(Path.cwd()) if inv.KEEP_LISTS_FILE.is_relative_to(Path.cwd()) else inv.KEEP_LISTS_FILE}")
        return 0
    if args.check:
        if inv.KEEP_LISTS_FILE.read_text() != text:
            print(f"{inv.KEEP_LISTS_FILE} is stale: run scripts/series_inventory.py --write", file=sys.stderr)
            return 1
        return 0
    for name, s in sorted(items.items(), key=lambda kv: (kv[1].job, kv[0])):
        print(f"{s.job:20} {name:60} by {','.join(sorted(s.labels)) or '-'}  ({len(s.readers)} readers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
