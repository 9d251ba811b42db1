"""The one render adapter. The helm CLI is the reference renderer.

render(...) returns a Manifests index of every object `helm template` produced, or raises
RenderError carrying Helm's own message (schema errors name the offending key there).
Renders are cached per argument set: tests may not mutate what they get back (use copy).
"""
import copy
import functools
import json
import shutil
import subprocess
from pathlib import Path

import yaml

from . import tools
from .manifests import Manifests
from .paths import KUBE_MAX, UMBRELLA


class RenderError(Exception):
    """helm template failed; str(err) is Helm's stderr."""


def _set_args(set_items, set_strings=()):
    # --set-json keeps types exact (bools, numbers, lists, nulls) for every value; --set passes a
    # value as users type it (Helm parses `null`, `true`, `1`).
    return ([arg for key, value_json in set_items for arg in ("--set-json", f"{key}={value_json}")]
            + [arg for key, text in set_strings for arg in ("--set", f"{key}={text}")])


@functools.lru_cache(maxsize=256)
def _render_cached(chart, release, namespace, values_files, set_items, kube_version, show_only,
                   set_strings=(), helm_name="helm"):
    helm = tools.require(helm_name)
    cmd = [helm, "template", release, str(chart), "--namespace", namespace,
           "--kube-version", kube_version]
    for f in values_files:
        cmd += ["-f", str(f)]
    cmd += _set_args(set_items, set_strings)
    for s in show_only:
        cmd += ["--show-only", s]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RenderError(proc.stderr.strip() or proc.stdout.strip())
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    return docs, proc.stdout


def render_raw(values_files=(), set_values=None, *, release="p5", namespace="monitoring",
               kube_version=KUBE_MAX, chart=UMBRELLA, show_only=(), set_strings=None, helm="helm"):
    """Render and return (list of documents, raw YAML text). set_values go to --set-json,
    set_strings ({key: text}) to --set; helm names the binary (tools.require: helm, helm4)."""
    set_items = tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in (set_values or {}).items()))
    docs, text = _render_cached(Path(chart), release, namespace,
                                tuple(str(f) for f in values_files), set_items,
                                kube_version, tuple(show_only),
                                tuple(sorted((set_strings or {}).items())), helm)
    return copy.deepcopy(docs), text


def render(values_files=(), set_values=None, **kw):
    """Render the chart and return a Manifests index of its objects."""
    docs, _ = render_raw(values_files, set_values, **kw)
    return Manifests(docs)


def render_error(values_files=(), set_values=None, **kw):
    """Helm's message for a render that must fail; fails the test if it renders."""
    try:
        render_raw(values_files, set_values, **kw)
    except RenderError as err:
        return str(err)
    import pytest
    pytest.fail(f"rendered without error: values {list(values_files)} {set_values}", pytrace=False)


# A probe template: a define's output as a document of its own, for --show-only.
NOTES_PROBE = ("zz-notes.yaml", 'notes: |\n{{ include "phase5-monitoring.notes" . | indent 2 }}\n')


def umbrella_copy(root, *probes):
    """A copy of the umbrella chart in root with probe templates ((file name, text) pairs) added;
    each probe renders a define's output as a document (see NOTES_PROBE)."""
    chart = Path(root) / "phase5-monitoring"
    shutil.copytree(UMBRELLA, chart)
    for name, text in probes:
        (chart / "templates" / name).write_text(text)
    return chart


def notes(chart, values_files=(), set_values=None):
    """The NOTES text of a render of umbrella_copy(..., NOTES_PROBE)."""
    docs, _ = render_raw(values_files, set_values, chart=chart, show_only=(f"templates/{NOTES_PROBE[0]}",))
    return docs[0]["notes"]
