{{/*
alertmanager.component: the app.kubernetes.io/component label of Alertmanager's objects, written
here only. alertmanager.labels: common.labels with it.
Usage: include "alertmanager.labels" .
*/}}
{{- define "alertmanager.component" -}}alerting{{- end -}}

{{- define "alertmanager.labels" -}}
{{- include "common.labels" (dict "context" . "component" (include "alertmanager.component" .)) -}}
{{- end -}}

{{/*
alertmanager.configDir / alertmanager.secretsDir: where the config Secret (configuration
and notification templates) and the credentials Secret are mounted in the pod.
*/}}
{{- define "alertmanager.configDir" -}}/etc/alertmanager/config{{- end -}}
{{- define "alertmanager.secretsDir" -}}/etc/alertmanager/secrets{{- end -}}

{{/* alertmanager.configSecretName: the Secret holding alertmanager.yaml and the templates. */}}
{{- define "alertmanager.configSecretName" -}}
{{- printf "%s-config" (include "common.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* alertmanager.credentialsSecretName: existingSecret, or the chart-created credentials Secret. */}}
{{- define "alertmanager.credentialsSecretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- printf "%s-secrets" (include "common.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* alertmanager.clustered: "true" when replicas > 1 (gossip, peers, PDB). */}}
{{- define "alertmanager.clustered" -}}
{{- if gt (int .Values.replicas) 1 -}}true{{- end -}}
{{- end -}}

{{/*
alertmanager.slackReceivers: the Slack receivers as data (JSON list), in routing order. name: the
receiver; key: its entry in slack.channels, slack.ownWebhooks and secrets.slackWebhookUrls;
category: the alert category its team route copies (severity receivers have none). The monitoring
team's receiver exists only when slack.channels.monitoring is set (otherwise the stack's own alerts
reach the severity channels only). Both the routes and the receivers of alertmanager.yaml read it.
Usage: include "alertmanager.slackReceivers" . | fromJsonArray
*/}}
{{- define "alertmanager.slackReceivers" -}}
{{- $all := list
  (dict "name" "slack-database" "key" "database" "category" "database")
  (dict "name" "slack-platform" "key" "platform" "category" "kafka")
  (dict "name" "slack-audit" "key" "audit" "category" "audit")
  (dict "name" "slack-notification" "key" "notification" "category" "reminder")
  (dict "name" "slack-monitoring" "key" "monitoring" "category" "monitoring")
  (dict "name" "slack-critical" "key" "critical")
  (dict "name" "slack-warnings" "key" "warnings") -}}
{{- $out := list -}}
{{- range $all -}}
{{- if index $.Values.slack.channels .key -}}
{{- $out = append $out . -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
alertmanager.slackCredential: the credential settings of one Slack receiver (YAML lines), from
its slackReceivers entry. Mode webhook: api_url_file, the receiver's own Secret key
slack-webhook-url-<key> when slack.ownWebhooks lists it, else the shared slack-webhook-url.
Mode app: the bot token file (Alertmanager sends it as a Bearer token to chat.postMessage, which
posts to the receiver's channel) and slack.appUrl when set.
Usage: include "alertmanager.slackCredential" (dict "context" $ "receiver" .)
*/}}
{{- define "alertmanager.slackCredential" -}}
{{- $v := .context.Values -}}
{{- $sec := include "alertmanager.secretsDir" .context -}}
{{- if eq $v.slack.mode "app" -}}
app_token_file: {{ printf "%s/slack-app-token" $sec }}
{{- with $v.slack.appUrl }}
app_url: {{ . | quote }}
{{- end }}
{{- else -}}
api_url_file: {{ printf "%s/%s" $sec (include "alertmanager.slackWebhookKey" (dict "context" .context "key" .receiver.key)) }}
{{- end -}}
{{- end -}}

{{/* alertmanager.slackWebhookKey: the credentials Secret key a Slack receiver's webhook URL is read from. */}}
{{- define "alertmanager.slackWebhookKey" -}}
{{- if has .key .context.Values.slack.ownWebhooks -}}slack-webhook-url-{{ .key }}{{- else -}}slack-webhook-url{{- end -}}
{{- end -}}

{{/*
alertmanager.slackChecks: render-time refusals of Slack settings that would otherwise be ignored or
deliver nowhere; prints nothing.
*/}}
{{- define "alertmanager.slackChecks" -}}
{{- $s := .Values.slack -}}
{{- if $s.enabled -}}
{{- if eq $s.mode "app" -}}
{{- if $s.ownWebhooks -}}
{{- fail (printf "alertmanager.slack.ownWebhooks (%s) applies to slack.mode webhook only; mode app posts every receiver with the one bot token (secret key slack-app-token) to its channel" (join ", " $s.ownWebhooks)) -}}
{{- end -}}
{{- if include "common.operatorMode" . -}}
{{- fail "alertmanager.slack.mode: app needs a bot token setting that the AlertmanagerConfig of operator mode (global.operator.enabled) cannot carry; use slack.mode webhook there, with slack.ownWebhooks for one incoming webhook per team" -}}
{{- end -}}
{{- else if $s.appUrl -}}
{{- fail (printf "alertmanager.slack.appUrl (%s) applies to slack.mode app only" $s.appUrl) -}}
{{- end -}}
{{- range $key := $s.ownWebhooks -}}
{{- if not (index $s.channels $key) -}}
{{- fail (printf "alertmanager.slack.ownWebhooks lists %s, but alertmanager.slack.channels.%s is empty: that receiver does not exist" $key $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if not .Values.secrets.existingSecret -}}
{{- range $key, $url := .Values.secrets.slackWebhookUrls -}}
{{- if and $url (or (not $s.enabled) (ne $s.mode "webhook") (not (has $key $s.ownWebhooks))) -}}
{{- fail (printf "alertmanager.secrets.slackWebhookUrls.%s is set, but the %s receiver does not read its own webhook (it needs slack.enabled, slack.mode webhook and %s in alertmanager.slack.ownWebhooks): the URL would be ignored" $key $key $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* alertmanager.config: the rendered alertmanager.yaml (files/alertmanager.yaml through tpl). */}}
{{- define "alertmanager.config" -}}
{{- include "common.tplFile" (dict "context" . "file" "files/alertmanager.yaml") -}}
{{- end -}}

{{/*
Operator mode (global.operator.enabled): the AlertmanagerConfig is converted from the same
rendered alertmanager.yaml the chart's own Alertmanager runs (alertmanager.config), so the routing
tree, inhibitions and receivers of both modes are one source. Credentials become references to
the credentials Secret's keys (the operator reads them; nothing is written into the object).
AlertmanagerConfig cannot carry notification templates: every field that calls a phase5.*
template gets the definitions of files/templates/phase5.tmpl and phase5.grafanaURL inlined in
front of the call (alertmanager.inlineTemplates), so it renders the same text on any Alertmanager.
*/}}

{{/* alertmanager.inlineTemplates: the phase5.* template definitions as text that outputs nothing. */}}
{{- define "alertmanager.inlineTemplates" -}}
{{- $text := .Files.Get "files/templates/phase5.tmpl" -}}
{{- /* Top-level text between the definitions (comments, blank lines) must print nothing: trim it. */ -}}
{{- $text = regexReplaceAll "(?m)^\\{\\{ define " $text "{{- define " -}}
{{- $text = $text | replace "{{/*" "{{- /*" | replace "*/}}" "*/ -}}" -}}
{{- printf "{{- define \"phase5.grafanaURL\" }}%s{{ end -}}%s{{- /* end of the phase5 templates */ -}}" (include "alertmanager.grafanaUrl" .) $text -}}
{{- end -}}

{{/* alertmanager.amcMatchers: Alertmanager matcher strings (name="v", name=~"v", ...) -> AlertmanagerConfig matchers. */}}
{{- define "alertmanager.amcMatchers" -}}
{{- $out := list -}}
{{- range $m := . -}}
{{- $name := regexFind "^[a-zA-Z_][a-zA-Z0-9_]*" $m -}}
{{- $rest := trimPrefix $name $m -}}
{{- $op := regexFind "^(=~|!~|!=|=)" $rest -}}
{{- $value := trimPrefix $op $rest -}}
{{- if not (and $name $op (hasPrefix "\"" $value) (hasSuffix "\"" $value)) -}}
{{- fail (printf "alertmanager: matcher %q cannot be converted for the AlertmanagerConfig (operator mode)" $m) -}}
{{- end -}}
{{- $out = append $out (dict "name" $name "matchType" $op "value" ($value | trimPrefix "\"" | trimSuffix "\"")) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* alertmanager.amcRoute: one route of alertmanager.yaml (and its children) as an AlertmanagerConfig route (JSON). */}}
{{- define "alertmanager.amcRoute" -}}
{{- $keys := dict "receiver" "receiver" "group_by" "groupBy" "group_wait" "groupWait" "group_interval" "groupInterval" "repeat_interval" "repeatInterval" "continue" "continue" "matchers" "matchers" "routes" "routes" -}}
{{- $out := dict -}}
{{- range $k, $v := . -}}
{{- if not (hasKey $keys $k) -}}
{{- fail (printf "alertmanager: route field %q has no AlertmanagerConfig equivalent (operator mode)" $k) -}}
{{- end -}}
{{- if eq $k "matchers" -}}
{{- $v = include "alertmanager.amcMatchers" $v | fromJsonArray -}}
{{- else if eq $k "routes" -}}
{{- $children := list -}}
{{- range $v }}{{ $children = append $children (include "alertmanager.amcRoute" . | fromJson) }}{{ end -}}
{{- $v = $children -}}
{{- end -}}
{{- $_ := set $out (get $keys $k) $v -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* alertmanager.amcText: a notification text; calls of phase5.* templates get the definitions inlined. */}}
{{- define "alertmanager.amcText" -}}
{{- if contains "{{ template \"phase5." .text -}}
{{- printf "%s%s" .defs .text -}}
{{- else -}}
{{- .text -}}
{{- end -}}
{{- end -}}

{{/* alertmanager.operatorSpec: the AlertmanagerConfig spec (JSON). */}}
{{- define "alertmanager.operatorSpec" -}}
{{- range $key := list "extraRoutes" "extraReceivers" "extraInhibitRules" -}}
{{- if or (get $.Values $key) (and (eq $key "extraRoutes") $.Values.route.extraRoutes) -}}
{{- fail (printf "alertmanager.%s: raw Alertmanager configuration cannot go into the AlertmanagerConfig of operator mode (global.operator.enabled); add an AlertmanagerConfig of your own" (ternary "route.extraRoutes" $key (eq $key "extraRoutes"))) -}}
{{- end -}}
{{- end -}}
{{- $cfg := include "alertmanager.config" . | fromYaml -}}
{{- $g := $cfg.global -}}
{{- $secret := include "alertmanager.credentialsSecretName" . -}}
{{- $defs := include "alertmanager.inlineTemplates" . -}}
{{- $ref := dict -}}
{{- $route := include "alertmanager.amcRoute" $cfg.route | fromJson -}}
{{- $_ := set $route "matchers" (concat .Values.operator.routeMatchers ($route.matchers | default list)) -}}
{{- $inhibit := list -}}
{{- range $cfg.inhibit_rules -}}
{{- $inhibit = append $inhibit (dict "sourceMatch" (include "alertmanager.amcMatchers" .source_matchers | fromJsonArray) "targetMatch" (include "alertmanager.amcMatchers" .target_matchers | fromJsonArray) "equal" (.equal | default list)) -}}
{{- end -}}
{{- $receivers := list -}}
{{- range $r := $cfg.receivers -}}
{{- $out := dict "name" $r.name -}}
{{- range $kind, $configs := omit $r "name" -}}
{{- $list := list -}}
{{- range $c := $configs -}}
{{- $n := dict -}}
{{- if eq $kind "slack_configs" -}}
{{- $n = dict "apiURL" (dict "name" $secret "key" (base $c.api_url_file)) "channel" $c.channel "username" $c.username "sendResolved" $c.send_resolved -}}
{{- range $f := list "color" "title" "text" -}}
{{- $_ := set $n $f (include "alertmanager.amcText" (dict "text" (get $c $f) "defs" $defs)) -}}
{{- end -}}
{{- else if eq $kind "email_configs" -}}
{{- $n = dict "to" $c.to "from" $g.smtp_from "smarthost" $g.smtp_smarthost "requireTLS" $g.smtp_require_tls "sendResolved" $c.send_resolved -}}
{{- with $g.smtp_auth_username -}}
{{- $_ := set $n "authUsername" . -}}
{{- $_ := set $n "authPassword" (dict "name" $secret "key" (base $g.smtp_auth_password_file)) -}}
{{- end -}}
{{- $headers := list -}}
{{- range $hk, $hv := $c.headers -}}
{{- $headers = append $headers (dict "key" $hk "value" (include "alertmanager.amcText" (dict "text" $hv "defs" $defs))) -}}
{{- end -}}
{{- $_ := set $n "headers" $headers -}}
{{- range $f := list "html" "text" -}}
{{- $_ := set $n $f (include "alertmanager.amcText" (dict "text" (get $c $f) "defs" $defs)) -}}
{{- end -}}
{{- else if eq $kind "pagerduty_configs" -}}
{{- $n = dict "routingKey" (dict "name" $secret "key" (base $c.routing_key_file)) "sendResolved" $c.send_resolved "severity" $c.severity "description" (include "alertmanager.amcText" (dict "text" $c.description "defs" $defs)) -}}
{{- else if eq $kind "webhook_configs" -}}
{{- $n = dict "urlSecret" (dict "name" $secret "key" (base $c.url_file)) "sendResolved" $c.send_resolved -}}
{{- if hasKey $c "max_alerts" }}{{ $_ := set $n "maxAlerts" $c.max_alerts }}{{ end -}}
{{- else -}}
{{- fail (printf "alertmanager: receiver %s: %s has no conversion for the AlertmanagerConfig (operator mode)" $r.name $kind) -}}
{{- end -}}
{{- $list = append $list $n -}}
{{- end -}}
{{- $_ := set $out (camelcase $kind | untitle) $list -}}
{{- end -}}
{{- $receivers = append $receivers $out -}}
{{- end -}}
{{- toJson (dict "route" $route "inhibitRules" $inhibit "receivers" $receivers) -}}
{{- end -}}

{{/*
alertmanager.grafanaUrl: the Grafana URL notifications link to, without a trailing slash:
global.grafanaUrl, unless the deprecated grafanaUrl is set (it still wins for one release; the
umbrella's NOTES warn).
*/}}
{{- define "alertmanager.grafanaUrl" -}}
{{- .Values.grafanaUrl | default (dig "grafanaUrl" "" (.Values.global | default dict)) | trimSuffix "/" -}}
{{- end -}}
