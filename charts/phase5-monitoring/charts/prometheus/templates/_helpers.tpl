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
prometheus.alertRules: files/rules/phase5-alerts.yaml rendered by common.ruleFile with the chart's
templating scheme (see the comment at the top of that file and the README): per alert ${threshold}
${for} ${severity} from .Values.alerts.<AlertName>, and the global ${runbookBaseUrl} ${grafanaUrl}
${namespaceRegex} ${releaseNamespace} ${prometheusReplicas} ${ownJobServices} (a regex of
prometheus.ownJobServices). Disabled alerts are left out, as are
alerts whose `requires` (a dotted path into .Values, e.g. scrape.kubeStateMetrics) is off, and
groups left empty. Any placeholder left over fails the render. An alert's `seriesByService`
(Phase5MetricsMissing) becomes ${seriesByServiceNames} and ${seriesByServiceTerms}
(prometheus.seriesByService) before that.
*/}}
{{- define "prometheus.alertRules" -}}
{{- include "common.memo" (dict "context" . "template" "prometheus.alertRules.render") -}}
{{- end -}}

{{- define "prometheus.alertRules.render" -}}
{{- $own := list -}}
{{- range include "prometheus.ownJobServices" . | fromJsonArray -}}
{{- $own = append $own (regexQuoteMeta .) -}}
{{- end -}}
{{- $global := dict
  "runbookBaseUrl" (trimSuffix "/" .Values.rules.runbookBaseUrl)
  "grafanaUrl" (trimSuffix "/" .Values.rules.grafanaUrl)
  "namespaceRegex" (include "prometheus.namespaceRegex" .)
  "releaseNamespace" .Release.Namespace
  "ownJobServices" (join "|" $own)
  "prometheusReplicas" (int .Values.replicas) -}}
{{- $alerts := dict -}}
{{- range $name, $settings := .Values.alerts -}}
{{- if hasKey $settings "seriesByService" -}}
{{- $settings = merge (include "prometheus.seriesByService" $settings.seriesByService | fromJson) (omit $settings "seriesByService") -}}
{{- end -}}
{{- $_ := set $alerts $name $settings -}}
{{- end -}}
{{- include "common.ruleFile" (dict "context" . "file" "files/rules/phase5-alerts.yaml" "settings" $alerts "settingsPath" "alerts" "globals" $global) | default "groups: []" -}}
{{- end -}}

{{/*
prometheus.ownJobServices: the Services of the release whose components Prometheus scrapes with a
job of their own (common.components: scrapeJob other than monitoring-stack, i.e. kube-state-metrics
and node-exporter), as a JSON list of names. The monitoring-stack job leaves them out, and so does
MonitoringTargetMissing (their own alerts, KubeStateMetricsDown and NodeExporterDown, watch them).
*/}}
{{- define "prometheus.ownJobServices" -}}
{{- $own := list -}}
{{- range include "common.components" . | fromJsonArray -}}
{{- if ne .scrapeJob "monitoring-stack" -}}
{{- $own = append $own (include "common.componentFullname" (dict "context" $ "component" .name)) -}}
{{- end -}}
{{- end -}}
{{- toJson $own -}}
{{- end -}}

