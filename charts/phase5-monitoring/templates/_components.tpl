{{/*
phase5-monitoring.components: the one list of the stack's components, read by the
NetworkPolicies (networkpolicy.yaml), the `helm test` pods (tests/health.yaml) and NOTES.txt.
A port or health path changes once, in common.ports or common.healthPaths (or in the subchart
value it comes from), and all three follow, as do the subcharts' containers, Services and probes;
tests/test_unit_components.py checks every port against the rendered Services.

JSON object: component key (the subchart's key in values) -> {
  name:    app.kubernetes.io/name of its pods (the log collector: promtail or alloy),
  service: its Service (<release>-<name>),
  enabled: the subchart is on,
  runs:    it runs its own workload (enabled, and not replaced by the existing
           kube-prometheus-stack in operator mode),
  ports:   port key -> {port, protocol} (protocol TCP, or TCP+UDP for a port used with both),
  receivers: (jaeger) the enabled receivers' {name, port, protocol}, from the jaeger subchart,
  health:  {port: a key of ports, path} the helm test pod asks
}
Port numbers come from common.ports (the one table the subcharts' containers, Services and
configs read too), node-exporter's from its value node-exporter.port; health paths from
common.healthPaths (the one table the subcharts' probes read too); Jaeger's receivers are the
ones the jaeger subchart switches on.
Usage: include "phase5-monitoring.components" . | fromJson
Built once per render (common.memo) and shared by its readers.
*/}}
{{- define "phase5-monitoring.components" -}}
{{- include "common.memo" (dict "context" . "template" "phase5-monitoring.components.render") -}}
{{- end -}}

{{- define "phase5-monitoring.components.render" -}}
{{- $v := .Values -}}
{{- $tcp := "TCP" -}}
{{- /* A disabled subchart's defaults are not merged in: fall back to the subchart's defaults. */ -}}
{{- $collector := dig "collector" "promtail" ($v.promtail | default dict) -}}
{{- $table := dict
  "prometheus" (dict "name" "prometheus"
    "ports" (dict "web" (dict "port" (include "common.port" (list "prometheus" "web") | int) "protocol" $tcp))
    "health" (dict "port" "web" "path" (include "common.healthPath" (list "prometheus" "ready"))))
  "alertmanager" (dict "name" "alertmanager"
    "ports" (dict "web" (dict "port" (include "common.port" (list "alertmanager" "web") | int) "protocol" $tcp) "cluster" (dict "port" (include "common.port" (list "alertmanager" "cluster") | int) "protocol" "TCP+UDP"))
    "health" (dict "port" "web" "path" (include "common.healthPath" (list "alertmanager" "ready"))))
  "grafana" (dict "name" "grafana"
    "ports" (dict "web" (dict "port" (include "common.port" (list "grafana" "web") | int) "protocol" $tcp))
    "health" (dict "port" "web" "path" (include "common.healthPath" (list "grafana" "ready"))))
  "loki" (dict "name" "loki"
    "ports" (dict "web" (dict "port" (include "common.port" (list "loki" "web") | int) "protocol" $tcp))
    "health" (dict "port" "web" "path" (include "common.healthPath" (list "loki" "ready"))))
  "promtail" (dict "name" $collector
    "ports" (dict "metrics" (dict "port" (include "common.port" (list "promtail" "metrics") | int) "protocol" $tcp))
    "health" (dict "port" "metrics" "path" (include "common.healthPath" (list $collector "ready"))))
  "jaeger" (dict "name" "jaeger"
    "ports" (dict "query" (dict "port" (include "common.port" (list "jaeger" "query") | int) "protocol" $tcp) "admin" (dict "port" (include "common.port" (list "jaeger" "admin") | int) "protocol" $tcp)
                  "metrics" (dict "port" (include "common.port" (list "jaeger" "metrics") | int) "protocol" $tcp) "otlpGrpc" (dict "port" (include "common.port" (list "jaeger" "otlpGrpc") | int) "protocol" $tcp)
                  "otlpHttp" (dict "port" (include "common.port" (list "jaeger" "otlpHttp") | int) "protocol" $tcp))
    "receivers" list
    "health" (dict "port" "admin" "path" (include "common.healthPath" (list "jaeger" "ready"))))
  "kube-state-metrics" (dict "name" "kube-state-metrics"
    "ports" (dict "metrics" (dict "port" (include "common.port" (list "kube-state-metrics" "metrics") | int) "protocol" $tcp) "telemetry" (dict "port" (include "common.port" (list "kube-state-metrics" "telemetry") | int) "protocol" $tcp))
    "health" (dict "port" "telemetry" "path" (include "common.healthPath" (list "kube-state-metrics" "ready"))))
  "node-exporter" (dict "name" "node-exporter"
    "ports" (dict "metrics" (dict "port" (dig "port" 9100 (index $v "node-exporter" | default dict)) "protocol" $tcp))
    "health" (dict "port" "metrics" "path" (include "common.healthPath" (list "node-exporter" "metrics"))))
  "thanos" (dict "name" "thanos"
    "ports" (dict "http" (dict "port" (include "common.port" (list "thanos" "http") | int) "protocol" $tcp) "grpc" (dict "port" (include "common.port" (list "thanos" "grpc") | int) "protocol" $tcp))
    "health" (dict "port" "http" "path" (include "common.healthPath" (list "thanos" "ready"))))
-}}
{{- if $v.jaeger.enabled -}}
{{- $_ := set $table.jaeger "receivers" (include "jaeger.receiverPorts" (dict "Values" $v.jaeger) | fromJsonArray) -}}
{{- end -}}
{{- range $key, $c := $table -}}
{{- $_ := set $c "service" (include "common.componentFullname" (dict "context" $ "component" $c.name)) -}}
{{- $_ = set $c "enabled" (index $v $key).enabled -}}
{{- $_ = set $c "runs" (eq (include "phase5-monitoring.runs" (dict "context" $ "component" $key)) "true") -}}
{{- end -}}
{{- /* Thanos Query's Service is <release>-thanos-query (thanos.queryName): room for more Thanos components. */ -}}
{{- $_ := set $table.thanos "service" (printf "%s-query" $table.thanos.service | trunc 63 | trimSuffix "-") -}}
{{- toJson $table -}}
{{- end -}}

{{/*
phase5-monitoring.componentOrder: the components in the order NOTES lists them.
*/}}
{{- define "phase5-monitoring.componentOrder" -}}
["prometheus","alertmanager","grafana","loki","promtail","jaeger","kube-state-metrics","node-exporter","thanos"]
{{- end -}}
