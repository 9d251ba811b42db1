{{/*
common.podDisruptionBudget: a PodDisruptionBudget over the chart's selectorLabels.
Usage: include "common.podDisruptionBudget" (dict "context" . "component" "server" "maxUnavailable" 1)
*/}}
{{- define "common.podDisruptionBudget" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "component") (hasKey . "maxUnavailable") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.podDisruptionBudget" . (list "context" "component" "maxUnavailable")) -}}
{{- end -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "common.fullname" .context }}
  namespace: {{ .context.Release.Namespace }}
  labels:
    {{- include "common.labels" (dict "context" .context "component" .component) | nindent 4 }}
spec:
  maxUnavailable: {{ .maxUnavailable }}
  selector:
    matchLabels:
      {{- include "common.selectorLabels" (dict "context" .context) | nindent 6 }}
{{- end -}}
