{{/*
phase5-monitoring.runs: "true" when component .component runs its own workload: enabled (its subchart,
and the row's switch if it has one), and not replaced by the existing kube-prometheus-stack in operator mode (global.operator.enabled and
operator = replaced in its common.components row).
Usage: include "phase5-monitoring.runs" (dict "context" $ "component" "prometheus")
*/}}
{{- define "phase5-monitoring.runs" -}}
{{- $row := include "common.component" .component | fromJson -}}
{{- $replaced := and .context.Values.global.operator.enabled (eq $row.operator "replaced") -}}
{{- $switched := include "phase5-monitoring.np.when" (dict "context" .context "path" $row.switch) -}}
{{- if and (dig "enabled" false (index .context.Values ($row.chart | default .component) | default dict)) $switched (not $replaced) -}}true{{- end -}}
{{- end -}}

{{/* The NOTES.txt text, as a define so tests can render it (helm template skips NOTES.txt). */}}
{{- define "phase5-monitoring.notes" -}}
{{- $ns := .Release.Namespace -}}
{{- $c := include "phase5-monitoring.components" . | fromJson -}}
{{- $name := dict -}}
{{- range $k, $v := $c -}}
{{- $_ := set $name $k $v.service -}}
{{- end -}}
phase5-monitoring {{ .Chart.Version }} is installed as release "{{ .Release.Name }}" in namespace "{{ $ns }}".

Components:
{{- range $k := include "phase5-monitoring.componentOrder" . | fromJsonArray }}
{{- $one := get $c $k }}
  - {{ printf "%-19s" $k }} {{ if $one.runs }}{{ $one.service }}{{ else if $one.enabled }}{{ $one.operatorText | default "the existing kube-prometheus-stack's (operator mode)" }}{{ else }}disabled{{ end }}
{{- end }}

Access (run each in its own terminal):
{{- if $c.grafana.runs }}
{{- $p := int $c.grafana.ports.web.port }}
{{- $gw := include "common.web" (dict "context" $ "component" "grafana") | fromJson }}
  Grafana       kubectl -n {{ $ns }} port-forward svc/{{ $name.grafana }} {{ $p }}:{{ $p }}        -> {{ $gw.scheme }}://localhost:{{ $p }}
{{- if $gw.tls }}
                HTTPS with the certificate of Secret {{ $gw.tlsSecret }} (CA: its key {{ $gw.caKey }}; valid for {{ $gw.serverName }}, not localhost)
{{- end }}
                user: {{ .Values.grafana.admin.user }}, password:
{{- if .Values.grafana.admin.existingSecret }}
                  key "{{ .Values.grafana.admin.passwordKey }}" of your Secret {{ .Values.grafana.admin.existingSecret }}
{{- else }}
                  kubectl -n {{ $ns }} get secret {{ $name.grafana }} -o jsonpath='{.data.{{ .Values.grafana.admin.passwordKey }}}' | base64 -d; echo
{{- end }}
                dashboards: /d/phase5-overview, /d/phase5-database, /d/phase5-agents
{{- end }}
{{- if $c.prometheus.runs }}
{{- $p := int $c.prometheus.ports.web.port }}
{{- $w := include "common.web" (dict "context" $ "component" "prometheus") | fromJson }}
  Prometheus    kubectl -n {{ $ns }} port-forward svc/{{ $name.prometheus }} {{ $p }}:{{ $p }}     -> {{ $w.scheme }}://localhost:{{ $p }}
{{- if $w.on }}
                {{ if $w.tls }}TLS: trust the CA in Secret {{ $w.tlsSecret }}, server name {{ $w.serverName }}. {{ end }}{{ if $w.basicAuth }}Basic auth: the user and password in Secret {{ $w.clientSecret }}.{{ end }}
{{- end }}
{{- end }}
{{- if $c.thanos.runs }}
{{- $p := int $c.thanos.ports.http.port }}
{{- $w := include "common.web" (dict "context" $ "component" "thanos") | fromJson }}
  Thanos Query  kubectl -n {{ $ns }} port-forward svc/{{ $name.thanos }} {{ $p }}:{{ $p }}   -> {{ $w.scheme }}://localhost:{{ $p }}
                (Grafana's Prometheus datasource; one replica's own UI: port-forward pod/{{ $name.prometheus }}-0 {{ int $c.prometheus.ports.web.port }})
{{- if $w.on }}
                {{ if $w.tls }}TLS: trust the CA in Secret {{ $w.tlsSecret }}, server name {{ $w.serverName }}. {{ end }}{{ if $w.basicAuth }}Basic auth: the user and password in Secret {{ $w.clientSecret }}.{{ end }}
{{- end }}
{{- end }}
{{- if $c.alertmanager.runs }}
{{- $p := int $c.alertmanager.ports.web.port }}
{{- $w := include "common.web" (dict "context" $ "component" "alertmanager") | fromJson }}
  Alertmanager  kubectl -n {{ $ns }} port-forward svc/{{ $name.alertmanager }} {{ $p }}:{{ $p }}   -> {{ $w.scheme }}://localhost:{{ $p }}
{{- if $w.on }}
                {{ if $w.tls }}TLS: trust the CA in Secret {{ $w.tlsSecret }}, server name {{ $w.serverName }}. {{ end }}{{ if $w.basicAuth }}Basic auth: the user and password in Secret {{ $w.clientSecret }}.{{ end }}
{{- end }}
{{- end }}
{{- if $c.jaeger.runs }}
{{- $p := int $c.jaeger.ports.query.port }}
  Jaeger        kubectl -n {{ $ns }} port-forward svc/{{ $name.jaeger }} {{ $p }}:{{ $p }}       -> http://localhost:{{ $p }}
  Traces from the Phase 5 services: OTLP http://{{ $name.jaeger }}.{{ $ns }}.svc:{{ int $c.jaeger.ports.otlpHttp.port }} (HTTP) or :{{ int $c.jaeger.ports.otlpGrpc.port }} (gRPC)
{{- end }}
{{- if .Values.global.operator.enabled }}

