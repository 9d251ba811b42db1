{{/*
common.name: what the component runs, for object names and the app.kubernetes.io/name label:
the chart's name, except for a chart whose `collector` value says which program its workload
runs (the log collector subchart: `promtail` or `alloy`), which is named after that program.
63 characters at most. There is no nameOverride/fullnameOverride: components find each other
by these fixed names (common.componentFullname) and a subchart cannot read another one's values.
Usage: include "common.name" .
*/}}
{{- define "common.name" -}}
{{- if not (and (kindIs "map" .) (hasKey . "Chart")) -}}
{{- fail "common.name: expects the chart's root context ($ or .)" -}}
{{- end -}}
{{- $name := .Chart.Name -}}
{{- with .Values.collector -}}
{{- if kindIs "string" . -}}{{- $name = . -}}{{- end -}}
{{- end -}}
{{- $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
common.fullname: <release>-<common.name>, 63 characters at most. Deterministic on purpose:
other components find a service by common.componentFullname without reading that
component's values.
Usage: include "common.fullname" .
*/}}
{{- define "common.fullname" -}}
{{- if not (and (kindIs "map" .) (hasKey . "Chart") (hasKey . "Release")) -}}
{{- fail "common.fullname: expects the chart's root context ($ or .)" -}}
{{- end -}}
{{- /* Kept in the chart's memo (see common.memo): it depends on the root context alone and every
object's name asks for it. */ -}}
{{- if not (index . "phase5Memo") -}}
{{- $_ := set . "phase5Memo" (dict) -}}
{{- end -}}
{{- if not (hasKey .phase5Memo "fullname") -}}
{{- $_ := set .phase5Memo "fullname" (include "common.componentFullname" (dict "context" . "component" (include "common.name" .))) -}}
{{- end -}}
{{- get .phase5Memo "fullname" -}}
{{- end -}}

{{/*
common.componentFullname: the fullname another component of this release gets
(<release>-<component>), for service addresses across subcharts. The log collector's
name depends on promtail.collector, which other subcharts cannot read: only the umbrella
(phase5-monitoring.components) addresses it.
Usage: include "common.componentFullname" (dict "context" . "component" "alertmanager")
*/}}
{{- define "common.componentFullname" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "component") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.componentFullname" . (list "context" "component")) -}}
{{- end -}}
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
