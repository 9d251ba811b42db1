{{/*
common.ports: every port a component of the stack listens on, the one place a port number is
written. The subcharts read it for their containers, Services, listen flags and config files,
the components that call each other (Prometheus -> Alertmanager, Grafana -> Prometheus/Loki/Jaeger,
the log collector -> Loki) for their URLs, and the umbrella's component list for its
NetworkPolicies, `helm test` pods and NOTES. node-exporter's metrics port is the default of its
value node-exporter.port, the host port it holds on every node (common.components: portValues). Written in JSON, not YAML: every port and path lookup
parses its table, and Helm's fromJson does that several times faster than fromYaml (about 6% of
the whole render's instructions).
*/}}
{{- define "common.ports" -}}
{
 "prometheus": {"web": 9090, "thanosGrpc": 10901, "thanosHttp": 10902},
 "alertmanager": {"web": 9093, "cluster": 9094},
 "grafana": {"web": 3000, "sidecarHealth": 8080},
 "loki": {"web": 3100, "grpc": 9095},
 "promtail": {"metrics": 3101},
 "jaeger": {"query": 16686, "admin": 13133, "metrics": 8888, "spanMetrics": 8889, "otlpGrpc": 4317, "otlpHttp": 4318, "zipkin": 9411, "jaegerCompact": 6831, "jaegerBinary": 6832, "jaegerThriftHttp": 14268, "jaegerGrpc": 14250},
 "kube-state-metrics": {"metrics": 8080, "telemetry": 8081},
 "node-exporter": {"metrics": 9100},
 "thanos": {"http": 10902, "grpc": 10901},
 "thanos-store": {"http": 10902, "grpc": 10901},
 "thanos-compact": {"http": 10902}
}
{{- end -}}

{{/*
common.healthPaths: every HTTP path a probe or a `helm test` pod asks a component, the one place
a health path is written, next to the ports it is asked on. live: the liveness probe; ready: the
readiness and startup probes and the `helm test` pod; thanosLive/thanosReady: the Thanos sidecar's probes;
sidecar: Grafana's dashboard sidecar (k8s-sidecar's /healthz, on grafana's sidecarHealth port);
metrics: where the node-exporter test pod reads metrics. Jaeger's path is also the one its
healthcheck extension serves (files/config.yaml). Components whose liveness probe is a TCP check
(Loki, the log collectors) have no live path.
*/}}
{{- define "common.healthPaths" -}}
{
 "prometheus": {"live": "/-/healthy", "ready": "/-/ready", "thanosLive": "/-/healthy", "thanosReady": "/-/ready"},
 "alertmanager": {"live": "/-/healthy", "ready": "/-/ready"},
 "grafana": {"live": "/api/health", "ready": "/api/health", "sidecar": "/healthz"},
 "loki": {"ready": "/ready"},
 "promtail": {"ready": "/ready"},
 "alloy": {"ready": "/-/ready"},
 "jaeger": {"live": "/status", "ready": "/status"},
 "kube-state-metrics": {"live": "/livez", "ready": "/readyz"},
 "node-exporter": {"live": "/", "ready": "/", "metrics": "/metrics"},
 "thanos": {"live": "/-/healthy", "ready": "/-/ready"},
 "thanos-store": {"live": "/-/healthy", "ready": "/-/ready"},
 "thanos-compact": {"live": "/-/healthy", "ready": "/-/ready"}
}
{{- end -}}

{{/*
common.port: one port of common.ports, as a number.
Usage: include "common.port" (list "prometheus" "web")   -> 9090
Fails naming the component or port when the table has no such entry.
*/}}
{{- define "common.port" -}}
{{- include "common.tableEntry" (list "common.ports" "common.port" "port" .) | int -}}
{{- end -}}

{{/*
common.healthPath: one path of common.healthPaths.
Usage: include "common.healthPath" (list "prometheus" "ready")   -> /-/ready
Fails naming the component or path when the table has no such entry.
*/}}
{{- define "common.healthPath" -}}
{{- include "common.tableEntry" (list "common.healthPaths" "common.healthPath" "path" .) -}}
{{- end -}}

{{/*
common.tableEntry: the lookup behind common.port and common.healthPath: entry <key> of
component <component> in the table template <table>, failing with the caller's name.
Usage: include "common.tableEntry" (list "common.ports" "common.port" "port" (list "<component>" "<key>"))
*/}}
{{- define "common.tableEntry" -}}
{{- $table := index . 0 -}}
{{- $caller := index . 1 -}}
{{- $what := index . 2 -}}
{{- $args := index . 3 -}}
{{- if not (and (kindIs "slice" $args) (eq (len $args) 2)) -}}
{{- fail (printf "%s: expects (list \"<component>\" \"<%s name>\")" $caller $what) -}}
{{- end -}}
{{- $component := index $args 0 -}}
{{- $name := index $args 1 -}}
{{- $entries := index (include $table . | fromJson) $component -}}
{{- if not $entries -}}
{{- fail (printf "%s: no component %q in %s" $caller $component $table) -}}
{{- end -}}
{{- if not (hasKey $entries $name) -}}
{{- fail (printf "%s: component %q has no %s %q in %s (it has: %s)" $caller $component $what $name $table (keys $entries | sortAlpha | join ", ")) -}}
{{- end -}}
{{- index $entries $name -}}
{{- end -}}
