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
{{- printf "%s://%s:%s/loki/api/v1/push" (include "promtail.lokiTls" . | fromJson).scheme (include "common.componentFullname" (dict "context" . "component" "loki")) (include "common.port" (list "loki" "web")) -}}
{{- end -}}
{{- end -}}

{{/*
promtail.lokiTls: how the collector verifies the release's own Loki serving HTTPS
(global.web.loki.tls), as JSON {tls, scheme, caFile, serverName}: the CA mounted from Loki's TLS
Secret (common.webClientVolume) and Loki's Service name. tls is false with lokiUrl set (your
endpoint, as you wrote it) or Loki's TLS off.
Usage: include "promtail.lokiTls" . | fromJson
*/}}
{{- define "promtail.lokiTls" -}}
{{- $w := include "common.web" (dict "context" . "component" "loki") | fromJson -}}
{{- $on := and $w.tls (not .Values.lokiUrl) -}}
{{- toJson (dict "tls" $on "scheme" (ternary "https" "http" $on) "caFile" (printf "%s/ca.crt" (include "common.webClientDir" "loki")) "serverName" $w.serverName) -}}
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
