{{/*
Hardened defaults (Pod Security Standards "restricted"). Component values
(podSecurityContext / securityContext) are merged over them: a component that needs
host access (node-exporter, the log collector) says so in its own values.
*/}}
{{- define "common.podSecurityContext" -}}
{{- include "common.args.require" (list "common.podSecurityContext" . (list "context")) -}}
{{- $defaults := dict "runAsNonRoot" true "runAsUser" 65534 "runAsGroup" 65534 "fsGroup" 65534 "seccompProfile" (dict "type" "RuntimeDefault") -}}
{{- toYaml (mergeOverwrite $defaults (deepCopy (.override | default dict))) -}}
{{- end -}}

{{- define "common.containerSecurityContext" -}}
{{- include "common.args.require" (list "common.containerSecurityContext" . (list "context")) -}}
{{- $defaults := dict "allowPrivilegeEscalation" false "readOnlyRootFilesystem" true "runAsNonRoot" true "capabilities" (dict "drop" (list "ALL")) "seccompProfile" (dict "type" "RuntimeDefault") -}}
{{- toYaml (mergeOverwrite $defaults (deepCopy (.override | default dict))) -}}
{{- end -}}

{{/*
common.resources: a container's resources; fails when requests are missing so no
component ships unsized.
Usage: include "common.resources" (dict "context" . "resources" .Values.resources)
*/}}
{{- define "common.resources" -}}
{{- include "common.args.require" (list "common.resources" . (list "context" "resources")) -}}
{{- if not (and (kindIs "map" .resources) .resources.requests) -}}
{{- fail (printf "common.resources: %s: resources.requests must be set" .context.Chart.Name) -}}
{{- end -}}
{{- toYaml .resources -}}
{{- end -}}

{{/*
common.checksum: sha256 of a rendered template, for a pod annotation that rolls the
pod when its configuration changes.
Usage: include "common.checksum" (dict "context" . "template" "/configmap.yaml")
*/}}
{{- define "common.checksum" -}}
{{- include "common.args.require" (list "common.checksum" . (list "context" "template")) -}}
{{- include (print .context.Template.BasePath .template) .context | sha256sum -}}
{{- end -}}

{{/*
common.storageClass: the PVC storageClassName, from the component or global.storageClass.
"-" means the empty class (no dynamic provisioning).
Usage: include "common.storageClass" (dict "context" . "persistence" .Values.persistence)
*/}}
{{- define "common.storageClass" -}}
{{- include "common.args.require" (list "common.storageClass" . (list "context" "persistence")) -}}
{{- $sc := coalesce .persistence.storageClass ((.context.Values.global).storageClass) "" -}}
{{- if eq $sc "-" }}
storageClassName: ""
{{- else if $sc }}
storageClassName: {{ $sc | quote }}
{{- end -}}
{{- end -}}