Operator mode: the Phase 5 rules, scrape targets, routes and dashboards are objects for the
kube-prometheus-stack you already run, labelled {{ toJson .Values.global.operator.selectorLabels }}:
  kubectl -n {{ $ns }} get prometheusrules,servicemonitors,alertmanagerconfigs,configmaps -l app.kubernetes.io/instance={{ .Release.Name }}
Your Alertmanager must not add its namespace matcher to the Phase 5 routes (the alerts carry the
namespaces of the Phase 5 services): set alertmanagerConfigMatcherStrategy.type=None on it
(kube-prometheus-stack: alertmanager.alertmanagerSpec.alertmanagerConfigMatcherStrategy.type=None).
{{- end }}

Check the installation: helm test {{ .Release.Name }} -n {{ $ns }}
{{- if and .Values.promtail.enabled (eq .Values.promtail.collector "promtail") }}

WARNING: the log collector is Promtail, which reached end of life on 2026-03-02 (no fixes,
         no security updates). Switch to Grafana Alloy, the default (same labels and
         parsing): unset promtail.collector or --set promtail.collector=alloy.
{{- end }}
{{- if and $c.prometheus.runs (not .Values.prometheus.persistence.enabled) }}

WARNING: Prometheus keeps its data in an emptyDir: metrics are lost when the pod restarts
         (prometheus.persistence.enabled=false).
{{- end }}
{{- if and .Values.alertmanager.enabled (not .Values.alertmanager.secrets.existingSecret) }}
{{- if not (or .Values.alertmanager.secrets.slackWebhookUrl .Values.alertmanager.secrets.smtpPassword) }}

NOTE: no notification credentials are set: alerts are routed but Slack/e-mail cannot deliver.
      Set alertmanager.secrets.existingSecret (see charts/alertmanager/README.md).
{{- end }}
{{- end }}
{{- with (index .Values "node-exporter") }}
{{- if and (index $c "node-exporter").runs .hostAccess.hostNetwork }}

NOTE: node-exporter holds host port {{ int (index $c "node-exporter").ports.metrics.port }} on every node. A second release of this chart on
      the same cluster needs --set node-exporter.port=<another port> (or node-exporter.enabled=false);
      its install refuses a taken port instead of leaving the pods Pending.
{{- end }}
{{- end }}
{{- $ruler := (.Values.loki | default dict).ruler | default dict }}
{{- if and .Values.loki.enabled $ruler.enabled (not $ruler.alertmanagerUrl) (not .Values.global.operator.enabled) (not .Values.alertmanager.enabled) }}

