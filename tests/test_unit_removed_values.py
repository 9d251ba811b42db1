"""Unit tier: removing a value fails the render with Helm's schema error naming the key, with
Helm 3 and Helm 4, never a template's nil pointer.

Helm's way to drop a key is null: `--set prometheus.retention=null`, or an empty `retention:` in
a values file. Helm deletes such a key while it merges the values, before it validates them, so
a type in the schema never sees it; only `required` does. scripts/schemas.py therefore requires
every key with a default (an opted-out key, `x-optional`, must render as if it were unset, and
the last test proves that). The property-based deletions over every subchart key are in
test_unit_hostile_values.py."""
import pytest

from harness import paths
from harness.render import render, render_error
from harness.schema import load_schema, load_values, resolve

pytestmark = pytest.mark.unit

UMBRELLA_NAME = "phase5-monitoring"
OPERATOR = {"global.operator.enabled": True}

# The keys issue 29 names: each removal ended in a template's nil pointer (statefulset.yaml,
# common.memo) instead of an error naming the key.
NAMED = ["prometheus.retention", "prometheus.phase5.services", "prometheus.alerts", "prometheus.scrape",
         "grafana.dashboards", "loki.retention", "alertmanager.slack", "global"]

# Umbrella keys a removal may drop, each for a documented default: the test image's registry,
# tag, digest and pull policy fall back (global.imageRegistry, appVersion, the tag, the API
# server's default) in common.image; the subchart sections come back from the subchart's own
# defaults (Helm recreates a deleted dependency section), their `enabled` does not.
UMBRELLA_DELETABLE = {"tests.image.registry", "tests.image.tag", "tests.image.digest", "tests.image.pullPolicy",
                      *paths.COMPONENTS}


def where(key):
    """(chart whose schema reports the key, JSON pointer of its parent, its own name)."""
    first, _, rest = key.partition(".")
    chart, path = (first, rest) if first in paths.COMPONENTS and rest else (UMBRELLA_NAME, key)
    parent, _, leaf = path.rpartition(".")
    return chart, "/" + parent.replace(".", "/") if parent else "", leaf


def assert_names(msg, key):
    chart, parent, leaf = where(key)
    assert "nil pointer" not in msg and "panic" not in msg, f"removing {key} crashed a template:\n{msg}"
    assert f"{chart}:" in msg and f"at '{parent}': missing property '{leaf}'" in msg, \
        f"removing {key}: the error does not name it (want {chart}: at '{parent}': missing property '{leaf}'):\n{msg}"


def empty_key_file(tmp_path, key):
    """A values file that leaves `key` empty (`a:\\n  b:\\n`), as a user's file would."""
    parts = key.split(".")
    text = "".join("  " * i + f"{p}:\n" for i, p in enumerate(parts))
    f = tmp_path / "empty.yaml"
    f.write_text(text)
    return f


@pytest.mark.parametrize("helm", ["helm", "helm4"])
@pytest.mark.parametrize("key", NAMED)
def test_set_null_fails_naming_the_key(key, helm):
    assert_names(render_error(set_strings={key: "null"}, helm=helm), key)


@pytest.mark.parametrize("helm", ["helm", "helm4"])
@pytest.mark.parametrize("key", NAMED)
def test_empty_key_in_a_values_file_fails_naming_it(tmp_path, key, helm):
    assert_names(render_error([empty_key_file(tmp_path, key)], helm=helm), key)


@pytest.mark.parametrize("key", [k for k in NAMED if k != "global"])  # no global, no operator mode
def test_removal_fails_naming_the_key_in_operator_mode(key):
    assert_names(render_error(set_values={**OPERATOR, key: None}), key)


def umbrella_keys():
    """Every key of the umbrella's values.yaml a user could remove: the closed objects' keys,
    global's included, down to the free-form maps (whose entries are the user's own)."""
    schema, out = load_schema(paths.UMBRELLA), []

    def walk(value, node, path):
        node = resolve(node, schema)
        for k, v in value.items():
            key = f"{path}.{k}" if path else k
            out.append(key)
            sub = resolve((node.get("properties") or {}).get(k, {}), schema)
            if isinstance(v, dict) and sub.get("additionalProperties") is False and "x-subchart" not in sub:
                walk(v, sub, key)
            elif "x-subchart" in sub:
                out.extend(f"{key}.{s}" for s in v)
    walk(load_values(paths.UMBRELLA), schema, "")
    return out


# Helm does not delete a nulled key of `global` four levels down or deeper (global.web.<component>.*):
# it keeps the default, so the render is the default one and no nil reaches a template
# (tests/test_unit_webauth.py, test_a_nulled_web_key_renders_the_defaults).
HELM_RESTORED = tuple(f"global.web.{c}." for c in ("prometheus", "alertmanager", "node-exporter", "kube-state-metrics",
                                                    "thanos", "loki", "grafana", "promtail"))


@pytest.mark.parametrize("key", [k for k in umbrella_keys() if k not in UMBRELLA_DELETABLE
                                 and not k.startswith(HELM_RESTORED)])
def test_every_umbrella_key_removal_fails_naming_it(key):
    assert_names(render_error(set_values={key: None}), key)


def test_umbrella_walk_reaches_global_and_the_switches():
    keys = set(umbrella_keys())
    for key in ("global", "global.phase5.namespaceRegex", "global.operator.enabled", "prometheus.enabled",
                "networkPolicy.apiServerCIDRs", "tests.image.repository"):
        assert key in keys, f"{key} not walked: {sorted(keys)}"


def optional_keys():
    """(component, dotted key) of every key a subchart schema marks x-optional."""
    out = []

    def walk(node, root, comp, path):
        node = resolve(node, root)
        for k, sub in (node.get("properties") or {}).items():
            if sub.get("x-optional"):
                out.append((comp, f"{path}{k}"))
            walk(sub, root, comp, f"{path}{k}.")
    for comp in paths.COMPONENTS:
        schema = load_schema(paths.SUBCHARTS_DIR / comp)
        walk(schema, schema, comp, "")
    return out


PINNED = {"grafana.admin.password": "correct-horse-battery-staple", "grafana.admin.secretKey": "s" * 32}


@pytest.mark.parametrize("mode", [{}, OPERATOR], ids=["plain", "operator"])
@pytest.mark.parametrize("comp,key", optional_keys(), ids=lambda v: v if isinstance(v, str) else None)
def test_optional_key_removed_renders_as_unset(comp, key, mode):
    """An x-optional key's removal is the documented 'unset': the same objects as its empty default."""
    base = {**PINNED, **mode}
    assert list(render(set_values={**base, f"{comp}.{key}": None})) == list(render(set_values=base)), \
        f"removing {comp}.{key} changed the render: it is not optional, drop its x-optional"


def test_some_key_is_optional():
    assert ("promtail", "namespaceRegex") in optional_keys(), optional_keys()