{{/*
prometheus.seriesByService: Phase5MetricsMissing's settings for the services held to a list of
series of their own (service -> series names), as JSON {seriesByServiceNames, seriesByServiceTerms}:
the services (regex-quoted, joined with |; empty when there are none), to exclude from the default
list, and one `or` term per service, on one line.
Usage: include "prometheus.seriesByService" .Values.alerts.Phase5MetricsMissing.seriesByService | fromJson
*/}}
{{- define "prometheus.seriesByService" -}}
{{- $names := list -}}
{{- $terms := "" -}}
{{- range $svc := keys . | sortAlpha -}}
{{- $list := index $ $svc -}}
{{- $quoted := list -}}
{{- range $list }}{{ $quoted = append $quoted (regexQuoteMeta (toString .)) }}{{ end -}}
{{- $names = append $names (regexQuoteMeta $svc) -}}
{{- $up := printf "up{job=\"phase5-services\", service=%q} == 1" $svc -}}
{{- $terms = printf "%s or on (namespace, service) label_replace(((count by (namespace, service) (group by (namespace, service, __name__) ({job=\"phase5-services\", service=%q, __name__=~%q})) or on (namespace, service) 0 * group by (namespace, service) (%s)) < %d and on (namespace, service) (%s)), \"required_series\", %q, \"\", \"\")" $terms $svc (join "|" $quoted) $up (len $list) $up (join "|" $list) -}}
{{- end -}}
{{- toJson (dict "seriesByServiceNames" (ternary (join "|" $names) "" (gt (len $names) 0)) "seriesByServiceTerms" $terms) -}}
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
{{ include "prometheus.discoveryRules" . }}
{{- end -}}

{{/*
prometheus.discoveryRules: the group phase5-service-discovery, what the missing-signal and
SLO alerts know about the Phase 5 services without a list in the release's values:
- service:phase5_expected:info{namespace, service, scrape_job}: every service the cluster says
  should be scraped, from kube-state-metrics' *_labels / *_annotations series (the allowlists
  the kube-state-metrics subchart sets from global.phase5): a Service in the Phase 5 namespaces
  with the selector labels (or named in phase5.services / phase5.exporters) and the annotation
  prometheus.io/scrape: "true", and a Deployment or StatefulSet with the selector labels and
  that annotation (its Service is expected under the workload's name); scrape_job as the scrape
  jobs would classify it (exporter: the selector and exporterSelector labels, or a name of
  phase5.exporters).
- service:phase5_category_fallback:info{service, category}: one series per phase5.categories entry.
- service:phase5_category:info{namespace, service, category}: the team of every expected or
  scraped Phase 5 service: the team label (global.phase5.teamLabel) of its Service, else of the
  Deployment or StatefulSet of the same name, else phase5.categories, else "application". The
  labels are read over the last 2 minutes (last_over_time), so a failed kube-state-metrics scrape
  or a restart does not flip every team to "application" (which would restart the alerts' `for`
  and re-notify); topk keeps one team per service while a changed label is in that window (two
  would make the alerts' group_left joins fail).
The alerts join it on (namespace, service). Usage: include "prometheus.discoveryRules" .
*/}}
{{- define "prometheus.discoveryRules" -}}
{{- $d := include "prometheus.discovery" . | fromJson -}}
{{- $ns := include "prometheus.namespaceRegex" . -}}
{{- $scrape := "annotation_prometheus_io_scrape=\"true\"" -}}
{{- $kinds := list (dict "kind" "service" "id" "service") (dict "kind" "deployment" "id" "deployment") (dict "kind" "statefulset" "id" "statefulset") -}}
{{- $byJob := dict "phase5-services" list "phase5-exporters" list -}}
{{- range $k := $kinds -}}
{{- $opted := printf "kube_%s_labels{namespace=~%q, %s}" $k.kind $ns $d.selectorKSM -}}
{{- if and (eq $k.kind "service") $d.legacyNames -}}
{{- $opted = printf "(%s or kube_service_labels{namespace=~%q, service=~%q})" $opted $ns $d.legacyNames -}}
{{- end -}}
{{- $opted = printf "(%s and on (namespace, %s) kube_%s_annotations{%s})" $opted $k.id $k.kind $scrape -}}
{{- $exporter := "" -}}
{{- if $d.exporterKSM -}}
{{- $exporter = printf "kube_%s_labels{namespace=~%q, %s, %s}" $k.kind $ns $d.selectorKSM $d.exporterKSM -}}
{{- end -}}
{{- if and (eq $k.kind "service") $d.exporterNames -}}
{{- $byName := printf "kube_service_labels{namespace=~%q, service=~%q}" $ns $d.exporterNames -}}
{{- $exporter = ternary (printf "(%s or %s)" $exporter $byName) $byName (ne $exporter "") -}}
{{- end -}}
{{- $rename := ternary "%s" (printf "label_replace(%%s, \"service\", \"$1\", %q, \"(.+)\")" $k.id) (eq $k.id "service") -}}
{{- if $exporter -}}
{{- $_ := set $byJob "phase5-services" (append (get $byJob "phase5-services") (printf $rename (printf "(%s unless on (namespace, %s) %s)" $opted $k.id $exporter))) -}}
{{- $_ := set $byJob "phase5-exporters" (append (get $byJob "phase5-exporters") (printf $rename (printf "(%s and on (namespace, %s) %s)" $opted $k.id $exporter))) -}}
{{- else -}}
{{- $_ := set $byJob "phase5-services" (append (get $byJob "phase5-services") (printf $rename $opted)) -}}
{{- end -}}
{{- end }}
  - name: phase5-service-discovery
    rules:
      - record: service:phase5_expected:info
        expr: |
          {{- range $i, $job := list "phase5-services" "phase5-exporters" }}
          {{- with get $byJob $job }}
          {{- if $i }}
          or
          {{- end }}
          label_replace(
            group by (namespace, service) (
              {{- range $j, $term := . }}
              {{ if $j }}or {{ end }}{{ $term }}
              {{- end }}
            ),
            "scrape_job", {{ $job | quote }}, "", ""
          )
          {{- end }}
          {{- end }}
      {{- range $svc, $category := .Values.phase5.categories }}
      - record: service:phase5_category_fallback:info
        expr: vector(1)
        labels:
          service: {{ $svc | quote }}
          category: {{ $category | quote }}
      {{- end }}
      {{- $universe := "group by (namespace, service) (service:phase5_expected:info or up{job=~\"phase5-services|phase5-exporters\"})" }}
      - record: service:phase5_category:info
        expr: |-
          {{- range $i, $k := $kinds }}
          {{- $team := printf "label_replace(last_over_time(kube_%s_labels{namespace=~%q, %s!=\"\"}[2m]), \"category\", \"$1\", %q, \"(.+)\")" $k.kind $ns $d.teamKSM $d.teamKSM }}
          {{- if ne $k.id "service" }}
          {{- $team = printf "label_replace(%s, \"service\", \"$1\", %q, \"(.+)\")" $team $k.id }}
          {{- end }}
          {{ if $i }}or on (namespace, service)
          {{ end }}topk by (namespace, service) (1, max by (namespace, service, category) ({{ $team }}))
          {{- end }}
          {{- if .Values.phase5.categories }}
          or on (namespace, service)
          {{ $universe }} * on (service) group_left (category) service:phase5_category_fallback:info
          {{- end }}
          or on (namespace, service)
          label_replace({{ $universe }}, "category", "application", "", "")
{{- end -}}

