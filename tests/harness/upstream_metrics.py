"""The series the chart's monitoring-stack alerts read from upstream components other than
kube-state-metrics (harness/ksm.py), as the pinned versions expose them.

Each source names the version it describes (the chart's appVersion or image tag, which a test
keeps equal) and where the names come from: the component's own source or documentation for
the ones that cannot run here (Loki and Promtail are AGPL and not built; Alloy is not served by
the Go module proxy; the kubelet is not among the binaries the local control plane builds),
and the real binary's /metrics for the ones that run here (Prometheus, Alertmanager, Jaeger:
tests/test_conformance_*.py scrape them and compare).

A unit test (tests/test_unit_rule_metrics.py) holds every `category: monitoring` alert to these
tables: a misspelt metric, a metric of another version, or a label matcher on a label the
metric does not have fails it. Label sets are the metric's own labels; the scrape adds the
target labels (TARGET_LABELS).
"""

# Labels the scrape jobs add to every series (files/prometheus.yml relabelling).
TARGET_LABELS = {"job", "instance", "namespace", "service", "pod"}

# Series Prometheus writes for each target (not on its /metrics page).
PER_TARGET = {"up", "scrape_samples_post_metric_relabeling", "scrape_sample_limit", "scrape_body_size_bytes"}

# A histogram family is read through its series: <name>_bucket (le), _count, _sum.
HISTOGRAM = "histogram"

