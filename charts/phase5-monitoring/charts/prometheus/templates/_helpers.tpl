{{/*
prometheus.component: the app.kubernetes.io/component label of the Prometheus server's objects, written
here only. prometheus.labels: common.labels with it.
Usage: include "prometheus.labels" .
*/}}
{{- define "prometheus.component" -}}server{{- end -}}

{{- define "prometheus.labels" -}}
{{- include "common.labels" (dict "context" . "component" (include "prometheus.component" .)) -}}
{{- end -}}

{{/*
prometheus.alertRules: files/rules/phase5-alerts.yaml with the placeholders of the chart's
templating scheme replaced (see the comment at the top of that file and the README):
per alert ${threshold} ${for} ${severity} from .Values.alerts.<AlertName>, and the global
${runbookBaseUrl} ${grafanaUrl} ${namespaceRegex} ${releaseNamespace}. Disabled alerts are
left out, as are alerts whose `requires` (a dotted path into .Values, e.g.
scrape.kubeStateMetrics) is off, and groups left empty. Any placeholder left over fails the
render.
*/}}
{{- define "prometheus.alertRules" -}}
{{- include "common.memo" (dict "context" . "template" "prometheus.alertRules.render") -}}
{{- end -}}

{{- define "prometheus.alertRules.render" -}}
{{- $root := . -}}
{{- $file := .Files.Get "files/rules/phase5-alerts.yaml" | fromYaml -}}
{{- if or (not $file) (hasKey $file "Error") -}}
{{- fail (printf "prometheus: files/rules/phase5-alerts.yaml does not parse: %v" ($file | default dict).Error) -}}
{{- end -}}
{{- $global := dict
  "runbookBaseUrl" (trimSuffix "/" .Values.rules.runbookBaseUrl)
  "grafanaUrl" (trimSuffix "/" .Values.rules.grafanaUrl)
  "namespaceRegex" (include "prometheus.namespaceRegex" .)
  "releaseNamespace" .Release.Namespace -}}
{{- $groups := list -}}
{{- range $group := $file.groups -}}
{{- $rules := list -}}
{{- range $rule := $group.rules -}}
{{- if not (hasKey $root.Values.alerts $rule.alert) -}}
{{- fail (printf "prometheus: alert %q in files/rules/phase5-alerts.yaml has no alerts.%s section in values" $rule.alert $rule.alert) -}}
{{- end -}}
{{- $settings := index $root.Values.alerts $rule.alert -}}
{{- $required := true -}}
{{- with $rule.requires -}}
{{- $required = include "prometheus.valueAt" (dict "values" $root.Values "path" .) -}}
{{- end -}}
{{- if and $settings.enabled $required -}}
{{- $text := toYaml (omit $rule "requires") -}}
{{- $values := dict -}}
{{- range $key, $value := omit $settings "enabled" -}}
{{- if kindIs "slice" $value -}}
{{- /* a list (e.g. metric names): ${key} is the regex matching any of them, ${keyCount} how many */ -}}
{{- $quoted := list -}}
{{- range $value }}{{ $quoted = append $quoted (regexQuoteMeta (toString .)) }}{{ end -}}
{{- $_ := set $values $key (join "|" $quoted) -}}
{{- $_ := set $values (printf "%sCount" $key) (len $value) -}}
{{- else -}}
{{- $_ := set $values $key $value -}}
{{- end -}}
{{- end -}}
{{- range $key, $value := merge $values $global -}}
{{- $text = replace (printf "${%s}" $key) (toString $value) $text -}}
{{- end -}}
{{- if contains "${" $text -}}
{{- fail (printf "prometheus: alert %s keeps an unknown placeholder after substitution:\n%s" $rule.alert $text) -}}
{{- end -}}
{{- $rules = append $rules (fromYaml $text) -}}
{{- end -}}
{{- end -}}
{{- if $rules -}}
{{- $groups = append $groups (merge (dict "rules" $rules) (omit $group "rules")) -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "groups" $groups) -}}
{{- end -}}

{{/*
prometheus.valueAt: "true" when the value at a dotted path of .Values is set (truthy), "" when
it is off; a path that does not exist fails the render (a typo would silently drop an alert).
Usage: include "prometheus.valueAt" (dict "values" .Values "path" "scrape.nodeExporter")
*/}}
{{- define "prometheus.valueAt" -}}
{{- $here := .values -}}
{{- range $key := splitList "." .path -}}
{{- if not (and (kindIs "map" $here) (hasKey $here $key)) -}}
{{- fail (printf "prometheus: requires %q: no such value" $.path) -}}
{{- end -}}
{{- $here = index $here $key -}}
{{- end -}}
{{- if $here }}true{{ end -}}
{{- end -}}

