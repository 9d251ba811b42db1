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

    calls = iter(range(1_000_000))

    def write(template, files):
        (chart / "templates" / "t.yaml").write_text(textwrap.dedent(template))
        for name, text in (files or {}).items():
            (chart / "templates" / name).write_text(text)

    def run(template, values=None, release="rel", files=None):
        write(template, files)
        # A value of its own per call: renders are cached by chart path and values, and the
        # template file changes between the calls of one test.
        docs, _ = render_raw(chart=chart, release=release, set_values={**(values or {}), "call": next(calls)})
        return docs

    def error(template, values=None, release="rel", files=None):
        """Helm's message for a template that must fail to render (harness.render.render_error)."""
        write(template, files)
        return render_error(chart=chart, release=release, set_values={**(values or {}), "call": next(calls)})

    run.error = error
    run.chart = chart
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
    ('include "common.port" (dict "component" "loki")', "common.port: expects (list"),
    ('include "common.port" (list "lokii" "web")', "common.port: no component \"lokii\" in common.ports"),
    ('include "common.port" (list "loki" "http")', "component \"loki\" has no port \"http\" in common.ports (it has: grpc, web)"),
    ('include "common.podSpecBase" (dict "context" .)', "common.podSpecBase: missing argument \"tokenMounted\""),
    ('include "common.podSpecBase" (dict "context" . "tokenMounted" "no")',
     "common.podSpecBase: argument \"tokenMounted\" must be true or false, got string"),
    ('include "common.healthPath" "loki"', "common.healthPath: expects (list \"<component>\" \"<path name>\")"),
    ('include "common.healthPath" (list "lokii" "ready")', "common.healthPath: no component \"lokii\" in common.healthPaths"),
    ('include "common.healthPath" (list "loki" "live")',
     "common.healthPath: component \"loki\" has no path \"live\" in common.healthPaths (it has: ready)"),
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


# ------------------------------------------------------------- shared object templates
def fails(scratch, template, values=None):
    """Helm's message for a scratch render that must fail."""
    return scratch.error(template, values=values)


@pytest.mark.parametrize("call,message", [
    ('include "common.serviceAccount" (dict "context" .)', 'common.serviceAccount: missing argument "component"'),
    ('include "common.serviceAccount" (dict "context" . "component" "x")', "scratch.serviceAccount must be a dict"),
    ('include "common.ingress" (dict "context" . "component" "x")', 'common.ingress: missing argument "port"'),
    ('include "common.ingress" (dict "context" . "component" "x" "port" "web")', "scratch.ingress must be a dict"),
    ('include "common.podMetadata" (dict "component" "x")', 'common.podMetadata: missing argument "context"'),
    ('include "common.podMetadata" (dict "context" . "component" "x" "annotations" "a=b")',
     'argument "annotations" must be a dict'),
    ('include "common.podScheduling" .', "common.podScheduling: missing argument \"context\""),
    ('include "common.volumeClaimTemplates" (dict "context" .)', 'common.volumeClaimTemplates: missing argument "persistence"'),
    ('include "common.volumeClaimTemplates" (dict "context" . "persistence" "on")', 'must be a dict (scratch.persistence)'),
    ('include "common.headlessName" .Values', "common.headlessName: expects the chart's root context"),
    ('include "common.headlessService" (dict "context" . "component" "x")', 'missing argument "ports"'),
    ('include "common.headlessService" (dict "context" . "component" "x" "ports" list)', "must be a non-empty list"),
    ('include "common.headlessService" (dict "context" . "component" "x" "ports" (list (dict "name" "web")))',
     "ports[0] needs a name and a port"),
    ('include "common.hostAccessAdmitted" (dict "context" .)', 'common.hostAccessAdmitted: missing argument "needs"'),
])
def test_object_template_called_wrongly_fails_with_message(scratch, call, message):
    msg = fails(scratch, f"{{{{ {call} }}}}\n")
    assert message in msg, msg


