"""Unit tier: the values schemas are strict, complete and in step with the shared defs;
bad input fails the render with Helm's message naming the key."""
import pytest

from harness import paths
from harness.render import render_error
from harness.schema import all_chart_dirs, load_schema, load_values, loose_objects, undescribed_keys

pytestmark = pytest.mark.unit

CHARTS = [pytest.param(d, id=d.name) for d in all_chart_dirs()]


@pytest.mark.parametrize("chart_dir", CHARTS)
def test_every_values_key_is_in_the_schema(chart_dir):
    schema = load_schema(chart_dir)
    missing = undescribed_keys(load_values(chart_dir), schema)
    assert not missing, f"{chart_dir.name}/values.yaml keys not in values.schema.json: {missing}"


@pytest.mark.parametrize("chart_dir", CHARTS)
def test_schema_closes_every_object(chart_dir):
    loose = loose_objects(load_schema(chart_dir))
    assert not loose, f"{chart_dir.name}/values.schema.json objects without additionalProperties: {loose}"


@pytest.mark.parametrize("profile", paths.profiles() + paths.ci_values(), ids=lambda p: p.stem)
def test_every_profile_key_is_in_the_schema(profile):
    import yaml
    schema = load_schema(paths.UMBRELLA)
    missing = undescribed_keys(yaml.safe_load(profile.read_text()) or {}, schema)
    assert not missing, f"{profile.name} keys not in any schema: {missing}"


def test_umbrella_lists_every_subchart_section():
    schema = load_schema(paths.UMBRELLA)
    for component in paths.COMPONENTS:
        assert schema["properties"][component].get("x-subchart") == component


@pytest.mark.parametrize("overrides,needle", [
    pytest.param({"globl": {}}, "globl", id="top-level-typo"),
    pytest.param({"global.imageRegistyr": "r.example"}, "imageRegistyr", id="nested-global-typo"),
], )
def test_umbrella_typo_fails_naming_key(overrides, needle):
    msg = render_error(set_values=overrides)
    assert needle in msg, msg


@pytest.mark.parametrize("component", paths.COMPONENTS)
def test_subchart_section_typo_fails_naming_key(component):
    msg = render_error(set_values={f"{component}.enabeld": True})
    assert "enabeld" in msg and component in msg, msg


@pytest.mark.parametrize("overrides,needle", [
    pytest.param({"kube-state-metrics.image.repositroy": "x"}, "repositroy", id="nested-subchart-typo"),
    pytest.param({"kube-state-metrics.replicas": "two"}, "/replicas", id="wrong-type"),
    pytest.param({"kube-state-metrics.replicas": 0}, "/replicas", id="below-minimum"),
    pytest.param({"kube-state-metrics.resources.requests.cpu": "lots"}, "/resources/requests/cpu", id="bad-quantity"),
    pytest.param({"kube-state-metrics.collectors": ["podz"]}, "/collectors/0", id="bad-enum"),
    pytest.param({"global.imagePullSecrets": "regcred"}, "imagePullSecrets", id="global-wrong-type"),
    pytest.param({"prometheus.enabled": "yes"}, "/prometheus/enabled", id="enabled-wrong-type"),
])
def test_bad_value_fails_naming_key(overrides, needle):
    msg = render_error(set_values=overrides)
    assert needle in msg, msg


@pytest.mark.parametrize("component", paths.COMPONENTS)
def test_disabled_subchart_section_still_validated(component):
    """Helm checks a subchart's own schema only while it is enabled; the umbrella's section
    for each subchart lists its top-level keys, so a top-level typo under a disabled
    component still fails."""
    msg = render_error(set_values={f"{component}.enabled": False, f"{component}.replicsa": 2})
    assert "replicsa" in msg and f"/{component}" in msg, msg
