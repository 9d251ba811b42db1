{{/*
common.components: the stack's components, one row each, in the order NOTES lists them. Adding a
component is one row here plus its subchart (and the subchart's entry in the umbrella's
Chart.yaml dependencies); everything that lists components reads this table:
  - the umbrella's component list (phase5-monitoring.components) and through it NOTES, the
    `helm test` pods and the NetworkPolicies;
  - the subcharts' operator-mode switches (common.replaced);
  - Prometheus' monitoring-stack job, which leaves out the components with a job of their own;
  - the test harness (tests/harness/paths.py reads this JSON from this file).
Row fields:
  key:       the subchart's key in values (and its chart name), or, for a second workload of a
             subchart, the component's own key (Thanos' Store Gateway and Compactor: thanos-store,
             thanos-compact), with
  chart:     (optional) the subchart it belongs to (default: key): its values, its operator-mode
             switch and its `<chart>.enabled`;
  switch:    (optional) the values path (umbrella values) that must be true too for it to run
             (thanos.storeGateway.enabled): one subchart, several workloads, each its own name,
             Service, `helm test` pod and NetworkPolicy;
  name:      app.kubernetes.io/name of its pods; nameValue: the subchart value that names what
             runs instead (the log collector: collector = promtail|alloy), name being its default;
  ports:     port key (in common.ports) -> protocol (TCP, or TCP+UDP for a port used with both):
             the ports of its Services that the NetworkPolicies and tests speak of;
  portValues: port key -> the subchart value that sets that port (node-exporter's host port),
             common.ports holding the default;
  receivers: (jaeger) the trace receivers, each switched by receivers.<receiver>.enabled;
  health:    {port: a key of ports, path: a key of common.healthPaths[name]} the `helm test`
             pod asks;
  serviceSuffix: (optional) the Service is <release>-<name>-<serviceSuffix> (Thanos: -query);
  operator:  replaced (the existing kube-prometheus-stack runs it in operator mode: its workload
             is not rendered) or runs (rendered in both modes); operatorText: (optional) what
             NOTES says of a replaced component instead of "the existing kube-prometheus-stack's";
  scrapeJob: the Prometheus job that scrapes its metrics (monitoring-stack, or a job of its own);
  networkPolicy: the flows its NetworkPolicy admits (common.networkPolicy reads them):
             ingress/egress: list of {peers, ports, when}; a peer is a component key, or one of
             "ingressNamespaces" / "appNamespaces" (the namespaceSelector values; ingressNamespaces
             also networkPolicy.ingressCIDRs), "apiServer",
             "receivers", "storage" (ipBlocks from networkPolicy values), "anywhere" (egress with
             no to:); a port is a port key of common.ports (ingress: this component's; egress:
             the peer's) with the protocol its row gives, "enabledReceivers" (this component's
             enabled receivers), a number (TCP), "apiServer"/"receivers" (TCP port lists from
             the networkPolicy values), "anyTCP", "spanMetricsUrl" (the port of jaeger.spanMetrics.prometheus.url), or {port, when} for a port that exists only
             when the values path `when` is true; when on a flow: a values path (umbrella
             values) that must be true for the flow to exist ("!path": unset or false; a list:
             each of them); why: the comment it renders with. hostNetwork: the pods run on the host
             network, where NetworkPolicies do not apply (no policy is rendered).
JSON, like common.ports: parsed with fromJson, and by the harness with json.loads.
*/}}
{{- define "common.components" -}}
[
 {"key": "prometheus", "name": "prometheus", "ports": {"web": "TCP"}, "health": {"port": "web", "path": "ready"},
  "operator": "replaced", "scrapeJob": "monitoring-stack",
  "networkPolicy": {
   "ingress": [{"peers": ["grafana", "prometheus", "ingressNamespaces"], "ports": ["web", {"port": "thanosGrpc", "when": "prometheus.thanos.sidecar.enabled"}]},
               {"peers": ["thanos"], "ports": [{"port": "thanosGrpc", "when": "prometheus.thanos.sidecar.enabled"}], "when": "thanos.enabled", "why": "Thanos Query reads each replica through its sidecar's StoreAPI."},
               {"peers": ["prometheus"], "ports": [{"port": "thanosHttp", "when": "prometheus.thanos.sidecar.enabled"}], "when": "prometheus.thanos.sidecar.enabled", "why": "Prometheus scrapes the Thanos sidecars' metrics (block uploads)."},
               {"peers": ["jaeger"], "ports": ["web"], "when": ["jaeger.enabled", "jaeger.spanMetrics.enabled", "!jaeger.spanMetrics.prometheus.thanosQuery", "!jaeger.spanMetrics.prometheus.url"], "why": "Jaeger's Monitor tab reads the span metrics (jaeger.spanMetrics)."}],
   "egress": [{"peers": ["anywhere"], "ports": ["anyTCP"], "why": "Prometheus scrapes across the cluster (Phase 5 namespaces, kubelets, node-exporter on the host network), calls the API server and remote_write endpoints: its egress is open on TCP."}]}},
 {"key": "alertmanager", "name": "alertmanager", "ports": {"web": "TCP", "cluster": "TCP+UDP"}, "health": {"port": "web", "path": "ready"},
  "operator": "replaced", "scrapeJob": "monitoring-stack",
  "networkPolicy": {
   "ingress": [{"peers": ["prometheus", "grafana", "ingressNamespaces"], "ports": ["web"]},
               {"peers": ["loki"], "ports": ["web"], "when": "loki.ruler.enabled", "why": "Loki's ruler sends the log alerts."},
               {"peers": ["alertmanager"], "ports": ["cluster"]}],
   "egress": [{"peers": ["alertmanager"], "ports": ["cluster"]},
              {"peers": ["receivers"], "ports": ["receivers"], "why": "Receivers: Slack/PagerDuty/webhooks over HTTPS, e-mail over SMTP."}]}},
 {"key": "grafana", "name": "grafana", "ports": {"web": "TCP"}, "health": {"port": "web", "path": "ready"},
  "operator": "replaced", "scrapeJob": "monitoring-stack",
  "networkPolicy": {
   "ingress": [{"peers": ["prometheus", "ingressNamespaces"], "ports": ["web"]}],
   "egress": [{"peers": ["prometheus"], "ports": ["web"]},
              {"peers": ["loki"], "ports": ["web"]},
              {"peers": ["jaeger"], "ports": ["query"]},
              {"peers": ["alertmanager"], "ports": ["web"]},
              {"peers": ["thanos"], "ports": ["http"], "when": "thanos.enabled", "why": "The Prometheus datasource is Thanos Query (grafana.datasources.prometheus.thanosQuery)."},
              {"peers": ["apiServer"], "ports": ["apiServer"], "when": "grafana.sidecar.dashboards.enabled", "why": "The dashboard sidecar lists and watches ConfigMaps."}]}},
 {"key": "loki", "name": "loki", "ports": {"web": "TCP"}, "health": {"port": "web", "path": "ready"},
  "operator": "runs", "scrapeJob": "monitoring-stack",
  "networkPolicy": {
   "ingress": [{"peers": ["promtail", "grafana", "prometheus"], "ports": ["web"]}],
   "egress": [{"peers": ["storage"], "ports": [443], "why": "Object storage (S3-compatible) when configured."},
              {"peers": ["alertmanager"], "ports": ["web"], "when": "loki.ruler.enabled", "why": "The ruler sends the log alerts to every Alertmanager pod."}]}},
 {"key": "promtail", "name": "alloy", "nameValue": "collector", "ports": {"metrics": "TCP"}, "health": {"port": "metrics", "path": "ready"},
  "operator": "runs", "scrapeJob": "monitoring-stack",
  "networkPolicy": {
   "ingress": [{"peers": ["prometheus"], "ports": ["metrics"]}],
   "egress": [{"peers": ["loki"], "ports": ["web"]},
              {"peers": ["apiServer"], "ports": ["apiServer"]}]}},
 {"key": "jaeger", "name": "jaeger", "ports": {"query": "TCP", "admin": "TCP", "metrics": "TCP", "otlpGrpc": "TCP", "otlpHttp": "TCP"},
  "receivers": [
   {"receiver": "otlpGrpc", "name": "grpc-otlp", "protocol": "TCP"},
   {"receiver": "otlpHttp", "name": "http-otlp", "protocol": "TCP"},
   {"receiver": "zipkin", "name": "http-zipkin", "protocol": "TCP"},
   {"receiver": "jaegerCompact", "name": "udp-compact", "protocol": "UDP"},
   {"receiver": "jaegerBinary", "name": "udp-binary", "protocol": "UDP"},
   {"receiver": "jaegerThriftHttp", "name": "http-collector", "protocol": "TCP"},
   {"receiver": "jaegerGrpc", "name": "grpc-collector", "protocol": "TCP"}],
  "health": {"port": "admin", "path": "ready"},
  "operator": "runs", "scrapeJob": "monitoring-stack",
  "networkPolicy": {
   "ingress": [{"peers": ["appNamespaces"], "ports": ["enabledReceivers"], "why": "Traces from the Phase 5 services."},
               {"peers": ["grafana", "ingressNamespaces"], "ports": ["query"]},
               {"peers": ["prometheus"], "ports": ["metrics", "admin", {"port": "spanMetrics", "when": "jaeger.spanMetrics.enabled"}]}],
   "egress": [{"peers": ["storage"], "ports": [9200, 9042], "why": "Elasticsearch/OpenSearch (9200) or Cassandra (9042) storage when configured."},
              {"peers": ["prometheus"], "ports": ["web"], "when": ["jaeger.enabled", "jaeger.spanMetrics.enabled", "!jaeger.spanMetrics.prometheus.thanosQuery", "!jaeger.spanMetrics.prometheus.url"], "why": "The Monitor tab's span metrics, from the release's Prometheus."},
              {"peers": ["thanos"], "ports": ["http"], "when": ["jaeger.enabled", "jaeger.spanMetrics.enabled", "jaeger.spanMetrics.prometheus.thanosQuery", "!jaeger.spanMetrics.prometheus.url"], "why": "The Monitor tab's span metrics, through Thanos Query (jaeger.spanMetrics.prometheus.thanosQuery)."},
              {"peers": ["anywhere"], "ports": ["spanMetricsUrl"], "when": ["jaeger.spanMetrics.enabled", "jaeger.spanMetrics.prometheus.url"], "why": "The Monitor tab's span metrics, from jaeger.spanMetrics.prometheus.url."}]}},
 {"key": "kube-state-metrics", "name": "kube-state-metrics", "ports": {"metrics": "TCP", "telemetry": "TCP"}, "health": {"port": "telemetry", "path": "ready"},
  "operator": "replaced", "scrapeJob": "kube-state-metrics",
  "networkPolicy": {
   "ingress": [{"peers": ["prometheus"], "ports": ["metrics", "telemetry"]}],
   "egress": [{"peers": ["apiServer"], "ports": ["apiServer"]}]}},
 {"key": "node-exporter", "name": "node-exporter", "ports": {"metrics": "TCP"}, "portValues": {"metrics": "port"}, "health": {"port": "metrics", "path": "metrics"},
  "operator": "replaced", "scrapeJob": "node-exporter",
  "networkPolicy": {"hostNetwork": true}},
 {"key": "thanos", "name": "thanos", "serviceSuffix": "query", "ports": {"http": "TCP", "grpc": "TCP"}, "health": {"port": "http", "path": "ready"},
  "operator": "replaced", "operatorText": "not rendered in operator mode (run your own Thanos)", "scrapeJob": "monitoring-stack",
  "networkPolicy": {
   "ingress": [{"peers": ["grafana", "prometheus", "ingressNamespaces"], "ports": ["http"], "why": "Grafana's Prometheus datasource; Prometheus scrapes it."},
               {"peers": ["jaeger"], "ports": ["http"], "when": ["jaeger.enabled", "jaeger.spanMetrics.enabled", "jaeger.spanMetrics.prometheus.thanosQuery", "!jaeger.spanMetrics.prometheus.url"], "why": "Jaeger's Monitor tab reads the span metrics through Query (jaeger.spanMetrics.prometheus.thanosQuery)."}],
   "egress": [{"peers": ["prometheus"], "ports": ["thanosGrpc"], "why": "The Prometheus replicas' sidecars (StoreAPI)."},
              {"peers": ["thanos-store"], "ports": ["grpc"], "when": "thanos.storeGateway.enabled", "why": "The Store Gateway (StoreAPI over the object storage blocks)."},
              {"peers": ["anywhere"], "ports": ["extraEndpoints"], "when": "thanos.query.extraEndpoints", "why": "thanos.query.extraEndpoints: anywhere, on their ports."}]}},
 {"key": "thanos-store", "chart": "thanos", "switch": "thanos.storeGateway.enabled", "name": "thanos-store", "ports": {"http": "TCP", "grpc": "TCP"}, "health": {"port": "http", "path": "ready"},
  "operator": "replaced", "operatorText": "not rendered in operator mode (run your own Thanos)", "scrapeJob": "monitoring-stack",
  "networkPolicy": {
   "ingress": [{"peers": ["thanos"], "ports": ["grpc"], "why": "Thanos Query reads the bucket's blocks through the Store Gateway's StoreAPI."},
               {"peers": ["prometheus"], "ports": ["http"], "why": "Prometheus scrapes it."}],
   "egress": [{"peers": ["storage"], "ports": [443], "why": "Object storage (the bucket of thanos.objstoreSecret)."}]}},
 {"key": "thanos-compact", "chart": "thanos", "switch": "thanos.compactor.enabled", "name": "thanos-compact", "ports": {"http": "TCP"}, "health": {"port": "http", "path": "ready"},
  "operator": "replaced", "operatorText": "not rendered in operator mode (run your own Thanos)", "scrapeJob": "monitoring-stack",
  "networkPolicy": {
   "ingress": [{"peers": ["prometheus"], "ports": ["http"], "why": "Prometheus scrapes it."}],
   "egress": [{"peers": ["storage"], "ports": [443], "why": "Object storage (the bucket of thanos.objstoreSecret)."}]}}
]
{{- end -}}