def test_host_access_check_renders_nothing_without_a_cluster(scratch):
    """lookup is empty under `helm template`: the Pod Security check passes silently there (the
    cluster tier proves the refusal, test_namespace_forbidding_host_access_refuses_...)."""
    tpl = '{{ include "common.hostAccessAdmitted" (dict "context" . "needs" "hostPath volumes") }}x: 1\n'
    assert scratch(tpl) == [{"x": 1}]


def test_service_account(scratch):
    tpl = '{{ include "common.serviceAccount" (dict "context" . "component" "web") }}\n'
    (sa,) = scratch(tpl, values={"serviceAccount": {"create": True, "name": "", "annotations": {"a": "b"}}})
    assert sa["kind"] == "ServiceAccount" and sa["metadata"]["name"] == "rel-scratch", sa
    assert sa["metadata"]["labels"]["app.kubernetes.io/component"] == "web"
    assert sa["metadata"]["annotations"] == {"a": "b"}
    assert sa["automountServiceAccountToken"] is False
    assert scratch(tpl, values={"serviceAccount": {"create": False}}) == [], "create: false renders no ServiceAccount"


INGRESS = '{{ include "common.ingress" (dict "context" . "component" "web" "port" .Values.port) }}\n'


def test_ingress(scratch):
    (ing,) = scratch(INGRESS, values={"port": "http-web", "ingress": {
        "enabled": True, "className": "nginx", "hosts": ["a.example.org", "b.example.org"], "path": "/x",
        "pathType": "Exact", "annotations": {"k": "v"},
        "tls": [{"secretName": "one"}, {"secretName": "two", "hosts": ["b.example.org"]}, {"hosts": ["c.example.org"]}]}})
    assert ing["kind"] == "Ingress" and ing["metadata"]["name"] == "rel-scratch"
    assert ing["metadata"]["annotations"] == {"k": "v"}
    spec = ing["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"secretName": "one", "hosts": ["a.example.org", "b.example.org"]},
                           {"secretName": "two", "hosts": ["b.example.org"]},
                           {"hosts": ["c.example.org"]}], "tls hosts default to ingress.hosts; secretName is optional"
    assert [r["host"] for r in spec["rules"]] == ["a.example.org", "b.example.org"]
    (path,) = spec["rules"][0]["http"]["paths"]
    assert path == {"path": "/x", "pathType": "Exact",
                    "backend": {"service": {"name": "rel-scratch", "port": {"name": "http-web"}}}}
    (ing,) = scratch(INGRESS, values={"port": 8080, "ingress": {"enabled": True, "hosts": ["a.example.org"]}})
    assert ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] == {"number": 8080}
    assert scratch(INGRESS, values={"port": "w", "ingress": {"enabled": False}}) == []


@pytest.mark.parametrize("ingress,message", [
    ({"enabled": True, "hosts": []}, "scratch.ingress.enabled: set scratch.ingress.hosts (at least one host name)"),
    ({"enabled": True}, "scratch.ingress.enabled: set scratch.ingress.hosts (at least one host name)"),
])
def test_ingress_validation_names_the_value(scratch, ingress, message):
    msg = fails(scratch, INGRESS, values={"port": "w", "ingress": ingress})
    assert message in msg, msg


def test_pod_metadata(scratch):
    tpl = """\
        m:
          {{- include "common.podMetadata" (dict "context" . "component" "web" "annotations" (dict "checksum/config" "abc")) | nindent 2 }}
        bare:
          {{- include "common.podMetadata" (dict "context" . "component" "web") | nindent 2 }}
    """
    (doc,) = scratch(tpl, values={"podLabels": {"team": "sre"}, "podAnnotations": {"note": "x"}})
    assert doc["m"]["labels"]["app.kubernetes.io/component"] == "web"
    assert doc["m"]["labels"]["team"] == "sre"
    assert doc["m"]["annotations"] == {"checksum/config": "abc", "note": "x"}
    assert doc["bare"]["annotations"] == {"note": "x"}
    (doc,) = scratch(tpl)
    assert "annotations" not in doc["bare"], "no annotations at all: the key is left out"
    assert doc["m"]["annotations"] == {"checksum/config": "abc"}
    assert set(doc["bare"]["labels"]) == {
        "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
        "app.kubernetes.io/component", "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by", "helm.sh/chart"}


