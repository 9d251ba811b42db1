{{/*
thanos.component: the app.kubernetes.io/component label of Thanos Query's objects, written
here only. thanos.labels: common.labels with it.
Usage: include "thanos.labels" .
*/}}
{{- define "thanos.component" -}}query{{- end -}}

{{- define "thanos.labels" -}}
{{- include "common.labels" (dict "context" . "component" (include "thanos.component" .)) -}}
{{- end -}}

{{/*
thanos.queryName: the name of Thanos Query's Deployment, Service and PDB (<release>-thanos-query):
Grafana's datasource (grafana.datasourceUrl) and the umbrella's component list address it.
*/}}
{{- define "thanos.queryName" -}}
{{- printf "%s-query" (include "common.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
thanos.replicaLabel: the external label that tells the Prometheus replicas apart, which Query
deduplicates on. The prometheus subchart sets it (files/prometheus.yml: prometheus_replica, the
pod's name, whenever prometheus.replicas > 1); tests/test_unit_thanos.py holds the two equal.
*/}}
{{- define "thanos.replicaLabel" -}}prometheus_replica{{- end -}}

{{/*
thanos.endpointConfig: Query's --endpoint.sd-config (one line of YAML): the Prometheus
sidecars' StoreAPI found through the Prometheus headless Service's SRV records (one address per
ready or starting pod, port grpc-thanos), plus query.extraEndpoints.
*/}}
{{- define "thanos.endpointConfig" -}}
{{- $headless := include "common.componentHeadlessName" (dict "context" . "component" "prometheus") -}}
{{- $endpoints := list (dict "address" (printf "dnssrv+_grpc-thanos._tcp.%s.%s.svc.%s" $headless .Release.Namespace .Values.query.clusterDomain)) -}}
{{- range .Values.query.extraEndpoints -}}
{{- $endpoints = append $endpoints (dict "address" .) -}}
{{- end -}}
{{- toJson (dict "endpoints" $endpoints) -}}
{{- end -}}