{{/*
common.component: the row of common.components for one component key, as JSON.
Usage: include "common.component" "grafana" | fromJson
Fails naming the key when the table has no such row.
*/}}
{{- define "common.component" -}}
{{- $key := . -}}
{{- $found := dict -}}
{{- range include "common.components" . | fromJsonArray -}}
{{- if eq .key $key -}}
{{- $found = . -}}
{{- end -}}
{{- end -}}
{{- if not $found -}}
{{- fail (printf "common.component: no component %q in common.components" $key) -}}
{{- end -}}
{{- toJson $found -}}
{{- end -}}

{{/*
common.replaced: "true" when the chart being rendered (a subchart, by its chart name) is one the
existing kube-prometheus-stack runs in operator mode (common.components: operator = replaced), so
its own workload is not rendered; else "". Components that run in both modes (Loki, the log
collector, Jaeger) are never replaced.
Usage (in a subchart's template): if not (include "common.replaced" .)
*/}}
{{- define "common.replaced" -}}
{{- if not (and (kindIs "map" .) (hasKey . "Chart")) -}}
{{- fail "common.replaced: expects the subchart's root context ($ or .)" -}}
{{- end -}}
{{- if include "common.operatorMode" . -}}
{{- if eq (include "common.component" .Chart.Name | fromJson).operator "replaced" -}}true{{- end -}}
{{- end -}}
{{- end -}}
