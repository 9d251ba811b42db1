"""Unit tier: what Prometheus stores (issue 27). The inventory of the series the chart reads
(harness/series_inventory.py: the rendered rules, alerts, SLO rules and every dashboard query,
parsed as PromQL), the keep-lists generated from it (prometheus/files/keep-lists.yaml) and the
rendered metric_relabel_configs and limits of every scrape job. The e2e tier proves the same
configuration on the real Prometheus (tests/test_e2e_pipeline.py: every rule and panel returns
data; test_e2e_series_kept: a series outside the keep-list is not stored)."""
import re

import pytest
import yaml

from harness import params
from harness import series_inventory as inv
from harness.render import render, render_error

pytestmark = pytest.mark.unit


def _config(values=(), set_values=None):
    cm = render(values, set_values).get("ConfigMap", "p5-prometheus")
    return yaml.safe_load(cm["data"]["prometheus.yml"])


def _jobs(config):
    return {j["job_name"]: j for j in config["scrape_configs"]}


def _stored(job, name, labels=None):
    """Whether `job`'s metric_relabel_configs let a sample of metric `name` (with `labels`)
    through, applying keep/drop/replace/labeldrop as Prometheus does (regexes fully anchored;
    these are plain names and alternations, where Python's re and RE2 agree)."""
    lset = {"__name__": name, **(labels or {})}
    for r in job.get("metric_relabel_configs") or []:
        action = r.get("action", "replace")
        regex = r.get("regex", "(.*)")
        if action == "labeldrop":
            lset = {k: v for k, v in lset.items() if not re.fullmatch(regex, k)}
            continue
        value = r.get("separator", ";").join(lset.get(s, "") for s in r.get("source_labels", []))
        m = re.fullmatch(regex, value)
        if action == "keep" and not m:
            return False
        if action == "drop" and m:
            return False
        if action == "replace" and m:
            lset[r["target_label"]] = m.expand(r.get("replacement", "$1").replace("$", "\\"))
    return True


# ------------------------------------------------------------------------------ the inventory
def test_selectors_carry_the_labels_their_expressions_need():
    sels = inv.selectors('sum by (namespace) (rate(x{a="1"}[5m])) / on (pod) group_left (team) y'
                         ' or label_replace(z, "d", "$1", "src", "(.*)")')
    got = {s.names[0]: s.labels for s in sels}
    assert got == {"x": {"a", "namespace", "pod", "team"}, "y": {"pod", "team"}, "z": {"src"}}, got
    assert [s.job for s in inv.selectors('foo{job="kubelet"} + bar')] == ["kubelet", ""]


def test_the_parser_reads_subqueries_at_and_offset_and_name_matchers():
    """promql_parser finds the selectors inside a subquery, under @ and offset, and in the
    {__name__=~"a|b"} form Phase5MetricsMissing renders; a parse error raises."""
    names = [n for s in inv.selectors(
        'max_over_time(rate(a_total[5m])[1h:1m] @ end()) + b offset 5m @ 1700000000'
        ' + count({__name__=~"c|d", job="x"})') for n in s.names]
    assert names == ["a_total", "b", "c", "d"], names
    with pytest.raises(Exception):
        inv.selectors("sum(rate(x[5m])")


def test_jobs_by_matcher_then_prefix():
    assert inv.job_of("kube_pod_info") == "kube-state-metrics"
    assert inv.job_of("container_cpu_usage_seconds_total") == "cadvisor"
    assert inv.job_of("node_filesystem_avail_bytes") == "node-exporter"
    assert inv.job_of("kubelet_volume_stats_available_bytes") == "kubelet"
    assert inv.job_of("prometheus_config_last_reload_successful") == "monitoring-stack"
    assert inv.job_of("http_requests_total") == inv.PHASE5_JOB
    assert inv.job_of("process_resident_memory_bytes", "node-exporter") == "node-exporter"
    assert inv.job_of("pg_up", "phase5-exporters") == inv.PHASE5_JOB


@pytest.fixture(scope="module")
def inventory():
    return inv.inventory()


