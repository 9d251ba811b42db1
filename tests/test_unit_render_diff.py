"""Unit tier: scripts/render_diff.py, the before/after check of a refactor. Every case it
compares must render (a case that fails on both sides would compare two identical errors and
prove nothing), and --parsed compares the configuration inside ConfigMaps and Secrets as data."""
import copy

import pytest

from harness import paths

pytestmark = pytest.mark.unit

render_diff = paths.script("render_diff")


@pytest.mark.parametrize("case", sorted(render_diff.CASES))
def test_every_case_renders(case, tmp_path):
    objs = render_diff.render(paths.ROOT, case, tmp_path)
    assert "(render error)" not in objs, f"render_diff case {case} does not render:\n{objs.get('(render error)')}"


def _objects(config_text, checksum):
    return {
        "Secret/x-config": {"kind": "Secret", "metadata": {"name": "x-config"},
                            "stringData": {"x.yaml": config_text, "x.tmpl": "{{ define \"a\" }}{{ end }}"}},
        "StatefulSet/x": {"kind": "StatefulSet", "metadata": {"name": "x"},
                          "spec": {"template": {"metadata": {"annotations": {"checksum/config": checksum,
                                                                             "other": "kept"}}}}},
    }


def test_parsed_compares_configuration_files_as_data():
    before = _objects("# routes\nroute:\n  receiver: a\nglobal: {resolve_timeout: 5m}\n", "1111")
    after = _objects("global:\n  resolve_timeout: 5m\nroute: {receiver: a}\n", "2222")
    assert render_diff.dump(copy.deepcopy(before), set()) != render_diff.dump(copy.deepcopy(after), set()), \
        "the text differs: without --parsed the objects must differ"
    assert render_diff.dump(copy.deepcopy(before), set(), parsed=True) == \
        render_diff.dump(copy.deepcopy(after), set(), parsed=True), "--parsed: the same data must compare equal"
    changed = _objects("global:\n  resolve_timeout: 5m\nroute: {receiver: b}\n", "2222")
    assert render_diff.dump(copy.deepcopy(before), set(), parsed=True) != \
        render_diff.dump(changed, set(), parsed=True), "--parsed hid a changed receiver"
    kept = render_diff.dump(copy.deepcopy(after), set(), parsed=True)["StatefulSet/x"]
    assert "other: kept" in kept and "checksum/" not in kept, kept
