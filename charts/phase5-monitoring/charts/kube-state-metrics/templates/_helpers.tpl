{{/*
kube-state-metrics.component: the app.kubernetes.io/component label of kube-state-metrics's objects, written
here only. kube-state-metrics.labels: common.labels with it.
Usage: include "kube-state-metrics.labels" .
*/}}
{{- define "kube-state-metrics.component" -}}metrics{{- end -}}

{{- define "kube-state-metrics.labels" -}}
{{- include "common.labels" (dict "context" . "component" (include "kube-state-metrics.component" .)) -}}
{{- end -}}

{{/*
kube-state-metrics.apiGroups: collector name -> API group, for the ClusterRole.
An unknown collector fails the render (the schema's enum catches it first).
*/}}
{{- define "kube-state-metrics.apiGroup" -}}
{{- $groups := dict
  "pods" "" "nodes" "" "namespaces" "" "persistentvolumeclaims" "" "persistentvolumes" "" "services" "" "endpoints" "" "endpointslices" "discovery.k8s.io" "configmaps" "" "secrets" "" "resourcequotas" "" "limitranges" "" "replicationcontrollers" ""
  "deployments" "apps" "replicasets" "apps" "statefulsets" "apps" "daemonsets" "apps"
  "horizontalpodautoscalers" "autoscaling" "jobs" "batch" "cronjobs" "batch"
  "poddisruptionbudgets" "policy" "ingresses" "networking.k8s.io" "networkpolicies" "networking.k8s.io"
  "storageclasses" "storage.k8s.io" "leases" "coordination.k8s.io" -}}
{{- if not (hasKey $groups .) -}}
{{- fail (printf "kube-state-metrics.collectors: unknown collector %q" .) -}}
{{- end -}}
{{- get $groups . -}}
{{- end -}}

{{/*
kube-state-metrics.allowlist: the value of --metric-labels-allowlist (kind "labels") or
--metric-annotations-allowlist (kind "annotations"): the entries of metricLabelsAllowlist /
metricAnnotationsAllowlist ("resource=[key,...]"), merged per resource with what the Prometheus
rules of Phase 5 read (service:phase5_expected:info, service:phase5_category:info): for services,
deployments and statefulsets among the collectors, the labels of global.phase5.selector,
.exporterSelector and .teamLabel, and the annotation prometheus.io/scrape. "" when empty.
Usage: include "kube-state-metrics.allowlist" (dict "context" . "kind" "labels")
*/}}
{{- define "kube-state-metrics.allowlist" -}}
{{- $ctx := .context -}}
{{- $entries := ternary $ctx.Values.metricLabelsAllowlist $ctx.Values.metricAnnotationsAllowlist (eq .kind "labels") -}}
{{- $byRes := dict -}}
{{- range $e := $entries -}}
{{- $m := regexFindAll "^([a-z]+)=\\[(.*)\\]$" $e 1 -}}
{{- if not $m -}}
{{- fail (printf "kube-state-metrics: allowlist entry %q is not resource=[key,...]" $e) -}}
{{- end -}}
{{- $res := regexReplaceAll "^([a-z]+)=\\[(.*)\\]$" $e "${1}" -}}
{{- $keys := regexReplaceAll "^([a-z]+)=\\[(.*)\\]$" $e "${2}" -}}
{{- $have := get $byRes $res | default list -}}
{{- range $k := splitList "," $keys -}}
{{- if and (trim $k) (not (has (trim $k) $have)) -}}{{- $have = append $have (trim $k) -}}{{- end -}}
{{- end -}}
{{- $_ := set $byRes $res $have -}}
{{- end -}}
{{- $g := dig "phase5" dict ($ctx.Values.global | default dict) -}}
{{- $phase5 := list "prometheus.io/scrape" -}}
{{- if eq .kind "labels" -}}
{{- $phase5 = concat (keys ($g.selector | default dict)) (keys ($g.exporterSelector | default dict)) (compact (list ($g.teamLabel | default ""))) | sortAlpha -}}
{{- end -}}
{{- range $res := list "services" "deployments" "statefulsets" -}}
{{- if and $phase5 (has $res $ctx.Values.collectors) -}}
{{- $have := get $byRes $res | default list -}}
{{- range $k := $phase5 -}}
{{- if not (has $k $have) -}}{{- $have = append $have $k -}}{{- end -}}
{{- end -}}
{{- $_ := set $byRes $res $have -}}
{{- end -}}
{{- end -}}
{{- $out := list -}}
{{- range $res := keys $byRes | sortAlpha -}}
{{- $out = append $out (printf "%s=[%s]" $res (join "," (get $byRes $res))) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}