def test_every_rendered_rule_and_dashboard_query_parses(inventory):
    """The inventory parses every expression (it raises otherwise) and covers the readers."""
    readers = {r for s in inventory.values() for r in s.readers}
    assert any(r.startswith("rule phase5-alerts.yaml") for r in readers)
    assert any(r.startswith("rule recording-rules.yaml") for r in readers)
    assert any(r.startswith("rule slo-rules.yaml") for r in readers)
    assert any(r.startswith("panel ") for r in readers)
    exprs = inv.dashboard_expressions()
    assert any(r.startswith("variable ") for r, _ in exprs), "no dashboard variable query was read"
    assert all(inv.selectors(e) for _, e in exprs)
    for job in inv.INFRA_JOBS:
        assert any(s.job == job for s in inventory.values()), f"nothing read from job {job}"


def test_keep_lists_file_is_generated_from_the_inventory(inventory):
    """files/keep-lists.yaml is what scripts/series_inventory.py --write makes of today's
    rules and dashboards: a rule or panel reading a new series, or one no longer read, fails
    here until the file is regenerated."""
    want = inv.keep_lists(inventory)
    got = inv.committed_keep_lists()
    problems = []
    for job in sorted(set(want) | set(got)):
        missing = sorted(set(want.get(job, [])) - set(got.get(job) or []))
        extra = sorted(set(got.get(job) or []) - set(want.get(job, [])))
        if missing:
            problems.append(f"{job}: read but not in the file: {missing}")
        if extra:
            problems.append(f"{job}: in the file, read by nothing: {extra}")
    assert not problems, ("files/keep-lists.yaml is stale (run scripts/series_inventory.py --write):\n"
                          + "\n".join(problems))
    assert inv.KEEP_LISTS_FILE.read_text() == inv.keep_lists_text(want), \
        "files/keep-lists.yaml differs from the generator's text: run scripts/series_inventory.py --write"


@pytest.mark.parametrize("values", params.profiles())
def test_every_series_a_rule_or_panel_reads_is_stored_by_its_job(values):
    """For each render, every metric its rules and the dashboards read, with the namespace of
    a Phase 5 pod where the job filters namespaces, passes the rendered
    metric_relabel_configs of the job that stores it (the Phase 5 jobs store everything)."""
    config = _config(values)
    jobs = _jobs(config)
    items = inv.inventory([inv.rendered(values)])
    problems = []
    for name, s in sorted(items.items()):
        owners = [j for j in jobs if j in inv.PHASE5_JOBS] if s.job == inv.PHASE5_JOB else [s.job]
        for owner in owners:
            if owner not in jobs:
                continue      # a job the profile switches off: its alerts are left out with it
            if not _stored(jobs[owner], name, {"namespace": "phase5-prod"}):
                problems.append(f"{name} ({sorted(s.readers)[0]}, ...) is dropped by job {owner}")
    assert not problems, "\n".join(problems)


def test_a_metric_missing_from_a_keep_list_is_caught():
    """The check above on a keep-list with one name removed (the break it exists for)."""
    job = dict(_jobs(_config())["cadvisor"])
    rules = [dict(r) for r in job["metric_relabel_configs"]]
    rules[0]["regex"] = "|".join(n for n in rules[0]["regex"].split("|") if n != "container_memory_working_set_bytes")
    job["metric_relabel_configs"] = rules
    assert not _stored(job, "container_memory_working_set_bytes", {"namespace": "phase5-prod"})
    assert _stored(job, "container_cpu_usage_seconds_total", {"namespace": "phase5-prod"})


# ------------------------------------------------------------------------------ keep-lists
def test_infrastructure_jobs_keep_only_their_list():
    jobs = _jobs(_config())
    lists = inv.committed_keep_lists()
    for job in inv.INFRA_JOBS:
        first = jobs[job]["metric_relabel_configs"][0]
        assert first["action"] == "keep" and first["source_labels"] == ["__name__"], f"{job}: {first}"
        assert set(first["regex"].split("|")) == set(lists[job]), job
    assert not _stored(jobs["cadvisor"], "container_network_receive_bytes_total", {"namespace": "phase5-prod"})
    assert not _stored(jobs["kube-state-metrics"], "kube_secret_info")
    assert not _stored(jobs["node-exporter"], "node_cpu_seconds_total")


def test_phase5_jobs_keep_everything_by_default():
    jobs = _jobs(_config())
    for job in inv.PHASE5_JOBS:
        assert "metric_relabel_configs" not in jobs[job], f"{job}: {jobs[job].get('metric_relabel_configs')}"


