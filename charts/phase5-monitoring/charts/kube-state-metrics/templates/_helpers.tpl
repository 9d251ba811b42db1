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
