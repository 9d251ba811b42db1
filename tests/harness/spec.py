"""The names the specification and the cross-component contract fix, listed once."""

# The 13 recording rules (the spec says "12" but lists 13 once p50/p95/p99 are separate).
RECORDING_RULES = (
    "service:http_requests:rate5m",
    "service:http_requests_errors:ratio_rate5m",
    "service:http_request_duration_seconds:p50_5m",
    "service:http_request_duration_seconds:p95_5m",
    "service:http_request_duration_seconds:p99_5m",
    "pod:container_cpu_usage:ratio",
    "pod:container_memory_working_set:ratio",
    "service:database_connections:usage_ratio",
    "consumergroup_topic:kafka_consumer_lag:sum",
    "operation_status:task_operations:rate5m",
    "channel_status:reminder_delivery:rate5m",
    "operation:audit_log_writes:rate5m",
    "service:websocket_connections_active:sum",
)
# Extra labels: those every firing case must carry. The pod alerts add workload_kind/workload
# (and deployment) only when the pod's owner is known, so only `pod` is required of them.
# A category of None: the team of the service, from its Service's team label or
# prometheus.phase5.categories through service:phase5_category:info (the spec's `application`
# when neither names one).
ALERTS = {  # name: (severity, category, extra labels)
    "HighErrorRate": ("critical", None, ()),
    "HighResponseTime": ("warning", None, ()),
    "PodDown": ("critical", "kubernetes", ("pod",)),
    "HighCPUUsage": ("warning", "kubernetes", ("pod",)),
    "HighMemoryUsage": ("warning", "kubernetes", ("pod",)),
    "DatabaseConnectionPoolExhausted": ("critical", "database", ()),
    "KafkaConsumerLag": ("warning", "kafka", ("consumergroup", "topic")),
    "DiskSpaceLow": ("warning", "node", ("instance", "mountpoint")),
    "PodRestartingTooOften": ("warning", "kubernetes", ("pod", "container")),
    "DeploymentReplicaMismatch": ("warning", "kubernetes", ("deployment", "workload_kind", "workload")),
    "HPAMaxedOut": ("warning", "kubernetes", ("horizontalpodautoscaler",)),
    "AuditLogFailures": ("critical", "audit", ()),
    "ReminderDeliveryFailures": ("warning", "reminder", ()),
    # Issue 14: missing signals (category None: the team of the service, from its Service's
    # team label or prometheus.phase5.categories through service:phase5_category:info) ...
    "Phase5TargetDown": ("critical", None, ("pod", "instance", "job")),
    "Phase5MetricsMissing": ("critical", None, ()),
    # ... and the monitoring stack watching itself.
    "PrometheusRuleEvaluationFailures": ("critical", "monitoring", ("pod", "rule_group")),
    "PrometheusNotificationsFailing": ("critical", "monitoring", ("pod", "alertmanager")),
    "PrometheusNotificationsDropped": ("critical", "monitoring", ("pod",)),
    "AlertmanagerNotificationsFailing": ("critical", "monitoring", ("pod", "integration")),
    "ConfigReloadFailed": ("warning", "monitoring", ("pod",)),
    "PrometheusTSDBCompactionsFailing": ("warning", "monitoring", ("pod",)),
    "AlertmanagerClusterMembersMissing": ("warning", "monitoring", ("pod",)),
    "AlertmanagerClusterSplit": ("warning", "monitoring", ()),
    # Issue 25: every other component of the stack, storage and nodes (category monitoring).
    "MonitoringTargetDown": ("critical", "monitoring", ("pod", "instance", "job")),
    "MonitoringTargetMissing": ("critical", "monitoring", ()),
    "KubeStateMetricsDown": ("critical", "monitoring", ("job",)),
    "NodeExporterDown": ("warning", "monitoring", ("job",)),
    "MonitoringDaemonSetNotOnEveryNode": ("warning", "monitoring", ("daemonset",)),
    "LokiRequestErrors": ("warning", "monitoring", ("route",)),
    "LokiIngestionRefused": ("warning", "monitoring", ("reason",)),
    "LokiCompactorNotRunning": ("warning", "monitoring", ("operation",)),
    "LogCollectorSendFailures": ("warning", "monitoring", ("pod",)),
    "LogCollectorDroppedLines": ("warning", "monitoring", ("pod", "reason")),
    "JaegerSpansRefused": ("warning", "monitoring", ("receiver", "transport")),
    "JaegerSpansDropped": ("critical", "monitoring", ("exporter",)),
    "PersistentVolumeFillingUp": ("critical", "monitoring", ("persistentvolumeclaim",)),
    "PrometheusTSDBNearRetentionSize": ("warning", "monitoring", ("pod",)),
    # Issue 27: a target over its job's sample, label or body size limit.
    "ScrapeLimitExceeded": ("critical", "monitoring", ("instance", "job", "limit")),
    "NodeNotReady": ("critical", "monitoring", ("node", "instance")),
    "NodeUnderPressure": ("warning", "monitoring", ("node", "condition", "instance")),
    "NodeUnschedulable": ("warning", "monitoring", ("node", "instance")),
    # Issue 26: Thanos Query over the Prometheus replicas.
    "ThanosQuerySidecarsMissing": ("warning", "monitoring", ("pod",)),
    "ThanosQueryStoreGatewayMissing": ("warning", "monitoring", ("pod",)),
    "ThanosSidecarUploadFailing": ("critical", "monitoring", ("pod",)),
    "ThanosCompactHalted": ("warning", "monitoring", ("pod",)),
    "Watchdog": ("none", "meta", ()),
}
# Recording rules beyond the spec's 13: the pod owner join, and the services the cluster says
# should be scraped with their teams (group phase5-service-discovery, issue 24).
# Issue 27: what the dashboards read instead of series that grow with the pods (per workload, per
# service, per namespace, per job, per node).
DASHBOARD_RECORDING_RULES = (
    "workload:container_cpu_usage:ratio_max", "workload:container_memory_working_set:ratio_max",
    "channel:reminder_delivery_failed:rate5m", "operation:audit_log_errors:rate5m",
    "status:recurring_task_generated:rate5m", "service:websocket_messages_sent:rate5m",
    "service:websocket_messages_received:rate5m", "service:database_connections_active:sum",
    "service:database_connections_idle:sum", "service:database_connections_max:max", "service:up:sum",
    "service:up:count", "namespace:kube_pod_status_phase_running:sum", "namespace:kube_pod_status_ready:sum",
    "namespace:kube_pod_container_status_restarts:increase15m",
    "job:scrape_samples_post_metric_relabeling:max_limit_ratio", "instance:node_network_receive_bytes:rate5m",
    "instance:node_network_transmit_bytes:rate5m", "mountpoint:filesystem_usage:ratio_max",
)
HELPER_RECORDING_RULES = ("pod:kube_pod_owner:workload", "pod:kube_pod_info:node_workload", "service:phase5_expected:info",
                          "service:phase5_category_fallback:info", "service:phase5_category:info")

