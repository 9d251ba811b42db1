{{/*
common.headlessName: the name of the component's headless Service (<fullname>-headless),
the governing Service of its StatefulSet (stable pod DNS names).
Usage: include "common.headlessName" .
*/}}
{{- define "common.headlessName" -}}
{{- if not (and (kindIs "map" .) (hasKey . "Chart") (hasKey . "Release")) -}}
{{- fail "common.headlessName: expects the chart's root context ($ or .)" -}}
{{- end -}}
{{- include "common.componentHeadlessName" (dict "context" . "component" (include "common.name" .)) -}}
{{- end -}}

{{/*
common.componentHeadlessName: the headless Service another component of this release gets
(<release>-<component>-headless), e.g. Thanos Query's SRV lookup of the Prometheus sidecars.
Usage: include "common.componentHeadlessName" (dict "context" . "component" "prometheus")
*/}}
{{- define "common.componentHeadlessName" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "component") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.componentHeadlessName" . (list "context" "component")) -}}
{{- end -}}
{{- printf "%s-headless" (include "common.componentFullname" (dict "context" .context "component" .component)) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
common.headlessService: the headless Service (clusterIP None) named common.headlessName over
the component's selector labels. Not-ready pods are published too, so the members of a
StatefulSet find each other while they start.
Usage: include "common.headlessService" (dict "context" . "component" (include "loki.component" .)
         "ports" (list (dict "name" "http-web" "port" 3100)))
  each port: name and port required, protocol optional (TCP); targetPort is the port's name.
  optional "name": the app.kubernetes.io/name of a second workload of the chart (as for
  common.selectorLabels); the Service is then <release>-<name>-headless.
  optional "annotations": a dict of annotations (e.g. common.metricsAnnotations | fromYaml, when
  only this Service reaches a port to scrape: the Prometheus pods' Thanos sidecars).
*/}}
{{- define "common.headlessService" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "component") (hasKey . "ports") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.headlessService" . (list "context" "component" "ports")) -}}
{{- end -}}
{{- if not (and (kindIs "slice" .ports) .ports) -}}
{{- fail "common.headlessService: argument \"ports\" must be a non-empty list of {name, port, protocol}" -}}
{{- end -}}
{{- $ctx := .context }}
apiVersion: v1
kind: Service
metadata:
  name: {{ if .name }}{{ include "common.componentHeadlessName" (dict "context" $ctx "component" .name) }}{{ else }}{{ include "common.headlessName" $ctx }}{{ end }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "common.labels" (dict "context" $ctx "component" .component "name" .name) | nindent 4 }}
  {{- with .annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector:
    {{- include "common.selectorLabels" (dict "context" $ctx "name" .name) | nindent 4 }}
  ports:
    {{- range $i, $p := .ports }}
    {{- if not (and (kindIs "map" $p) $p.name $p.port) }}
    {{- fail (printf "common.headlessService: ports[%d] needs a name and a port, got %v" $i $p) }}
    {{- end }}
    - name: {{ $p.name }}
      port: {{ $p.port }}
      targetPort: {{ $p.name }}
      protocol: {{ $p.protocol | default "TCP" }}
    {{- end }}
{{- end -}}
