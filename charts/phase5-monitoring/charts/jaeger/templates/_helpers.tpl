{{/*
jaeger.component: the app.kubernetes.io/component label of Jaeger's objects, written
here only. jaeger.labels: common.labels with it.
Usage: include "jaeger.labels" .
*/}}
{{- define "jaeger.component" -}}tracing{{- end -}}

{{- define "jaeger.labels" -}}
{{- include "common.labels" (dict "context" . "component" (include "jaeger.component" .)) -}}
{{- end -}}

{{/*
jaeger.receiverPorts: the receivers (names and protocols from Jaeger's common.components row, ports
fixed by the stack's contract in common.ports), as a JSON list of {receiver, name, port, protocol};
only the receivers switched on in values.
Usage: include "jaeger.receiverPorts" . | fromJsonArray
*/}}
{{- define "jaeger.receiverPorts" -}}
{{- $on := list -}}
{{- range (include "common.component" "jaeger" | fromJson).receivers -}}
{{- if (get $.Values.receivers .receiver).enabled -}}
{{- $on = append $on (dict "receiver" .receiver "name" .name "port" (include "common.port" (list "jaeger" .receiver) | int) "protocol" .protocol) -}}
{{- end -}}
{{- end -}}
{{- toJson $on -}}
{{- end -}}

{{/*
jaeger.ports: every port of the pod and Service: query UI, enabled receivers, admin
(health) and metrics. JSON list of {name, port, protocol}.
*/}}
{{- define "jaeger.ports" -}}
{{- $ports := list (dict "name" "http-query" "port" (include "common.port" (list "jaeger" "query") | int) "protocol" "TCP") -}}
{{- $ports = concat $ports (include "jaeger.receiverPorts" . | fromJsonArray) -}}
{{- $ports = append $ports (dict "name" "http-admin" "port" (include "common.port" (list "jaeger" "admin") | int) "protocol" "TCP") -}}
{{- $ports = append $ports (dict "name" "http-metrics" "port" (include "common.port" (list "jaeger" "metrics") | int) "protocol" "TCP") -}}
{{- toJson $ports -}}
{{- end -}}

{{/*
jaeger.containerPorts: jaeger.ports plus, when service performance monitoring is on, http-spm
(the span metrics' Prometheus exporter), which only the headless Service exposes (the main
Service's ports are the stack's contract).
*/}}
{{- define "jaeger.containerPorts" -}}
{{- $ports := include "jaeger.ports" . | fromJsonArray -}}
{{- if include "jaeger.spm" . | fromJson -}}
{{- $ports = append $ports (dict "name" "http-spm" "port" (include "common.port" (list "jaeger" "spanMetrics") | int) "protocol" "TCP") -}}
{{- end -}}
{{- toJson $ports -}}
{{- end -}}

