"""Unit tier: the common library's helpers, driven through a scratch chart that uses them."""
import shutil
import textwrap

import pytest

from harness import paths
from harness.render import render_error, render_raw

pytestmark = pytest.mark.unit


@pytest.fixture
def scratch(tmp_path):
    """A chart depending on the real common library; write templates, then render."""
    chart = tmp_path / "scratch"
    (chart / "templates").mkdir(parents=True)
    shutil.copytree(paths.SUBCHARTS_DIR / "common", chart / "charts" / "common")
    (chart / "Chart.yaml").write_text(textwrap.dedent("""\
        apiVersion: v2
        name: scratch
        version: 1.2.3
        appVersion: "9.9.9"
        dependencies:
          - name: common
            version: 0.1.0
    """))
    (chart / "values.yaml").write_text("image: {repository: org/app, tag: ''}\n")

    def write(template, files):
        (chart / "templates" / "t.yaml").write_text(textwrap.dedent(template))
        for name, text in (files or {}).items():
            (chart / "templates" / name).write_text(text)

    def run(template, values=None, release="rel", files=None):
        write(template, files)
        docs, _ = render_raw(chart=chart, release=release, set_values=values or {})
        return docs

    def error(template, values=None, release="rel", files=None):
        """Helm's message for a template that must fail to render (harness.render.render_error)."""
        write(template, files)
        return render_error(chart=chart, release=release, set_values=values or {})

    run.error = error
    return run


@pytest.mark.parametrize("call,message", [
    ('include "common.labels" .', "common.labels: missing argument \"context\""),
    ('include "common.labels" (dict "context" .)', "common.labels: missing argument \"component\""),
    ('include "common.labels" (dict "context" . "component" "")', "must not be empty"),
    ('include "common.labels" "text"', "common.labels: expects a dict"),
    ('include "common.selectorLabels" (dict "context" .Values)', "must be the chart's root context"),
    ('include "common.image" (dict "context" .)', "common.image: missing argument \"image\""),
    ('include "common.image" (dict "context" . "image" "org/app:1")', "must be a dict"),
    ('include "common.image" (dict "context" . "image" (dict "tag" "1"))', "image.repository is required"),
    ('include "common.fullname" .Values', "common.fullname: expects the chart's root context"),
    ('include "common.resources" (dict "context" . "resources" dict)', "resources.requests must be set"),
    ('include "common.componentFullname" (dict "component" "x")', "missing argument \"context\""),
])
def test_helper_called_wrongly_fails_with_message(scratch, call, message):
    msg = scratch.error(f"a: {{{{ {call} }}}}\n")
    assert message in msg, msg


def test_labels_and_selector_labels(scratch):
    doc = scratch("""\
        labels:
          {{- include "common.labels" (dict "context" . "component" "server") | nindent 2 }}
        selector:
          {{- include "common.selectorLabels" (dict "context" .) | nindent 2 }}
    """, values={"global": {"commonLabels": {"team": "sre"}}})[0]
    assert doc["labels"] == {
        "app.kubernetes.io/name": "scratch",
        "app.kubernetes.io/instance": "rel",
        "app.kubernetes.io/version": "9.9.9",
        "app.kubernetes.io/component": "server",
        "app.kubernetes.io/part-of": "phase5-monitoring",
        "app.kubernetes.io/managed-by": "Helm",
        "helm.sh/chart": "scratch-1.2.3",
        "team": "sre",
    }
    assert doc["selector"] == {"app.kubernetes.io/name": "scratch", "app.kubernetes.io/instance": "rel"}


@pytest.mark.parametrize("image,global_registry,expected", [
    ({"repository": "org/app", "tag": ""}, "", "org/app:9.9.9"),
    ({"repository": "org/app", "tag": "1.0"}, "", "org/app:1.0"),
    ({"registry": "quay.io", "repository": "org/app", "tag": "1.0"}, "", "quay.io/org/app:1.0"),
    ({"registry": "quay.io", "repository": "org/app", "tag": "1.0"}, "mirror.local/", "mirror.local/org/app:1.0"),
    ({"repository": "org/app", "tag": "1.0", "digest": "sha256:" + "a" * 64}, "", "org/app@sha256:" + "a" * 64),
])
def test_image_reference(scratch, image, global_registry, expected):
    doc = scratch('image: {{ include "common.image" (dict "context" . "image" .Values.image) }}\n',
                  values={"image": image, "global": {"imageRegistry": global_registry}})[0]
    assert doc["image"] == expected


def test_fullname_is_63_characters_safe(scratch):
    release = "r" * 53  # the longest release name Helm accepts
    doc = scratch("""\
        full: {{ include "common.fullname" . }}
        other: {{ include "common.componentFullname" (dict "context" . "component" "kube-state-metrics") }}
        edge: {{ include "common.componentFullname" (dict "context" . "component" "123456789-x") }}
    """, release=release)[0]
    assert doc["full"] == release + "-scratch"
    assert doc["other"] == (release + "-kube-state-metrics")[:63] and len(doc["other"]) == 63
    assert doc["edge"] == release + "-123456789", "a cut at a dash must drop the dash"


def test_security_context_defaults_and_override(scratch):
    doc = scratch("""\
        pod: {{ include "common.podSecurityContext" (dict "context" . "override" .Values.p) | fromYaml | toJson }}
        ctr: {{ include "common.containerSecurityContext" (dict "context" . "override" .Values.c) | fromYaml | toJson }}
    """, values={"p": {"runAsUser": 472}, "c": {"readOnlyRootFilesystem": False}})[0]
    assert doc["pod"] == {"runAsNonRoot": True, "runAsUser": 472, "runAsGroup": 65534, "fsGroup": 65534,
                          "seccompProfile": {"type": "RuntimeDefault"}}
    assert doc["ctr"]["capabilities"] == {"drop": ["ALL"]}
    assert doc["ctr"]["allowPrivilegeEscalation"] is False
    assert doc["ctr"]["readOnlyRootFilesystem"] is False


def test_checksum_follows_the_config_template(scratch):
    files = {"cfg.yaml": "cfg: {{ .Values.cfg | quote }}\n"}
    tpl = 'sum: {{ include "common.checksum" (dict "context" . "template" "/cfg.yaml") | quote }}\n'

    def checksum(value):
        docs = scratch(tpl, values={"cfg": value}, files=files)
        return next(d["sum"] for d in docs if "sum" in d)

    a, a2, b = checksum("a"), checksum("a"), checksum("b")
    assert len(a) == 64 and a == a2 and a != b
