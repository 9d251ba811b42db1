{{/*
common.resources: a container's resources; fails when requests are missing so no
component ships unsized.
Usage: include "common.resources" (dict "context" . "resources" .Values.resources)
*/}}
{{- define "common.resources" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "resources") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.resources" . (list "context" "resources")) -}}
{{- end -}}
{{- if not (and (kindIs "map" .resources) .resources.requests) -}}
{{- fail (printf "common.resources: %s: resources.requests must be set" .context.Chart.Name) -}}
{{- end -}}
{{- toYaml .resources -}}
{{- end -}}
