"""e2e tier (the real prometheus binary, no cluster): which Services the rendered Phase 5 scrape
jobs keep, and in which job, decided by the real Prometheus from Service metadata - for the
current chart and for the previous released chart (ci/releases/), so that an upgrade from the
name lists keeps every previously scraped Service scraped.

What is swapped: each job's `kubernetes_sd_configs` (role endpointslice) becomes a `file_sd_configs`
whose target groups carry the labels the endpointslice role gives a Service's endpoint
(`__meta_kubernetes_namespace`, `__meta_kubernetes_service_name`,
`__meta_kubernetes_service_label_<name>` / `_labelpresent_`, `..._annotation_<name>` /
`_annotationpresent_`, `__meta_kubernetes_pod_name`, `__address__` on 127.0.0.1); the
relabel_configs run unchanged. Each job is renamed `<chart>/<job>` so that both charts' jobs
run in one Prometheus. The same relabelling against a real API server is proven by
tests/test_e2e_pipeline.py (test_a_service_created_later_is_onboarded_by_its_labels_alone)."""
import json
import re
import time
import urllib.request

import pytest
import yaml

from harness import paths, tools
from harness.ports import free_port
from harness.process import Process
from harness.render import render

pytestmark = pytest.mark.e2e

JOBS = ("phase5-services", "phase5-exporters")
# (namespace, Service name, labels, annotated prometheus.io/scrape: "true")
PART_OF = {"app.kubernetes.io/part-of": "phase5"}
EXPORTER = {**PART_OF, "app.kubernetes.io/component": "exporter"}
SERVICES = [
    ("phase5-prod", "backend", {}, True),                      # named in the default list, no labels
    ("phase5-prod", "frontend", PART_OF, True),                # named and labelled
    ("phase5-prod", "postgres-exporter", {}, True),            # named in the default exporters
    ("phase5-prod", "kafka-exporter", PART_OF, True),          # named exporter, labelled as a service
    ("phase5-prod", "billing", PART_OF, True),                 # labels only: new in 0.6
    ("phase5-web", "billing-api", {}, True),                   # named in the custom list only
    ("phase5-prod", "pg", {}, True),                           # named exporter in the custom list only
    ("phase5-prod", "cache-exporter", EXPORTER, True),         # labelled exporter
    ("phase5-prod", "docs", PART_OF, False),                   # labelled, not annotated
    ("phase5-prod", "sidecar", {}, True),                      # annotated, neither labelled nor named
    ("default", "backend", PART_OF, True),                     # outside the Phase 5 namespaces
    ("phase5-prod", "other-team", {"app.kubernetes.io/part-of": "phase6"}, True),   # another value
]
CUSTOM_LISTS = {"prometheus.phase5.services": ["backend", "billing-api"], "prometheus.phase5.exporters": ["pg"]}


def _sanitize(key):
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


def _target_groups(port):
    groups = []
    for i, (ns, name, labels, annotated) in enumerate(SERVICES):
        meta = {"__meta_kubernetes_namespace": ns, "__meta_kubernetes_service_name": name,
                "__meta_kubernetes_pod_name": f"{name}-{i}", "__meta_kubernetes_endpointslice_port_name": "http-metrics"}
        for k, v in labels.items():
            meta[f"__meta_kubernetes_service_label_{_sanitize(k)}"] = v
            meta[f"__meta_kubernetes_service_labelpresent_{_sanitize(k)}"] = "true"
        if annotated:
            meta["__meta_kubernetes_service_annotation_prometheus_io_scrape"] = "true"
            meta["__meta_kubernetes_service_annotationpresent_prometheus_io_scrape"] = "true"
        groups.append({"targets": [f"127.0.0.{i + 2}:{port}"], "labels": meta})
    return groups