{{/*
prometheus.recordingRules: files/rules/recording-rules.yaml as it is (no placeholders);
it must parse.
*/}}
{{- define "prometheus.recordingRules" -}}
{{- include "common.memo" (dict "context" . "template" "prometheus.recordingRules.render") -}}
{{- end -}}

{{- define "prometheus.recordingRules.render" -}}
{{- $text := .Files.Get "files/rules/recording-rules.yaml" -}}
{{- $parsed := fromYaml $text -}}
{{- if or (not $parsed) (hasKey $parsed "Error") -}}
{{- fail (printf "prometheus: files/rules/recording-rules.yaml does not parse: %v" ($parsed | default dict).Error) -}}
{{- end -}}
{{- $text }}
{{ include "prometheus.categoryRules" . }}
{{- end -}}

{{/*
prometheus.categoryRules: one series service:phase5_category:info{service, category,
scrape_job} per Service in phase5.services and phase5.exporters, its category from
phase5.categories (default "application"). The alerts about a service as a whole
(Phase5TargetDown, Phase5MetricsMissing) join it, so they reach the owning team's channel
(Alertmanager routes team channels on `category`). Categories of Services in neither list
are unused (the defaults name the default Services, and renaming a Service must not break the
render).
*/}}
{{- define "prometheus.categoryRules" -}}
{{- $known := concat .Values.phase5.services .Values.phase5.exporters -}}
{{- if $known }}
  - name: phase5-service-categories
    rules:
      {{- range $job := list (dict "name" "phase5-services" "names" .Values.phase5.services) (dict "name" "phase5-exporters" "names" .Values.phase5.exporters) }}
      {{- range $svc := $job.names }}
      - record: service:phase5_category:info
        expr: vector(1)
        labels:
          service: {{ $svc | quote }}
          category: {{ get $.Values.phase5.categories $svc | default "application" | quote }}
          scrape_job: {{ $job.name }}
      {{- end }}
      {{- end }}
{{- end }}
{{- end -}}

