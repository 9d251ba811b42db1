#!/usr/bin/env python3
"""Generate the values reference of each chart README from the `# --` comments in its
values.yaml, between the markers <!-- values:start --> and <!-- values:end -->.

A key documents itself with a `# -- text` comment on the line(s) just above it; the
text covers the whole subtree below it. Every leaf key must be covered by such a comment.

Usage: scripts/values_doc.py --write | --check
  --write  rewrite the tables in place
  --check  exit 1 and list charts whose table drifted or whose keys lack a `# --` comment
"""
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from schemas import annotations  # noqa: E402  (the one values-comment parser)

ROOT = Path(__file__).resolve().parent.parent
UMBRELLA = ROOT / "charts" / "phase5-monitoring"
START, END = "<!-- values:start -->", "<!-- values:end -->"


def chart_dirs():
    yield UMBRELLA
    for d in sorted((UMBRELLA / "charts").iterdir()):
        if (d / "values.yaml").exists() and d.name != "common":
            yield d


def documented_keys(text, where="values.yaml"):
    """[(dotted key, description)] in file order, from `# --` comments: read by the one parser
    of values comments, scripts/schemas.py's annotations() (which the schemas are built from
    too), so the docs and the schemas never disagree on which comment belongs to which key."""
    return [(key, desc) for key, (desc, _extra, _line) in annotations(text, where).items() if desc]


def leaves(values, prefix=""):
    if isinstance(values, dict) and values:
        for k, v in values.items():
            yield from leaves(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix


def lookup(values, dotted):
    node = values
    for part in dotted.split("."):
        node = node[part]
    return node


def table(text, where="values.yaml"):
    values = yaml.safe_load(text) or {}
    rows = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for key, desc in documented_keys(text, where):
        val = lookup(values, key)
        typ = {dict: "object", list: "list", str: "string", bool: "bool", int: "int", float: "float",
               type(None): "null"}[type(val)]
        default = json.dumps(val, separators=(",", ":"))
        if len(default) > 60:
            default = "see values.yaml"
        cell = desc.replace("|", "\\|")
        rows.append(f"| `{key}` | {typ} | `{default}` | {cell} |")
    return "\n".join(rows)


def undocumented(text, where="values.yaml"):
    values = yaml.safe_load(text) or {}
    docs = [k for k, _ in documented_keys(text, where)]
    return [leaf for leaf in leaves(values)
            if leaf and not any(leaf == d or leaf.startswith(d + ".") for d in docs)]


def main(argv):
    if len(argv) != 2 or argv[1] not in ("--write", "--check"):
        print(__doc__, file=sys.stderr)
        return 2
    problems = []
    for chart in chart_dirs():
        text = (chart / "values.yaml").read_text()
        rel = chart.relative_to(ROOT)
        for leaf in undocumented(text, f"{rel}/values.yaml"):
            problems.append(f"{rel}/values.yaml: `{leaf}` has no `# --` comment")
        readme = chart / "README.md"
        if not readme.exists() or START not in readme.read_text():
            problems.append(f"{rel}/README.md: missing, or without the {START} ... {END} markers")
            continue
        body = readme.read_text()
        head, rest = body.split(START, 1)
        _, tail = rest.split(END, 1)
        new = f"{head}{START}\n{table(text, f'{rel}/values.yaml')}\n{END}{tail}"
        if new != body:
            if argv[1] == "--write":
                readme.write_text(new)
                print(f"{rel}/README.md: values table rewritten")
            else:
                problems.append(f"{rel}/README.md: values table out of date (run `make docs`)")
    for p in problems:
        print(p)
    return 1 if problems and argv[1] == "--check" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
