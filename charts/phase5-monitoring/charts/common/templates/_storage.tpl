{{/*
common.storageClass: the PVC storageClassName, from the component or global.storageClass.
"-" means the empty class (no dynamic provisioning).
Usage: include "common.storageClass" (dict "context" . "persistence" .Values.persistence)
*/}}
{{- define "common.storageClass" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "persistence") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.storageClass" . (list "context" "persistence")) -}}
{{- end -}}
{{- $sc := coalesce .persistence.storageClass ((.context.Values.global).storageClass) "" -}}
{{- if eq $sc "-" }}
storageClassName: ""
{{- else if $sc }}
storageClassName: {{ $sc | quote }}
{{- end -}}
{{- end -}}

{{/*
common.volumeClaimTemplates: a StatefulSet's claim retention policy and its one
volumeClaimTemplate, from a persistence block (enabled, existingClaim, accessModes, size,
storageClass, annotations). Renders nothing when persistence is off or existingClaim is set
(the pod then mounts an emptyDir or that claim).
One shape for every StatefulSet: the template is immutable after the first install, so its
labels are the selector labels only (a label that changes with the chart version would make
every upgrade an immutable-field change), and the claims are kept when the StatefulSet is
deleted or scaled down (Retain, Kubernetes' default, written out).
Usage (under the StatefulSet's spec):
  {{- with include "common.volumeClaimTemplates" (dict "context" . "persistence" .Values.persistence) }}
  {{- . | nindent 2 }}
  {{- end }}
  optional "name" (default "storage"): the volume name the container mounts.
*/}}
{{- define "common.volumeClaimTemplates" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "persistence") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.volumeClaimTemplates" . (list "context" "persistence")) -}}
{{- end -}}
{{- $p := .persistence -}}
{{- if not (kindIs "map" $p) -}}
{{- fail (printf "common.volumeClaimTemplates: argument \"persistence\" must be a dict (%s.persistence), got %s" .context.Chart.Name (kindOf $p)) -}}
{{- end -}}
{{- if and $p.enabled (not $p.existingClaim) -}}
{{- if not $p.size -}}
{{- fail (printf "%s.persistence.size is required when %s.persistence.enabled is true" .context.Chart.Name .context.Chart.Name) -}}
{{- end -}}
{{- if not $p.accessModes -}}
{{- fail (printf "%s.persistence.accessModes: list at least one access mode" .context.Chart.Name) -}}
{{- end -}}
persistentVolumeClaimRetentionPolicy:
  whenDeleted: Retain
  whenScaled: Retain
volumeClaimTemplates:
  - apiVersion: v1
    kind: PersistentVolumeClaim
    metadata:
      name: {{ .name | default "storage" }}
      labels:
        {{- include "common.selectorLabels" (dict "context" .context) | nindent 8 }}
      {{- with $p.annotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      accessModes:
        {{- toYaml $p.accessModes | nindent 8 }}
      {{- with include "common.storageClass" (dict "context" .context "persistence" $p) | trim }}
      {{- . | nindent 6 }}
      {{- end }}
      resources:
        requests:
          storage: {{ $p.size }}
{{- end -}}
{{- end -}}
