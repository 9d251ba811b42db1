{{/*
phase5-monitoring.components: the components of common.components (the one table of the stack's
components, in the common library chart) resolved against this release's values: read by the
NetworkPolicies (networkpolicy.yaml), the `helm test` pods (tests/health.yaml) and NOTES.txt.
A port or health path changes once, in common.ports or common.healthPaths (or in the subchart
value it comes from), and all three follow, as do the subcharts' containers, Services and probes;
tests/test_unit_components.py checks every port against the rendered Services.

JSON object: component key (the subchart's key in values) -> its common.components row plus
  name:    app.kubernetes.io/name of its pods (the log collector: promtail or alloy),
  service: its Service (<release>-<name>, or <release>-<name>-<serviceSuffix>),
  enabled: the subchart is on (and the row's switch, if it has one),
  runs:    it runs its own workload (enabled, and not replaced by the existing
           kube-prometheus-stack in operator mode),
  ports:   port key -> {port, protocol} (protocol TCP, or TCP+UDP for a port used with both),
  receivers: (jaeger) the enabled receivers' {receiver, name, port, protocol},
  health:  {port: a key of ports, path} the helm test pod asks
Port numbers come from common.ports (the one table the subcharts' containers, Services and
configs read too), or from the subchart value the row's portValues names; health paths from
common.healthPaths (the one table the subcharts' probes read too). A disabled subchart's
values are not merged in, so every value read here falls back to the table's default.
Usage: include "phase5-monitoring.components" . | fromJson
Built once per render (common.memo) and shared by its readers.
*/}}
{{- define "phase5-monitoring.components" -}}
{{- include "common.memo" (dict "context" . "template" "phase5-monitoring.components.render") -}}
{{- end -}}

{{- define "phase5-monitoring.components.render" -}}
{{- $v := .Values -}}
{{- $table := dict -}}
{{- range $row := include "common.components" . | fromJsonArray -}}
{{- $sub := index $v ($row.chart | default $row.key) | default dict -}}
{{- $name := $row.name -}}
{{- with $row.nameValue -}}
{{- $name = dig . $row.name $sub -}}
{{- end -}}
{{- $ports := dict -}}
{{- range $pkey, $proto := $row.ports -}}
{{- $port := include "common.port" (list $row.key $pkey) | int -}}
{{- with (get ($row.portValues | default dict) $pkey) -}}
{{- $port = dig . $port $sub | int -}}
{{- end -}}
{{- $_ := set $ports $pkey (dict "port" $port "protocol" $proto) -}}
{{- end -}}
{{- $receivers := list -}}
{{- range $r := $row.receivers | default list -}}
{{- if dig "receivers" $r.receiver "enabled" false $sub -}}
{{- $receivers = append $receivers (dict "receiver" $r.receiver "name" $r.name "port" (include "common.port" (list $row.key $r.receiver) | int) "protocol" $r.protocol) -}}
{{- end -}}
{{- end -}}
{{- $c := merge (dict "name" $name "ports" $ports "receivers" $receivers
  "health" (dict "port" $row.health.port "path" (include "common.healthPath" (list $name $row.health.path)))
  "service" (include "common.componentFullname" (dict "context" $ "component" (join "-" (compact (list $name ($row.serviceSuffix | default ""))))))
  "enabled" (and (dig "enabled" false $sub) (eq (include "phase5-monitoring.np.when" (dict "context" $ "path" $row.switch)) "true"))
  "runs" (eq (include "phase5-monitoring.runs" (dict "context" $ "component" $row.key)) "true")) $row -}}
{{- $_ := set $table $row.key $c -}}
{{- end -}}
{{- toJson $table -}}
{{- end -}}

{{/*
phase5-monitoring.componentOrder: the components in the order NOTES lists them (the order of
common.components).
*/}}
{{- define "phase5-monitoring.componentOrder" -}}
{{- $keys := list -}}
{{- range include "common.components" . | fromJsonArray -}}
{{- $keys = append $keys .key -}}
{{- end -}}
{{- toJson $keys -}}
{{- end -}}
