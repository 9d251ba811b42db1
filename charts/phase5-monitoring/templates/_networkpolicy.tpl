{{/* Building blocks of templates/networkpolicy.yaml. */}}
{{- define "phase5-monitoring.np.peer" -}}
- podSelector:
    matchLabels:
      app.kubernetes.io/name: {{ .name }}
      app.kubernetes.io/instance: {{ .release }}
{{- end }}
{{- define "phase5-monitoring.np.ingressNamespaces" -}}
- namespaceSelector:
    {{- if .selector }}
    matchLabels:
      {{- toYaml .selector | nindent 6 }}
    {{- else }} {}
    {{- end }}
{{- end }}
{{- define "phase5-monitoring.np.meta" -}}
name: {{ printf "%s-%s" .context.Release.Name .name | trunc 63 | trimSuffix "-" }}
namespace: {{ .context.Release.Namespace }}
labels:
  {{- include "common.labels" (dict "context" .context "component" "network-policy") | nindent 2 }}
{{- end }}
{{- define "phase5-monitoring.np.podSelector" -}}
podSelector:
  matchLabels:
    app.kubernetes.io/name: {{ .name }}
    app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- end }}
{{- define "phase5-monitoring.np.apiServer" -}}
- to:
    {{- range .cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    {{- range .ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end }}

{{/*
phase5-monitoring.np.when: "true" when the values path .path (dots between keys, umbrella
values) is set and true, or when there is no path. A path starting with "!" holds when the value
is unset or false; a list of paths holds when each of them does.
*/}}
{{- define "phase5-monitoring.np.when" -}}
{{- $ok := true -}}
{{- $paths := .path -}}
{{- if not (kindIs "slice" $paths) -}}{{- $paths = compact (list $paths) -}}{{- end -}}
{{- range $path := $paths -}}
{{- $cur := $.context.Values -}}
{{- range $k := splitList "." (trimPrefix "!" $path) -}}
{{- if kindIs "map" $cur -}}{{- $cur = get $cur $k -}}{{- else -}}{{- $cur = "" -}}{{- end -}}
{{- end -}}
{{- if eq (hasPrefix "!" $path) (not (empty $cur)) -}}{{- $ok = false -}}{{- end -}}
{{- end -}}
{{- if $ok -}}true{{- end -}}
{{- end -}}

{{/*
phase5-monitoring.np.rule: one ingress or egress rule of a component's NetworkPolicy from a flow
of its common.components row ({peers, ports}; see there): the peers as from/to, the ports with
their protocols. .owner is the component whose policy it is (ingress ports are its ports; egress
ports are the peer's). A peer component that operator mode replaces (enabled, not running: the
existing kube-prometheus-stack's Prometheus or Grafana scrapes and queries from its namespace)
is the namespaces of networkPolicy.ingressNamespaceSelector and ingressCIDRs.
*/}}
{{- define "phase5-monitoring.np.rule" -}}
{{- $ctx := .context -}}
{{- $np := $ctx.Values.networkPolicy -}}
{{- $rel := $ctx.Release.Name -}}
{{- $flow := .flow -}}
{{- $peerKey := ternary "from" "to" (eq .direction "ingress") -}}
{{- $portOwner := .owner -}}
{{- if eq .direction "egress" -}}{{- $portOwner = first $flow.peers -}}{{- end -}}
{{- $peers := list -}}
{{- range $p := $flow.peers -}}
{{- if eq $p "ingressNamespaces" -}}
{{- $peers = concat $peers (include "phase5-monitoring.np.ingressNamespaces" (dict "selector" $np.ingressNamespaceSelector) | fromYamlArray) -}}
{{- range $np.ingressCIDRs }}{{ $peers = append $peers (dict "ipBlock" (dict "cidr" .)) }}{{ end -}}
{{- else if eq $p "appNamespaces" -}}
{{- $peers = concat $peers (include "phase5-monitoring.np.ingressNamespaces" (dict "selector" $np.appNamespaceSelector) | fromYamlArray) -}}
{{- else if eq $p "apiServer" -}}
{{- range $np.apiServerCIDRs }}{{ $peers = append $peers (dict "ipBlock" (dict "cidr" .)) }}{{ end -}}
{{- else if eq $p "receivers" -}}
{{- range $np.receiverCIDRs }}{{ $peers = append $peers (dict "ipBlock" (dict "cidr" .)) }}{{ end -}}
{{- else if eq $p "storage" -}}
{{- range $np.storageCIDRs }}{{ $peers = append $peers (dict "ipBlock" (dict "cidr" .)) }}{{ end -}}
{{- else if ne $p "anywhere" -}}
{{- $peer := get $.components $p -}}
{{- if and $peer.enabled (not $peer.runs) -}}
{{- /* Replaced in operator mode: the existing kube-prometheus-stack's pods, in its own namespace. */ -}}
{{- $peers = concat $peers (include "phase5-monitoring.np.ingressNamespaces" (dict "selector" $np.ingressNamespaceSelector) | fromYamlArray) -}}
{{- range $np.ingressCIDRs }}{{ $peers = append $peers (dict "ipBlock" (dict "cidr" .)) }}{{ end -}}
{{- else -}}
{{- $peers = concat $peers (include "phase5-monitoring.np.peer" (dict "name" $peer.name "release" $rel) | fromYamlArray) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $peers = uniq $peers -}}
{{- $ports := list -}}
{{- range $entry := $flow.ports -}}
{{- $key := $entry -}}
{{- $on := true -}}
{{- if kindIs "map" $entry -}}
{{- $key = $entry.port -}}
{{- $on = include "phase5-monitoring.np.when" (dict "context" $ctx "path" $entry.when) -}}
{{- end -}}
{{- if $on -}}
{{- if kindIs "float64" $key -}}
{{- $ports = append $ports (dict "protocol" "TCP" "port" (int $key)) -}}
{{- else if eq $key "anyTCP" -}}
{{- $ports = append $ports (dict "protocol" "TCP") -}}
{{- else if eq $key "apiServer" -}}
{{- range $np.apiServerPorts }}{{ $ports = append $ports (dict "protocol" "TCP" "port" .) }}{{ end -}}
{{- else if eq $key "receivers" -}}
{{- range $np.receiverPorts }}{{ $ports = append $ports (dict "protocol" "TCP" "port" .) }}{{ end -}}
{{- else if eq $key "extraEndpoints" -}}
{{- $extra := list 10901 -}}
{{- range (dig "query" "extraEndpoints" list $ctx.Values.thanos) -}}
{{- with regexFind ":[0-9]+$" . | trimPrefix ":" }}{{ $extra = append $extra (int .) }}{{ end -}}
{{- end -}}
{{- range $extra | uniq }}{{ $ports = append $ports (dict "protocol" "TCP" "port" .) }}{{ end -}}
{{- else if eq $key "spanMetricsUrl" -}}
{{- /* jaeger.spanMetrics.prometheus.url: its port, else the scheme's. */ -}}
{{- $url := dig "spanMetrics" "prometheus" "url" "" ($ctx.Values.jaeger | default dict) -}}
{{- $hostPort := regexReplaceAll "^https?://([^/]+).*$" $url "${1}" -}}
{{- $p := regexFind ":[0-9]+$" $hostPort | trimPrefix ":" | default (ternary "443" "80" (hasPrefix "https:" $url)) -}}
{{- $ports = append $ports (dict "protocol" "TCP" "port" (int $p)) -}}
{{- else if eq $key "enabledReceivers" -}}
{{- range (get $.components $portOwner).receivers }}{{ $ports = append $ports (dict "protocol" .protocol "port" .port) }}{{ end -}}
{{- else -}}
{{- $owner := get $.components $portOwner -}}
{{- $listed := get $owner.ports $key -}}
{{- $number := ternary (dig "port" 0 ($listed | default dict)) (include "common.port" (list $portOwner $key)) (kindIs "map" $listed) | int -}}
{{- range $proto := splitList "+" (dig "protocol" "TCP" ($listed | default dict)) -}}
{{- $ports = append $ports (dict "protocol" $proto "port" $number) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $rule := dict "ports" $ports -}}
{{- if $peers -}}{{- $_ := set $rule $peerKey $peers -}}{{- end -}}
{{- list $rule | toYaml -}}
{{- end -}}
