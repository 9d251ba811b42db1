"""Unit tier, property-based: hostile values never render silently or crash the engine.

Hypothesis generates several hundred values documents per run (six properties, 60 each
by default; PHASE5_HYPOTHESIS_EXAMPLES changes it), each a valid document
with one hostile change: an unknown key, a wrong type, a number out of range, a malformed
duration or quantity, an over-long name, a deleted key (`--set k=null`: Helm drops the key
before it validates). A jsonschema oracle confirms the change is
invalid for the component's schema; Helm must then refuse the render with a message that
names the key, and never panic. Cases are derandomized (the same every run, so CI is
stable); PHASE5_HYPOTHESIS_RANDOM=1 explores new ones."""
import json
import os
import string

import jsonschema
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from harness import paths
from harness.render import RenderError, render_error, render_raw
from harness.schema import load_schema, load_values, resolve

pytestmark = pytest.mark.unit

SETTINGS = settings(max_examples=int(os.environ.get("PHASE5_HYPOTHESIS_EXAMPLES", "60")), deadline=None,
                    derandomize=not os.environ.get("PHASE5_HYPOTHESIS_RANDOM"), database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _targets():
    """(component, path tuple, resolved schema) for every object and leaf the schemas describe."""
    out = []
    for comp in paths.COMPONENTS:
        root = load_schema(paths.SUBCHARTS_DIR / comp)

        def visit(node, path, depth=0):
            node = resolve(node, root)
            if depth > 6 or "x-passthrough" in node or "x-subchart" in node:
                return
            out.append((comp, path, node))
            for key, sub in (node.get("properties") or {}).items():
                if path == () and key == "global":
                    continue
                visit(sub, path + (key,), depth + 1)

        visit(root, ())
    return out


TARGETS = _targets()
OBJECTS = [t for t in TARGETS if t[1] and resolve(t[2], {}).get("additionalProperties") is False]
TYPED = [t for t in TARGETS if t[1] and t[2].get("type") in ("string", "integer", "number", "boolean", "array", "object")]
RANGED = [t for t in TARGETS if t[1] and ("minimum" in t[2] or "maximum" in t[2])]
PATTERNED = [t for t in TARGETS if t[1] and t[2].get("type") == "string" and "pattern" in t[2]]
NAMES = [t for t in TARGETS if t[1] and t[2].get("maxLength")]


def _default_keys():
    """(component, path tuple) of every key the defaults hold where the schema describes it (not
    the entries of a free-form map, which are the user's own): what a user can remove."""
    out = []
    for comp in paths.COMPONENTS:
        root = load_schema(paths.SUBCHARTS_DIR / comp)

        def visit(value, node, path):
            node = resolve(node, root)
            if "x-passthrough" in node:
                return
            props = node.get("properties") or {}
            for key, sub in value.items():
                if key in props and not (path == () and key == "global"):
                    out.append((comp, path + (key,)))
                    if isinstance(sub, dict):
                        visit(sub, props[key], path + (key,))

        visit(load_values(paths.SUBCHARTS_DIR / comp), root, ())
    return out


DEFAULT_KEYS = _default_keys()

WRONG = {"string": [12, True, ["x"], {"a": 1}], "integer": ["ten", 1.5, True, [1]], "number": ["ten", False, {}],
         "boolean": ["yes", 1, "true", []], "array": ["a,b", 3, {"a": 1}], "object": ["x", 3, ["a"], True]}


def set_path(values, path, value):
    node = values
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


# Components off by default, with the values that switch them on: Helm validates a subchart's
# values only while it is enabled, so the bad value is tried with the component running.
SWITCHED_ON = {
    "thanos": {"thanos.enabled": True, "prometheus.thanos.sidecar.enabled": True,
               "grafana.datasources.prometheus.thanosQuery": True},
}


def check(comp, path, value, needle):
    """Oracle says invalid -> Helm must refuse, naming `needle`, without panicking."""
    doc = json.loads(json.dumps(load_values(paths.SUBCHARTS_DIR / comp)))
    set_path(doc, path, value)
    schema = load_schema(paths.SUBCHARTS_DIR / comp)
    assume(not jsonschema.validators.validator_for(schema)(schema).is_valid(doc))
    key = ".".join((comp,) + path)
    msg = render_error(set_values={**SWITCHED_ON.get(comp, {}), key: value})
    assert "panic" not in msg and "goroutine" not in msg, f"{key}={value!r} crashed Helm:\n{msg[:2000]}"
    assert needle in msg and comp in msg, f"{key}={value!r}: error does not name {needle!r}:\n{msg}"


@SETTINGS
@given(st.sampled_from(OBJECTS), st.text(string.ascii_lowercase, min_size=3, max_size=12))
def test_unknown_key(target, word):
    comp, path, node = target
    key = "zz" + word
    assume(key not in (node.get("properties") or {}))
    check(comp, path + (key,), 1, key)


@SETTINGS
@given(st.sampled_from(TYPED), st.data())
def test_wrong_type(target, data):
    comp, path, node = target
    value = data.draw(st.sampled_from(WRONG[node["type"]]))
    check(comp, path, value, "/" + "/".join(path))


@SETTINGS
@given(st.sampled_from(RANGED), st.integers(1, 10**6), st.booleans())
def test_out_of_range(target, delta, below):
    comp, path, node = target
    bound = node.get("minimum") if below and "minimum" in node else node.get("maximum", node.get("minimum"))
    value = bound - delta if bound == node.get("minimum") else bound + delta
    if node.get("type") == "integer":
        value = int(value)
    check(comp, path, value, "/" + "/".join(path))


@SETTINGS
@given(st.sampled_from(PATTERNED), st.sampled_from(["5 minutes", "lots", "-1", "1.5.5", "ten seconds", "💥", "1h 30m"]))
def test_malformed_strings(target, value):
    comp, path, _ = target
    check(comp, path, value, "/" + "/".join(path))


@SETTINGS
@given(st.sampled_from(DEFAULT_KEYS), st.booleans())
def test_deleted_key(target, typed_as_set):
    """Any key of the defaults removed (`--set k=null` as users type it, or `--set-json k=null`;
    Helm deletes the key before it validates): the render either goes through (the template has
    a default for it) or fails naming the key, never in a template's nil pointer. When the
    schema requires the key (oracle: the defaults without it are invalid), Helm's schema error
    says which."""
    comp, path = target
    doc = json.loads(json.dumps(load_values(paths.SUBCHARTS_DIR / comp)))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent.pop(path[-1])
    schema = load_schema(paths.SUBCHARTS_DIR / comp)
    required = not jsonschema.validators.validator_for(schema)(schema).is_valid(doc)
    key = ".".join((comp,) + path)
    try:
        on = {k: v for k, v in SWITCHED_ON.get(comp, {}).items() if k != key and key != f"{comp}.enabled"}
        render_raw(set_values=on, set_strings={key: "null"}) if typed_as_set else render_raw(set_values={**on, key: None})
        assert not required, f"removing {key}: the schema requires it, yet Helm rendered"
        return
    except RenderError as err:
        msg = str(err)
    pointer = "/" + "/".join(path[:-1]) if path[:-1] else ""
    # The subchart's schema reports it, or the umbrella's section of the subchart (`enabled`).
    schema_errors = [f"at '{pointer}': missing property '{path[-1]}'", f"at '/{comp}{pointer}': missing property '{path[-1]}'"]
    assert "panic" not in msg and "nil pointer" not in msg, f"removing {key} crashed Helm or a template:\n{msg[:2000]}"
    assert comp in msg and (any(e in msg for e in schema_errors) or (not required and key in msg)), \
        f"removing {key}: error does not say {schema_errors[0]!r}" + ("" if required else f" or {key!r}") + f":\n{msg}"


@SETTINGS
@given(st.sampled_from(NAMES), st.integers(1, 200))
def test_over_long_names(target, extra):
    comp, path, node = target
    check(comp, path, "a" * (node["maxLength"] + extra), "/" + "/".join(path))


# ----------------------------------------------------------------------------- global.web
# The web config of the exporter-toolkit servers (Prometheus, Alertmanager, node-exporter,
# kube-state-metrics, Thanos: TLS and basic auth) and the TLS of Loki, Grafana and the log collector
# (`promtail`: TLS only) sit under `global`, which the generators above leave out: its own
# targets, judged by the umbrella's schema; Helm must refuse naming the path under /global/web.
BASIC_AUTH_COMPONENTS = ("prometheus", "alertmanager", "node-exporter", "kube-state-metrics", "thanos")
TLS_ONLY_COMPONENTS = ("loki", "grafana", "promtail")
WEB_COMPONENTS = BASIC_AUTH_COMPONENTS + TLS_ONLY_COMPONENTS


def _web_targets():
    root = load_schema(paths.UMBRELLA)
    web = resolve(resolve(root["properties"]["global"], root)["properties"]["web"], root)
    out = []

    def visit(node, path):
        node = resolve(node, root)
        out.append((path, node))
        for key, sub in (node.get("properties") or {}).items():
            visit(sub, path + (key,))
    for comp, sub in web["properties"].items():
        visit(sub, ("global", "web", comp))
    return out


WEB = _web_targets()
WEB_OBJECTS = [t for t in WEB if t[1].get("additionalProperties") is False]
WEB_TYPED = [t for t in WEB if t[1].get("type") in WRONG]
WEB_PATTERNED = [t for t in WEB if t[1].get("type") == "string" and ("pattern" in t[1] or "enum" in t[1])]
WEB_NAMES = [t for t in WEB if t[1].get("maxLength")]


def check_web(path, value, needle):
    """Oracle (the umbrella's schema) says invalid -> Helm refuses naming `needle`, no panic."""
    doc = json.loads(json.dumps(load_values(paths.UMBRELLA)))
    set_path(doc, path, value)
    schema = load_schema(paths.UMBRELLA)
    assume(not jsonschema.validators.validator_for(schema)(schema).is_valid(doc))
    key = ".".join(path)
    msg = render_error(set_values={key: value})
    assert "panic" not in msg and "goroutine" not in msg, f"{key}={value!r} crashed Helm:\n{msg[:2000]}"
    assert needle in msg, f"{key}={value!r}: error does not name {needle!r}:\n{msg}"


@SETTINGS
@given(st.sampled_from(WEB_OBJECTS), st.text(string.ascii_lowercase, min_size=3, max_size=12))
def test_web_unknown_key(target, word):
    path, node = target
    key = "zz" + word
    check_web(path + (key,), True, key)


@SETTINGS
@given(st.sampled_from(WEB_TYPED), st.data())
def test_web_wrong_type(target, data):
    path, node = target
    check_web(path, data.draw(st.sampled_from(WRONG[node["type"]])), "/" + "/".join(path))


@SETTINGS
@given(st.sampled_from(WEB_PATTERNED), st.sampled_from(["Not_A_Name", "-lead", "a b", "💥", "ca.crt/../key", "cluster"]))
def test_web_malformed_strings(target, value):
    path, _ = target
    check_web(path, value, "/" + "/".join(path))


@SETTINGS
@given(st.sampled_from(WEB_NAMES), st.integers(1, 200))
def test_web_over_long_names(target, extra):
    path, node = target
    check_web(path, "a" * (node["maxLength"] + extra), "/" + "/".join(path))


@SETTINGS
@given(st.sampled_from(BASIC_AUTH_COMPONENTS), st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True),
       st.text(min_size=1, max_size=40))
