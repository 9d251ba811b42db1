{{/*
alertmanager.routing: the routing tree, inhibitions and receivers built once, as data (JSON),
from the values; alertmanager.config writes it out as the chart's own alertmanager.yaml and
alertmanager.operatorSpec as the AlertmanagerConfig of operator mode. It has alertmanager.yaml's
shape and field names, with two things kept as data rather than text:
- a matcher is a list [label, operator, value] (operator =, !=, =~ or !~): alertmanager.yaml
  writes it as the string label="value", the AlertmanagerConfig as {name, matchType, value};
- a credential is {secretKey: <key of the credentials Secret>} under its *_file field:
  alertmanager.yaml reads the mounted file (alertmanager.secretsDir), the AlertmanagerConfig
  references the Secret's key (the operator reads it).
Raw extraRoutes/extraReceivers/extraInhibitRules are Alertmanager's own form and pass through
alertmanager.yaml unchanged (operator mode refuses them). Credentials are never written here.
Routing (README "Routing table"): the Watchdog stops at its own receiver; team routes match
`category` and continue; critical goes to Slack + email (+ PagerDuty), warning to Slack.
Usage: include "alertmanager.routing" . | fromJson
*/}}
{{- define "alertmanager.routing" -}}
{{- include "alertmanager.routing.yaml" . | fromYaml | toJson -}}
{{- end -}}

{{- define "alertmanager.routing.yaml" -}}
{{- $r := .Values.route -}}
{{- include "alertmanager.slackChecks" . -}}
{{- $slack := include "alertmanager.slackReceivers" . | fromJsonArray -}}
global:
  resolve_timeout: 5m
  {{- if and .Values.slack.enabled (eq .Values.slack.mode "webhook") }}
  # The shared webhook, for Slack receivers of extraReceivers that name none (the chart's own
  # receivers each name theirs: alertmanager.slackCredential).
  slack_api_url_file: {secretKey: slack-webhook-url}
  {{- end }}
  {{- if .Values.email.enabled }}
  smtp_smarthost: {{ printf "%s:%v" .Values.email.smtpHost .Values.email.smtpPort | toJson }}
  smtp_from: {{ .Values.email.from | toJson }}
  {{- with .Values.email.username }}
  smtp_auth_username: {{ toJson . }}
  {{- end }}
  smtp_auth_password_file: {secretKey: smtp-password}
  smtp_require_tls: {{ .Values.email.requireTls | toJson }}
  {{- end }}

templates:
  - {{ printf "%s/*.tmpl" (include "alertmanager.configDir" .) | toJson }}

