#!/usr/bin/env python3
"""Shared JSON-schema definitions for every chart's values.schema.json.

The canonical `$defs` live in charts/phase5-monitoring/charts/common/schema-defs.json.
Each subchart's values.schema.json carries a copy (Helm cannot follow a `$ref` into
another file), kept identical by `make schemas` (this script with --write) and checked
by tests/test_unit_schema.py.

The umbrella's schema also embeds each subchart's schema under the subchart's key (the
sections marked `x-subchart`): Helm validates a subchart's own schema only while the
subchart is enabled, so without the copy a typo under a disabled component would pass.

Usage: scripts/schema_defs.py --write | --check
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UMBRELLA = ROOT / "charts" / "phase5-monitoring"
DEFS_FILE = UMBRELLA / "charts" / "common" / "schema-defs.json"


def schema_files():
    """Every values.schema.json in the project: umbrella and subcharts."""
    yield UMBRELLA / "values.schema.json"
    for sub in sorted((UMBRELLA / "charts").iterdir()):
        f = sub / "values.schema.json"
        if f.exists():
            yield f


def load_defs():
    return json.loads(DEFS_FILE.read_text())


def used_defs(schema, defs):
    """The names of the shared defs a schema refers to, transitively."""
    seen = set()
    todo = [schema]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                name = ref.split("/")[-1]
                if name in defs and name not in seen:
                    seen.add(name)
                    todo.append(defs[name])
            todo.extend(v for k, v in node.items() if k != "$defs")
        elif isinstance(node, list):
            todo.extend(node)
    return seen


def embedded(name, defs):
    """A subchart's schema as a section of the umbrella's: its own $defs renamed
    `<name>.<def>` (they go to the umbrella's $defs), shared ones referenced as they are."""
    sub = json.loads((UMBRELLA / "charts" / name / "values.schema.json").read_text())
    own = {k: v for k, v in sub.get("$defs", {}).items() if k not in defs}

    def rename(node):
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if k == "$ref" and isinstance(v, str) and v.split("/")[-1] in own:
                    v = f"#/$defs/{name}.{v.split('/')[-1]}"
                out[k] = rename(v)
            return out
        if isinstance(node, list):
            return [rename(v) for v in node]
        return node

    section = {"x-subchart": name,
               "description": f"Values of the {name} subchart (charts/{name}/values.schema.json, embedded by `make schemas`)."}
    section.update({k: rename(v) for k, v in sub.items() if k not in ("$schema", "title", "$defs")})
    return section, {f"{name}.{k}": rename(v) for k, v in own.items()}


def with_subcharts(schema, defs):
    """The umbrella schema with every x-subchart section regenerated."""
    out = json.loads(json.dumps(schema))
    extra_defs = {}
    for key, prop in list(out.get("properties", {}).items()):
        if isinstance(prop, dict) and "x-subchart" in prop:
            section, own = embedded(prop["x-subchart"], defs)
            out["properties"][key] = section
            extra_defs.update(own)
    out["$defs"] = {k: v for k, v in out.get("$defs", {}).items() if "." not in k}
    out["$defs"].update(extra_defs)
    return out


def synced(schema, defs):
    """The schema with its shared $defs replaced by the canonical ones."""
    own = {k: v for k, v in schema.get("$defs", {}).items() if k not in defs}
    wanted = {name: defs[name] for name in sorted(used_defs(schema, defs))}
    out = dict(schema)
    out["$defs"] = {**wanted, **own}
    if not out["$defs"]:
        del out["$defs"]
    return out


def dump(schema):
    return json.dumps(schema, indent=2) + "\n"


def main(argv):
    if len(argv) != 2 or argv[1] not in ("--write", "--check"):
        print(__doc__, file=sys.stderr)
        return 2
    defs = load_defs()
    drift = []
    for f in schema_files():
        text = f.read_text()
        schema = json.loads(text)
        if f == UMBRELLA / "values.schema.json":
            schema = with_subcharts(schema, defs)
        want = dump(synced(schema, defs))
        if want != text:
            drift.append(f)
            if argv[1] == "--write":
                f.write_text(want)
    verb = "rewrote" if argv[1] == "--write" else "out of date (run `make schemas`)"
    for f in drift:
        print(f"{f.relative_to(ROOT)}: {verb}")
    return 1 if drift and argv[1] == "--check" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
