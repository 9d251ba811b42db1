{{/*
common.checksum: sha256 of a rendered template, for a pod annotation that rolls the
pod when its configuration changes.
Usage: include "common.checksum" (dict "context" . "template" "/configmap.yaml")
*/}}
{{- define "common.checksum" -}}
{{- include "common.args.require" (list "common.checksum" . (list "context" "template")) -}}
{{- include (print .context.Template.BasePath .template) .context | sha256sum -}}
{{- end -}}