{{/*
prometheus.discovery: global.phase5's selector, exporterSelector and teamLabel in the forms the
scrape relabelling and the rules need, as JSON:
  selectorSD, exporterSD   {source_labels, regex} over the Service's __meta_kubernetes_service_label_*
                           (exporterSD: the selector and exporterSelector labels together; {} when
                           exporterSelector is empty)
  selectorKSM, exporterKSM PromQL matchers on kube-state-metrics' label_* labels
  teamKSM                  the team label's kube-state-metrics name (label_<sanitized key>)
  serviceNames, exporterNames, legacyNames  regexes of phase5.services, .exporters, both ("" when empty)
Label names are sanitized as Prometheus and kube-state-metrics both do: every character outside
[a-zA-Z0-9_] becomes "_". Usage: include "prometheus.discovery" . | fromJson
*/}}
{{- define "prometheus.discovery" -}}
{{- $g := dig "phase5" dict (.Values.global | default dict) -}}
{{- $sel := $g.selector | default dict -}}
{{- if not $sel -}}
{{- fail "prometheus: global.phase5.selector must name at least one label (the labels that opt a Service in to monitoring)" -}}
{{- end -}}
{{- if not $g.teamLabel -}}
{{- fail "prometheus: global.phase5.teamLabel must be set (the label key of a service's team)" -}}
{{- end -}}
{{- $exp := $g.exporterSelector | default dict -}}
{{- $out := dict "selectorSD" (include "prometheus.labelMatch" $sel | fromJson) "selectorKSM" (include "prometheus.ksmMatchers" $sel) -}}
{{- $_ := set $out "exporterSD" dict -}}
{{- $_ := set $out "exporterKSM" "" -}}
{{- if $exp -}}
{{- $_ := set $out "exporterSD" (include "prometheus.labelMatch" (merge (deepCopy $exp) $sel) | fromJson) -}}
{{- $_ := set $out "exporterKSM" (include "prometheus.ksmMatchers" $exp) -}}
{{- end -}}
{{- $_ := set $out "teamKSM" (printf "label_%s" (regexReplaceAll "[^a-zA-Z0-9_]" $g.teamLabel "_")) -}}
{{- $_ := set $out "serviceNames" (include "prometheus.namesRegex" .Values.phase5.services) -}}
{{- $_ := set $out "exporterNames" (include "prometheus.namesRegex" .Values.phase5.exporters) -}}
{{- $_ := set $out "legacyNames" (include "prometheus.namesRegex" (concat .Values.phase5.services .Values.phase5.exporters)) -}}
{{- toJson $out -}}
{{- end -}}