def test_cadvisor_and_kubelet_store_pod_series_of_phase5_and_release_namespaces_only():
    jobs = _jobs(_config())
    for job in ("cadvisor", "kubelet"):
        name = inv.committed_keep_lists()[job][0]
        assert _stored(jobs[job], name, {"namespace": "phase5-prod"}), job
        assert _stored(jobs[job], name, {"namespace": "monitoring"}), job     # the release namespace
        assert _stored(jobs[job], name, {}), job                               # node level: no namespace
        assert not _stored(jobs[job], name, {"namespace": "kube-system"}), job
        assert not _stored(jobs[job], name, {"namespace": "monitoring-other"}), job
    wide = _jobs(_config(set_values={"prometheus.scrape.kubelet.extraPodNamespaces": ["kube-.*"]}))
    assert _stored(wide["cadvisor"], "container_cpu_usage_seconds_total", {"namespace": "kube-system"})
    assert not _stored(wide["cadvisor"], "container_cpu_usage_seconds_total", {"namespace": "default"})
    # the temporary label never reaches storage
    assert jobs["cadvisor"]["metric_relabel_configs"][-1] == {"action": "labeldrop", "regex": "__tmp_namespace_stored"}


def test_extra_keep_adds_to_a_jobs_list():
    jobs = _jobs(_config(set_values={"prometheus.scrape.jobs.kube-state-metrics.extraKeep": ["kube_pod_labels", "kube_node_.*"]}))
    ksm = jobs["kube-state-metrics"]
    assert not _stored(_jobs(_config())["kube-state-metrics"], "kube_pod_labels")   # not read: not kept by default
    assert _stored(ksm, "kube_pod_labels") and _stored(ksm, "kube_node_info") and _stored(ksm, "kube_pod_owner")
    assert not _stored(ksm, "kube_secret_info")
    assert not _stored(jobs["cadvisor"], "kube_pod_labels", {"namespace": "phase5-prod"})   # one job only


def test_keep_all_series_switches_keep_lists_and_namespace_filter_off():
    jobs = _jobs(_config(set_values={"prometheus.scrape.keepAllSeries": True,
                                     "prometheus.scrape.jobs.phase5-services.drop": ["debug_.*"]}))
    for job in inv.INFRA_JOBS:
        assert "metric_relabel_configs" not in jobs[job], f"{job}: {jobs[job].get('metric_relabel_configs')}"
        assert jobs[job]["sample_limit"] > 0, job                      # limits still apply
    assert not _stored(jobs["phase5-services"], "debug_requests_total")   # so do the Phase 5 lists


def test_phase5_jobs_take_keep_and_drop_lists():
    jobs = _jobs(_config(set_values={
        "prometheus.scrape.jobs.phase5-exporters.keep": ["pg_.*", "redis_.*", "kafka_.*"],
        "prometheus.scrape.jobs.phase5-exporters.drop": ["pg_stat_statements_.*"],
        "prometheus.scrape.jobs.phase5-services.drop": ["http_request_size_bytes_bucket"]}))
    exp, svc = jobs["phase5-exporters"], jobs["phase5-services"]
    assert _stored(exp, "pg_up") and _stored(exp, "kafka_consumergroup_lag")
    assert not _stored(exp, "go_goroutines") and not _stored(exp, "pg_stat_statements_calls_total")
    assert _stored(svc, "http_requests_total") and not _stored(svc, "http_request_size_bytes_bucket")


# ------------------------------------------------------------------------------ limits
def test_every_job_has_its_limits_and_the_extra_scrape_metrics():
    config = _config()
    assert config["global"]["extra_scrape_metrics"] is True     # scrape_sample_limit, scrape_body_size_bytes
    values = yaml.safe_load((inv.SUBCHARTS_DIR / "prometheus" / "values.yaml").read_text())["scrape"]["jobs"]
    jobs = _jobs(config)
    assert set(values) == set(inv.INFRA_JOBS) | set(inv.PHASE5_JOBS)
    for name, v in values.items():
        lim = v["limits"]
        assert jobs[name]["sample_limit"] == lim["sampleLimit"], name
        assert jobs[name]["label_limit"] == lim["labelLimit"], name
        assert jobs[name]["body_size_limit"] == lim["bodySizeLimit"], name


def test_a_zero_limit_is_no_limit():
    job = _jobs(_config(set_values={"prometheus.scrape.jobs.phase5-services.limits":
                                    {"sampleLimit": 0, "labelLimit": 0, "bodySizeLimit": "0"}}))["phase5-services"]
    assert not {"sample_limit", "label_limit", "body_size_limit"} & job.keys(), job


