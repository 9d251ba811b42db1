{{/*
common.selectorLabels: the labels a selector matches. Name and instance only: they
never change across upgrades (selectors are immutable).
Usage: include "common.selectorLabels" (dict "context" .)
  optional "name": the app.kubernetes.io/name of a second workload of the same chart (a row of
  common.components with "chart"; e.g. thanos-store in the thanos chart), default common.name.
*/}}
{{- define "common.selectorLabels" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.selectorLabels" . (list "context")) -}}
{{- end -}}
app.kubernetes.io/name: {{ .name | default (include "common.name" .context) }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- end -}}

{{/*
common.labels: the standard labels every object carries.
Usage: include "common.labels" (dict "context" . "component" "server")
  optional "name": as for common.selectorLabels.
*/}}
{{- define "common.labels" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "component") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.labels" . (list "context" "component")) -}}
{{- end -}}
{{- if not .component -}}
{{- fail "common.labels: argument \"component\" must not be empty" -}}
{{- end -}}
{{- /* Kept in the chart's memo (see common.memo): every object of a component carries the same
labels, and building them costs about as much as a small template. */ -}}
{{- $ctx := .context -}}
{{- if not (index $ctx "phase5Memo") -}}
{{- $_ := set $ctx "phase5Memo" (dict) -}}
{{- end -}}
{{- $key := printf "labels:%s:%s" .component (.name | default "") -}}
{{- if not (hasKey $ctx.phase5Memo $key) -}}
{{- $_ := set $ctx.phase5Memo $key (include "common.labels.render" .) -}}
{{- end -}}
{{- get $ctx.phase5Memo $key -}}
{{- end -}}

{{/* common.labels.render: what common.labels keeps, built (arguments checked there). */}}
{{- define "common.labels.render" -}}
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