# The spec's "Metrics Collected" lists, item by item: the series that show it (all of them must
# be read by some dashboard panel, directly or through a recording rule the panel reads). Items
# the spec names by metric map to that metric (a histogram to its bucket series); the others to
# the upstream exporter series the chart reads for them (issue 28).
SPEC_METRICS = {
    # Application Metrics
    "http_requests_total": ("http_requests_total",),
    "http_request_duration_seconds": ("http_request_duration_seconds_bucket",),
    "task_operations_total": ("task_operations_total",),
    "reminder_delivery_total": ("reminder_delivery_total",),
    "reminder_delivery_failed_total": ("reminder_delivery_failed_total",),
    "audit_log_writes_total": ("audit_log_writes_total",),
    "audit_log_errors_total": ("audit_log_errors_total",),
    "websocket_connections_active": ("websocket_connections_active",),
    "websocket_messages_sent_total": ("websocket_messages_sent_total",),
    "websocket_messages_received_total": ("websocket_messages_received_total",),
    # Infrastructure Metrics: Kubernetes (cAdvisor, kube-state-metrics)
    "Pod CPU usage": ("container_cpu_usage_seconds_total",),
    "Pod memory usage": ("container_memory_working_set_bytes",),
    "Pod restart counts": ("kube_pod_container_status_restarts_total",),
    "Deployment replica status": ("kube_deployment_spec_replicas", "kube_deployment_status_replicas_available"),
    "HPA current/desired replicas": ("kube_horizontalpodautoscaler_status_current_replicas",
                                     "kube_horizontalpodautoscaler_status_desired_replicas"),
    # Database (the application's pool; postgres_exporter)
    "database_connections_active": ("database_connections_active",),
    "database_connections_idle": ("database_connections_idle",),
    "database_connections_max": ("database_connections_max",),
    "Query duration histograms": ("pg_stat_statements_seconds_total", "pg_stat_statements_calls_total"),
    "Transaction rates (commits, rollbacks)": ("pg_stat_database_xact_commit", "pg_stat_database_xact_rollback"),
    "Database size": ("pg_database_size_bytes",),
    # Redis (redis_exporter)
    "Redis memory usage": ("redis_memory_used_bytes",),
    "Redis command rates": ("redis_commands_processed_total",),
    "Redis hit/miss rates": ("redis_keyspace_hits_total", "redis_keyspace_misses_total"),
    "Redis connected clients": ("redis_connected_clients",),
    # Kafka (the agents' kafka_consumer_lag; kafka_exporter)
    "kafka_consumer_lag": ("kafka_consumer_lag",),
    "Kafka broker status": ("kafka_brokers",),
    "Kafka messages in/out rates": ("kafka_topic_partition_current_offset", "kafka_consumergroup_current_offset"),
    "Kafka topic partition counts": ("kafka_topic_partitions",),
}
