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