{{/* prometheus.labelMatch: a label map as {source_labels, regex} over a Service's discovered labels. */}}
{{- define "prometheus.labelMatch" -}}
{{- $src := list -}}
{{- $re := list -}}
{{- range $k := keys . | sortAlpha -}}
{{- $src = append $src (printf "__meta_kubernetes_service_label_%s" (regexReplaceAll "[^a-zA-Z0-9_]" $k "_")) -}}
{{- $re = append $re (regexQuoteMeta (toString (get $ $k))) -}}
{{- end -}}
{{- toJson (dict "source_labels" $src "regex" (join ";" $re)) -}}
{{- end -}}

{{/* prometheus.ksmMatchers: a label map as PromQL matchers on kube-state-metrics' label_* labels. */}}
{{- define "prometheus.ksmMatchers" -}}
{{- $m := list -}}
{{- range $k := keys . | sortAlpha -}}
{{- $m = append $m (printf "label_%s=%q" (regexReplaceAll "[^a-zA-Z0-9_]" $k "_") (toString (get $ $k))) -}}
{{- end -}}
{{- join ", " $m -}}
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
from the http_request_duration_seconds buckets) the error ratio over the workbook's windows, and
the multi-window multi-burn-rate alerts of the Google SRE workbook, both from the data file
files/slo-burn-rates.json: page at 14.4x the budget over 1h and 5m, and 6x over 6h and 30m;
ticket at 3x over 1d and 2h, and 1x over 3d and 6h. A key of `slos` is a value of the `service` label (the Service's name):
only its shape is checked at render (the schema), no list of services; a service with an SLO
and no traffic is Phase5MetricsMissing's business (its http_requests_total is missing), not a
render error. Each alert carries its service's team as `category` (service:phase5_category:info,
else `application`), so the team's channel gets it beside the severity channels.
*/}}
{{- define "prometheus.sloRules" -}}
{{- include "common.memo" (dict "context" . "template" "prometheus.sloRules.render") -}}
{{- end -}}

