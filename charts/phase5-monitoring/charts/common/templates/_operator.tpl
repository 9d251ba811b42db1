{{/*
common.operatorMode: "true" when global.operator.enabled is set (operator mode, for clusters
that already run kube-prometheus-stack), else "". In operator mode the prometheus,
alertmanager and grafana subcharts render PrometheusRule, ServiceMonitor, AlertmanagerConfig
and sidecar dashboard ConfigMaps for the existing stack instead of their own workloads, and
kube-state-metrics and node-exporter render nothing (kube-prometheus-stack runs both).
Usage: if include "common.operatorMode" .
*/}}
{{- define "common.operatorMode" -}}
{{- if not (and (kindIs "map" .) (hasKey . "Values")) -}}
{{- fail "common.operatorMode: expects the chart's root context ($ or .)" -}}
{{- end -}}
{{- if ((.Values.global).operator).enabled -}}true{{- end -}}
{{- end -}}

{{/*
common.operatorLabels: common.labels plus global.operator.selectorLabels, the labels the
existing Prometheus and Alertmanager select their PrometheusRule, ServiceMonitor and
AlertmanagerConfig objects by (kube-prometheus-stack: release=<its release name>).
Usage: include "common.operatorLabels" (dict "context" . "component" "rules")
*/}}
{{- define "common.operatorLabels" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "component") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.operatorLabels" . (list "context" "component")) -}}
{{- end -}}
{{- $labels := include "common.labels" . | fromYaml -}}
{{- toYaml (merge (deepCopy (((.context.Values.global).operator).selectorLabels | default dict)) $labels) -}}
{{- end -}}
