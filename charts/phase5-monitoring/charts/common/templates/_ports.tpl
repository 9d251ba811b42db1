{{/*
common.ports: every port a component of the stack listens on, the one place a port number is
written. The subcharts read it for their containers, Services, listen flags and config files,
the components that call each other (Prometheus -> Alertmanager, Grafana -> Prometheus/Loki/Jaeger,
the log collector -> Loki) for their URLs, and the umbrella's component list for its
NetworkPolicies, `helm test` pods and NOTES. node-exporter's port is a value
(node-exporter.port), so it is not here.
*/}}
{{- define "common.ports" -}}
prometheus: {web: 9090, thanosGrpc: 10901, thanosHttp: 10902}
alertmanager: {web: 9093, cluster: 9094}
grafana: {web: 3000}
loki: {web: 3100, grpc: 9095}
promtail: {metrics: 3101}
jaeger: {query: 16686, admin: 13133, metrics: 8888, otlpGrpc: 4317, otlpHttp: 4318, zipkin: 9411, jaegerCompact: 6831, jaegerBinary: 6832, jaegerThriftHttp: 14268, jaegerGrpc: 14250}
kube-state-metrics: {metrics: 8080, telemetry: 8081}
{{- end -}}

{{/*
common.port: one port of common.ports, as a number.
Usage: include "common.port" (list "prometheus" "web")   -> 9090
Fails naming the component or port when the table has no such entry.
*/}}
{{- define "common.port" -}}
{{- if not (and (kindIs "slice" .) (eq (len .) 2)) -}}
{{- fail "common.port: expects (list \"<component>\" \"<port name>\")" -}}
{{- end -}}
{{- $component := index . 0 -}}
{{- $name := index . 1 -}}
{{- $ports := index (include "common.ports" . | fromYaml) $component -}}
{{- if not $ports -}}
{{- fail (printf "common.port: no component %q in common.ports" $component) -}}
{{- end -}}
{{- if not (hasKey $ports $name) -}}
{{- fail (printf "common.port: component %q has no port %q in common.ports (it has: %s)" $component $name (keys $ports | sortAlpha | join ", ")) -}}
{{- end -}}
{{- index $ports $name | int -}}
{{- end -}}