{{- define "prometheus.sloRules.render" -}}
{{- $root := . -}}
{{- $settings := .Values.alerts.ErrorBudgetBurn -}}
{{- if and .Values.slos $settings.enabled -}}
{{- $burnRates := .Files.Get "files/slo-burn-rates.json" | fromJson -}}
{{- $windows := $burnRates.windows -}}
{{- $pairs := $burnRates.alerts -}}
{{- $base := trimSuffix "/" .Values.rules.runbookBaseUrl -}}
{{- $grafana := trimSuffix "/" .Values.rules.grafanaUrl -}}
{{- $slis := list -}}
{{- range $svc := keys .Values.slos | sortAlpha -}}
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
      {{- $burn := printf "(\n  service:slo_errors:ratio_rate%s{service=%q, slo=%q} > %s\n  and\n  service:slo_errors:ratio_rate%s{service=%q, slo=%q} > %s\n)" $p.long $sli.service $sli.slo $budget $p.short $sli.service $sli.slo $budget }}
      - alert: ErrorBudgetBurn
        expr: |
          {{- $burn | nindent 10 }}
          * on (namespace, service) group_left (category)
          service:phase5_category:info
          or
          label_replace(
            {{- $burn | nindent 12 }}
            unless on (namespace, service) service:phase5_category:info,
            "category", "application", "", ""
          )
        for: {{ index $settings (printf "%sFor" $p.kind) }}
        labels:
          severity: {{ index $settings (printf "%sSeverity" $p.kind) }}
          service: {{ $sli.service | quote }}
          slo: {{ $sli.slo }}
          long_window: {{ $p.long | quote }}
          short_window: {{ $p.short | quote }}
          burn_rate: {{ $p.factor | quote }}
        annotations:
          summary: {{ printf "%s burns its %s error budget %sx too fast" $sli.service $sli.slo $p.factor | quote }}
          description: {{ printf "{{ $labels.service }} in {{ $labels.namespace }}: the error ratio over %s is {{ printf `%%.2g` $value }}, more than %s times the budget of the %s objective (%v %% %s), and over %s too: at this rate the 30-day budget lasts %s." $p.long $p.factor $sli.slo $sli.objective $sli.what $p.short $p.budgetLasts | quote }}
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
prometheus.scrapeJobs: the Phase 5 scrape jobs as a list of {name, kind}: phase5-services (kind
"service") and phase5-exporters (kind "exporter"). Both always exist: Services opt in by labels.
*/}}
{{- define "prometheus.scrapeJobs" -}}
{{- toJson (list (dict "name" "phase5-services" "kind" "service") (dict "name" "phase5-exporters" "kind" "exporter")) -}}
{{- end -}}

