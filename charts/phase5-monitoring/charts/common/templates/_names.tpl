{{/*
common.name: the chart's name, or nameOverride. 63 characters at most.
Usage: include "common.name" .
*/}}
{{- define "common.name" -}}
{{- if not (and (kindIs "map" .) (hasKey . "Chart")) -}}
{{- fail "common.name: expects the chart's root context ($ or .)" -}}
{{- end -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
common.fullname: <release>-<chart> (or fullnameOverride), 63 characters at most.
Deterministic on purpose: other components find a service by
common.componentFullname without reading that component's values.
Usage: include "common.fullname" .
*/}}
{{- define "common.fullname" -}}
{{- if not (and (kindIs "map" .) (hasKey . "Chart") (hasKey . "Release")) -}}
{{- fail "common.fullname: expects the chart's root context ($ or .)" -}}
{{- end -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- include "common.componentFullname" (dict "context" . "component" .Chart.Name) -}}
{{- end -}}
{{- end -}}

{{/*
common.componentFullname: the fullname another component of this release gets
(<release>-<component>), for service addresses across subcharts.
Usage: include "common.componentFullname" (dict "context" . "component" "alertmanager")
*/}}
{{- define "common.componentFullname" -}}
{{- include "common.args.require" (list "common.componentFullname" . (list "context" "component")) -}}
{{- printf "%s-%s" .context.Release.Name .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
common.chart: chart name and version for the helm.sh/chart label.
*/}}
{{- define "common.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
common.serviceAccountName: the ServiceAccount a component's pods run as.
Usage: include "common.serviceAccountName" .   (reads .Values.serviceAccount.create/name)
*/}}
{{- define "common.serviceAccountName" -}}
{{- if not (and (kindIs "map" .) (hasKey . "Values")) -}}
{{- fail "common.serviceAccountName: expects the chart's root context ($ or .)" -}}
{{- end -}}
{{- $sa := .Values.serviceAccount | default dict -}}
{{- if $sa.create -}}
{{- default (include "common.fullname" .) $sa.name -}}
{{- else -}}
{{- default "default" $sa.name -}}
{{- end -}}
{{- end -}}

{{/*
common.clusterScopedName: the name of a cluster-scoped object (ClusterRole,
ClusterRoleBinding): <namespace>-<fullname>, so the same release name in two namespaces
does not collide on one cluster. 253 characters at most (a DNS subdomain).
Usage: include "common.clusterScopedName" .
*/}}
{{- define "common.clusterScopedName" -}}
{{- if not (and (kindIs "map" .) (hasKey . "Release")) -}}
{{- fail "common.clusterScopedName: expects the chart's root context ($ or .)" -}}
{{- end -}}
{{- printf "%s-%s" .Release.Namespace (include "common.fullname" .) | trunc 253 | trimSuffix "-" -}}
{{- end -}}
