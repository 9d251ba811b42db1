"""Conformance tier: the series harness/upstream_metrics.py documents for the components that
run here (Prometheus, Alertmanager, Jaeger) are on the real binaries' /metrics, with those label
names. The unit tier holds the monitoring alerts to that table (test_unit_rule_metrics.py); this
holds the table to the binaries, so an upstream rename fails here instead of silencing an alert."""
import json
import re
import urllib.parse
import urllib.request

import pytest

from harness import jaeger as jh
from harness import tools
from harness import upstream_metrics as um
from harness.ports import free_port
from harness.process import Process
from harness.polling import wait_until
from harness.render import render

pytestmark = pytest.mark.conformance

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"')


def exposed(text):
    """{series name: [label-name sets]} of a /metrics page."""
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and not line.startswith("#"):
            out.setdefault(m.group(1), []).append(set(LABEL.findall(m.group(2) or "")))
    return out


def mismatches(source, page, skip=()):
    """What the real /metrics lacks or labels differently from the documented table."""
    got = exposed(page)
    out = []
    for name, labels in um.series(source).items():
        if name in skip or name.endswith("_bucket"):
            continue
        if name not in got:
            out.append(f"{source}: {name} is not exposed")
            continue
        for have in got[name]:
            if have != labels:
                out.append(f"{source}: {name} has labels {sorted(have)}, documented {sorted(labels)}")
                break
    return out


def test_the_comparison_catches_a_rename_and_a_label():
    page = 'otelcol_receiver_refused_spans{receiver="otlp",transport="http"} 0\n'
    assert any("not exposed" in p for p in mismatches("jaeger", page))
    page = "\n".join(f'{n}{{receiver="otlp"}} 0' for n in um.series("jaeger"))
    assert any("has labels" in p for p in mismatches("jaeger", page))


def _get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def test_prometheus_exposes_the_documented_series(tmp_path):
    binary = tools.require("prometheus")
    port, am_port = free_port(), free_port()
    # One rule group (rule_group label), one Alertmanager (alertmanager label; nothing listens).
    (tmp_path / "rules.yaml").write_text("groups:\n  - name: g\n    rules:\n      - record: r\n        expr: vector(1)\n")
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s, extra_scrape_metrics: true}\n"
        f"rule_files: [{tmp_path / 'rules.yaml'}]\n"
        f"alerting: {{alertmanagers: [{{static_configs: [{{targets: ['127.0.0.1:{am_port}']}}]}}]}}\n"
        f"scrape_configs: [{{job_name: self, sample_limit: 54321, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}]\n")
    proc = Process("prometheus", [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                                  f"--storage.tsdb.path={tmp_path / 'data'}", "--storage.tsdb.retention.size=1GB",
                                  f"--web.listen-address=127.0.0.1:{port}"],
                   tmp_path / "prometheus.log", f"http://127.0.0.1:{port}/-/ready")
    proc.start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: '"value"' in _get(f"{base}/api/v1/query?query=up"), 30, "up of the self-scrape",
                   every=0.5, retry=(OSError,))
        page = _get(f"{base}/metrics")
        # The per-target series ScrapeLimitExceeded reads, as this version stores them.
        per_target = json.loads(_get(f"{base}/api/v1/query?query=" + urllib.parse.quote(
            '{__name__=~"up|scrape_.*", job="self"}')))["data"]["result"]
    finally:
        proc.stop()
    problems = mismatches("prometheus", page, skip=um.PER_TARGET)
    stored = {s["metric"]["__name__"]: s for s in per_target}
    problems += [f"prometheus: per-target series {n} is not stored" for n in sorted(um.PER_TARGET - set(stored))]
    if "scrape_sample_limit" in stored and stored["scrape_sample_limit"]["value"][1] != "54321":
        problems.append(f"scrape_sample_limit is {stored['scrape_sample_limit']['value'][1]}, the job's sample_limit 54321")
    assert not problems, "\n".join(problems)
    # The ratio PrometheusTSDBNearRetentionSize divides by: --storage.tsdb.retention.size, in
    # binary units (Prometheus' 1GB is 2^30 bytes).
    assert re.search(r"^prometheus_tsdb_retention_limit_bytes 1\.073741824e\+09$", page, re.M), \
        "retention_limit_bytes does not carry --storage.tsdb.retention.size=1GB (2^30 bytes)"


def test_alertmanager_exposes_the_documented_series(tmp_path):
    binary = tools.require("alertmanager")
    port, cluster = free_port(), free_port()
    (tmp_path / "am.yml").write_text("route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{url: 'http://127.0.0.1:9/'}]}]\n")
    proc = Process("alertmanager", [binary, f"--config.file={tmp_path / 'am.yml'}",
                                    f"--storage.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                                    f"--cluster.listen-address=127.0.0.1:{cluster}",
                                    f"--cluster.advertise-address=127.0.0.1:{cluster}"],
                   tmp_path / "alertmanager.log", f"http://127.0.0.1:{port}/-/ready")
    proc.start()
    try:
        page = _get(f"http://127.0.0.1:{port}/metrics")
    finally:
        proc.stop()
    problems = mismatches("alertmanager", page)
    assert not problems, "\n".join(problems)


def test_jaeger_exposes_the_documented_series(tmp_path):
    """After spans went through the chart's own configuration, the receiver and exporter series
    the Jaeger alerts read are on 8888, with the documented labels (the collector adds none of
    its own that the rules would have to know)."""
    binary = tools.require("jaeger")
    config = jh.rendered_config(render())
    with jh.run_jaeger(binary, config, tmp_path) as j:
        trace = jh.send_otlp_span(j.url("http-otlp"), "phase5-backend", "GET /api/tasks")
        jh.wait_for_trace(j.url("http-query"), "phase5-backend", trace)
        def sent():
            text = _get(j.url("http-metrics") + "/metrics")
            return text if "otelcol_exporter_sent_spans" in text else None
        page = wait_until(sent, 30, "Jaeger's exporter metrics", every=0.5, retry=(OSError,))
    extra = {"service_name", "service_instance_id", "service_version", "otel_scope_name", "otel_scope_version",
             "otel_scope_schema_url"}
    page = "\n".join(LABEL.sub(lambda m: "" if m.group(1) in extra else m.group(0), line)
                     .replace("{,", "{").replace(",,", ",").replace(",}", "}") for line in page.splitlines())
    problems = mismatches("jaeger", page)
    assert not problems, "\n".join(problems)
