{{/*
common.podMetadata: the metadata of a workload's pod template: common.labels plus
podLabels; the given annotations (e.g. checksum/config) plus podAnnotations. The
annotations key is left out when there are none.
Usage (under template:):
  metadata:
    {{- include "common.podMetadata" (dict "context" . "component" (include "loki.component" .)
          "annotations" (dict "checksum/config" (include "common.checksum" (dict "context" . "template" "/configmap.yaml")))) | nindent 4 }}
  "annotations" is optional; so is "name" (as for common.selectorLabels).
*/}}
{{- define "common.podMetadata" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "component") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.podMetadata" . (list "context" "component")) -}}
{{- end -}}
{{- $ctx := .context -}}
{{- $annotations := .annotations | default dict -}}
{{- if not (kindIs "map" $annotations) -}}
{{- fail (printf "common.podMetadata: argument \"annotations\" must be a dict, got %s" (kindOf $annotations)) -}}
{{- end -}}
labels:
  {{- include "common.labels" (dict "context" $ctx "component" .component "name" .name) | nindent 2 }}
  {{- with $ctx.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- if or $annotations $ctx.Values.podAnnotations }}
annotations:
  {{- with $annotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with $ctx.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/*
common.podScheduling: where a pod may run: nodeSelector, tolerations, affinity and
topologySpreadConstraints from the component's values (each left out when empty or unset).
Usage (under the pod spec):
  {{- with include "common.podScheduling" (dict "context" .) }}
  {{- . | nindent 6 }}
  {{- end }}
*/}}
{{- define "common.podScheduling" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.podScheduling" . (list "context")) -}}
{{- end -}}
{{- $v := .context.Values -}}
{{- $out := dict -}}
{{- range $key := list "nodeSelector" "tolerations" "affinity" "topologySpreadConstraints" -}}
{{- with get $v $key -}}
{{- $_ := set $out $key . -}}
{{- end -}}
{{- end -}}
{{- with $out -}}
{{- toYaml . -}}
{{- end -}}
{{- end -}}

{{/*
common.podSpecBase: the pod-spec fields every component sets the same way: its ServiceAccount,
whether that account's token is mounted (tokenMounted: true only for a component that calls the
Kubernetes API; required, so each workload says which), imagePullSecrets and priorityClassName
from its values (each left out when unset) and the pod securityContext (the restricted defaults,
with the component's podSecurityContext over them).
Usage (under the pod spec):
  # <why the component does or does not call the API>
  {{- include "common.podSpecBase" (dict "context" . "tokenMounted" false) | nindent 6 }}
*/}}
{{- define "common.podSpecBase" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "tokenMounted") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.podSpecBase" . (list "context" "tokenMounted")) -}}
{{- end -}}
{{- if not (kindIs "bool" .tokenMounted) -}}
{{- fail (printf "common.podSpecBase: argument \"tokenMounted\" must be true or false, got %s" (kindOf .tokenMounted)) -}}
{{- end -}}
{{- $ctx := .context -}}
serviceAccountName: {{ include "common.serviceAccountName" $ctx }}
automountServiceAccountToken: {{ .tokenMounted }}
{{- with include "common.imagePullSecrets" (dict "context" $ctx "secrets" $ctx.Values.imagePullSecrets) }}
{{ trim . }}
{{- end }}
{{- with $ctx.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
securityContext:
  {{- include "common.podSecurityContext" (dict "context" $ctx "override" $ctx.Values.podSecurityContext) | nindent 2 }}
{{- end -}}