WARNING: Loki's ruler sends the log alerts to this release's Alertmanager, which is off
         (alertmanager.enabled=false): set loki.ruler.alertmanagerUrl, or loki.ruler.enabled=false.
{{- end }}
{{- if and .Values.loki.enabled $ruler.enabled (not $ruler.alertmanagerUrl) .Values.global.operator.enabled }}

NOTE: Loki's ruler (log alerts) is off in operator mode until loki.ruler.alertmanagerUrl names your
      Alertmanager (e.g. http://<kube-prometheus-stack>-alertmanager.<namespace>.svc:9093).
{{- end }}
{{- range $w := include "phase5-monitoring.deprecations" . | fromJsonArray }}

WARNING: {{ $w }}
{{- end }}
{{- if not .Values.networkPolicy.enabled }}
{{- $open := list }}
{{- range $k := include "phase5-monitoring.componentOrder" . | fromJsonArray }}
{{- $one := get $c $k }}
{{- if and $one.runs (not (dig "networkPolicy" "hostNetwork" false $one)) }}{{ $open = append $open $one.service }}{{ end }}
{{- end }}

WARNING: NetworkPolicies are off (networkPolicy.enabled=false): any pod in the cluster reaches
         every port of {{ join ", " $open }}.
         Unless policies of your own guard namespace {{ $ns }}, turn them on (the default) and
         widen them where needed: networkPolicy.ingressNamespaceSelector, ingressCIDRs,
         extraIngress, extraEgress (README, "NetworkPolicies").
{{- end }}

{{- end -}}


{{/*
phase5-monitoring.deprecations: one message per deprecated key that is set (JSON list). The
values that several components must agree on live once under global; the old per-component
keys are still accepted in this release and, when set, win for their own component.
*/}}
{{- define "phase5-monitoring.deprecations" -}}
{{- $v := .Values -}}
{{- $out := list -}}
{{- $re := $v.global.phase5.namespaceRegex -}}
{{- $old := dict
  "prometheus.phase5.namespaceRegex" (dig "phase5" "namespaceRegex" "" ($v.prometheus | default dict))
  "promtail.namespaceRegex" (dig "namespaceRegex" "" ($v.promtail | default dict)) -}}
{{- range $key := keys $old | sortAlpha -}}
{{- with get $old $key -}}
{{- $out = append $out (printf "%s is deprecated and will be removed in the next release: set global.phase5.namespaceRegex, which Prometheus and the log collector share. It still applies to its own component now (%q; global.phase5.namespaceRegex is %q)." $key . $re) -}}
{{- end -}}
{{- end -}}
{{- $prom := (get $old "prometheus.phase5.namespaceRegex") | default $re -}}
{{- $logs := (get $old "promtail.namespaceRegex") | default $re -}}
{{- if and $v.prometheus.enabled $v.promtail.enabled (ne $prom $logs) -}}
{{- $out = append $out (printf "Prometheus watches the namespaces %q but the log collector collects %q: the two disagree. Unset the deprecated keys and set global.phase5.namespaceRegex once." $prom $logs) -}}
{{- end -}}
{{- with dig "grafanaUrl" "" ($v.alertmanager | default dict) -}}
{{- $out = append $out (printf "alertmanager.grafanaUrl is deprecated and will be removed in the next release: set global.grafanaUrl. It still applies now (%q; global.grafanaUrl is %q)." . $v.global.grafanaUrl) -}}
{{- end -}}
{{- with dig "rules" "grafanaUrl" "" ($v.prometheus | default dict) -}}
{{- $out = append $out (printf "prometheus.rules.grafanaUrl is deprecated and will be removed in the next release: leave the alerts' dashboard annotations bare paths, which Alertmanager prefixes with global.grafanaUrl. It still applies now (%q); Alertmanager adds %q in front of it in notification links (an empty global.grafanaUrl stops that)." . ((dig "grafanaUrl" "" ($v.alertmanager | default dict)) | default $v.global.grafanaUrl)) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
