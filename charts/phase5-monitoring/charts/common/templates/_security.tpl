{{/*
Hardened defaults (Pod Security Standards "restricted"). Component values
(podSecurityContext / securityContext) are merged over them: a component that needs
host access (node-exporter, the log collector) says so in its own values.
*/}}
{{- define "common.podSecurityContext" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.podSecurityContext" . (list "context")) -}}
{{- end -}}
{{- $defaults := dict "runAsNonRoot" true "runAsUser" 65534 "runAsGroup" 65534 "fsGroup" 65534 "seccompProfile" (dict "type" "RuntimeDefault") -}}
{{- toYaml (mergeOverwrite $defaults (deepCopy (.override | default dict))) -}}
{{- end -}}

{{- define "common.containerSecurityContext" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.containerSecurityContext" . (list "context")) -}}
{{- end -}}
{{- $defaults := dict "allowPrivilegeEscalation" false "readOnlyRootFilesystem" true "runAsNonRoot" true "capabilities" (dict "drop" (list "ALL")) "seccompProfile" (dict "type" "RuntimeDefault") -}}
{{- toYaml (mergeOverwrite $defaults (deepCopy (.override | default dict))) -}}
{{- end -}}
