{{/*
alertmanager.configDir / alertmanager.secretsDir: where the config Secret (configuration
and notification templates) and the credentials Secret are mounted in the pod.
*/}}
{{- define "alertmanager.configDir" -}}/etc/alertmanager/config{{- end -}}
{{- define "alertmanager.secretsDir" -}}/etc/alertmanager/secrets{{- end -}}

{{/* alertmanager.headlessName: the headless Service (StatefulSet serviceName, cluster gossip). */}}
{{- define "alertmanager.headlessName" -}}
{{- printf "%s-headless" (include "common.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

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

{{/* alertmanager.config: the rendered alertmanager.yaml (files/alertmanager.yaml through tpl). */}}
{{- define "alertmanager.config" -}}
{{- tpl (.Files.Get "files/alertmanager.yaml") . -}}
{{- end -}}
