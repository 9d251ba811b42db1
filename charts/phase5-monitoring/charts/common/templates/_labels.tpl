{{/*
common.selectorLabels: the labels a selector matches. Name and instance only: they
never change across upgrades (selectors are immutable).
Usage: include "common.selectorLabels" (dict "context" .)
  optional "name": the app.kubernetes.io/name of a second workload of the same chart (a row of
  common.components with "chart"; e.g. thanos-store in the thanos chart), default common.name.
*/}}
{{- define "common.selectorLabels" -}}
{{- include "common.args.require" (list "common.selectorLabels" . (list "context")) -}}
app.kubernetes.io/name: {{ .name | default (include "common.name" .context) }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- end -}}

{{/*
common.labels: the standard labels every object carries.
Usage: include "common.labels" (dict "context" . "component" "server")
  optional "name": as for common.selectorLabels.
*/}}
{{- define "common.labels" -}}
{{- include "common.args.require" (list "common.labels" . (list "context" "component")) -}}
{{- if not .component -}}
{{- fail "common.labels: argument \"component\" must not be empty" -}}
{{- end -}}
{{- $ctx := .context -}}
{{ include "common.selectorLabels" (dict "context" $ctx "name" .name) }}
app.kubernetes.io/version: {{ default $ctx.Chart.Version $ctx.Chart.AppVersion | replace "+" "_" | trunc 63 | quote }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: phase5-monitoring
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
helm.sh/chart: {{ include "common.chart" $ctx }}
{{- with ($ctx.Values.global).commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
common.metricsAnnotations: marks a Service for the stack's self-scrape job.
Usage: include "common.metricsAnnotations" (dict "port" 9090 "path" "/metrics")
*/}}
{{- define "common.metricsAnnotations" -}}
{{- include "common.args.require" (list "common.metricsAnnotations" . (list "port")) -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: {{ .path | default "/metrics" | quote }}
{{- end -}}
