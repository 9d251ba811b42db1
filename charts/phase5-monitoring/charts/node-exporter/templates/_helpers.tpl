{{/*
node-exporter.component: the app.kubernetes.io/component label of node-exporter's objects, written
here only. node-exporter.labels: common.labels with it.
Usage: include "node-exporter.labels" .
*/}}
{{- define "node-exporter.component" -}}metrics{{- end -}}

{{- define "node-exporter.labels" -}}
{{- include "common.labels" (dict "context" . "component" (include "node-exporter.component" .)) -}}
{{- end -}}
