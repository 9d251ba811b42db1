{{/*
common.serviceAccount: the component's ServiceAccount, when serviceAccount.create is true
(name: common.serviceAccountName; annotations: serviceAccount.annotations). The token is not
automounted through the ServiceAccount: a pod that calls the Kubernetes API says so in its own
spec (automountServiceAccountToken: true).
Usage: include "common.serviceAccount" (dict "context" . "component" (include "prometheus.component" .))
*/}}
{{- define "common.serviceAccount" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "component") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.serviceAccount" . (list "context" "component")) -}}
{{- end -}}
{{- $ctx := .context -}}
{{- $sa := $ctx.Values.serviceAccount -}}
{{- if not (kindIs "map" $sa) -}}
{{- fail (printf "common.serviceAccount: %s.serviceAccount must be a dict with create/name/annotations, got %s" $ctx.Chart.Name (kindOf $sa)) -}}
{{- end -}}
{{- if $sa.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "common.serviceAccountName" $ctx }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "common.labels" (dict "context" $ctx "component" .component) | nindent 4 }}
  {{- with $sa.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end -}}
{{- end -}}
