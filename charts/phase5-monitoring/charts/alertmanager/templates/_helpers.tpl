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
reach the severity channels only). Both the routes and the receivers of alertmanager.routing read it.
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
alertmanager.slackCredential: the credential fields of one Slack receiver (YAML lines of
alertmanager.routing: a credential is {secretKey: k}), from its slackReceivers entry. Mode webhook:
api_url_file, the receiver's own Secret key slack-webhook-url-<key> when slack.ownWebhooks lists it,
else the shared slack-webhook-url. Mode app: the bot token (Alertmanager sends it as a Bearer token
to chat.postMessage, which posts to the receiver's channel) and slack.appUrl when set.
Usage: include "alertmanager.slackCredential" (dict "context" $ "receiver" .)
*/}}
{{- define "alertmanager.slackCredential" -}}
{{- $v := .context.Values -}}
{{- if eq $v.slack.mode "app" -}}
app_token_file: {secretKey: slack-app-token}
{{- with $v.slack.appUrl }}
app_url: {{ toJson . }}
{{- end }}
{{- else -}}
api_url_file: {secretKey: {{ include "alertmanager.slackWebhookKey" (dict "context" .context "key" .receiver.key) }}}
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

{{/*
alertmanager.grafanaUrl: the Grafana URL notifications link to, without a trailing slash:
global.grafanaUrl, unless the deprecated grafanaUrl is set (it still wins for one release; the
umbrella's NOTES warn).
*/}}
{{- define "alertmanager.grafanaUrl" -}}
{{- .Values.grafanaUrl | default (dig "grafanaUrl" "" (.Values.global | default dict)) | trimSuffix "/" -}}
{{- end -}}
