{{/*
loki.component: the app.kubernetes.io/component label of Loki's objects, written
here only. loki.labels: common.labels with it.
Usage: include "loki.labels" .
*/}}
{{- define "loki.component" -}}logs{{- end -}}

{{- define "loki.labels" -}}
{{- include "common.labels" (dict "context" . "component" (include "loki.component" .)) -}}
{{- end -}}

{{/*
loki.s3.credentialsSecret: the name of the Secret holding the S3 keys, or "" when Loki
uses no static keys (filesystem storage, or S3 through an IAM role / IRSA).
*/}}
{{- define "loki.s3.credentialsSecret" -}}
{{- $s3 := .Values.storage.s3 -}}
{{- if eq .Values.storage.type "s3" -}}
{{- if $s3.existingSecret -}}
{{- $s3.existingSecret -}}
{{- else if or $s3.accessKeyId $s3.secretAccessKey -}}
{{- if not (and $s3.accessKeyId $s3.secretAccessKey) -}}
{{- fail "loki.storage.s3: set both accessKeyId and secretAccessKey (or existingSecret)" -}}
{{- end -}}
{{- printf "%s-s3" (include "common.fullname" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
loki.validate: fail early on storage settings Loki would reject at start-up.
*/}}
{{- define "loki.validate" -}}
{{- if and (eq .Values.storage.type "s3") (not .Values.storage.s3.bucket) -}}
{{- fail "loki.storage.s3.bucket is required when loki.storage.type is s3" -}}
{{- end -}}
{{- end -}}


{{/*
loki.rulerOn: "true" when the ruler runs: loki.ruler.enabled, and in operator mode only with
loki.ruler.alertmanagerUrl set (the existing stack's Alertmanager is not this chart's to find).
Usage: if include "loki.rulerOn" .
*/}}
{{- define "loki.rulerOn" -}}
{{- if .Values.ruler.enabled -}}
{{- if or (not (include "common.operatorMode" .)) .Values.ruler.alertmanagerUrl -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/*
loki.rulerDir: where the rule files are mounted; Loki's local rule storage reads
<dir>/<tenant>/*.yaml, and a single-tenant Loki (auth_enabled: false) is tenant "fake".
*/}}
{{- define "loki.rulerDir" -}}/etc/loki-rules{{- end -}}

{{/*
loki.alertmanager: how the ruler reaches Alertmanager, as JSON {url, discovery, tls, serverName,
caDir}: loki.ruler.alertmanagerUrl as given (no discovery, no TLS settings), else this release's
Alertmanager: every pod through the DNS SRV records of its headless Service (port http-web), over
HTTPS with its CA (mounted by common.webClientVolume) when global.web.alertmanager.tls is on, and
with global.web.alertmanager.basicAuth the user name and password of its clientSecret as
{basicAuth: {secret, usernameKey, passwordKey}}: Loki (ruler.alertmanager_client) takes them only
as values in its configuration, so the ConfigMap holds ${ALERTMANAGER_USERNAME} and
${ALERTMANAGER_PASSWORD} and the StatefulSet sets both from the Secret (-config.expand-env).
*/}}
{{- define "loki.alertmanager" -}}
{{- if .Values.ruler.alertmanagerUrl -}}
{{- toJson (dict "url" .Values.ruler.alertmanagerUrl "discovery" false "tls" false) -}}
{{- else -}}
{{- $w := include "common.web" (dict "context" . "component" "alertmanager") | fromJson -}}
{{- $srv := printf "_http-web._tcp.%s.%s.svc" (include "common.componentHeadlessName" (dict "context" . "component" "alertmanager")) .Release.Namespace -}}
{{- $out := dict "url" (printf "%s://%s" $w.scheme $srv) "discovery" true "tls" $w.tls "serverName" $w.serverName "caDir" (include "common.webClientDir" "alertmanager") -}}
{{- if $w.basicAuth -}}
{{- $_ := set $out "basicAuth" (dict "secret" $w.clientSecret "usernameKey" $w.usernameKey "passwordKey" $w.passwordKey) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
{{- end -}}

{{/*
loki.ruleFiles: the rule files the ruler loads, as JSON {file name (without .yaml): content}:
files/rules/*.yaml rendered by common.ruleFile with the placeholder scheme described at the top of
files/rules/phase5-log-alerts.yaml (disabled alerts and emptied groups left out; a placeholder
left over, or an alert without a loki.ruler.alerts section, fails the render), each rule's
`teamFrom` first expanded by loki.ruleTeam, and loki.ruler.extraRules as given.
*/}}
{{- define "loki.ruleFiles" -}}
{{- include "common.memo" (dict "context" . "template" "loki.ruleFiles.render") -}}
{{- end -}}

{{- define "loki.ruleFiles.render" -}}
{{- $root := . -}}
{{- $ns := dig "phase5" "namespaceRegex" "" (.Values.global | default dict) -}}
{{- if not $ns -}}
{{- fail "loki.ruler: global.phase5.namespaceRegex must be set (the namespaces of the Phase 5 services, which the log alerts read)" -}}
{{- end -}}
{{- $global := dict "namespaceRegex" $ns "runbookBaseUrl" (trimSuffix "/" .Values.ruler.runbookBaseUrl) -}}
{{- $out := dict -}}
{{- range $path, $_ := .Files.Glob "files/rules/*.yaml" -}}
{{- with include "common.ruleFile" (dict "context" $root "file" $path "settings" $root.Values.ruler.alerts "settingsPath" "loki.ruler.alerts" "globals" $global "transform" "loki.ruleTeam") -}}
{{- $_ := set $out (base $path | trimSuffix ".yaml") . -}}
{{- end -}}
{{- end -}}
{{- range $name, $content := .Values.ruler.extraRules -}}
{{- if hasKey $out $name -}}
{{- fail (printf "loki.ruler.extraRules.%s: the chart has a rule file of that name" $name) -}}
{{- end -}}
{{- $_ := set $out $name (toYaml $content) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
loki.ruleTeam: one log alert rule as YAML (common.ruleFile's transform). A rule's `teamFrom: <label>`
(removed) wraps its expression so that the alert carries `category` = the team of that label's
value (loki.ruler.categories, else application) and `service` = that value, as the metric alerts do.
Usage: include "loki.ruleTeam" (dict "context" . "rule" $rule)
*/}}
{{- define "loki.ruleTeam" -}}
{{- $rule := .rule -}}
{{- $categories := .context.Values.ruler.categories -}}
{{- $rendered := omit $rule "teamFrom" -}}
{{- with $from := $rule.teamFrom -}}
{{- $expr := printf "label_replace(%s, \"category\", \"application\", \"\", \"\")" (trim $rule.expr) -}}
{{- range $app := keys $categories | sortAlpha -}}
{{- $expr = printf "label_replace(%s, \"category\", %q, %q, %q)" $expr (index $categories $app) $from (regexQuoteMeta $app) -}}
{{- end -}}
{{- $_ := set $rendered "expr" (printf "label_replace(%s, \"service\", \"$1\", %q, \"(.+)\")" $expr $from) -}}
{{- end -}}
{{- toYaml $rendered -}}
{{- end -}}
