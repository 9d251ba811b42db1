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
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "component") (hasKey . "port") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "grafana.datasourceUrl" . (list "context" "component" "port")) -}}
{{- end -}}
{{- $ds := index .context.Values.datasources .component -}}
{{- if $ds.url -}}
{{- trimSuffix "/" $ds.url -}}
{{- else if and (eq .component "prometheus") $ds.thanosQuery -}}
{{- /* Thanos Query (the thanos subchart's <release>-thanos-query Service) over the replicas. */ -}}
{{- $tw := include "common.web" (dict "context" .context "component" "thanos") | fromJson -}}
{{- printf "%s://%s-query:%s" $tw.scheme (include "common.componentFullname" (dict "context" .context "component" "thanos")) (include "common.port" (list "thanos" "http")) -}}
{{- else -}}
{{- $scheme := "http" -}}
{{- if has .component (list "prometheus" "loki") -}}
{{- $scheme = (include "common.web" (dict "context" .context "component" .component) | fromJson).scheme -}}
{{- end -}}
{{- printf "%s://%s:%s" $scheme (include "common.componentFullname" (dict "context" .context "component" .component)) (include "common.port" (list .component .port)) -}}
{{- end -}}
{{- end -}}

{{/*
grafana.prometheusWebComponent: the server behind the Prometheus datasource whose web config
(global.web.<component>) Grafana follows: thanos with datasources.prometheus.thanosQuery (Thanos
Query, global.web.thanos), else prometheus; empty with datasources.prometheus.url (an external
server: its own settings).
*/}}
{{- define "grafana.prometheusWebComponent" -}}
{{- $ds := .Values.datasources.prometheus -}}
{{- if not $ds.url -}}{{- ternary "thanos" "prometheus" (and $ds.thanosQuery true) -}}{{- end -}}
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

{{/*
grafana.oauthSecretPath: where Grafana's container reads the OAuth client secret (the key
auth.genericOAuth.clientSecretKey of the existing Secret auth.genericOAuth.existingSecret, mounted
read-only), for grafana.ini's `client_secret = $__file{...}`.
*/}}
{{- define "grafana.oauthSecretDir" -}}/etc/grafana/secrets/oauth{{- end -}}
{{- define "grafana.oauthSecretPath" -}}
{{- printf "%s/%s" (include "grafana.oauthSecretDir" .) .Values.auth.genericOAuth.clientSecretKey -}}
{{- end -}}

{{/*
grafana.authChecks: fails the render for sign-in settings that would let the wrong people in or
cannot work. Anonymous access ([auth.anonymous] from auth.anonymous, overridden by grafanaIni
"auth.anonymous" and by GF_AUTH_ANONYMOUS_* literals in extraEnv, in Grafana's order of precedence)
is refused with an org role other than Viewer; generic OAuth needs Grafana's public URL (rootUrl or
an Ingress host), the provider redirects to <root_url>login/generic_oauth. Renders nothing.
Usage: include "grafana.authChecks" .
*/}}
{{- define "grafana.authChecks" -}}
{{- $anon := .Values.auth.anonymous -}}
{{- $enabled := toString $anon.enabled -}}
{{- $role := $anon.orgRole -}}
{{- $where := "grafana.auth.anonymous" -}}
{{- with index .Values.grafanaIni "auth.anonymous" -}}
{{- if hasKey . "enabled" }}{{ $enabled = toString .enabled }}{{ $where = "grafana.grafanaIni.auth.anonymous" }}{{ end -}}
{{- if hasKey . "org_role" }}{{ $role = toString .org_role }}{{ $where = "grafana.grafanaIni.auth.anonymous" }}{{ end -}}
{{- end -}}
{{- range .Values.extraEnv -}}
{{- if and (eq .name "GF_AUTH_ANONYMOUS_ENABLED") (hasKey . "value") }}{{ $enabled = toString .value }}{{ $where = "grafana.extraEnv" }}{{ end -}}
{{- if and (eq .name "GF_AUTH_ANONYMOUS_ORG_ROLE") (hasKey . "value") }}{{ $role = toString .value }}{{ $where = "grafana.extraEnv" }}{{ end -}}
{{- end -}}
{{- if and (eq (lower $enabled) "true") (ne (lower $role) "viewer") -}}
{{- fail (printf "%s: anonymous access with org role %q lets everyone who reaches Grafana %s without a login; anonymous access may only be Viewer (grafana.auth.anonymous.orgRole), or sign users in (grafana.auth.genericOAuth)" $where $role (ternary "administer it" "edit dashboards and datasources" (eq (lower $role) "admin"))) -}}
{{- end -}}
{{- if and .Values.auth.genericOAuth.enabled (not (include "grafana.rootUrl" .)) -}}
{{- fail "grafana.auth.genericOAuth.enabled: the identity provider redirects to Grafana's public URL (<root_url>login/generic_oauth), which is unknown: set grafana.rootUrl, or grafana.ingress.enabled with grafana.ingress.hosts" -}}
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