{{/*
prometheus.remoteWriteSecretName: the Secret holding remote-write credentials ("" when none).
*/}}
{{- define "prometheus.remoteWriteSecretName" -}}
{{- if .Values.remoteWrite.existingSecret -}}
{{- .Values.remoteWrite.existingSecret -}}
{{- else if .Values.remoteWrite.secretData -}}
{{- printf "%s-remote-write" (include "common.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Where the remote-write Secret is mounted. */}}
{{- define "prometheus.remoteWriteSecretDir" -}}
/etc/prometheus/secrets/remote-write
{{- end -}}

{{/* Regex (fully anchored by Prometheus) matching a list of Service names. */}}
{{- define "prometheus.namesRegex" -}}
{{- $quoted := list -}}
{{- range . }}{{ $quoted = append $quoted (regexQuoteMeta .) }}{{ end -}}
{{- join "|" $quoted -}}
{{- end -}}

{{/*
prometheus.annotationRelabel: the relabelling shared by the annotation-driven jobs:
prometheus.io/port, /path and /scheme, then the namespace, service and pod labels every
Phase 5 series carries.
*/}}
{{- define "prometheus.annotationRelabel" -}}
- source_labels: [__meta_kubernetes_service_annotation_prometheus_io_scheme]
  regex: (https?)
  target_label: __scheme__
- source_labels: [__meta_kubernetes_service_annotation_prometheus_io_path]
  regex: (.+)
  target_label: __metrics_path__
# Every port of an endpoint becomes a target; the annotated port wins, and the targets that
# end up identical collapse into one.
- source_labels: [__address__, __meta_kubernetes_service_annotation_prometheus_io_port]
  regex: (.+?)(?::\d+)?;(\d+)
  replacement: $1:$2
  target_label: __address__
- source_labels: [__meta_kubernetes_namespace]
  target_label: namespace
- source_labels: [__meta_kubernetes_service_name]
  target_label: service
- source_labels: [__meta_kubernetes_pod_name]
  target_label: pod
{{- end -}}


{{/*
prometheus.sloRules: the rule file of the service level objectives in .Values.slos (empty when
there are none, or alerts.ErrorBudgetBurn.enabled is false): per service and SLI (availability:
the 5xx share of http_requests_total; latency: the share of requests slower than the threshold,
from the http_request_duration_seconds buckets) the error ratio over the workbook's windows
(5m 30m 1h 2h 6h 1d 3d), and the multi-window multi-burn-rate alerts of the Google SRE workbook:
page at 14.4x the budget over 1h and 5m, and 6x over 6h and 30m; ticket at 3x over 1d and 2h,
and 1x over 3d and 6h. A service that is not in phase5.services fails the render.
*/}}
{{- define "prometheus.sloRules" -}}
{{- include "common.memo" (dict "context" . "template" "prometheus.sloRules.render") -}}
{{- end -}}

{{- define "prometheus.sloRules.render" -}}
{{- $root := . -}}
{{- $settings := .Values.alerts.ErrorBudgetBurn -}}
{{- if and .Values.slos $settings.enabled -}}
{{- $windows := list "5m" "30m" "1h" "2h" "6h" "1d" "3d" -}}
{{- $pairs := list
  (dict "long" "1h" "short" "5m" "factor" "14.4" "kind" "page")
  (dict "long" "6h" "short" "30m" "factor" "6" "kind" "page")
  (dict "long" "1d" "short" "2h" "factor" "3" "kind" "ticket")
  (dict "long" "3d" "short" "6h" "factor" "1" "kind" "ticket") -}}
{{- $base := trimSuffix "/" .Values.rules.runbookBaseUrl -}}
{{- $grafana := trimSuffix "/" .Values.rules.grafanaUrl -}}
{{- $slis := list -}}
{{- range $svc := keys .Values.slos | sortAlpha -}}
{{- if not (has $svc $root.Values.phase5.services) -}}
{{- fail (printf "prometheus: slos.%s: %q is not a service of phase5.services (%s)" $svc $svc (join ", " $root.Values.phase5.services)) -}}
{{- end -}}
{{- $slo := index $root.Values.slos $svc -}}
{{- if $slo.availability -}}
{{- $slis = append $slis (dict "service" $svc "slo" "availability" "objective" $slo.availability
  "errors" (printf "http_requests_total{service=%q, status=~\"5..\"}" $svc)
  "total" (printf "http_requests_total{service=%q}" $svc)
  "what" "requests answered without a 5xx") -}}
{{- end -}}
{{- with $slo.latency -}}
{{- $le := printf "%v" .threshold -}}
{{- $slis = append $slis (dict "service" $svc "slo" "latency" "objective" .objective
  "good" (printf "http_request_duration_seconds_bucket{service=%q, le=~\"%s(\\\\.0)?\"}" $svc (regexQuoteMeta $le))
  "total" (printf "http_request_duration_seconds_count{service=%q}" $svc)
  "what" (printf "requests faster than %ss" $le)) -}}
{{- end -}}
{{- end -}}
groups:
  - name: phase5-slo-errors
    rules:
      {{- range $sli := $slis }}
      {{- range $w := $windows }}
      - record: service:slo_errors:ratio_rate{{ $w }}
        expr: |
          {{- if eq $sli.slo "availability" }}
          sum by (namespace, service) (rate({{ $sli.errors }}[{{ $w }}]))
          /
          sum by (namespace, service) (rate({{ $sli.total }}[{{ $w }}]))
          {{- else }}
          1 - (
            sum by (namespace, service) (rate({{ $sli.good }}[{{ $w }}]))
            /
            sum by (namespace, service) (rate({{ $sli.total }}[{{ $w }}]))
          )
          {{- end }}
        labels:
          slo: {{ $sli.slo }}
      {{- end }}
      {{- end }}
  - name: phase5-slo-alerts
    rules:
      {{- range $sli := $slis }}
      {{- range $p := $pairs }}
      {{- $budget := printf "(%s * (1 - %v / 100))" $p.factor $sli.objective }}
      - alert: ErrorBudgetBurn
        expr: |
          service:slo_errors:ratio_rate{{ $p.long }}{service={{ $sli.service | quote }}, slo={{ $sli.slo | quote }}} > {{ $budget }}
          and
          service:slo_errors:ratio_rate{{ $p.short }}{service={{ $sli.service | quote }}, slo={{ $sli.slo | quote }}} > {{ $budget }}
        for: {{ index $settings (printf "%sFor" $p.kind) }}
        labels:
          severity: {{ index $settings (printf "%sSeverity" $p.kind) }}
          category: slo
          service: {{ $sli.service | quote }}
          slo: {{ $sli.slo }}
          long_window: {{ $p.long | quote }}
          short_window: {{ $p.short | quote }}
          burn_rate: {{ $p.factor | quote }}
        annotations:
          summary: {{ printf "%s burns its %s error budget %sx too fast" $sli.service $sli.slo $p.factor | quote }}
          description: {{ printf "{{ $labels.service }} in {{ $labels.namespace }}: the error ratio over %s is {{ printf `%%.2g` $value }}, more than %s times the budget of the %s objective (%v %% %s), and over %s too: at this rate the 30-day budget lasts %s." $p.long $p.factor $sli.slo $sli.objective $sli.what $p.short (index (dict "14.4" "about 2 days" "6" "5 days" "3" "10 days" "1" "30 days") $p.factor) | quote }}
          runbook_url: {{ printf "%s/ErrorBudgetBurn.md" $base }}
          dashboard: {{ printf "%s/d/phase5-slo" $grafana }}
      {{- end }}
      {{- end }}
  - name: phase5-slo-objectives
    rules:
      {{- range $sli := $slis }}
      - record: service:slo_objective:ratio
        expr: vector({{ $sli.objective }} / 100)
        labels:
          service: {{ $sli.service | quote }}
          slo: {{ $sli.slo }}
      {{- end }}
{{- end -}}
{{- end -}}

{{/*
prometheus.ruleFiles: the rule files this Prometheus loads, as a dict file name (without
.yaml) -> file content: the same texts the rules ConfigMap carries (full-stack mode) and the
PrometheusRule objects carry (operator mode), so both modes load one set of rules.
*/}}
{{- define "prometheus.ruleFiles" -}}
{{- $files := dict "recording-rules" (include "prometheus.recordingRules" .) "phase5-alerts" (include "prometheus.alertRules" .) -}}
{{- with include "prometheus.sloRules" . -}}
{{- $_ := set $files "slo-rules" . -}}
{{- end -}}
{{- range $name, $content := .Values.rules.extra -}}
{{- $_ := set $files $name (toYaml $content) -}}
{{- end -}}
{{- toJson $files -}}
{{- end -}}

{{/*
prometheus.scrapeJobs: the Phase 5 scrape jobs (phase5-services, phase5-exporters) as a list of
{name, names}; a job whose list of Service names is empty is left out.
*/}}
{{- define "prometheus.scrapeJobs" -}}
{{- $jobs := list -}}
{{- range $job := list (dict "name" "phase5-services" "names" .Values.phase5.services) (dict "name" "phase5-exporters" "names" .Values.phase5.exporters) -}}
{{- if $job.names -}}
{{- $jobs = append $jobs $job -}}
{{- end -}}
{{- end -}}
{{- toJson $jobs -}}
{{- end -}}

{{/*
prometheus.operatorRelabelings: the relabel_configs of a Phase 5 scrape job (as in
files/prometheus.yml: namespace regex, Service names, the prometheus.io/scrape annotation, then
prometheus.annotationRelabel) in the ServiceMonitor's camelCase form, followed by what makes the
targets' labels the same as the chart's own job gives: prometheus-operator adds `container` and
`endpoint` (dropped) and names the job after the Service (set to the chart's job name).
Usage: include "prometheus.operatorRelabelings" (dict "context" . "job" $job)
*/}}
{{- define "prometheus.operatorRelabelings" -}}
{{- $ctx := .context -}}
{{- $own := list
  (dict "source_labels" (list "__meta_kubernetes_namespace") "regex" (include "prometheus.namespaceRegex" $ctx) "action" "keep")
  (dict "source_labels" (list "__meta_kubernetes_service_name") "regex" (include "prometheus.namesRegex" .job.names) "action" "keep")
  (dict "source_labels" (list "__meta_kubernetes_service_annotation_prometheus_io_scrape") "regex" "true" "action" "keep") -}}
{{- $all := concat $own (include "prometheus.annotationRelabel" $ctx | fromYamlArray) -}}
{{- $keys := dict "source_labels" "sourceLabels" "target_label" "targetLabel" "regex" "regex" "replacement" "replacement" "action" "action" "separator" "separator" "modulus" "modulus" -}}
{{- $out := list -}}
{{- range $r := $all -}}
{{- $c := dict -}}
{{- range $k, $v := $r -}}
{{- if not (hasKey $keys $k) -}}
{{- fail (printf "prometheus: relabel key %q has no ServiceMonitor equivalent in prometheus.operatorRelabelings" $k) -}}
{{- end -}}
{{- $_ := set $c (get $keys $k) $v -}}
{{- end -}}
{{- $out = append $out $c -}}
{{- end -}}
{{- $out = append $out (dict "action" "labeldrop" "regex" "container|endpoint") -}}
{{- $out = append $out (dict "action" "replace" "targetLabel" "job" "replacement" .job.name) -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
prometheus.namespaceRegex: the namespaces of the Phase 5 services. global.phase5.namespaceRegex
(shared with the log collector), unless the deprecated phase5.namespaceRegex is set (it still
wins for one release; the umbrella's NOTES warn).
*/}}
{{- define "prometheus.namespaceRegex" -}}
{{- $re := .Values.phase5.namespaceRegex | default (dig "phase5" "namespaceRegex" "" (.Values.global | default dict)) -}}
{{- if not $re -}}
{{- fail "prometheus: global.phase5.namespaceRegex must be set (the namespaces of the Phase 5 services)" -}}
{{- end -}}
{{- $re -}}
{{- end -}}
