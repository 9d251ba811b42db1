{{/*
node-exporter.component: the app.kubernetes.io/component label of node-exporter's objects, written
here only. node-exporter.labels: common.labels with it.
Usage: include "node-exporter.labels" .
*/}}
{{- define "node-exporter.component" -}}metrics{{- end -}}

{{- define "node-exporter.labels" -}}
{{- include "common.labels" (dict "context" . "component" (include "node-exporter.component" .)) -}}
{{- end -}}

{{/*
node-exporter.hostPortFree: renders nothing, or fails. Two releases on one cluster: with
hostNetwork the port is taken on every node, so a second node-exporter on the same port stays
Pending for ever. Against a live cluster (lookup; empty under `helm template`) fail early, naming
the DaemonSet that holds the port and what to set. Skipped with hostNetwork off.
*/}}
{{- define "node-exporter.hostPortFree" -}}
{{- if .Values.hostAccess.hostNetwork -}}
{{- $self := include "common.fullname" . -}}
{{- $port := int .Values.port -}}
{{- range $ds := (lookup "apps/v1" "DaemonSet" "" "").items | default list -}}
{{- $mine := and (eq $ds.metadata.name $self) (eq $ds.metadata.namespace $.Release.Namespace) -}}
{{- if and $ds.spec.template.spec.hostNetwork (not $mine) -}}
{{- range $held := include "node-exporter.hostPorts" $ds | fromJsonArray -}}
{{- if eq (int $held) $port -}}
{{- fail (printf "node-exporter.port: host port %d is already taken on the nodes by DaemonSet %s/%s (release %s); this node-exporter would stay Pending. Set node-exporter.port to a free port (for example %d) or node-exporter.enabled=false" $port $ds.metadata.namespace $ds.metadata.name (index ($ds.metadata.annotations | default dict) "meta.helm.sh/release-name" | default "none") (add1 $port)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
node-exporter.hostPorts: the ports a host-network DaemonSet (a looked-up object) holds on every
node: each container port's hostPort, else its containerPort (the same on the host network).
JSON list of integers.
*/}}
{{- define "node-exporter.hostPorts" -}}
{{- $ports := list -}}
{{- range $c := .spec.template.spec.containers -}}
{{- range $p := $c.ports | default list -}}
{{- $ports = append $ports (int (default $p.containerPort $p.hostPort)) -}}
{{- end -}}
{{- end -}}
{{- toJson $ports -}}
{{- end -}}