{{/*
prometheus.jobRelabel: the relabel_configs that choose the Services of one Phase 5 scrape job,
shared by files/prometheus.yml and the ServiceMonitors (operator mode):
  1. the namespace matches the namespace regex, and the Service is annotated prometheus.io/scrape: "true";
  2. __tmp_phase5_kind = "service" when the Service carries every global.phase5.selector label or
     is named in phase5.services (deprecated list, kept so that an upgrade scrapes what 0.5.x did);
  3. __tmp_phase5_kind = "exporter" when it also carries every global.phase5.exporterSelector
     label, or is named in phase5.exporters;
  4. keep the kind of this job. (Labels starting with __ are dropped after relabelling.)
Usage: include "prometheus.jobRelabel" (dict "context" . "job" $job)   ($job from prometheus.scrapeJobs)
*/}}
{{- define "prometheus.jobRelabel" -}}
{{- $ctx := .context -}}
{{- $d := include "prometheus.discovery" $ctx | fromJson -}}
{{- $out := list
  (dict "source_labels" (list "__meta_kubernetes_namespace") "regex" (include "prometheus.namespaceRegex" $ctx) "action" "keep")
  (dict "source_labels" (list "__meta_kubernetes_service_annotation_prometheus_io_scrape") "regex" "true" "action" "keep")
  (dict "source_labels" $d.selectorSD.source_labels "regex" $d.selectorSD.regex "target_label" "__tmp_phase5_kind" "replacement" "service") -}}
{{- with $d.serviceNames -}}
{{- $out = append $out (dict "source_labels" (list "__meta_kubernetes_service_name") "regex" . "target_label" "__tmp_phase5_kind" "replacement" "service") -}}
{{- end -}}
{{- with $d.exporterSD -}}
{{- $out = append $out (dict "source_labels" .source_labels "regex" .regex "target_label" "__tmp_phase5_kind" "replacement" "exporter") -}}
{{- end -}}
{{- with $d.exporterNames -}}
{{- $out = append $out (dict "source_labels" (list "__meta_kubernetes_service_name") "regex" . "target_label" "__tmp_phase5_kind" "replacement" "exporter") -}}
{{- end -}}
{{- $out = append $out (dict "source_labels" (list "__tmp_phase5_kind") "regex" .job.kind "action" "keep") -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
prometheus.operatorRelabelings: the relabel_configs of a Phase 5 scrape job (as in
files/prometheus.yml: prometheus.jobRelabel, then prometheus.annotationRelabel) in the
ServiceMonitor's camelCase form, followed by what makes the targets' labels the same as the
chart's own job gives: prometheus-operator adds `container` and `endpoint` (dropped) and names
the job after the Service (set to the chart's job name).
Usage: include "prometheus.operatorRelabelings" (dict "context" . "job" $job)
*/}}
{{- define "prometheus.operatorRelabelings" -}}
{{- $ctx := .context -}}
{{- $all := concat (include "prometheus.jobRelabel" . | fromYamlArray) (include "prometheus.annotationRelabel" $ctx | fromYamlArray) -}}
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

{{/*
prometheus.jobSeries: what one scrape job stores and how much a scrape may bring (README "What
Prometheus stores"): sample_limit, label_limit and body_size_limit from scrape.jobs.<job>.limits
(0: left out, no limit), then metric_relabel_configs:
  - an infrastructure job (files/keep-lists.yaml has its name) keeps the metric names of its
    generated keep-list plus scrape.jobs.<job>.extraKeep; kubelet and cadvisor also drop the
    series of namespaces other than the Phase 5 ones, the release's and
    scrape.kubelet.extraPodNamespaces (series without a namespace stay). scrape.keepAllSeries
    turns both off;
  - a Phase 5 job keeps scrape.jobs.<job>.keep when it is set, and drops scrape.jobs.<job>.drop.
Usage: include "prometheus.jobSeries" (dict "context" . "job" "kubelet")
*/}}
{{- define "prometheus.jobSeries" -}}
{{- $ctx := .context -}}
{{- $cfg := index $ctx.Values.scrape.jobs .job | default dict -}}
{{- if not $cfg.limits -}}
{{- fail (printf "prometheus: scrape.jobs.%s.limits must be set (0 for no limit)" .job) -}}
{{- end -}}
{{- $lists := $ctx.Files.Get "files/keep-lists.yaml" | fromYaml -}}
{{- with int64 $cfg.limits.sampleLimit }}
sample_limit: {{ . }}
{{- end }}
{{- with int64 $cfg.limits.labelLimit }}
label_limit: {{ . }}
{{- end }}
{{- if ne (toString $cfg.limits.bodySizeLimit) "0" }}
body_size_limit: {{ $cfg.limits.bodySizeLimit }}
{{- end }}
{{- $rules := list -}}
{{- if hasKey $lists .job -}}
{{- if not $ctx.Values.scrape.keepAllSeries -}}
{{- $keep := concat (index $lists .job) ($cfg.extraKeep | default list) -}}
{{- $rules = append $rules (dict "source_labels" (list "__name__") "regex" (join "|" $keep) "action" "keep") -}}
{{- if has .job (list "kubelet" "cadvisor") -}}
{{- $ns := concat (list (include "prometheus.namespaceRegex" $ctx) (regexQuoteMeta $ctx.Release.Namespace)) $ctx.Values.scrape.kubelet.extraPodNamespaces -}}
{{- $rules = append $rules (dict "source_labels" (list "namespace") "regex" (join "|" $ns) "target_label" "__tmp_namespace_stored" "replacement" "true") -}}
{{- $rules = append $rules (dict "source_labels" (list "namespace" "__tmp_namespace_stored") "regex" ".+;" "action" "drop") -}}
{{- $rules = append $rules (dict "regex" "__tmp_namespace_stored" "action" "labeldrop") -}}
{{- end -}}
{{- end -}}
{{- else -}}
{{- with $cfg.keep -}}
{{- $rules = append $rules (dict "source_labels" (list "__name__") "regex" (join "|" .) "action" "keep") -}}
{{- end -}}
{{- with $cfg.drop -}}
{{- $rules = append $rules (dict "source_labels" (list "__name__") "regex" (join "|" .) "action" "drop") -}}
{{- end -}}
{{- end -}}
{{- with $rules }}
metric_relabel_configs:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
prometheus.webTargets: the servers behind a web config (common.webComponents) whose client files
(common.webClientVolume) the Prometheus container mounts, as JSON: itself and Alertmanager
(self-scrape, alert delivery), node-exporter and kube-state-metrics while their jobs are on
(scrape.nodeExporter, scrape.kubeStateMetrics), Loki, Grafana and the log collector
(common.webTlsComponents: their CA only) and Thanos while the monitoring-stack job is on
(scrape.monitoringStack). Each mounts nothing while its web config is off.
Usage: include "prometheus.webTargets" . | fromJsonArray
*/}}
{{- define "prometheus.webTargets" -}}
{{- $targets := list "prometheus" "alertmanager" -}}
{{- if .Values.scrape.monitoringStack -}}{{- $targets = concat $targets (include "common.webTlsComponents" . | fromJsonArray) -}}{{- end -}}
{{- if .Values.scrape.nodeExporter -}}{{- $targets = append $targets "node-exporter" -}}{{- end -}}
{{- if .Values.scrape.kubeStateMetrics -}}{{- $targets = append $targets "kube-state-metrics" -}}{{- end -}}
{{- if .Values.scrape.monitoringStack -}}{{- $targets = append $targets "thanos" -}}{{- end -}}
{{- toJson $targets -}}
{{- end -}}

