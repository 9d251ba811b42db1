{{/*
common.args.require: fail the render unless a helper got a dict with the listed keys.
Usage: include "common.args.require" (list "common.labels" . (list "context"))
*/}}
{{- define "common.args.require" -}}
{{- $helper := index . 0 -}}
{{- $args := index . 1 -}}
{{- $keys := index . 2 -}}
{{- if not (kindIs "map" $args) -}}
{{- fail (printf "%s: expects a dict with keys %v, got %s" $helper $keys (kindOf $args)) -}}
{{- end -}}
{{- range $keys -}}
{{- if not (hasKey $args .) -}}
{{- fail (printf "%s: missing argument %q (expects a dict with keys %v)" $helper . $keys) -}}
{{- end -}}
{{- end -}}
{{- if hasKey $args "context" -}}
{{- if not (and (kindIs "map" $args.context) (hasKey $args.context "Release") (hasKey $args.context "Chart")) -}}
{{- fail (printf "%s: argument \"context\" must be the chart's root context ($ or .)" $helper) -}}
{{- end -}}
{{- end -}}
{{- end -}}
