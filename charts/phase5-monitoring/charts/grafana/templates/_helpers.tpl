{{/*
grafana.component: the app.kubernetes.io/component label of Grafana's objects, written
here only. grafana.labels: common.labels with it.
Usage: include "grafana.labels" .
*/}}
{{- define "grafana.component" -}}server{{- end -}}

{{- define "grafana.labels" -}}
{{- include "common.labels" (dict "context" . "component" (include "grafana.component" .)) -}}
{{- end -}}

{{/*
grafana.datasourceUrl: the URL of a provisioned datasource: the external one from
datasources.<component>.url, else the in-chart Service of that component (for prometheus with
datasources.prometheus.thanosQuery: the in-chart Thanos Query, which deduplicates the replicas).
Usage: include "grafana.datasourceUrl" (dict "context" . "component" "prometheus" "port" "web")
*/}}
{{- define "grafana.datasourceUrl" -}}
{{- include "common.args.require" (list "grafana.datasourceUrl" . (list "context" "component" "port")) -}}
{{- $ds := index .context.Values.datasources .component -}}
{{- if $ds.url -}}
{{- trimSuffix "/" $ds.url -}}
{{- else if and (eq .component "prometheus") $ds.thanosQuery -}}
{{- /* Thanos Query (the thanos subchart's <release>-thanos-query Service) over the replicas. */ -}}
{{- printf "http://%s-query:%s" (include "common.componentFullname" (dict "context" .context "component" "thanos")) (include "common.port" (list "thanos" "http")) -}}
{{- else -}}
{{- $scheme := "http" -}}
{{- if eq .component "prometheus" -}}
{{- $scheme = (include "common.web" (dict "context" .context "component" "prometheus") | fromJson).scheme -}}
{{- end -}}
{{- printf "%s://%s:%s" $scheme (include "common.componentFullname" (dict "context" .context "component" .component)) (include "common.port" (list .component .port)) -}}
{{- end -}}
{{- end -}}

{{/* grafana.tls: "true" when the Ingress terminates TLS, else empty. */}}
{{- define "grafana.tls" -}}
{{- if and .Values.ingress.enabled .Values.ingress.tls -}}true{{- end -}}
{{- end -}}

{{/* grafana.subPath: the Ingress sub-path Grafana is served from ("" for /). */}}
{{- define "grafana.subPath" -}}
{{- if and .Values.ingress.enabled (ne (trimSuffix "/" .Values.ingress.path) "") -}}
{{- trimSuffix "/" .Values.ingress.path -}}
{{- end -}}
{{- end -}}

{{/*
grafana.rootUrl: server.root_url: rootUrl, else https?://<first Ingress host><path>
when the Ingress is on, else empty (Grafana's default).
*/}}
{{- define "grafana.rootUrl" -}}
{{- if .Values.rootUrl -}}
{{- .Values.rootUrl -}}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts -}}
{{- printf "%s://%s%s/" (ternary "https" "http" (eq (include "grafana.tls" .) "true")) (first .Values.ingress.hosts) (include "grafana.subPath" .) -}}
{{- end -}}
{{- end -}}

{{/* grafana.secretName: the Secret holding the admin user, password and secret_key. */}}
{{- define "grafana.secretName" -}}
{{- default (include "common.fullname" .) .Values.admin.existingSecret -}}
{{- end -}}

{{/*
grafana.envName: the GF_<SECTION>_<KEY> variable Grafana reads for a grafana.ini setting.
Usage: include "grafana.envName" (list "auth.generic_oauth" "enabled")
*/}}
{{- define "grafana.envName" -}}
{{- $section := index . 0 | upper | replace "." "_" | replace "-" "_" -}}
{{- $key := index . 1 | upper | replace "." "_" | replace "-" "_" -}}
{{- printf "GF_%s_%s" $section $key -}}
{{- end -}}

{{/*
grafana.sidecarFolder: where the dashboard sidecar writes the dashboards it finds and where
Grafana's `sidecar` dashboard provider reads them (one emptyDir, mounted in both containers).
*/}}
{{- define "grafana.sidecarFolder" -}}/etc/grafana/dashboards/sidecar{{- end -}}

{{/*
grafana.sidecarNamespaces: the namespaces the dashboard sidecar reads, as its NAMESPACE
variable: "ALL" with sidecar.dashboards.allNamespaces, else the release namespace and
sidecar.dashboards.namespaces, comma-separated. Fails when both are set, and for a listed
namespace outside global.phase5.namespaceRegex (the Phase 5 namespaces; RE2, fully anchored)
other than the release namespace (always read; listing it changes nothing).
Usage: include "grafana.sidecarNamespaces" .
*/}}
{{- define "grafana.sidecarNamespaces" -}}
{{- $sc := .Values.sidecar.dashboards -}}
{{- if $sc.allNamespaces -}}
{{- if $sc.namespaces -}}
{{- fail (printf "grafana.sidecar.dashboards: allNamespaces reads every namespace, so namespaces %s must be empty (set one or the other)" (toJson $sc.namespaces)) -}}
{{- end -}}
ALL
{{- else -}}
{{- $regex := dig "phase5" "namespaceRegex" "" (.Values.global | default dict) -}}
{{- range $sc.namespaces -}}
{{- if and $regex (ne . $.Release.Namespace) (not (regexMatch (printf "^(?:%s)$" $regex) .)) -}}
{{- fail (printf "grafana.sidecar.dashboards.namespaces: %q does not match global.phase5.namespaceRegex %q; list only Phase 5 namespaces (or widen the regex)" . $regex) -}}
{{- end -}}
{{- end -}}
{{- prepend $sc.namespaces .Release.Namespace | uniq | join "," -}}
{{- end -}}
{{- end -}}
