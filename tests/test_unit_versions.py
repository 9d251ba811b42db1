"""Unit tier: the version an image runs in a cluster is the version the tests prove.

The conformance and e2e tiers run upstream binaries built from tools.versions (promtool,
prometheus, amtool, alertmanager, jaeger, node_exporter, and thanos once it is pinned there), and
the e2e tier holds its kube-state-metrics stand-in to the metrics kube-state-metrics documents for
one release (harness/ksm.py). Each of those must be the release of the image the chart renders:
otherwise the tests prove a config against a binary the cluster never runs. Bump both sides together.
"""
import re

import pytest

from harness import ksm, tools
from harness.manifests import containers
from harness.render import render

pytestmark = pytest.mark.unit


def same(version):
    """Modules tagged like their images (v0.35.0 -> v0.35.0)."""
    return version


def prometheus_release(version):
    """Prometheus 3.x is tagged v0.3MM.P as a Go module (v0.316.0 is Prometheus v3.16.0)."""
    m = re.fullmatch(r"v0\.3(\d\d)\.(\d+)", version)
    assert m, f"{version}: not a Prometheus 3.x module version (v0.3MM.P)"
    return f"v3.{int(m.group(1))}.{m.group(2)}"


def jaeger_v2_release(version):
    """Jaeger releases the v2 binary under two tags, v1.(63+N).P and v2.N.P (1.70.0/2.7.0,
    1.73.0/2.10.0: jaegertracing/jaeger's release PRs); the image is tagged 2.N.P, no `v`."""
    m = re.fullmatch(r"v1\.(\d+)\.(\d+)", version)
    assert m and int(m.group(1)) >= 63, f"{version}: not a Jaeger v1.x tag of the v2 binary (v1.63.0 or later)"
    return f"2.{int(m.group(1)) - 63}.{m.group(2)}"


# tool in tools.versions -> (image name the chart renders, the image tag that tool version is)
RELEASE_OF = {
    "prometheus": ("prometheus", prometheus_release),
    "promtool": ("prometheus", prometheus_release),
    "alertmanager": ("alertmanager", same),
    "amtool": ("alertmanager", same),
    "jaeger": ("jaeger", jaeger_v2_release),
    "node_exporter": ("node-exporter", same),
    "thanos": ("thanos", same),
}


def rendered_tags():
    """{image name: {tags}} of every container the chart can run: the defaults, the Alloy
    collector, the Thanos sidecar and Thanos Query (the set Chart.yaml's artifacthub.io/images lists)."""
    out = {}
    for overrides in ({}, {"promtail.collector": "alloy", "prometheus.thanos.sidecar.enabled": True,
                           "thanos.enabled": True, "grafana.datasources.prometheus.thanosQuery": True}):
        for obj in render(set_values=overrides):
            for c in containers(obj):
                ref = c["image"].split("@", 1)[0]
                name, _, tag = ref.rpartition("/")[2].partition(":")
                out.setdefault(name, set()).add(tag)
    return out


@pytest.mark.parametrize("tool", sorted(set(RELEASE_OF) & set(tools.pinned())))
def test_image_runs_the_release_the_tests_build(tool):
    image, release = RELEASE_OF[tool]
    pinned = tools.pinned()[tool][1]
    tags = rendered_tags().get(image)
    assert tags, f"the chart renders no {image} image"
    assert tags == {release(pinned)}, (
        f"{image} image tag(s) {sorted(tags)}, but tools.versions pins {tool} {pinned} (= {release(pinned)}): "
        f"the tests prove a {tool} the cluster does not run; bump the image and the tool together")


def test_every_image_with_a_pinned_binary_is_compared():
    """A tool in tools.versions named like an image the chart runs (node_exporter and
    node-exporter alike) is in RELEASE_OF: pinning thanos there brings its sidecar image in."""
    images = set(rendered_tags())
    named_like_an_image = {t for t in tools.pinned() if t.replace("_", "-") in images}
    assert named_like_an_image <= set(RELEASE_OF), \
        f"pinned tools with an image of the same name but no version check: {sorted(named_like_an_image - set(RELEASE_OF))}"
    unknown = {image for image, _ in RELEASE_OF.values()} - images
    assert not unknown, f"RELEASE_OF names images the chart does not run: {sorted(unknown)}"


def test_kube_state_metrics_image_is_the_release_its_stand_in_documents():
    """The e2e tier derives kube-state-metrics' series from the API server and holds them to the
    metrics kube-state-metrics documents for harness/ksm.py's VERSION: that is the release the chart
    must run, or the series a rule reads may not exist in the cluster."""
    tags = rendered_tags().get("kube-state-metrics")
    assert tags == {ksm.VERSION}, (
        f"kube-state-metrics image tag(s) {sorted(tags or [])}, the documented-metrics table is {ksm.VERSION}: "
        f"update harness/ksm.py from that release's docs/metrics/ (names, types, labels) with the image")


@pytest.mark.parametrize("version, release", [("v0.316.0", "v3.16.0"), ("v0.302.1", "v3.2.1")])
def test_prometheus_module_version_reads_as_its_release(version, release):
    assert prometheus_release(version) == release


@pytest.mark.parametrize("version, release", [("v1.76.0", "2.13.0"), ("v1.70.0", "2.7.0"), ("v1.73.2", "2.10.2")])
def test_jaeger_v1_tag_reads_as_its_v2_release(version, release):
    assert jaeger_v2_release(version) == release


@pytest.mark.parametrize("convert, version", [(prometheus_release, "v3.16.0"), (prometheus_release, "v0.55.0"),
                                              (jaeger_v2_release, "v2.13.0"), (jaeger_v2_release, "v1.62.0")])
def test_a_version_of_another_scheme_is_refused(convert, version):
    with pytest.raises(AssertionError):
        convert(version)