{{/*
jaeger.receiverNames: the collector receiver IDs (otlp, zipkin, jaeger) of the enabled
receivers, in pipeline order, as a JSON list. Fails when every receiver is off: a
pipeline without receivers does not start.
*/}}
{{- define "jaeger.receiverNames" -}}
{{- $r := .Values.receivers -}}
{{- $names := list -}}
{{- if or $r.otlpGrpc.enabled $r.otlpHttp.enabled -}}{{- $names = append $names "otlp" -}}{{- end -}}
{{- if $r.zipkin.enabled -}}{{- $names = append $names "zipkin" -}}{{- end -}}
{{- if or $r.jaegerCompact.enabled $r.jaegerBinary.enabled $r.jaegerThriftHttp.enabled $r.jaegerGrpc.enabled -}}{{- $names = append $names "jaeger" -}}{{- end -}}
{{- if not $names -}}
{{- fail "jaeger.receivers: every receiver is disabled; enable at least one (otlpGrpc, otlpHttp, zipkin, jaegerCompact, jaegerBinary, jaegerThriftHttp, jaegerGrpc)" -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}

{{/* jaeger.secretName: the Secret holding the storage password (existing or chart-created). */}}
{{- define "jaeger.secretName" -}}
{{- default (printf "%s-storage" (include "common.fullname" .)) .Values.storage.auth.existingSecret -}}
{{- end -}}

{{/* jaeger.secretDir: where the storage Secret is mounted (elasticsearch, opensearch). */}}
{{- define "jaeger.secretDir" -}}
/etc/jaeger/storage-auth
{{- end -}}

{{- define "jaeger.passwordFile" -}}
{{- printf "%s/%s" (include "jaeger.secretDir" .) .Values.storage.auth.passwordKey -}}
{{- end -}}

{{/* jaeger.passwordEnv: the env var carrying the Cassandra password (no *_file setting there). */}}
{{- define "jaeger.passwordEnv" -}}
JAEGER_STORAGE_PASSWORD
{{- end -}}

{{/*
jaeger.storageAuth: "file" (elasticsearch/opensearch read password_file), "env" (cassandra
reads ${env:...}) or "" (memory, or no user name).
*/}}
{{- define "jaeger.storageAuth" -}}
{{- $st := .Values.storage -}}
{{- if and (ne $st.type "memory") $st.auth.username -}}
{{- if eq $st.type "cassandra" -}}env{{- else -}}file{{- end -}}
{{- end -}}
{{- end -}}

{{/* jaeger.validate: cross-field checks the values schema cannot express. */}}
{{- define "jaeger.validate" -}}
{{- $st := .Values.storage -}}
{{- if and (eq $st.type "memory") (gt (int .Values.replicas) 1) -}}
{{- fail (printf "jaeger.replicas=%d with storage.type=memory: each pod would keep its own traces and the UI would show a random subset; use 1, or elasticsearch/opensearch/cassandra storage" (int .Values.replicas)) -}}
{{- end -}}
{{- if and (or (eq $st.type "elasticsearch") (eq $st.type "opensearch")) (not (get $st $st.type).serverUrls) -}}
{{- fail (printf "jaeger.storage.%s.serverUrls: set at least one URL when storage.type=%s" $st.type $st.type) -}}
{{- end -}}
{{- if and (eq $st.type "cassandra") (not $st.cassandra.servers) -}}
{{- fail "jaeger.storage.cassandra.servers: set at least one contact point when storage.type=cassandra" -}}
{{- end -}}
{{- if and (include "jaeger.storageAuth" .) (not (or $st.auth.password $st.auth.existingSecret)) -}}
{{- fail "jaeger.storage.auth.username is set but neither storage.auth.password nor storage.auth.existingSecret: give the password through a Secret" -}}
{{- end -}}
{{- $_ := include "jaeger.receiverNames" . -}}
{{- $_ := include "jaeger.spm" . -}}
{{- end -}}

{{/*
jaeger.spm: the effective service performance monitoring settings (spanMetrics), as JSON, or
"{}" when it is off. On when spanMetrics.enabled, except in operator mode without
spanMetrics.prometheus.url (the existing kube-prometheus-stack's Prometheus has no name this
chart knows). Fields:
  url:      the Prometheus API Jaeger's metrics backend queries: spanMetrics.prometheus.url, else
            the release's Thanos Query (thanosQuery), else the release's Prometheus Service with
            the scheme of global.web.prometheus;
  inChart:  the URL is the release's Prometheus Service (global.web.prometheus applies);
  thanos:   the URL is the release's Thanos Query (global.web.thanos applies);
  webComponent: the server whose web config applies (prometheus or thanos; empty with url);
  tls, basicAuth: that web config asks for them (never with url);
  serverName: the name that server's certificate holds;
  buckets:  the histogram bounds in milliseconds (float), checked ascending.
Usage: include "jaeger.spm" . | fromJson
*/}}
{{- define "jaeger.spm" -}}
{{- $s := .Values.spanMetrics -}}
{{- $op := include "common.operatorMode" . -}}
{{- if and $s.enabled (or (not $op) $s.prometheus.url) -}}
{{- $out := dict "inChart" false "thanos" false "tls" false "basicAuth" false -}}
{{- if $s.prometheus.url -}}
{{- $_ := set $out "url" (trimSuffix "/" $s.prometheus.url) -}}
{{- else if $s.prometheus.thanosQuery -}}
{{- $w := include "common.web" (dict "context" . "component" "thanos") | fromJson -}}
{{- $_ := set $out "thanos" true -}}
{{- $_ := set $out "webComponent" "thanos" -}}
{{- $_ := set $out "tls" $w.tls -}}
{{- $_ := set $out "basicAuth" $w.basicAuth -}}
{{- $_ := set $out "serverName" $w.serverName -}}
{{- $_ := set $out "url" (printf "%s://%s-query:%s" $w.scheme (include "common.componentFullname" (dict "context" . "component" "thanos")) (include "common.port" (list "thanos" "http"))) -}}
{{- else -}}
{{- $w := include "common.web" (dict "context" . "component" "prometheus") | fromJson -}}
{{- $_ := set $out "inChart" true -}}
{{- $_ := set $out "webComponent" "prometheus" -}}
{{- $_ := set $out "tls" $w.tls -}}
{{- $_ := set $out "basicAuth" $w.basicAuth -}}
{{- $_ := set $out "serverName" $w.serverName -}}
{{- $_ := set $out "url" (printf "%s://%s:%s" $w.scheme (include "common.componentFullname" (dict "context" . "component" "prometheus")) (include "common.port" (list "prometheus" "web"))) -}}
{{- end -}}
{{- $ms := list -}}
{{- $last := -1.0 -}}
{{- range $b := $s.histogramBuckets -}}
{{- $n := regexFind "^[0-9]+(\\.[0-9]+)?" $b | float64 -}}
{{- $unit := trimPrefix (regexFind "^[0-9]+(\\.[0-9]+)?" $b) $b -}}
{{- $v := mulf $n (get (dict "ms" 1.0 "s" 1000.0 "m" 60000.0) $unit) -}}
{{- if le $v $last -}}
{{- fail (printf "jaeger.spanMetrics.histogramBuckets: bucket bounds must be ascending and distinct, got %s after a bound of %vms (%s)" $b $last (join ", " $s.histogramBuckets)) -}}
{{- end -}}
{{- if eq $v 0.0 -}}
{{- fail (printf "jaeger.spanMetrics.histogramBuckets: %s is not a positive duration" $b) -}}
{{- end -}}
{{- $last = $v -}}
{{- $ms = append $ms $v -}}
{{- end -}}
{{- $_ := set $out "buckets" $ms -}}
{{- toJson $out -}}
{{- else -}}
{}
{{- end -}}
{{- end -}}

{{/* jaeger.spmAuthenticator: the basicauth extension Jaeger's metrics backend logs in with. */}}
{{- define "jaeger.spmAuthenticator" -}}basicauth/prometheus{{- end -}}
