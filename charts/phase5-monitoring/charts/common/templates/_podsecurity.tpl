{{/*
common.hostAccessAdmitted: refuse the install, naming the fix, when the release namespace's Pod
Security level forbids what a host collector's pods need from the node (host namespaces, host
ports, hostPath volumes): only `privileged` admits them, and under `baseline` or `restricted`
the DaemonSet installs and never creates a pod (the API server's warnings are the only trace).
Reads the namespace's `pod-security.kubernetes.io/enforce` label through `lookup`, as the
node-exporter host-port check does: nothing under `helm template`, `--dry-run` without server
and Argo CD (lookup is empty there), nor for a namespace that does not exist yet.
Usage: include "common.hostAccessAdmitted" (dict "context" . "needs" "hostPath volumes")
  "needs": what the pods use that the level forbids (said in the message); the switch named is
  `<chart name>.enabled`.
*/}}
{{- define "common.hostAccessAdmitted" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "needs") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.hostAccessAdmitted" . (list "context" "needs")) -}}
{{- end -}}
{{- $ns := .context.Release.Namespace -}}
{{- $level := dig "metadata" "labels" "pod-security.kubernetes.io/enforce" "" (lookup "v1" "Namespace" "" $ns) -}}
{{- if has $level (list "baseline" "restricted") -}}
{{- fail (printf "%s: namespace %s enforces Pod Security level %q (label pod-security.kubernetes.io/enforce), which forbids the %s its DaemonSet needs: it would install and never start a pod. Label the namespace privileged (kubectl label --overwrite namespace %s pod-security.kubernetes.io/enforce=privileged) or set %s.enabled=false" .context.Chart.Name $ns $level .needs $ns .context.Chart.Name) -}}
{{- end -}}
{{- end -}}