def test_pod_scheduling(scratch):
    tpl = """\
        spec:
          containers: []
          {{- include "common.podScheduling" (dict "context" .) | nindent 2 }}
    """
    settings = {
        "nodeSelector": {"disk": "ssd"},
        "tolerations": [{"key": "k", "operator": "Exists"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}],
    }
    (doc,) = scratch(tpl, values=settings)
    assert doc["spec"] == {"containers": [], **settings}
    (doc,) = scratch(tpl, values={"nodeSelector": {}, "tolerations": [], "affinity": {}})
    assert doc["spec"] == {"containers": []}, "empty or unset settings render nothing"


VCT = """\
    spec:
      serviceName: x
      {{- include "common.volumeClaimTemplates" (dict "context" . "persistence" .Values.persistence) | nindent 2 }}
"""


def test_volume_claim_templates(scratch):
    p = {"enabled": True, "size": "5Gi", "accessModes": ["ReadWriteOnce"], "annotations": {"a": "b"}}
    (doc,) = scratch(VCT, values={"persistence": p, "global": {"storageClass": "fast"}})
    assert doc["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    (vct,) = doc["spec"]["volumeClaimTemplates"]
    assert vct == {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "storage", "annotations": {"a": "b"},
                     # selector labels only: the template is immutable, version labels would break upgrades
                     "labels": {"app.kubernetes.io/name": "scratch", "app.kubernetes.io/instance": "rel"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                 "resources": {"requests": {"storage": "5Gi"}}},
    }
    (doc,) = scratch(VCT, values={"persistence": {**p, "storageClass": "-"}})
    assert doc["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == ""
    (doc,) = scratch(VCT, values={"persistence": {**p, "annotations": {}}})
    vct = doc["spec"]["volumeClaimTemplates"][0]
    assert "storageClassName" not in vct["spec"] and "annotations" not in vct["metadata"]
    for off in ({"enabled": False}, {"existingClaim": "mine"}):
        (doc,) = scratch(VCT, values={"persistence": {**p, **off}})
        assert doc["spec"] == {"serviceName": "x"}, f"{off}: no claim template"


@pytest.mark.parametrize("persistence,message", [
    ({"enabled": True, "accessModes": ["ReadWriteOnce"]}, "scratch.persistence.size is required"),
    ({"enabled": True, "size": "1Gi", "accessModes": []}, "scratch.persistence.accessModes: list at least one"),
])
def test_volume_claim_templates_fail_naming_the_value(scratch, persistence, message):
    msg = fails(scratch, VCT, values={"persistence": persistence})
    assert message in msg, msg


def test_headless_service(scratch):
    tpl = """\
        {{ include "common.headlessService" (dict "context" . "component" "web" "ports"
             (list (dict "name" "http-web" "port" 3100) (dict "name" "udp-gossip" "port" 9094 "protocol" "UDP"))) }}
        ---
        name: {{ include "common.headlessName" . }}
    """
    svc, name = scratch(tpl, release="r" * 53)
    assert svc["kind"] == "Service" and svc["metadata"]["name"] == name["name"]
    assert name["name"] == ("r" * 53 + "-scratch-headless")[:63].rstrip("-") and len(name["name"]) <= 63
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
    assert svc["spec"]["selector"] == {"app.kubernetes.io/name": "scratch", "app.kubernetes.io/instance": "r" * 53}
    assert svc["spec"]["ports"] == [
        {"name": "http-web", "port": 3100, "targetPort": "http-web", "protocol": "TCP"},
        {"name": "udp-gossip", "port": 9094, "targetPort": "udp-gossip", "protocol": "UDP"}]
    assert svc["metadata"]["labels"]["app.kubernetes.io/component"] == "web"


# ------------------------------------------------------------- one house plan
COMMON = paths.SUBCHARTS_DIR / "common"
COMPONENT_CHARTS = sorted(p for p in paths.SUBCHARTS_DIR.iterdir() if (p / "Chart.yaml").exists() and p.name != "common")


def test_readme_shows_every_helper():
    import re
    defined = set()
    for f in (COMMON / "templates").glob("*.tpl"):
        defined |= set(re.findall(r'define "(common\.[\w.]+)"', f.read_text()))
    readme = (COMMON / "README.md").read_text()
    missing = sorted(d for d in defined if f"`{d}`" not in readme)
    assert defined and not missing, f"common/README.md does not show {missing}"


# What only common may render: a subchart template that spells one out again is a copy.
SHARED_IN_COMMON = {
    "\nkind: ServiceAccount\n": "common.serviceAccount",  # at the top level (RoleBinding subjects are not copies)
    "\nkind: Ingress\n": "common.ingress",
    "clusterIP: None": "common.headlessService",
    "volumeClaimTemplates:": "common.volumeClaimTemplates",
    "nodeSelector:": "common.podScheduling",
    "tolerations:": "common.podScheduling",
    "affinity:": "common.podScheduling",
    "topologySpreadConstraints:": "common.podScheduling",
    ".Values.podLabels": "common.podMetadata",
    ".Values.podAnnotations": "common.podMetadata",
    "-headless": "common.headlessName",
    "automountServiceAccountToken:": "common.podSpecBase",
    "priorityClassName": "common.podSpecBase",
    '"common.imagePullSecrets"': "common.podSpecBase",
    '"common.podSecurityContext"': "common.podSpecBase",
}


@pytest.mark.parametrize("chart", COMPONENT_CHARTS, ids=lambda p: p.name)
def test_subchart_keeps_only_what_is_its_own(chart):
    copies = [f"{f.name}: {text!r} (use {helper})"
              for f in sorted((chart / "templates").iterdir())
              for text, helper in SHARED_IN_COMMON.items() if text in f.read_text()]
    assert not copies, "templates copied from common:\n" + "\n".join(copies)


@pytest.mark.parametrize("chart", COMPONENT_CHARTS, ids=lambda p: p.name)
def test_component_label_is_written_once_per_chart(chart):
    """The chart's component is defined in its _helpers.tpl (<chart>.component); every other
    template asks for it, so changing the label is a one-line change."""
    import re
    helpers = (chart / "templates" / "_helpers.tpl").read_text()
    m = re.search(r'define "%s\.component" -\}\}([\w-]+)\{\{' % re.escape(chart.name), helpers)
    assert m, f"{chart.name}: _helpers.tpl defines no {chart.name}.component"
    literal = f'"component" "{m.group(1)}"'
    again = [f.name for f in (chart / "templates").iterdir() if f.name != "_helpers.tpl" and literal in f.read_text()]
    assert not again, f"{chart.name}: {literal} written again in {again}: include \"{chart.name}.labels\" or \"{chart.name}.component\""


def test_every_workload_takes_the_shared_pod_settings():
    """Scheduling (with topologySpreadConstraints), podLabels and podAnnotations, and the pod-spec
    base (priorityClassName, imagePullSecrets with the global ones, the podSecurityContext
    override) are one helper each: every component's workload honours all of them, none is left
    with a subset."""
    from harness.manifests import pod_spec
    from harness.render import render
    spread = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}]
    settings = {"nodeSelector": {"pool": "monitoring"}, "tolerations": [{"key": "dedicated", "operator": "Exists"}],
                "topologySpreadConstraints": spread, "podLabels": {"extra": "yes"}, "podAnnotations": {"note": "yes"},
                "priorityClassName": "monitoring-high", "imagePullSecrets": ["own"],
                "podSecurityContext": {"fsGroup": 4242}}
    values = {c: settings for c in paths.COMPONENTS}
    # Thanos Query (off by default) with the two values its switch needs.
    values["thanos"] = {**settings, "enabled": True, "objstoreSecret": "bucket",
                        "storeGateway": {"enabled": True}, "compactor": {"enabled": True}}
    values["prometheus"] = {**settings, "thanos": {"sidecar": {"enabled": True}}}
    values["grafana"] = {**settings, "datasources": {"prometheus": {"thanosQuery": True}}}
    values["global"] = {"imagePullSecrets": ["shared"]}
    workloads = render(set_values=values).workloads()
    # A second workload of a subchart (a row with "chart": thanos-store) runs as that subchart's account.
    rows = {r["key"]: r for r in paths.component_table()}
    account = {r["name"]: rows[r.get("chart", r["key"])]["name"] for r in rows.values()}
    seen, wrong = set(), []
    for w in workloads:
        name = w["metadata"]["labels"]["app.kubernetes.io/name"]
        if name not in paths.COMPONENT_NAMES.values():
            continue  # helm test pods
        seen.add(name)
        spec, meta = pod_spec(w), w["spec"]["template"]["metadata"]
        got = {"topologySpreadConstraints": spec.get("topologySpreadConstraints"),
               "nodeSelector pool": (spec.get("nodeSelector") or {}).get("pool"),  # merged with a chart's default
               "extra label": meta["labels"].get("extra"), "note annotation": meta.get("annotations", {}).get("note"),
               "priorityClassName": spec.get("priorityClassName"),
               "imagePullSecrets": [s["name"] for s in spec.get("imagePullSecrets", [])],
               "fsGroup": spec.get("securityContext", {}).get("fsGroup"),
               "serviceAccountName": spec.get("serviceAccountName")}
        want = {"topologySpreadConstraints": spread, "nodeSelector pool": "monitoring",
                "extra label": "yes", "note annotation": "yes", "priorityClassName": "monitoring-high",
                "imagePullSecrets": ["shared", "own"], "fsGroup": 4242, "serviceAccountName": f"p5-{account[name]}"}
        if got != want or {"key": "dedicated", "operator": "Exists"} not in spec.get("tolerations", []):
            wrong.append(f"{w['kind']}/{w['metadata']['name']}: {got}, tolerations={spec.get('tolerations')}")
    names = set(paths.COMPONENT_NAMES.values())
    assert seen == names, f"components without a workload: {names - seen}"
    assert not wrong, "workloads that ignore a shared pod setting:\n" + "\n".join(wrong)