SOURCES = {
    "loki": {
        "version": "3.7.11",
        "chart": "loki",
        "where": "grafana/loki v3: dskit server/metrics.go (request_duration_seconds, namespace loki), "
                 "pkg/validation/validate.go (discarded_samples_total), pkg/compactor/metrics.go; the same "
                 "names in the v3.7.4 and v3.7.6 sources (the newest stored tag; 3.7.7-3.7.11 are patch "
                 "releases of that line, read from their release notes only)",
        "metrics": {
            "loki_request_duration_seconds": (HISTOGRAM, {"method", "route", "status_code", "ws"}),
            "loki_discarded_samples_total": ("counter", {"reason", "tenant", "retention_hours", "policy", "format"}),
            "loki_boltdb_shipper_compact_tables_operation_last_successful_run_timestamp_seconds": ("gauge", set()),
            "loki_compactor_apply_retention_last_successful_run_timestamp_seconds": ("gauge", set()),
        },
    },
    "promtail": {
        "version": "3.5.8",
        "chart": "promtail",
        "where": "grafana/loki v3: clients/pkg/promtail/client/client.go (namespace promtail)",
        "metrics": {
            "promtail_request_duration_seconds": (HISTOGRAM, {"status_code", "host"}),
            "promtail_dropped_entries_total": ("counter", {"host", "tenant", "reason"}),
        },
    },
    "alloy": {
        "version": "v1.21.3",
        "chart": "promtail:alloy.image.tag",
        "where": "grafana/alloy: internal/component/common/loki/client/metrics.go (loki.write); Alloy adds "
                 "component_id and component_path to every component's metrics; names read in the source of "
                 "v1.18.1 and of v1.19.0-rc (the newest stored); the release notes read for 1.20.1 and 1.21.1-1.21.3 rename none of "
                 "them (1.20.0/1.21.0's were not available)",
        "metrics": {
            "loki_write_request_duration_seconds": (HISTOGRAM, {"status_code", "host", "tenant", "component_id",
                                                                "component_path"}),
            "loki_write_dropped_entries_total": ("counter", {"host", "tenant", "reason", "component_id",
                                                             "component_path"}),
        },
    },
    "kubelet": {
        "version": ">=1.30",
        "chart": None,
        "where": "Kubernetes metrics reference (kubernetes.io/docs/reference/instrumentation/metrics/), "
                 "pkg/kubelet/metrics/collectors/volume_stats.go",
        "metrics": {
            "kubelet_volume_stats_available_bytes": ("gauge", {"namespace", "persistentvolumeclaim"}),
            "kubelet_volume_stats_capacity_bytes": ("gauge", {"namespace", "persistentvolumeclaim"}),
        },
    },
    # The three below run here: the conformance tests compare these names with the real /metrics.
    "jaeger": {
        "version": "2.13.0",
        "chart": "jaeger",
        "where": "the real jaeger binary's /metrics (OpenTelemetry Collector service telemetry, port 8888)",
        "binary": True,
        "metrics": {
            "otelcol_receiver_accepted_spans_total": ("counter", {"receiver", "transport"}),
            "otelcol_receiver_refused_spans_total": ("counter", {"receiver", "transport"}),
            "otelcol_exporter_sent_spans_total": ("counter", {"exporter"}),
            "otelcol_exporter_send_failed_spans_total": ("counter", {"exporter"}),
        },
    },
    "prometheus": {
        "version": "v3.16.0",
        "chart": "prometheus",
        "where": "the real prometheus binary's /metrics; the per-target series (PER_TARGET) from what it stores "
                 "of a scrape with extra_scrape_metrics: true",
        "binary": True,
        "metrics": {
            "up": ("gauge", set()),
            "scrape_samples_post_metric_relabeling": ("gauge", set()),
            "scrape_sample_limit": ("gauge", set()),          # extra_scrape_metrics
            "scrape_body_size_bytes": ("gauge", set()),       # extra_scrape_metrics; -1: over body_size_limit
            "prometheus_target_scrape_pool_exceeded_label_limits_total": ("counter", set()),
            "prometheus_rule_evaluation_failures_total": ("counter", {"rule_group"}),
            "prometheus_notifications_errors_total": ("counter", {"alertmanager"}),
            "prometheus_notifications_sent_total": ("counter", {"alertmanager"}),
            "prometheus_notifications_dropped_total": ("counter", {"alertmanager"}),   # per Alertmanager in 3.x
            "prometheus_config_last_reload_successful": ("gauge", set()),
            "prometheus_tsdb_compactions_failed_total": ("counter", set()),
            "prometheus_tsdb_storage_blocks_bytes": ("gauge", set()),
            "prometheus_tsdb_wal_storage_size_bytes": ("gauge", set()),
            "prometheus_tsdb_head_chunks_storage_size_bytes": ("gauge", set()),
            "prometheus_tsdb_retention_limit_bytes": ("gauge", set()),
        },
    },
    "thanos": {
        "version": "v0.42.4",
        "chart": "thanos",
        "where": "the real thanos binary's /metrics (Query with its sidecars, tests/test_e2e_thanos.py); the "
                 "names in v0.42.4's pkg/query/endpointset.go (endpointSetNodeCollector) and pkg/gate",
        "binary": True,
        "metrics": {
            "thanos_store_nodes_grpc_connections": ("gauge", {"external_labels", "store_type"}),
            "thanos_query_concurrent_gate_queries_max": ("gauge", set()),
        },
    },
    # Object storage (issue 26): the sidecar's uploads and the Compactor's halt, from the real
    # binaries' /metrics in tests/test_e2e_thanos_objstore.py (sidecar uploading to a filesystem
    # bucket; the Compactor run once over it).
    "thanos-sidecar": {
        "version": "v0.42.4",
        "chart": "thanos",
        "where": "the real thanos sidecar's /metrics (tests/test_e2e_thanos_objstore.py); v0.42.4's pkg/shipper/shipper.go",
        "binary": True,
        "metrics": {
            "thanos_shipper_upload_failures_total": ("counter", set()),
        },
    },
    "thanos-compact": {
        "version": "v0.42.4",
        "chart": "thanos",
        "where": "the real thanos compact's /metrics (tests/test_e2e_thanos_objstore.py); v0.42.4's cmd/thanos/compact.go",
        "binary": True,
        "metrics": {
            "thanos_compact_halted": ("gauge", set()),
        },
    },
    "alertmanager": {
        "version": "v0.35.0",
        "chart": "alertmanager",
        "where": "the real alertmanager binary's /metrics",
        "binary": True,
        "metrics": {
            "alertmanager_notifications_total": ("counter", {"integration"}),
            "alertmanager_notifications_failed_total": ("counter", {"integration", "reason"}),
            "alertmanager_config_last_reload_successful": ("gauge", set()),
            "alertmanager_cluster_members": ("gauge", set()),
            "alertmanager_cluster_enabled": ("gauge", set()),
            "alertmanager_peer_position": ("gauge", set()),
        },
    },
}


def series(source):
    """{series name: label names} of a source, histograms expanded into _bucket/_count/_sum."""
    out = {}
    for name, (kind, labels) in SOURCES[source]["metrics"].items():
        if kind == HISTOGRAM:
            out[f"{name}_bucket"] = labels | {"le"}
            out[f"{name}_count"] = set(labels)
            out[f"{name}_sum"] = set(labels)
        else:
            out[name] = set(labels)
    return out


def documented():
    """{series name: (source, label names)} over every source."""
    out = {}
    for source in SOURCES:
        for name, labels in series(source).items():
            out[name] = (source, labels)
    return out