def test_web_a_password_in_place_of_a_bcrypt_hash_is_refused(comp, user, password):
    """basicAuth.users takes bcrypt hashes only: whatever else a user types there (a password)
    is refused naming the entry, before it could reach the web config Secret."""
    check_web(("global", "web", comp, "basicAuth", "users"), {user: password},
              f"/global/web/{comp}/basicAuth/users/{user}")


@SETTINGS
@given(st.sampled_from(TLS_ONLY_COMPONENTS), st.sampled_from([{"enabled": True}, {"enabled": False}, {}]),
       st.sampled_from(["basicAuth", "users", "clientSecret"]))
def test_web_tls_only_components_take_no_credentials(comp, body, key):
    """Loki, Grafana and the log collector take TLS only: basic auth (or a stray credential key)
    under them is refused naming it, never silently dropped (a user would think it protects)."""
    check_web(("global", "web", comp, key), body, key)


def test_web_generators_cover_every_web_component():
    for pool, what in ((WEB_OBJECTS, "objects"), (WEB_TYPED, "typed leaves"), (WEB_PATTERNED, "patterned strings"),
                       (WEB_NAMES, "names")):
        assert {t[0][2] for t in pool} == set(WEB_COMPONENTS), f"global.web {what}: components missing"


def test_generators_cover_every_component():
    for pool, what in ((OBJECTS, "objects"), (TYPED, "typed leaves"), (RANGED, "ranged numbers"),
                       (DEFAULT_KEYS, "keys of the defaults")):
        assert {t[0] for t in pool} == set(paths.COMPONENTS), f"{what}: components missing"
    assert any(t[2].get("pattern", "").startswith("^(0|([0-9]+(ms") for t in PATTERNED), "no duration fields"
