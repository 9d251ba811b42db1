"""Unit tier: every values.schema.json is what scripts/schemas.py generates from the values
files (no hand edit, no drift), says so, and the generator refuses what it cannot type,
naming the key."""
import json
import shutil
import subprocess
import sys

import pytest

from harness import paths
from harness.schema import all_chart_dirs, load_schema

pytestmark = pytest.mark.unit

GENERATOR = paths.ROOT / "scripts" / "schemas.py"


def _generator():
    return paths.script("schemas")


def _one_chart(tmp_path, monkeypatch, values_text):
    """The generator, pointed at a scratch chart `c` in tmp_path whose values.yaml is values_text."""
    gen = _generator()
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    chart = tmp_path / "c"
    chart.mkdir()
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text(values_text)
    return gen, chart


def test_schemas_match_the_generator():
    proc = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("chart_dir", all_chart_dirs(), ids=lambda d: d.name)
def test_generated_schema_says_so(chart_dir):
    assert "scripts/schemas.py" in load_schema(chart_dir).get("$comment", ""), \
        f"{chart_dir.name}/values.schema.json does not say it is generated"


def test_check_fails_on_a_hand_edit(tmp_path, monkeypatch):
    """--check compares byte for byte: a hand edit of any generated schema is drift."""
    gen = _generator()
    umbrella = tmp_path / "phase5-monitoring"
    shutil.copytree(paths.UMBRELLA, umbrella)
    monkeypatch.setattr(gen, "UMBRELLA", umbrella)
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    monkeypatch.setattr(gen, "DEFS_FILE", umbrella / "charts" / "common" / "schema-defs.json")
    assert gen.main(["schemas.py", "--check"]) == 0
    target = umbrella / "charts" / "loki" / "values.schema.json"
    schema = json.loads(target.read_text())
    schema["properties"]["enabled"]["type"] = "string"
    target.write_text(json.dumps(schema, indent=2) + "\n")
    assert gen.main(["schemas.py", "--check"]) == 1


@pytest.mark.parametrize("text,needle", [
    pytest.param("a:\n  b: null\n", "`a.b` defaults to null", id="null"),
    pytest.param("a: []\n", "`a` is an empty list", id="empty-list"),
    pytest.param("a:\n  - x: 1\n", "`a` is a list of mixed or structured items", id="list-of-maps"),
    pytest.param("a:\n  labels: {}\n", "`a.labels` is an empty map", id="empty-map"),
    pytest.param("# @schema {minimum: 1}\na: 1\n", "values.yaml:1: `# @schema` is not JSON", id="not-json"),
    pytest.param("# @schema [1]\na: 1\n", "must be a JSON object", id="not-object"),
    pytest.param("a:\n  - x: 1\n    # @schema {\"minimum\": 1}\n    y: 2\n", "inside a list item", id="in-list"),
])
def test_generator_names_what_it_cannot_type(tmp_path, monkeypatch, text, needle):
    gen, chart = _one_chart(tmp_path, monkeypatch, text)
    with pytest.raises(gen.SchemaError) as err:
        gen.generate(chart, {}, {})
    assert needle in str(err.value), str(err.value)


def test_annotations_type_description_and_default(tmp_path, monkeypatch):
    gen, chart = _one_chart(tmp_path, monkeypatch, 
        "# -- How many.\n# @schema {\"minimum\": 1}\nreplicas: 2\n"
        "# -- Free-form labels.\n# @schema {\"additionalProperties\": {\"type\": \"string\"}}\nlabels: {}\n"
        "config: |\n  # @schema not a key: inside a block scalar\n  x: 1\n"
        "# @schema {\"$ref\": \"#/$defs/thing\"}\nthing: {}\n")
    schema = gen.generate(chart, {"thing": {"type": "object", "additionalProperties": False}}, {})
    props = schema["properties"]
    assert props["replicas"] == {"description": "How many.", "type": "integer", "default": 2, "minimum": 1}
    assert props["labels"]["additionalProperties"] == {"type": "string"} and props["labels"]["type"] == "object"
    assert props["config"]["type"] == "string"
    assert props["thing"]["$ref"] == "#/$defs/thing" and "thing" in schema["$defs"]
    assert schema["additionalProperties"] is False


def test_dangling_annotation_fails(tmp_path, monkeypatch):
    """A `# @schema` line must sit above a key of the values tree, or it would be lost."""
    gen, chart = _one_chart(tmp_path, monkeypatch, "a: 1\n# @schema {\"minimum\": 1}\n")
    with pytest.raises(gen.SchemaError) as err:
        gen.generate(chart, {}, {})
    assert "sits above no key" in str(err.value), str(err.value)


def test_key_missing_from_a_shared_definition_fails(tmp_path, monkeypatch):
    """A default below a `$ref` that the definition would reject (e.g. a new global key) fails
    the generator, naming the key, instead of a schema that rejects its own defaults."""
    gen, chart = _one_chart(tmp_path, monkeypatch,
                            "# @schema {\"$ref\": \"#/$defs/global\"}\nglobal:\n  known: 1\n  newKey: x\n")
    monkeypatch.setattr(gen, "DEFS_FILE", tmp_path / "schema-defs.json")
    defs = {"global": {"type": "object", "additionalProperties": False, "properties": {"known": {"type": "integer"}}}}
    with pytest.raises(gen.SchemaError) as err:
        gen.generate(chart, defs, {})
    assert "`global.newKey` is not in the shared definition" in str(err.value), str(err.value)


def test_keys_with_a_default_are_required(tmp_path, monkeypatch):
    """Helm deletes a key set to null before it validates: each key with a default is required,
    so its removal fails naming it; `x-optional` opts a key out, a null default is not required,
    a free-form map's entries are examples, and a dependency's section requires `enabled`."""
    gen, chart = _one_chart(tmp_path, monkeypatch,
        "a:\n  b: 1\n  # @schema {\"x-optional\": true}\n  c: \"\"\n  # @schema {\"type\": [\"string\", \"null\"]}\n  d: null\n"
        "# @schema {\"additionalProperties\": {\"type\": \"string\"}}\nlabels:\n  x: y\n")
    schema = gen.generate(chart, {}, {})
    assert schema["required"] == ["a", "labels"], schema.get("required")
    assert schema["properties"]["a"]["required"] == ["b"], schema["properties"]["a"]
    assert "required" not in schema["properties"]["labels"], schema["properties"]["labels"]
    assert gen.subchart_section("s", "", {"properties": {"enabled": {}}}, {"enabled": True})["required"] == ["enabled"]
