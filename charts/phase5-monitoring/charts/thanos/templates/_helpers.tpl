{{/*
thanos.component: the app.kubernetes.io/component label of Thanos Query's objects, written
here only (thanos.storeComponent, thanos.compactComponent: the Store Gateway's and the
Compactor's). thanos.labels: common.labels with it.
Usage: include "thanos.labels" .
*/}}
{{- define "thanos.component" -}}query{{- end -}}

{{- define "thanos.storeComponent" -}}store-gateway{{- end -}}
{{- define "thanos.compactComponent" -}}compactor{{- end -}}

{{/*
thanos.storeLabels / thanos.compactLabels (and .storeSelectorLabels / .compactSelectorLabels):
common.labels of the Store Gateway's and the Compactor's objects, with their own
app.kubernetes.io/name (thanos-store, thanos-compact) and component.
*/}}
{{- define "thanos.storeLabels" -}}
{{- include "common.labels" (dict "context" . "component" (include "thanos.storeComponent" .) "name" "thanos-store") -}}
{{- end -}}
{{- define "thanos.storeSelectorLabels" -}}
{{- include "common.selectorLabels" (dict "context" . "name" "thanos-store") -}}
{{- end -}}
{{- define "thanos.compactLabels" -}}
{{- include "common.labels" (dict "context" . "component" (include "thanos.compactComponent" .) "name" "thanos-compact") -}}
{{- end -}}
{{- define "thanos.compactSelectorLabels" -}}
{{- include "common.selectorLabels" (dict "context" . "name" "thanos-compact") -}}
{{- end -}}

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
ready or starting pod, port grpc-thanos), the Store Gateway's pods through its headless Service
(storeGateway.enabled), plus query.extraEndpoints.
*/}}
{{- define "thanos.endpointConfig" -}}
{{- $headless := include "common.componentHeadlessName" (dict "context" . "component" "prometheus") -}}
{{- $endpoints := list (dict "address" (printf "dnssrv+_grpc-thanos._tcp.%s.%s.svc.%s" $headless .Release.Namespace .Values.query.clusterDomain)) -}}
{{- if .Values.storeGateway.enabled -}}
{{- $endpoints = append $endpoints (dict "address" (printf "dnssrv+_grpc._tcp.%s.%s.svc.%s" (include "common.componentHeadlessName" (dict "context" . "component" "thanos-store")) .Release.Namespace .Values.query.clusterDomain)) -}}
{{- end -}}
{{- range .Values.query.extraEndpoints -}}
{{- $endpoints = append $endpoints (dict "address" .) -}}
{{- end -}}
{{- toJson (dict "endpoints" $endpoints) -}}
{{- end -}}

{{/*
thanos.storeName / thanos.compactName: the app.kubernetes.io/name of the Store Gateway's and the
Compactor's pods, and the name of their StatefulSet and Service (<release>-<name>): their rows of
common.components (thanos-store, thanos-compact, chart thanos). A name of their own, not
"thanos": Query's Service, PDB and NetworkPolicy select name=thanos and must not take them in.
*/}}
{{- define "thanos.storeName" -}}
{{- include "common.componentFullname" (dict "context" . "component" "thanos-store") -}}
{{- end -}}
{{- define "thanos.compactName" -}}
{{- include "common.componentFullname" (dict "context" . "component" "thanos-compact") -}}
{{- end -}}

{{/*
thanos.objstoreCheck: fails naming thanos.objstoreSecret when the Store Gateway or the Compactor
is on without it (they have nothing to read).
*/}}
{{- define "thanos.objstoreCheck" -}}
{{- if and (or .Values.storeGateway.enabled .Values.compactor.enabled) (not .Values.objstoreSecret) -}}
{{- fail "thanos.storeGateway.enabled / thanos.compactor.enabled need thanos.objstoreSecret: the name of an existing Secret with key objstore.yml (the Thanos object storage config, the same Secret as prometheus.thanos.sidecar.objstoreSecret)" -}}
{{- end -}}
{{- end -}}

{{/*
thanos.objstoreVolume / thanos.objstoreArg: the objstore Secret as a read-only file volume and
the flag that reads it (Thanos reads the file; no credential in an env value or ConfigMap).
*/}}
{{- define "thanos.objstoreVolume" -}}
- name: objstore
  secret:
    secretName: {{ .Values.objstoreSecret }}
    items:
      - key: objstore.yml
        path: objstore.yml
{{- end -}}
{{- define "thanos.objstoreMount" -}}
- name: objstore
  mountPath: /etc/thanos/objstore
  readOnly: true
{{- end -}}
{{- define "thanos.objstoreArg" -}}--objstore.config-file=/etc/thanos/objstore/objstore.yml{{- end -}}

{{/*
thanos.compactArgs: the Compactor's arguments (YAML list), one place for the StatefulSet and the
e2e test (tests/test_e2e_thanos_objstore.py runs them with --wait swapped off).
*/}}
{{- define "thanos.compactArgs" -}}
{{- $c := .Values.compactor -}}
- compact
- --http-address=0.0.0.0:{{ include "common.port" (list "thanos-compact" "http") }}
- --data-dir=/var/thanos/compact
- {{ include "thanos.objstoreArg" . }}
# Runs continuously; the halt on a bad block shows as thanos_compact_halted (ThanosCompactHalted).
- --wait
- --wait-interval={{ $c.waitInterval }}
- --retention.resolution-raw={{ $c.retentionRaw }}
- --retention.resolution-5m={{ $c.retention5m }}
- --retention.resolution-1h={{ $c.retention1h }}
{{- if not $c.downsampling }}
- --downsampling.disable
{{- end }}
{{- end -}}
