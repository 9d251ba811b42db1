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
files/rules/*.yaml rendered with the placeholder scheme described at the top of
files/rules/phase5-log-alerts.yaml (disabled alerts and emptied groups left out; a placeholder
left over, or an alert without a loki.ruler.alerts section, fails the render), and
loki.ruler.extraRules as given.
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
{{- $name := base $path | trimSuffix ".yaml" -}}
{{- $file := $root.Files.Get $path | fromYaml -}}
{{- if or (not $file) (hasKey $file "Error") -}}
{{- fail (printf "loki: %s does not parse: %v" $path ($file | default dict).Error) -}}
{{- end -}}
{{- $groups := list -}}
{{- range $group := $file.groups -}}
{{- $rules := list -}}
{{- range $rule := $group.rules -}}
{{- if not (hasKey $root.Values.ruler.alerts $rule.alert) -}}
{{- fail (printf "loki: alert %q in %s has no loki.ruler.alerts.%s section in values" $rule.alert $path $rule.alert) -}}
{{- end -}}
{{- $settings := index $root.Values.ruler.alerts $rule.alert -}}
{{- if $settings.enabled -}}
{{- $rendered := omit $rule "teamFrom" -}}
{{- with $from := $rule.teamFrom -}}
{{- $expr := printf "label_replace(%s, \"category\", \"application\", \"\", \"\")" (trim $rule.expr) -}}
{{- range $app := keys $root.Values.ruler.categories | sortAlpha -}}
{{- $expr = printf "label_replace(%s, \"category\", %q, %q, %q)" $expr (index $root.Values.ruler.categories $app) $from (regexQuoteMeta $app) -}}
{{- end -}}
{{- $_ := set $rendered "expr" (printf "label_replace(%s, \"service\", \"$1\", %q, \"(.+)\")" $expr $from) -}}
{{- end -}}
{{- $text := toYaml $rendered -}}
{{- $values := dict -}}
{{- range $key, $value := omit $settings "enabled" -}}
{{- if kindIs "slice" $value -}}
{{- $quoted := list -}}
{{- range $value }}{{ $quoted = append $quoted (regexQuoteMeta (toString .)) }}{{ end -}}
{{- $_ := set $values $key (join "|" $quoted) -}}
{{- else -}}
{{- $_ := set $values $key $value -}}
{{- end -}}
{{- end -}}
{{- range $key, $value := merge $values $global -}}
{{- $text = replace (printf "${%s}" $key) (toString $value) $text -}}
{{- end -}}
{{- if contains "${" $text -}}
{{- fail (printf "loki: alert %s keeps an unknown placeholder after substitution:\n%s" $rule.alert $text) -}}
{{- end -}}
{{- $rules = append $rules (fromYaml $text) -}}
{{- end -}}
{{- end -}}
{{- if $rules -}}
{{- $groups = append $groups (merge (dict "rules" $rules) (omit $group "rules")) -}}
{{- end -}}
{{- end -}}
{{- if $groups -}}
{{- $_ := set $out $name (toYaml (dict "groups" $groups)) -}}
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
