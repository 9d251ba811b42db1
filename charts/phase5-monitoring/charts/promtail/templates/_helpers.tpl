{{/*
promtail.component: the app.kubernetes.io/component label of the log collector (Promtail or Alloy)'s objects, written
here only. promtail.labels: common.labels with it.
Usage: include "promtail.labels" .
*/}}
{{- define "promtail.component" -}}log-collector{{- end -}}

{{- define "promtail.labels" -}}
{{- include "common.labels" (dict "context" . "component" (include "promtail.component" .)) -}}
{{- end -}}

{{/*
promtail.lokiUrl: where the collector pushes; the release's own Loki unless lokiUrl is set.
*/}}
{{- define "promtail.lokiUrl" -}}
{{- if .Values.lokiUrl -}}
{{- .Values.lokiUrl -}}
{{- else -}}
{{- printf "http://%s:%s/loki/api/v1/push" (include "common.componentFullname" (dict "context" . "component" "loki")) (include "common.port" (list "loki" "web")) -}}
{{- end -}}
{{- end -}}

{{/*
promtail.isAlloy: "true" when the DaemonSet runs Grafana Alloy instead of Promtail.
*/}}
{{- define "promtail.isAlloy" -}}
{{- if eq .Values.collector "alloy" -}}true{{- end -}}
{{- end -}}

{{/*
promtail.collectorVersion: the running collector's image tag, for comments and labels.
*/}}
{{- define "promtail.collectorVersion" -}}
{{- if include "promtail.isAlloy" . -}}
{{- .Values.alloy.image.tag | default .Chart.AppVersion -}}
{{- else -}}
{{- .Values.image.tag | default .Chart.AppVersion -}}
{{- end -}}
{{- end -}}

{{/*
promtail.configKey: the ConfigMap key (and file name) of the running collector's config.
*/}}
{{- define "promtail.configKey" -}}
{{- if include "promtail.isAlloy" . }}config.alloy{{ else }}promtail.yaml{{ end -}}
{{- end -}}

{{/*
promtail.namespaceRegex: the namespaces whose pods' logs are collected. global.phase5.namespaceRegex
(shared with Prometheus), unless the deprecated namespaceRegex is set (it still wins for one
release; the umbrella's NOTES warn).
*/}}
{{- define "promtail.namespaceRegex" -}}
{{- $re := .Values.namespaceRegex | default (dig "phase5" "namespaceRegex" "" (.Values.global | default dict)) -}}
{{- if not $re -}}
{{- fail "promtail: global.phase5.namespaceRegex must be set (the namespaces whose logs are collected)" -}}
{{- end -}}
{{- $re -}}
{{- end -}}
