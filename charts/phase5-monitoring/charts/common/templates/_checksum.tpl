{{/*
common.checksum: sha256 of a rendered template, for a pod annotation that rolls the
pod when its configuration changes.
Usage: include "common.checksum" (dict "context" . "template" "/configmap.yaml")
*/}}
{{- define "common.checksum" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "template") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.checksum" . (list "context" "template")) -}}
{{- end -}}
{{- include (print .context.Template.BasePath .template) .context | sha256sum -}}
{{- end -}}

{{/*
common.memo: the output of a named template, rendered once per chart and render. The checksum
annotations render a configuration template a second time (the ConfigMap itself, then its
checksum); the costly parts of those (the rule files, the config files run through tpl) are
read from here the second time. Only for templates whose output depends on the chart's root
context alone: the memo is kept in that context (one per chart; Helm gives every template of a
chart the same one).
Usage: include "common.memo" (dict "context" . "template" "prometheus.alertRules.render")
*/}}
{{- define "common.memo" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "template") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.memo" . (list "context" "template")) -}}
{{- end -}}
{{- include "common.memo.store" .context -}}
{{- $memo := index .context "phase5Memo" -}}
{{- if not (hasKey $memo .template) -}}
{{- $_ := set $memo .template (include .template .context) -}}
{{- end -}}
{{- get $memo .template -}}
{{- end -}}

{{/*
common.tplFile: a file of the chart run through `tpl`, once per chart and render (kept in the
same memo as common.memo). Helm's `tpl` is costly (it copies every template of the release
before it parses the text), and each configuration file is rendered twice: for its ConfigMap
or Secret and for the pod's checksum annotation.
Usage: include "common.tplFile" (dict "context" . "file" "files/loki.yaml")
*/}}
{{- define "common.tplFile" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "file") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.tplFile" . (list "context" "file")) -}}
{{- end -}}
{{- include "common.memo.store" .context -}}
{{- $memo := index .context "phase5Memo" -}}
{{- $key := printf "tpl:%s" .file -}}
{{- if not (hasKey $memo $key) -}}
{{- $text := .context.Files.Get .file -}}
{{- if not $text -}}
{{- fail (printf "common.tplFile: %s is missing or empty in chart %s" .file .context.Chart.Name) -}}
{{- end -}}
{{- $_ := set $memo $key (tpl $text .context) -}}
{{- end -}}
{{- get $memo $key -}}
{{- end -}}

{{/* common.memo.store: gives the chart's root context its memo (a dict under phase5Memo) once. */}}
{{- define "common.memo.store" -}}
{{- if not (index . "phase5Memo") -}}
{{- $_ := set . "phase5Memo" (dict) -}}
{{- end -}}
{{- end -}}