{{/*
prometheus.webScrape: the http_config lines of a scrape job whose target serves a web config
(global.web.<component>): scheme, basic_auth and tls_config (common.webClientConfig, the files
under common.webClientDir); nothing while it is off (plain http, the default).
Usage: include "prometheus.webScrape" (dict "context" . "component" "node-exporter") | nindent 4
*/}}
{{- define "prometheus.webScrape" -}}
{{- $w := include "common.web" . | fromJson -}}
{{- if $w.on -}}
scheme: {{ $w.scheme }}
{{- include "common.webClientConfig" . }}
{{- end -}}
{{- end -}}

{{/*
prometheus.webStackJobs: the components of the monitoring-stack job whose web settings
(global.web.<component>) are on, each scraped by a job of its own with their client settings
(monitoring-stack-<name>), as JSON [{component, name, services}]: services are the Services the
job keeps (and the plain monitoring-stack job drops): <release>-<name>, for Thanos its four
(common.web's services: Query, Store Gateway, Compactor, and the sidecars through Prometheus'
headless Service). The log collector (`promtail`) runs Alloy or Promtail, which this subchart
cannot read (promtail.collector): one job for each, keeping its own Service and verifying its own
name, so the one that runs is scraped and the other finds no target.
Usage: include "prometheus.webStackJobs" . | fromJsonArray
*/}}
{{- define "prometheus.webStackJobs" -}}
{{- $out := list -}}
{{- range $c := concat (list "prometheus" "alertmanager" "thanos") (include "common.webTlsComponents" . | fromJsonArray) -}}
{{- $w := include "common.web" (dict "context" $ "component" $c) | fromJson -}}
{{- if $w.on -}}
{{- range $name := ternary (list "alloy" "promtail") (list $c) (eq $c "promtail") -}}
{{- $services := ternary $w.services (list (include "common.componentFullname" (dict "context" $ "component" $name))) (eq $c "thanos") -}}
{{- $out = append $out (dict "component" $c "name" $name "services" $services) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