{{/*
grafana.dashboards: the chart's dashboards (files/dashboards/*.json) as JSON {file name: dashboard},
with each threshold step whose value is "${alerts.<Alert>.threshold}" set to that alert's
threshold from `alerts` (the prometheus subchart's `alerts` values), and "${1 - alerts.<Alert>.threshold}"
to its complement (a panel showing the success share of a failure-share alert, or used space of a
free-space alert). One source: change prometheus.alerts.<Alert>.threshold and the alert and the
panel's line move together. A subchart cannot read another subchart's values, so the umbrella
(templates/grafana-dashboards.yaml) renders the dashboards and passes .Subcharts.prometheus.Values.alerts.
With no Prometheus in the release (prometheus.enabled=false, or this subchart on its own) `alerts`
is empty and those steps are left out: there is no alert for the line to follow. A step naming an
alert that does not exist or has no threshold fails the render.
Usage: include "grafana.dashboards" (dict "context" . "alerts" $alerts) | fromJson
*/}}
{{- define "grafana.dashboards" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "alerts") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "grafana.dashboards" . (list "context" "alerts")) -}}
{{- end -}}
{{- $out := dict -}}
{{- range $path, $_ := .context.Files.Glob "files/dashboards/*.json" -}}
{{- $d := $.context.Files.Get $path | fromJson -}}
{{- range $p := $d.panels -}}
{{- range $q := prepend ($p.panels | default list) $p -}}
{{- include "grafana.panelThresholds" (dict "panel" $q "alerts" $.alerts "where" (printf "%s: panel %q" (base $path) $q.title)) -}}
{{- range $t := $q.targets | default list -}}
{{- if and (kindIs "string" $t.expr) (contains "${alerts." $t.expr) -}}
{{- $_ := set $t "expr" (include "grafana.exprThresholds" (dict "expr" $t.expr "alerts" $.alerts "where" (printf "%s: panel %q" (base $path) $q.title))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $_ := set $out (base $path) $d -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
grafana.requireThreshold: fails the render, naming `what`, unless prometheus.alerts.<name> (in
`alerts`) has a threshold. Renders nothing.
*/}}
{{- define "grafana.requireThreshold" -}}
{{- $a := index .alerts .name -}}
{{- if not (and (kindIs "map" $a) (hasKey $a "threshold") (not (kindIs "invalid" $a.threshold))) -}}
{{- fail (printf "grafana dashboards: %s: prometheus.alerts.%s has no threshold" .what .name) -}}
{{- end -}}
{{- end -}}

{{/*
grafana.exprThresholds: a panel query that counts what is past an alert's threshold (Loki's
compactor late, volumes nearly full) writes the number as "${alerts.<Alert>.threshold:<default>}":
the alert's rendered threshold replaces it, or, with no Prometheus in the release (no alert to
follow), the default the file gives (a test keeps it equal to prometheus.alerts.<Alert>.threshold's
default). Anything else starting "${alerts." fails the render: Grafana would receive it verbatim.
Usage: include "grafana.exprThresholds" (dict "expr" $expr "alerts" $alerts "where" "file: panel")
*/}}
{{- define "grafana.exprThresholds" -}}
{{- include "common.args.require" (list "grafana.exprThresholds" . (list "expr" "alerts" "where")) -}}
{{- $re := `\$\{alerts\.([A-Za-z0-9]+)\.threshold:([0-9][0-9.eE+-]*)\}` -}}
{{- $out := .expr -}}
{{- range $m := regexFindAll $re .expr -1 -}}
{{- $v := regexReplaceAll $re $m "${2}" -}}
{{- if $.alerts -}}
{{- $name := regexReplaceAll $re $m "${1}" -}}
{{- include "grafana.requireThreshold" (dict "alerts" $.alerts "name" $name "what" (printf "%s: query placeholder %q" $.where $m)) -}}
{{- $v = toString (index $.alerts $name).threshold -}}
{{- end -}}
{{- $out = replace $m $v $out -}}
{{- end -}}
{{- if contains "${alerts." $out -}}
{{- fail (printf "grafana dashboards: %s: a query placeholder is \"${alerts.<Alert>.threshold:<default number>}\": %s" $.where .expr) -}}
{{- end -}}
{{- $out -}}
{{- end -}}

{{/*
grafana.panelThresholds: resolves the alert threshold steps of one panel in place (its defaults
and its overrides' `thresholds` properties), see grafana.dashboards. Renders nothing.
Usage: include "grafana.panelThresholds" (dict "panel" $panel "alerts" $alerts "where" "file: panel")
*/}}
{{- define "grafana.panelThresholds" -}}
{{- include "common.args.require" (list "grafana.panelThresholds" . (list "panel" "alerts" "where")) -}}
{{- $fc := .panel.fieldConfig | default dict -}}
{{- $sets := list -}}
{{- with ($fc.defaults | default dict).thresholds }}{{ $sets = append $sets . }}{{ end -}}
{{- range $o := $fc.overrides | default list -}}
{{- range $prop := $o.properties | default list -}}
{{- if eq $prop.id "thresholds" }}{{ $sets = append $sets $prop.value }}{{ end -}}
{{- end -}}
{{- end -}}
{{- $re := `^\$\{(1 - )?alerts\.([A-Za-z0-9]+)\.threshold\}$` -}}
{{- range $t := $sets -}}
{{- $steps := list -}}
{{- range $s := $t.steps -}}
{{- if not (kindIs "string" $s.value) -}}
{{- $steps = append $steps $s -}}
{{- else if not (regexMatch $re $s.value) -}}
{{- fail (printf "grafana dashboards: %s: threshold step %q: a step value is a number, null, \"${alerts.<Alert>.threshold}\" or \"${1 - alerts.<Alert>.threshold}\"" $.where $s.value) -}}
{{- else if $.alerts -}}
{{- $name := regexReplaceAll $re $s.value "${2}" -}}
{{- include "grafana.requireThreshold" (dict "alerts" $.alerts "name" $name "what" (printf "%s: threshold step %q" $.where $s.value)) -}}
{{- $v := (index $.alerts $name).threshold -}}
{{- if hasPrefix "${1 - " $s.value }}{{ $v = subf 1 $v }}{{ end -}}
{{- $_ := set $s "value" $v -}}
{{- $steps = append $steps $s -}}
{{- end -}}
{{- end -}}
{{- $_ := set $t "steps" $steps -}}
{{- end -}}
{{- end -}}

{{/*
grafana.dashboardObjects: the ConfigMaps that carry the dashboards: the chart's own Grafana's
(one ConfigMap, and one for dashboards.extra), or in operator mode (global.operator.enabled) one
ConfigMap per dashboard labelled for the existing Grafana's dashboard sidecar, with the folder
annotation and that Grafana's datasource UID as the default of each dashboard's $datasource variable
(every Prometheus panel and variable reads "${datasource}"). `alerts` as in grafana.dashboards.
Usage: include "grafana.dashboardObjects" (dict "context" $grafanaContext "alerts" $alerts)
*/}}
{{- define "grafana.dashboardObjects" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "alerts") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "grafana.dashboardObjects" . (list "context" "alerts")) -}}
{{- end -}}
{{- $ctx := .context -}}
{{- $boards := include "grafana.dashboards" . | fromJson -}}
{{- if not (include "common.replaced" $ctx) }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "common.fullname" $ctx }}-dashboards
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "grafana.labels" $ctx | nindent 4 }}
data:
  {{- /* Each dashboard as one line of JSON (the files stay indented for review). */}}
  {{- range $name := keys $boards | sortAlpha }}
  {{ $name }}: {{ get $boards $name | toJson | quote }}
  {{- end }}
{{- with $ctx.Values.dashboards.extra }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "common.fullname" $ctx }}-dashboards-extra
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "grafana.labels" $ctx | nindent 4 }}
data:
  {{- range $name, $json := . }}
  {{ printf "%s.json" $name }}: {{ $json | toJson }}
  {{- end }}
{{- end }}
{{- end }}
{{- if include "common.operatorMode" $ctx }}
{{- $op := $ctx.Values.operator.dashboards }}
{{- $dashboards := list }}
{{- range $name := keys $boards | sortAlpha }}
{{- $board := get $boards $name | deepCopy }}
{{- /* The dashboards' queries use the $datasource variable: its default becomes that Grafana's datasource. */}}
{{- range $v := $board.templating.list }}
{{- if and (eq $v.type "datasource") (ne (dig "current" "value" "" $v) $op.datasourceUid) }}
{{- $_ := set $v "current" (dict "selected" false "text" $op.datasourceUid "value" $op.datasourceUid) }}
{{- end }}
{{- end }}
{{- $dashboards = append $dashboards (dict "name" (trimSuffix ".json" $name) "json" ($board | toPrettyJson) "folder" $ctx.Values.dashboards.folder) }}
{{- end }}
{{- range $name := keys $ctx.Values.dashboards.extra | sortAlpha }}
{{- /* A user's own dashboard written for the chart's Grafana names its Prometheus datasource by uid. */}}
{{- $json := replace "\"uid\": \"prometheus\"" (printf "\"uid\": %q" $op.datasourceUid) (get $ctx.Values.dashboards.extra $name) }}
{{- $dashboards = append $dashboards (dict "name" $name "json" $json "folder" $ctx.Values.dashboards.extraFolder) }}
{{- end }}
{{- range $d := $dashboards }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ printf "%s-dashboard-%s" (include "common.fullname" $ctx) $d.name | trunc 63 | trimSuffix "-" }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- $labels := include "common.labels" (dict "context" $ctx "component" "dashboards") | fromYaml }}
    {{- toYaml (merge (deepCopy $op.labels) $labels) | nindent 4 }}
  {{- if $op.folderAnnotation }}
  annotations:
    {{ $op.folderAnnotation }}: {{ $d.folder | quote }}
  {{- end }}
data:
  {{ printf "%s.json" $d.name }}: {{ $d.json | toJson }}
{{- end }}
{{- end }}
{{- end -}}
