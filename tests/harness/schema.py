"""Walk values.yaml against values.schema.json; validate rendered objects against the
Kubernetes schemas (kube_errors)."""
import json
from pathlib import Path

import yaml

from .manifests import ident
from .paths import KUBE_MAX, KUBE_MIN, SUBCHARTS_DIR, UMBRELLA


def load_schema(chart_dir):
    return json.loads((Path(chart_dir) / "values.schema.json").read_text())


def load_values(chart_dir):
    return yaml.safe_load((Path(chart_dir) / "values.yaml").read_text()) or {}


def resolve(node, root):
    """Follow `$ref`s, and the `allOf: [{$ref}]` the generator writes when constraints sit
    beside a reference (draft-07 ignores a `$ref`'s siblings); the siblings win."""
    while isinstance(node, dict):
        wrapped = node.get("allOf")
        if "$ref" not in node and isinstance(wrapped, list) and len(wrapped) == 1 and "$ref" in wrapped[0]:
            node = {**resolve(wrapped[0], root), **{k: v for k, v in node.items() if k != "allOf"}}
            continue
        if "$ref" not in node:
            break
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local $refs are supported: {ref}"
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def undescribed_keys(values, schema, root=None, path=""):
    """Keys in `values` the schema does not describe (as 'a.b.c' paths).

    A sub-section marked `x-subchart` in the umbrella is walked with that subchart's
    own schema; an `x-passthrough` object (a Kubernetes type) is not walked further.
    """
    root = root if root is not None else schema
    schema = resolve(schema, root)
    out = []
    if "x-subchart" in schema:
        sub = SUBCHARTS_DIR / schema["x-subchart"]
        sub_schema = load_schema(sub)
        return undescribed_keys(values, sub_schema, sub_schema, path)
    if "x-passthrough" in schema:
        return out
    if isinstance(values, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for k, v in values.items():
            p = f"{path}.{k}" if path else str(k)
            if k in props:
                out += undescribed_keys(v, props[k], root, p)
            elif isinstance(extra, dict):
                out += undescribed_keys(v, extra, root, p)
            else:
                out.append(p)
    elif isinstance(values, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(values):
            out += undescribed_keys(v, schema["items"], root, f"{path}[{i}]")
    return out


# Keywords whose schema adds conditions to the object of the schema they sit in (draft-07 if/then/else),
# whose keys that schema already closes: not objects of their own.
CONDITIONS = {"if", "then", "else"}


def loose_objects(schema, root=None, path="#", condition=False):
    """Object schemas that do not close their keys: neither additionalProperties false,
    nor a typed map (additionalProperties: {schema}), nor marked x-subchart/x-passthrough
    (nor the if/then/else conditions of an object schema, which close nothing themselves)."""
    root = root if root is not None else schema
    out = []
    if isinstance(schema, dict):
        is_object = schema.get("type") == "object" or "properties" in schema
        if is_object and not condition and "additionalProperties" not in schema and not (
            {"x-subchart", "x-passthrough"} & schema.keys()
        ):
            out.append(path)
        for k, v in schema.items():
            if isinstance(v, (dict, list)):
                out += loose_objects(v, root, f"{path}/{k}", condition=k in CONDITIONS and "properties" in schema)
    elif isinstance(schema, list):
        for i, v in enumerate(schema):
            out += loose_objects(v, root, f"{path}/{i}")
    return out


def all_chart_dirs():
    return [UMBRELLA] + sorted(p for p in SUBCHARTS_DIR.iterdir() if (p / "values.schema.json").exists())


def kube_errors(objects, versions=(KUBE_MIN, KUBE_MAX)):
    """Strict Kubernetes-schema errors of the rendered `objects` (kubernetes_validate, schemas
    bundled: offline) at each of `versions`, the oldest and newest supported unless told: an
    unknown field or a wrong type is an error. One message per object and version, naming both
    ("1.30.0 Deployment/x: ... at spec/replicas"); a kind with no schema there (a CRD such as
    cert-manager's Certificate) is an error too: leave such objects out of `objects`.
    Assert on the list: `assert not errors, "\\n".join(errors)`."""
    import kubernetes_validate
    errors = []
    for obj in objects:
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                errors.append(f"{version} {ident(obj)}: {e.message} at {'/'.join(map(str, e.path))}")
            except kubernetes_validate.SchemaNotFoundError as e:
                errors.append(f"{version} {ident(obj)}: no schema in Kubernetes {version}: {e}")
    return errors