def test_port_reads_the_one_port_table(scratch):
    doc = scratch('a: {{ include "common.port" (list "loki" "web") }}\n'
                  'b: {{ include "common.port" (list "jaeger" "otlpGrpc") }}\n')[0]
    assert doc == {"a": 3100, "b": 4317}


def test_health_path_reads_the_one_path_table(scratch):
    doc = scratch('a: {{ include "common.healthPath" (list "loki" "ready") }}\n'
                  'b: {{ include "common.healthPath" (list "kube-state-metrics" "live") }}\n')[0]
    assert doc == {"a": "/ready", "b": "/livez"}


def test_tpl_file_and_memo_render_once_and_fail_naming_the_file(scratch):
    """common.tplFile runs a file through tpl and common.memo a template, each once per render:
    a second call returns the first result even when what it reads has changed since."""
    (scratch.chart / "files").mkdir()
    (scratch.chart / "files" / "x.txt").write_text("v{{ .Values.n }}")
    doc = scratch("""\
        {{- $_ := set .Values "n" 1 }}
        a: {{ include "common.tplFile" (dict "context" . "file" "files/x.txt") }}
        m: {{ include "common.memo" (dict "context" . "template" "scratch.n") }}
        {{- $_ := set .Values "n" 2 }}
        b: {{ include "common.tplFile" (dict "context" . "file" "files/x.txt") }}
        n: {{ include "common.memo" (dict "context" . "template" "scratch.n") }}
        fresh: {{ include "scratch.n" . }}
    """, files={"_n.tpl": '{{- define "scratch.n" -}}n{{ .Values.n }}{{- end -}}'})[0]
    assert doc == {"a": "v1", "m": "n1", "b": "v1", "n": "n1", "fresh": "n2"}, doc
    msg = scratch.error('a: {{ include "common.tplFile" (dict "context" . "file" "files/none.txt") }}\n')
    assert "common.tplFile: files/none.txt is missing or empty in chart scratch" in msg, msg


