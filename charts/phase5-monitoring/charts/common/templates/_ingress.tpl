{{/*
common.ingress: an Ingress to the component's Service, when ingress.enabled is true. Reads
the component's ingress block: hosts, path, pathType, className, annotations, tls (a list of
{secretName, hosts}; hosts default to ingress.hosts).
One validation for every component: ingress.hosts must list at least one host (the failure
names the value to set). A tls entry without secretName is kept without one: Kubernetes allows
it (the controller's default certificate, SNI routing).
Usage: include "common.ingress" (dict "context" . "component" (include "grafana.component" .) "port" "http-web")
  port: the Service port name (or number) the Ingress sends to.
  annotations: (optional) annotations the chart adds, under the user's ingress.annotations (the
  user's value wins for the same key), e.g. the backend protocol of a component serving HTTPS.
*/}}
{{- define "common.ingress" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "component") (hasKey . "port") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.ingress" . (list "context" "component" "port")) -}}
{{- end -}}
{{- $ctx := .context -}}
{{- $ing := $ctx.Values.ingress -}}
{{- $key := printf "%s.ingress" $ctx.Chart.Name -}}
{{- if not (kindIs "map" $ing) -}}
{{- fail (printf "common.ingress: %s must be a dict, got %s" $key (kindOf $ing)) -}}
{{- end -}}
{{- if $ing.enabled -}}
{{- if not $ing.hosts -}}
{{- fail (printf "%s.enabled: set %s.hosts (at least one host name)" $key $key) -}}
{{- end -}}
{{- $fullname := include "common.fullname" $ctx }}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ $fullname }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "common.labels" (dict "context" $ctx "component" .component) | nindent 4 }}
  {{- with merge (deepCopy ($ing.annotations | default dict)) (.annotations | default dict) }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $ing.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- with $ing.tls }}
  tls:
    {{- range . }}
    - hosts:
        {{- toYaml (.hosts | default $ing.hosts) | nindent 8 }}
      {{- with .secretName }}
      secretName: {{ . | quote }}
      {{- end }}
    {{- end }}
  {{- end }}
  rules:
    {{- range $ing.hosts }}
    - host: {{ . | quote }}
      http:
        paths:
          - path: {{ $ing.path | default "/" }}
            pathType: {{ $ing.pathType | default "Prefix" }}
            backend:
              service:
                name: {{ $fullname }}
                port:
                  {{- if kindIs "string" $.port }}
                  name: {{ $.port }}
                  {{- else }}
                  number: {{ $.port }}
                  {{- end }}
    {{- end }}
{{- end -}}
{{- end -}}