route:
  receiver: {{ toJson $r.defaultReceiver }}
  group_by: {{ toJson $r.groupBy }}
  group_wait: {{ toJson $r.groupWait }}
  group_interval: {{ toJson $r.groupInterval }}
  repeat_interval: {{ toJson $r.repeatInterval }}
  routes:
    # The always-firing Watchdog: its own receiver and nothing else (no continue).
    - receiver: watchdog
      matchers: [[alertname, "=", Watchdog]]
      group_wait: {{ toJson $r.watchdog.groupWait }}
      group_interval: {{ toJson $r.watchdog.groupInterval }}
      repeat_interval: {{ toJson $r.watchdog.repeatInterval }}
      continue: false
    {{- if .Values.webhook.enabled }}
    # Every other alert is also forwarded to the generic webhook.
    - receiver: webhook
      continue: true
    {{- end }}
    {{- with $r.extraRoutes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    # Team channels (alertmanager.slackReceivers): copies, whatever the severity; continue to
    # the severity routes.
    {{- range $slack }}
    {{- if .category }}
    - receiver: {{ toJson .name }}
      matchers: [[category, "=", {{ toJson .category }}]]
      continue: true
    {{- end }}
    {{- end }}
    # Critical: Slack and email at once (and PagerDuty when enabled).
    - receiver: slack-critical
      matchers: [[severity, "=", critical]]
      group_wait: {{ toJson $r.critical.groupWait }}
      group_interval: {{ toJson $r.critical.groupInterval }}
      repeat_interval: {{ toJson $r.critical.repeatInterval }}
      continue: true
    - receiver: email-critical
      matchers: [[severity, "=", critical]]
      group_wait: {{ toJson $r.critical.groupWait }}
      group_interval: {{ toJson $r.critical.groupInterval }}
      repeat_interval: {{ toJson $r.critical.repeatInterval }}
      continue: {{ .Values.pagerduty.enabled | toJson }}
    {{- if .Values.pagerduty.enabled }}
    - receiver: pagerduty-critical
      matchers: [[severity, "=", critical]]
      group_wait: {{ toJson $r.critical.groupWait }}
      group_interval: {{ toJson $r.critical.groupInterval }}
      repeat_interval: {{ toJson $r.critical.repeatInterval }}
      continue: false
    {{- end }}
    # Warning: the warnings channel after the group wait.
    - receiver: slack-warnings
      matchers: [[severity, "=", warning]]
      group_wait: {{ toJson $r.warning.groupWait }}
      group_interval: {{ toJson $r.warning.groupInterval }}
      repeat_interval: {{ toJson $r.warning.repeatInterval }}
      continue: false

inhibit_rules:
  # A critical alert silences the warnings of the same service.
  - source_matchers: [[severity, "=", critical]]
    target_matchers: [[severity, "=", warning]]
    equal: [namespace, service]
  # A workload-level problem silences the pod-level symptoms of that workload. Keyed on the
  # workload (kind and name), not on `deployment`: an HPA at its maximum explains the CPU of
  # the StatefulSet pods it scales as much as a Deployment's, and an alert without the label
  # (a StatefulSet or bare pod) must not match a Deployment's empty one. The source must name
  # its workload. StatefulSet rollouts have no source alert on purpose (see README).
  # Not PodDown: it is critical, and silences these (warning) workload alerts through the
  # rule above; muting it here too would mute both sides and page nobody.
  - source_matchers: [[alertname, "=~", "DeploymentReplicaMismatch|HPAMaxedOut"], [workload, "=~", ".+"]]
    target_matchers: [[alertname, "=~", "PodRestartingTooOften|HighCPUUsage|HighMemoryUsage"]]
    equal: [namespace, workload_kind, workload]
  # A restart loop explains the CPU spike of the same pod.
  - source_matchers: [[alertname, "=", PodRestartingTooOften]]
    target_matchers: [[alertname, "=", HighCPUUsage]]
    equal: [namespace, pod]
  # A pod that is not Ready fails its scrapes too: PodDown explains Phase5TargetDown of that pod
  # (PodDown's `for` is shorter, so it is there first).
  - source_matchers: [[alertname, "=", PodDown]]
    target_matchers: [[alertname, "=", Phase5TargetDown]]
    equal: [namespace, pod]
  # The stack (issue 25). A component failing its scrapes explains every other monitoring alert
  # of that component (the critical ones too: JaegerSpansDropped of a Jaeger that is down);
  # not ScrapeLimitExceeded, which explains why the scrapes fail.
  - source_matchers: [[alertname, "=", MonitoringTargetDown]]
    target_matchers: [[category, "=", monitoring], [alertname, "!~", "MonitoringTargetDown|ScrapeLimitExceeded"]]
    equal: [namespace, service]
  # Loki down explains the log collectors' failed pushes and dropped lines.
  - source_matchers: [[alertname, "=", MonitoringTargetDown], [service, "=", {{ include "common.componentFullname" (dict "context" . "component" "loki") | toJson }}]]
    target_matchers: [[alertname, "=~", "LogCollectorSendFailures|LogCollectorDroppedLines"]]
    equal: [namespace]
  # kube-state-metrics down or without series: the alerts that read it are blind, and what they
  # still report (or stop reporting) is not news. Cluster-wide, so no `equal` (an empty list
  # would mean the same, but the operator's AlertmanagerConfig drops it and the two configs of
  # operator mode would differ).
  - source_matchers: [[alertname, "=", KubeStateMetricsDown]]
    target_matchers: [[alertname, "=~", "PodDown|DeploymentReplicaMismatch|HPAMaxedOut|PodRestartingTooOften|HighCPUUsage|HighMemoryUsage|MonitoringDaemonSetNotOnEveryNode|NodeNotReady|NodeUnderPressure|NodeUnschedulable"]]
  # A NotReady node explains its node-exporter failing its scrapes and the disk alerts read from
  # it (node-exporter's `instance` is the node name; NodeNotReady carries it too). Its own
  # warnings (pressure, cordon) share its namespace and service and fall under the first rule.
  - source_matchers: [[alertname, "=", NodeNotReady]]
    target_matchers: [[alertname, "=~", "NodeExporterDown|DiskSpaceLow"]]
    equal: [instance]
  # ... and the release's DaemonSets missing the pod of that node.
  - source_matchers: [[alertname, "=", NodeNotReady]]
    target_matchers: [[alertname, "=", MonitoringDaemonSetNotOnEveryNode]]
    equal: [namespace]
  # ... and the pod alerts of the pods on it (the node controller marks them not ready; their
  # `node` comes from kube_pod_info). NodeNotReady's `for` (1m) is shorter than PodDown's (2m),
  # so it is there first. A pod alert without `node` (a Pending pod) is never explained by a node.
  - source_matchers: [[alertname, "=", NodeNotReady]]
    target_matchers: [[alertname, "=~", "PodDown|PodRestartingTooOften|HighCPUUsage|HighMemoryUsage"]]
    equal: [node]
  {{- with .Values.extraInhibitRules }}
  {{- toYaml . | nindent 2 }}
  {{- end }}

receivers:
  - name: watchdog
    {{- if .Values.watchdog.enabled }}
    webhook_configs:
      - url_file: {secretKey: watchdog-url}
        send_resolved: false
    {{- end }}
  {{- range $slack }}
  - name: {{ toJson .name }}
    {{- if $.Values.slack.enabled }}
    slack_configs:
      - {{- include "alertmanager.slackCredential" (dict "context" $ "receiver" .) | nindent 8 }}
        channel: {{ index $.Values.slack.channels .key | toJson }}
        username: {{ $.Values.slack.username | toJson }}
        send_resolved: {{ $.Values.slack.sendResolved | toJson }}
        color: '{{`{{ template "phase5.slack.color" . }}`}}'
        title: '{{`{{ template "phase5.slack.title" . }}`}}'
        text: '{{`{{ template "phase5.slack.text" . }}`}}'
    {{- end }}
  {{- end }}
  - name: email-critical
    {{- if .Values.email.enabled }}
    email_configs:
      - to: {{ .Values.email.to | toJson }}
        send_resolved: {{ .Values.email.sendResolved | toJson }}
        headers:
          Subject: '{{`{{ template "phase5.email.subject" . }}`}}'
        html: '{{`{{ template "phase5.email.html" . }}`}}'
        text: '{{`{{ template "phase5.email.text" . }}`}}'
    {{- end }}
  {{- if .Values.pagerduty.enabled }}
  - name: pagerduty-critical
    pagerduty_configs:
      - routing_key_file: {secretKey: pagerduty-routing-key}
        send_resolved: {{ .Values.pagerduty.sendResolved | toJson }}
        severity: '{{`{{ .CommonLabels.severity }}`}}'
        description: '{{`{{ template "phase5.slack.title" . }}`}}'
  {{- end }}
  {{- if .Values.webhook.enabled }}
  - name: webhook
    webhook_configs:
      - url_file: {secretKey: webhook-url}
        send_resolved: {{ .Values.webhook.sendResolved | toJson }}
        max_alerts: {{ .Values.webhook.maxAlerts | toJson }}
  {{- end }}
  {{- with .Values.extraReceivers }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/*
alertmanager.config: alertmanager.routing written out as the chart's alertmanager.yaml (matchers
as strings, credentials as files under alertmanager.secretsDir), once per render.
Usage: include "alertmanager.config" .
*/}}
{{- define "alertmanager.config" -}}
{{- include "common.memo" (dict "context" . "template" "alertmanager.config.render") -}}
{{- end -}}

{{- define "alertmanager.config.render" -}}
{{- $cfg := include "alertmanager.routing" . | fromJson -}}
{{- $sec := include "alertmanager.secretsDir" . -}}
{{- $_ := set $cfg "global" (include "alertmanager.amFiles" (dict "fields" $cfg.global "dir" $sec) | fromJson) -}}
{{- $_ = set $cfg "route" (include "alertmanager.writeRoute" (dict "route" $cfg.route "crd" false) | fromJson) -}}
{{- range $rule := $cfg.inhibit_rules -}}
{{- range $side := list "source_matchers" "target_matchers" -}}
{{- with get $rule $side -}}
{{- $_ := set $rule $side (include "alertmanager.writeMatchers" (dict "matchers" . "crd" false) | fromJsonArray) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $r := $cfg.receivers -}}
{{- range $kind, $configs := omit $r "name" -}}
{{- $list := list -}}
{{- range $configs }}{{ $list = append $list (include "alertmanager.amFiles" (dict "fields" . "dir" $sec) | fromJson) }}{{ end -}}
{{- $_ := set $r $kind $list -}}
{{- end -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* alertmanager.amFiles: the fields of one config section (JSON) with each {secretKey: k} as the path of the mounted key. */}}
{{- define "alertmanager.amFiles" -}}
{{- $out := dict -}}
{{- range $k, $v := .fields -}}
{{- if and (kindIs "map" $v) (hasKey $v "secretKey") -}}
{{- $v = printf "%s/%s" $.dir $v.secretKey -}}
{{- end -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
alertmanager.writeMatchers: matchers [label, op, value] of alertmanager.routing as alertmanager.yaml's
strings label<op>"value" (crd false; a string, from raw extras, stays) or as the AlertmanagerConfig's
{name, matchType, value} (crd true), as a JSON list.
Usage: include "alertmanager.writeMatchers" (dict "matchers" $list "crd" false) | fromJsonArray
*/}}
{{- define "alertmanager.writeMatchers" -}}
{{- $out := list -}}
{{- range $m := .matchers -}}
{{- if kindIs "string" $m -}}
{{- if $.crd -}}
{{- fail (printf "alertmanager: matcher %q cannot be written into the AlertmanagerConfig (operator mode)" $m) -}}
{{- end -}}
{{- else if $.crd -}}
{{- $m = dict "name" (index $m 0) "matchType" (index $m 1) "value" (index $m 2) -}}
{{- else -}}
{{- $m = printf "%s%s%q" (index $m 0) (index $m 1) (index $m 2) -}}
{{- end -}}
{{- $out = append $out $m -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
alertmanager.writeRoute: one route of alertmanager.routing and its children, as alertmanager.yaml's
(crd false: fields as they are, raw extraRoutes untouched) or as an AlertmanagerConfig route (crd
true: camelCase fields; a field the CRD has no equivalent for fails), as JSON; matchers through
alertmanager.writeMatchers.
Usage: include "alertmanager.writeRoute" (dict "route" $route "crd" true) | fromJson
*/}}
{{- define "alertmanager.writeRoute" -}}
{{- $crdKeys := dict "receiver" "receiver" "group_by" "groupBy" "group_wait" "groupWait" "group_interval" "groupInterval" "repeat_interval" "repeatInterval" "continue" "continue" "matchers" "matchers" "routes" "routes" -}}
{{- $out := dict -}}
{{- range $k, $v := .route -}}
{{- if and $.crd (not (hasKey $crdKeys $k)) -}}
{{- fail (printf "alertmanager: route field %q has no AlertmanagerConfig equivalent (operator mode)" $k) -}}
{{- end -}}
{{- if eq $k "matchers" -}}
{{- $v = include "alertmanager.writeMatchers" (dict "matchers" $v "crd" $.crd) | fromJsonArray -}}
{{- else if eq $k "routes" -}}
{{- $children := list -}}
{{- range $v }}{{ $children = append $children (include "alertmanager.writeRoute" (dict "route" . "crd" $.crd) | fromJson) }}{{ end -}}
{{- $v = $children -}}
{{- end -}}
{{- $_ := set $out (ternary (get $crdKeys $k) $k $.crd) $v -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
alertmanager.operatorSpec: alertmanager.routing written out as the spec of the AlertmanagerConfig of
operator mode (indented JSON): camelCase fields, matchers as {name, matchType, value}, credentials as
references {name, key} to the credentials Secret (secrets.existingSecret or the chart-created
one), SMTP settings (global in alertmanager.yaml) on the email receiver, and the top route
matching operator.routeMatchers. An AlertmanagerConfig cannot carry notification templates:
every text that calls a phase5.* template gets their definitions in front (alertmanager.crdText).
*/}}
{{- define "alertmanager.operatorSpec" -}}
{{- range $key := list "extraRoutes" "extraReceivers" "extraInhibitRules" -}}
{{- if or (get $.Values $key) (and (eq $key "extraRoutes") $.Values.route.extraRoutes) -}}
{{- fail (printf "alertmanager.%s: raw Alertmanager configuration cannot go into the AlertmanagerConfig of operator mode (global.operator.enabled); add an AlertmanagerConfig of your own" (ternary "route.extraRoutes" $key (eq $key "extraRoutes"))) -}}
{{- end -}}
{{- end -}}
{{- $cfg := include "alertmanager.routing" . | fromJson -}}
{{- $g := $cfg.global -}}
{{- $ctx := dict "secret" (include "alertmanager.credentialsSecretName" .) "defs" (include "alertmanager.inlineTemplates" .) -}}
{{- $route := include "alertmanager.writeRoute" (dict "route" $cfg.route "crd" true) | fromJson -}}
{{- $_ := set $route "matchers" (concat .Values.operator.routeMatchers ($route.matchers | default list)) -}}
{{- $inhibit := list -}}
{{- range $cfg.inhibit_rules -}}
{{- $inhibit = append $inhibit (dict "sourceMatch" (include "alertmanager.writeMatchers" (dict "matchers" .source_matchers "crd" true) | fromJsonArray) "targetMatch" (include "alertmanager.writeMatchers" (dict "matchers" .target_matchers "crd" true) | fromJsonArray) "equal" (.equal | default list)) -}}
{{- end -}}
{{- $receivers := list -}}
{{- range $r := $cfg.receivers -}}
{{- $out := dict "name" $r.name -}}
{{- range $kind, $configs := omit $r "name" -}}
{{- if not (has $kind (list "slack_configs" "email_configs" "pagerduty_configs" "webhook_configs")) -}}
{{- fail (printf "alertmanager: receiver %s: %s has no conversion for the AlertmanagerConfig (operator mode)" $r.name $kind) -}}
{{- end -}}
{{- $list := list -}}
{{- range $c := $configs -}}
{{- if eq $kind "email_configs" -}}
{{- /* alertmanager.yaml's global SMTP settings; the password only with a user name. */ -}}
{{- $c = merge (dict "from" $g.smtp_from "smarthost" $g.smtp_smarthost "require_tls" $g.smtp_require_tls) $c -}}
{{- with $g.smtp_auth_username -}}
{{- $c = merge (dict "auth_username" . "auth_password_file" $g.smtp_auth_password_file) $c -}}
{{- end -}}
{{- end -}}
{{- $list = append $list (include "alertmanager.crdFields" (merge (dict "fields" $c) $ctx) | fromJson) -}}
{{- end -}}
{{- $_ := set $out (camelcase $kind | untitle) $list -}}
{{- end -}}
{{- $receivers = append $receivers $out -}}
{{- end -}}
{{- toPrettyJson (dict "route" $route "inhibitRules" $inhibit "receivers" $receivers) -}}
{{- end -}}

{{/*
alertmanager.crdFields: one receiver config of alertmanager.routing as the AlertmanagerConfig's
(JSON): fields camelCased (the *_file credentials by their CRD names), {secretKey: k} as a
reference to key k of the credentials Secret, headers as a {key, value} list, texts through
alertmanager.crdText.
Usage: include "alertmanager.crdFields" (dict "fields" $config "secret" $secretName "defs" $defs)
*/}}
{{- define "alertmanager.crdFields" -}}
{{- $names := dict "api_url_file" "apiURL" "url_file" "urlSecret" "routing_key_file" "routingKey" "auth_password_file" "authPassword" "require_tls" "requireTLS" -}}
{{- $out := dict -}}
{{- range $k, $v := .fields -}}
{{- if and (kindIs "map" $v) (hasKey $v "secretKey") -}}
{{- $v = dict "name" $.secret "key" $v.secretKey -}}
{{- else if eq $k "headers" -}}
{{- $headers := list -}}
{{- range $hk, $hv := $v -}}
{{- $headers = append $headers (dict "key" $hk "value" (include "alertmanager.crdText" (dict "text" $hv "defs" $.defs))) -}}
{{- end -}}
{{- $v = $headers -}}
{{- else if kindIs "string" $v -}}
{{- $v = include "alertmanager.crdText" (dict "text" $v "defs" $.defs) -}}
{{- end -}}
{{- $_ := set $out (get $names $k | default (camelcase $k | untitle)) $v -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* alertmanager.crdText: a notification text; calls of phase5.* templates get their definitions in front. */}}
{{- define "alertmanager.crdText" -}}
{{- if contains "{{ template \"phase5." .text -}}
{{- printf "%s%s" .defs .text -}}
{{- else -}}
{{- .text -}}
{{- end -}}
{{- end -}}

{{/*
alertmanager.inlineTemplates: the phase5.* template definitions (files/templates/phase5.tmpl and
phase5.grafanaURL) as text that outputs nothing, for the AlertmanagerConfig's texts. The file
trims the text between its definitions itself (trim markers on its defines and comments), so it
goes in as it is.
*/}}
{{- define "alertmanager.inlineTemplates" -}}
{{- printf "{{- define \"phase5.grafanaURL\" }}%s{{ end -}}%s{{- /* end of the phase5 templates */ -}}" (include "alertmanager.grafanaUrl" .) (.Files.Get "files/templates/phase5.tmpl") -}}
{{- end -}}