@pytest.mark.parametrize("key,value", [
    ("prometheus.scrape.jobs.phase5-services.limits.sampleLimit", -1),
    ("prometheus.scrape.jobs.phase5-services.limits.bodySizeLimit", "64MiB"),
    ("prometheus.scrape.jobs.phase5-services.limits.bodySizeLimit", "lots"),
    ("prometheus.scrape.jobs.kubelet.keep", ["x"]),               # infrastructure jobs take extraKeep
    ("prometheus.scrape.jobs.phase5-services.extraKeep", ["x"]),  # Phase 5 jobs take keep/drop
    ("prometheus.scrape.jobs.my-app", {"keep": []}),
    ("prometheus.scrape.keepAllSeries", "yes"),
    ("prometheus.scrape.kubelet.extraPodNamespaces", [""]),
])
def test_schema_rejects_bad_series_and_limit_values(key, value):
    msg = render_error(set_values={key: value})
    leaf = key.split(".")[-1]
    assert leaf in msg or "additional properties" in msg.lower() or key.split(".")[-2] in msg, msg


def test_readme_states_the_jobs_and_default_limits():
    """README "What Prometheus stores": its job table names every job of scrape.jobs, and the
    example's limits are the defaults."""
    text = (inv.SUBCHARTS_DIR.parents[2] / "README.md").read_text()
    section = text.split("### What Prometheus stores", 1)[1].split("\n### ", 1)[0]
    values = yaml.safe_load((inv.SUBCHARTS_DIR / "prometheus" / "values.yaml").read_text())["scrape"]["jobs"]
    table = {j for row in section.splitlines() if row.startswith("| `") for j in re.findall(r"`([a-z0-9-]+)`", row.split("|")[1])}
    assert table == set(values), f"README job table {sorted(table)}, scrape.jobs {sorted(values)}"
    example = yaml.safe_load(section.split("```yaml", 1)[1].split("```", 1)[0])["prometheus"]["scrape"]["jobs"]
    for job, v in example.items():
        assert v["limits"] == values[job]["limits"], f"README example limits of {job}: {v['limits']}, default {values[job]['limits']}"


# ------------------------------------------------------------------------------ other readers
SPM_SERIES = {"traces_span_metrics_calls_total", "traces_span_metrics_duration_milliseconds_bucket"}


def test_jaegers_monitor_tab_is_a_reader_of_the_span_metrics(inventory):
    """Jaeger's Monitor tab (jaeger.spanMetrics) reads the span metrics from Prometheus: the
    inventory declares its queries (harness.series_inventory.CONSUMERS, the PromQL of Jaeger's
    Prometheus reader built from the rendered metric backend), so the monitoring-stack job keeps
    the two series, with the labels those queries need."""
    for name in SPM_SERIES:
        s = inventory.get(name)
        assert s is not None, f"{name}: not in the inventory; readers of traces_*: " \
                              f"{ {n: v.readers for n, v in inventory.items() if n.startswith('traces_')} }"
        assert s.job == "monitoring-stack", (name, s.job)
        assert any(r.startswith("jaeger ") for r in s.readers), s.readers
        assert {"service_name", "span_kind"} <= s.labels, s.labels
    assert "le" in inventory["traces_span_metrics_duration_milliseconds_bucket"].labels
    assert "status_code" in inventory["traces_span_metrics_calls_total"].labels
    assert SPM_SERIES <= set(inv.committed_keep_lists()["monitoring-stack"])
    job = _jobs(_config())["monitoring-stack"]
    for name in SPM_SERIES:
        assert _stored(job, name, {"service_name": "phase5-backend"}), f"{name} is dropped by monitoring-stack"
    # what no one reads stays out: the exporter's target_info and the calls counter's siblings
    assert not _stored(job, "target_info") and not _stored(job, "traces_span_metrics_duration_milliseconds_sum")


def test_jaeger_reads_nothing_with_service_performance_monitoring_off():
    """The consumer follows the render: no metric backend, no reads (the break this guards: a
    declared reader that does not follow the Jaeger configuration)."""
    items = inv.inventory([inv.rendered(set_values={"jaeger.spanMetrics.enabled": False})])
    jaeger_read = sorted(n for n, s in items.items() if any(r.startswith("jaeger ") for r in s.readers))
    assert not jaeger_read, jaeger_read
    assert not inv.consumer_expressions(render(set_values={"jaeger.enabled": False}))
