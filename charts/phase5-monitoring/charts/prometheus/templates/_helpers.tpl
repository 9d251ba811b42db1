{{/*
prometheus.alertRules: files/rules/phase5-alerts.yaml with the placeholders of the chart's
templating scheme replaced (see the comment at the top of that file and the README):
per alert ${threshold} ${for} ${severity} from .Values.alerts.<AlertName>, and the global
${runbookBaseUrl} ${grafanaUrl} ${namespaceRegex} ${releaseNamespace}. Disabled alerts are
left out, as are groups left empty. Any placeholder left over fails the render.
*/}}
{{- define "prometheus.alertRules" -}}
{{- $root := . -}}
{{- $file := .Files.Get "files/rules/phase5-alerts.yaml" | fromYaml -}}
{{- if or (not $file) (hasKey $file "Error") -}}
{{- fail (printf "prometheus: files/rules/phase5-alerts.yaml does not parse: %v" ($file | default dict).Error) -}}
{{- end -}}
{{- $global := dict
  "runbookBaseUrl" (trimSuffix "/" .Values.rules.runbookBaseUrl)
  "grafanaUrl" (trimSuffix "/" .Values.rules.grafanaUrl)
  "namespaceRegex" .Values.phase5.namespaceRegex
  "releaseNamespace" .Release.Namespace -}}
{{- $groups := list -}}
{{- range $group := $file.groups -}}
{{- $rules := list -}}
{{- range $rule := $group.rules -}}
{{- if not (hasKey $root.Values.alerts $rule.alert) -}}
{{- fail (printf "prometheus: alert %q in files/rules/phase5-alerts.yaml has no alerts.%s section in values" $rule.alert $rule.alert) -}}
{{- end -}}
{{- $settings := index $root.Values.alerts $rule.alert -}}
{{- if $settings.enabled -}}
{{- $text := toYaml $rule -}}
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
prometheus.recordingRules: files/rules/recording-rules.yaml as it is (no placeholders);
it must parse.
*/}}
{{- define "prometheus.recordingRules" -}}
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
