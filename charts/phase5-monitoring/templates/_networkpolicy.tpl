{{/* Building blocks of templates/networkpolicy.yaml. */}}
{{- define "phase5-monitoring.np.peer" -}}
- podSelector:
    matchLabels:
      app.kubernetes.io/name: {{ .name }}
      app.kubernetes.io/instance: {{ .release }}
{{- end }}
{{- define "phase5-monitoring.np.ingressNamespaces" -}}
- namespaceSelector:
    {{- if .selector }}
    matchLabels:
      {{- toYaml .selector | nindent 6 }}
    {{- else }} {}
    {{- end }}
{{- end }}
{{- define "phase5-monitoring.np.meta" -}}
name: {{ printf "%s-%s" .context.Release.Name .name | trunc 63 | trimSuffix "-" }}
namespace: {{ .context.Release.Namespace }}
labels:
  {{- include "common.labels" (dict "context" .context "component" "network-policy") | nindent 2 }}
{{- end }}
{{- define "phase5-monitoring.np.podSelector" -}}
podSelector:
  matchLabels:
    app.kubernetes.io/name: {{ .name }}
    app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- end }}
{{- define "phase5-monitoring.np.apiServer" -}}
- to:
    {{- range .cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    {{- range .ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end }}