def _phase5_jobs(objs, tag, sd_file):
    config = yaml.safe_load(objs.get("ConfigMap", "p5-prometheus")["data"]["prometheus.yml"])
    out = []
    for job in config["scrape_configs"]:
        if job["job_name"] in JOBS:
            assert [sd["role"] for sd in job.pop("kubernetes_sd_configs")] == ["endpointslice"], job
            out.append({**job, "job_name": f"{tag}/{job['job_name']}", "scrape_interval": "1h",
                        "file_sd_configs": [{"files": [str(sd_file)]}]})
    return out


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """{(chart, values case): {(namespace, service): {job}}}: the targets the real Prometheus
    keeps, for the previous release and the working tree, with the default values and with
    custom name lists (the 0.5.x way of naming Services)."""
    from test_unit_upgrade import previous_release
    exe = tools.require("prometheus")
    tmp = tmp_path_factory.mktemp("discovery")
    sd_file = tmp / "services.json"
    sd_file.write_text(json.dumps(_target_groups(free_port())))   # a port nothing listens on
    charts = {"previous": previous_release(), "current": None}
    cases = {"defaults": {}, "custom-lists": CUSTOM_LISTS}
    jobs = []
    for chart, path in charts.items():
        for case, values in cases.items():
            objs = render((), values, **({"chart": path} if path else {}))
            jobs += _phase5_jobs(objs, f"{chart}:{case}", sd_file)
    assert len(jobs) == len(charts) * len(cases) * len(JOBS), [j["job_name"] for j in jobs]
    (tmp / "prometheus.yml").write_text(yaml.safe_dump({"global": {"scrape_interval": "1h"}, "scrape_configs": jobs}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = Process("prometheus", [exe, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
                                  f"--web.listen-address=127.0.0.1:{port}"], tmp / "prometheus.log", f"{url}/-/ready").start()
    try:
        deadline = time.monotonic() + 30
        while True:
            with urllib.request.urlopen(f"{url}/api/v1/targets?state=any", timeout=10) as r:
                data = json.loads(r.read())["data"]
            seen = len(data["activeTargets"]) + len(data["droppedTargets"])
            if seen >= len(jobs) * len(SERVICES) or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert seen == len(jobs) * len(SERVICES), f"Prometheus discovered {seen} of {len(jobs) * len(SERVICES)} targets"
    finally:
        proc.stop()
    out = {(c, v): {} for c in charts for v in cases}
    for t in data["activeTargets"]:
        tag, job = t["scrapePool"].split("/")
        chart, case = tag.split(":")
        out[(chart, case)].setdefault((t["labels"]["namespace"], t["labels"]["service"]), set()).add(job)
    return out


@pytest.mark.parametrize("case", ["defaults", "custom-lists"])
def test_upgrade_keeps_every_previously_scraped_service_in_its_job(kept, case):
    old, new = kept[("previous", case)], kept[("current", case)]
    assert old, f"the previous release kept nothing ({case}): the test's Services do not exercise it"
    lost = {svc: sorted(jobs - new.get(svc, set())) for svc, jobs in old.items() if jobs - new.get(svc, set())}
    assert not lost, f"{case}: scraped before the upgrade, not after (service -> jobs lost): {lost}"
    moved = {svc: (sorted(old[svc]), sorted(new[svc])) for svc in old if new.get(svc) != old[svc]}
    assert not moved, f"{case}: a Service changed job on upgrade: {moved}"


def test_current_chart_keeps_services_by_labels_and_by_the_deprecated_names(kept):
    want = {
        ("phase5-prod", "backend"): {"phase5-services"},
        ("phase5-prod", "frontend"): {"phase5-services"},
        ("phase5-prod", "postgres-exporter"): {"phase5-exporters"},
        ("phase5-prod", "kafka-exporter"): {"phase5-exporters"},
        ("phase5-prod", "billing"): {"phase5-services"},
        ("phase5-prod", "cache-exporter"): {"phase5-exporters"},
    }
    assert kept[("current", "defaults")] == want
    custom = {**{k: v for k, v in want.items() if k not in {("phase5-prod", "postgres-exporter")}},
              ("phase5-web", "billing-api"): {"phase5-services"},
              ("phase5-prod", "pg"): {"phase5-exporters"},
              # kafka-exporter is no longer a named exporter: its part-of label makes it a service
              ("phase5-prod", "kafka-exporter"): {"phase5-services"}}
    # backend: named in the custom list as well as unlabelled, so still kept
    assert kept[("current", "custom-lists")] == custom