RULES = """\
groups:
  - name: one
    interval: 1m
    rules:
      - alert: Kept
        expr: up{job=~"${jobs}"} < ${threshold} and count(x) < ${jobsCount}
        for: ${for}
        annotations:
          runbook_url: ${runbookBaseUrl}/Kept.md
      - alert: Disabled
        expr: vector(${threshold})
      - alert: NeedsSwitch
        requires: switches.on
        expr: vector(1)
      - alert: NeedsOffSwitch
        requires: switches.off
        expr: vector(1)
  - name: emptied
    rules:
      - alert: Disabled
        expr: vector(${threshold})
"""
RULE_VALUES = {"switches": {"on": True, "off": False},
               "alerts": {"Kept": {"enabled": True, "threshold": 0.5, "for": "5m", "jobs": ["a.b", "c"]},
                          "Disabled": {"enabled": False, "threshold": 1},
                          "NeedsSwitch": {"enabled": True}, "NeedsOffSwitch": {"enabled": True}}}
RULE_CALL = ('{{- include "common.ruleFile" (dict "context" . "file" "files/r.yaml" "settings" .Values.alerts '
             '"settingsPath" "x.alerts" "globals" (dict "runbookBaseUrl" "https://rb" "threshold" 9)%s) }}\n')


def test_rule_file_fills_placeholders_and_leaves_out_what_is_off(scratch):
    """common.ruleFile (Prometheus' alerts and Loki's ruler): settings and globals fill the
    placeholders (a list as a regex of its items and its count; an alert's own value before a
    global one), disabled alerts and alerts whose `requires` is off go, and so does a group left
    empty; the transform template rewrites a rule before the substitution."""
    (scratch.chart / "files").mkdir()
    (scratch.chart / "files" / "r.yaml").write_text(RULES)
    doc = scratch(RULE_CALL % "", values=RULE_VALUES)[0]
    assert doc == {"groups": [{"name": "one", "interval": "1m", "rules": [
        {"alert": "Kept", "expr": 'up{job=~"a\\.b|c"} < 0.5 and count(x) < 2', "for": "5m",
         "annotations": {"runbook_url": "https://rb/Kept.md"}},
        {"alert": "NeedsSwitch", "expr": "vector(1)"}]}]}, doc
    transform = '{{- define "scratch.rule" -}}{{ toYaml (set .rule "labels" (dict "by" "transform")) }}{{- end -}}'
    doc = scratch(RULE_CALL % ' "transform" "scratch.rule"', values=RULE_VALUES, files={"_r.tpl": transform})[0]
    assert [r.get("labels") for r in doc["groups"][0]["rules"]] == [{"by": "transform"}] * 2, doc
    off = {**RULE_VALUES, "alerts": {**RULE_VALUES["alerts"], "Kept": {**RULE_VALUES["alerts"]["Kept"], "enabled": False},
                                     "NeedsSwitch": {"enabled": False}}}
    assert scratch(RULE_CALL % "", values=off) == [], "no group left: the helper renders nothing"


@pytest.mark.parametrize("rules,values,message", [
    ("groups: [", RULE_VALUES, "scratch: files/r.yaml does not parse"),
    (RULES.replace("alert: Kept", "alert: Kept2"), RULE_VALUES,
     'scratch: alert "Kept2" in files/r.yaml has no x.alerts.Kept2 section in values'),
    (RULES.replace("${for}", "${fro}"), RULE_VALUES, "scratch: alert Kept keeps an unknown placeholder after substitution"),
    (RULES.replace("requires: switches.on", "requires: switches.onn"), RULE_VALUES,
     'scratch: requires "switches.onn": no such value'),
], ids=["unparsable", "no-settings", "typo-placeholder", "requires-typo"])
def test_rule_file_fails_naming_chart_file_and_alert(scratch, rules, values, message):
    (scratch.chart / "files").mkdir()
    (scratch.chart / "files" / "r.yaml").write_text(rules)
    msg = scratch.error(RULE_CALL % "", values=values)
    assert message in msg, msg
