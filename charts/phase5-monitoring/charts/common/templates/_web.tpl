{{/*
Authentication and TLS of the stack's own HTTP endpoints that serve exporter-toolkit's web config:
Prometheus and Alertmanager (`--web.config.file`), node-exporter (`--web.config.file`),
kube-state-metrics (`--tls-config`, the same file format, for both its ports) and Thanos (its
`--http.config`, one setting for the sidecar, Query, the Store Gateway and the Compactor), from
global.web.<component>: global because every client of that endpoint lives in another subchart
(Prometheus -> Alertmanager and its scrape jobs, Grafana -> Prometheus, the umbrella's `helm test`
pods), and globals are the only values every subchart sees.

common.webComponents: the components that have a global.web.<component> entry, as JSON.
Usage: include "common.webComponents" . | fromJsonArray

common.web: the effective settings of one server component, as JSON; fails naming the value
when a switch is on without what it needs, or in operator mode (the existing
kube-prometheus-stack runs that component: its own web settings apply there).
Usage: include "common.web" (dict "context" . "component" "alertmanager") | fromJson
       include "common.web" (dict "context" . "component" "promtail" "name" "alloy") | fromJson
Fields: tls, basicAuth (booleans), on (either), tlsOnly (a common.webTlsComponents component),
scheme, service (the Service whose name the certificate must hold), serverName (its DNS name),
services (the Services whose endpoints serve this web config: the scrape jobs' targets), tlsSecret,
caKey, tlsDir (where the server's container mounts its key pair), clientSecret, usernameKey,
passwordKey, users, webSecret (the chart's Secret holding web-config.yml and client.yml; "" for
the TLS-only components, which have none), certManager (issuer or {}), configFlag (the server's
flag that takes the web config file; "" for the TLS-only components), volumePrefix (the names of
the server's web volumes: the Thanos sidecar shares the Prometheus pod, whose own are web-*).
Thanos: one key pair for its four servers; clients verify the Query Service's name (serverName).
Loki and the log collector run in operator mode too (their TLS is theirs to set there); Grafana
does not, so global.web.grafana is refused there like the exporter-toolkit components.
*/}}
{{- define "common.webComponents" -}}
["prometheus", "alertmanager", "node-exporter", "kube-state-metrics", "thanos"]
{{- end -}}

{{/*
common.webTlsComponents: the components whose HTTP port serves TLS from their own configuration
(global.web.<component>.tls only, no exporter-toolkit web config and no basic auth): Loki
(server.http_tls_config), Grafana ([server] protocol = https) and the log collector under its
values key `promtail` (Alloy's `http { tls { } }` block, Promtail's server.http_tls_config), as
JSON. Their key pair is mounted at common.web's tlsDir, their clients mount only the CA.
Usage: include "common.webTlsComponents" . | fromJsonArray
*/}}
{{- define "common.webTlsComponents" -}}
["loki", "grafana", "promtail"]
{{- end -}}

{{- define "common.web" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "component") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.web" . (list "context" "component")) -}}
{{- end -}}
{{- $ctx := .context -}}
{{- $c := .component -}}
{{- $tlsOnly := has $c (include "common.webTlsComponents" . | fromJsonArray) -}}
{{- $known := concat (include "common.webComponents" . | fromJsonArray) (include "common.webTlsComponents" . | fromJsonArray) -}}
{{- if not (has $c $known) -}}
{{- fail (printf "common.web: component must be one of %s, got %q" (join ", " $known) $c) -}}
{{- end -}}
{{- $v := dig "web" $c dict ($ctx.Values.global | default dict) -}}
{{- $tls := dig "tls" dict $v -}}
{{- $ba := dig "basicAuth" dict $v -}}
{{- /* The Service's name: <release>-<component>, the log collector's <release>-<what it runs>
(alloy or promtail: its own subchart knows, from its `collector` value; any other caller names
it with "name"). */ -}}
{{- $name := .name | default $c -}}
{{- if and (eq $c "promtail") (not .name) (kindIs "string" ($ctx.Values.collector | default "")) ($ctx.Values.collector) -}}
{{- $name = $ctx.Values.collector -}}
{{- end -}}
{{- $fullname := include "common.componentFullname" (dict "context" $ctx "component" $name) -}}
{{- $out := dict "tls" (dig "enabled" false $tls) "basicAuth" (and (not $tlsOnly) (dig "enabled" false $ba)) "tlsOnly" $tlsOnly -}}
{{- $_ := set $out "on" (or $out.tls $out.basicAuth) -}}
{{- $_ := set $out "scheme" (ternary "https" "http" $out.tls) -}}
{{- $service := $fullname -}}
{{- $services := list $fullname -}}
{{- if eq $c "thanos" -}}
{{- /* Query's Service (thanos.queryName), the Store Gateway's and the Compactor's, and the
Prometheus headless Service through which the sidecars are scraped. */ -}}
{{- $service = printf "%s-query" $fullname | trunc 63 | trimSuffix "-" -}}
{{- $services = list $service -}}
{{- range $other := list "thanos-store" "thanos-compact" -}}
{{- $services = append $services (include "common.componentFullname" (dict "context" $ctx "component" $other)) -}}
{{- end -}}
{{- $services = append $services (include "common.componentHeadlessName" (dict "context" $ctx "component" "prometheus")) -}}
{{- end -}}
{{- $_ := set $out "service" $service -}}
{{- $_ := set $out "services" $services -}}
{{- $_ := set $out "serverName" (printf "%s.%s.svc" $service $ctx.Release.Namespace) -}}
{{- $_ := set $out "webSecret" (ternary "" (printf "%s-web" $fullname) $tlsOnly) -}}
{{- $_ := set $out "configFlag" (ternary "" (get (dict "kube-state-metrics" "--tls-config" "thanos" "--http.config") $c | default "--web.config.file") $tlsOnly) -}}
{{- $_ := set $out "tlsDir" (ternary (printf "/etc/phase5-tls/%s" $c) (printf "%s/tls" (include "common.webServerDir" $c)) $tlsOnly) -}}
{{- $_ := set $out "volumePrefix" (ternary "thanos-web" "web" (eq $c "thanos")) -}}
{{- $issuer := dig "certManager" "issuerName" "" $tls -}}
{{- $_ := set $out "certManager" (ternary (dict "name" $issuer "kind" (dig "certManager" "issuerKind" "Issuer" $tls)) dict (ne $issuer "")) -}}
{{- /* Named after the component key (not the log collector's program): every client finds it. */ -}}
{{- $_ := set $out "tlsSecret" (dig "secretName" "" $tls | default (ternary (printf "%s-web-tls" (include "common.componentFullname" (dict "context" $ctx "component" $c))) "" (ne $issuer ""))) -}}
{{- $_ := set $out "caKey" (dig "caKey" "ca.crt" $tls) -}}
{{- $_ := set $out "users" (dig "users" dict $ba) -}}
{{- $_ := set $out "clientSecret" (dig "clientSecret" "" $ba) -}}
{{- $_ := set $out "usernameKey" (dig "usernameKey" "username" $ba) -}}
{{- $_ := set $out "passwordKey" (dig "passwordKey" "password" $ba) -}}
{{- if and $out.on (dig "operator" "enabled" false ($ctx.Values.global | default dict)) (not (has $c (list "loki" "promtail"))) -}}
{{- if eq $c "thanos" -}}
{{- fail "global.web.thanos: operator mode (global.operator.enabled) renders no Thanos (you run your own, with its own --http.config); unset global.web.thanos.tls.enabled and basicAuth.enabled" -}}
{{- end -}}
{{- $theirs := get (dict "prometheus" "its prometheusSpec.web" "alertmanager" "its alertmanagerSpec.web" "node-exporter" "its prometheus-node-exporter subchart's values" "kube-state-metrics" "its kube-state-metrics subchart's values" "grafana" "its grafana subchart's grafana.ini") $c -}}
{{- fail (printf "global.web.%s: operator mode (global.operator.enabled) uses the existing kube-prometheus-stack's %s, whose web settings are its own (%s); unset global.web.%s.tls.enabled%s" $c $c $theirs $c (ternary "" " and basicAuth.enabled" $tlsOnly)) -}}
{{- end -}}
{{- if and $out.tls (not $out.tlsSecret) -}}
{{- fail (printf "global.web.%s.tls.enabled: set global.web.%s.tls.secretName (an existing kubernetes.io/tls Secret with tls.crt, tls.key and %s) or global.web.%s.tls.certManager.issuerName" $c $c $out.caKey $c) -}}
{{- end -}}
{{- if $out.basicAuth -}}
{{- if not $out.users -}}
{{- fail (printf "global.web.%s.basicAuth.enabled: set global.web.%s.basicAuth.users (user name: bcrypt hash)" $c $c) -}}
{{- end -}}
{{- if not $out.clientSecret -}}
{{- fail (printf "global.web.%s.basicAuth.enabled: set global.web.%s.basicAuth.clientSecret (an existing Secret with the %s and %s keys the chart's clients log in with)" $c $c $out.usernameKey $out.passwordKey) -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
common.webServerDir: where a server component's web config (web-config.yml) and TLS key pair
are mounted. Usage: include "common.webServerDir" "prometheus"
*/}}
{{- define "common.webServerDir" -}}/etc/{{ . }}/web{{- end -}}

{{/*
common.webClientDir: where a client pod finds what it needs to reach a server component: ca.crt
(from the server's TLS Secret), username and password (from its basicAuth.clientSecret), and
client.yml (common.webClientConfig, for promtool's and amtool's --http.config.file).
Usage: include "common.webClientDir" "alertmanager"
*/}}
{{- define "common.webClientDir" -}}/etc/phase5-web/{{ . }}{{- end -}}

{{/*
common.webClientConfig: Prometheus' http_config fields (basic_auth, tls_config) a client uses to
reach a server component, with the files under common.webClientDir; empty when neither is on.
Prometheus (alerting, scrape jobs), promtool and amtool (`--http.config.file`) read this format.
Usage: include "common.webClientConfig" (dict "context" . "component" "alertmanager")
*/}}
{{- define "common.webClientConfig" -}}
{{- $w := include "common.web" . | fromJson -}}
{{- $dir := include "common.webClientDir" .component -}}
{{- if $w.basicAuth }}
basic_auth:
  username_file: {{ $dir }}/username
  password_file: {{ $dir }}/password
{{- end }}
{{- if $w.tls }}
tls_config:
  ca_file: {{ $dir }}/ca.crt
  server_name: {{ $w.serverName }}
{{- end }}
{{- end -}}

{{/*
common.webClientVolume: the projected volume (one list item) a client pod mounts at
common.webClientDir to reach a server component; empty when neither TLS nor basic auth is on.
The server's TLS Secret gives only its CA, never its key.
Usage: include "common.webClientVolume" (dict "context" . "component" "prometheus")
*/}}
{{- define "common.webClientVolume" -}}
{{- $w := include "common.web" . | fromJson -}}
{{- if $w.on -}}
- name: web-client-{{ .component }}
  projected:
    defaultMode: 0440
    sources:
      {{- if $w.webSecret }}
      - secret:
          name: {{ $w.webSecret }}
          items:
            - key: client.yml
              path: client.yml
      {{- end }}
      {{- if $w.tls }}
      - secret:
          name: {{ $w.tlsSecret }}
          items:
            - key: {{ $w.caKey }}
              path: ca.crt
      {{- end }}
      {{- if $w.basicAuth }}
      - secret:
          name: {{ $w.clientSecret }}
          items:
            - key: {{ $w.usernameKey }}
              path: username
            - key: {{ $w.passwordKey }}
              path: password
      {{- end }}
{{- end -}}
{{- end -}}

{{/*
common.webClientVolumeMount: the mount (one list item) of common.webClientVolume; empty when off.
Usage: include "common.webClientVolumeMount" (dict "context" . "component" "prometheus")
*/}}
{{- define "common.webClientVolumeMount" -}}
{{- $w := include "common.web" . | fromJson -}}
{{- if $w.on -}}
- name: web-client-{{ .component }}
  mountPath: {{ include "common.webClientDir" .component }}
  readOnly: true
{{- end -}}
{{- end -}}

{{/*
common.webServerArgs / common.webServerVolumeMounts / common.webServerVolumes: what the server's
own container gets when its web config is on (else empty): its config flag (--web.config.file,
kube-state-metrics' --tls-config), the chart's web Secret and the TLS Secret mounted under
common.webServerDir.
Usage: include "common.webServerArgs" (dict "context" . "component" "prometheus")
*/}}
{{- define "common.webServerArgs" -}}
{{- $w := include "common.web" . | fromJson -}}
{{- if $w.on -}}
- {{ $w.configFlag }}={{ include "common.webServerDir" .component }}/config/web-config.yml
{{- end -}}
{{- end -}}

{{- define "common.webServerVolumeMounts" -}}
{{- include "common.webServerVolumeMounts.items" . | trim -}}
{{- end -}}

{{- define "common.webServerVolumeMounts.items" -}}
{{- $w := include "common.web" . | fromJson -}}
{{- if $w.on -}}
{{- if $w.webSecret }}
- name: {{ $w.volumePrefix }}-config
  mountPath: {{ include "common.webServerDir" .component }}/config
  readOnly: true
{{- end }}
{{- if $w.tls }}
- name: {{ $w.volumePrefix }}-tls
  mountPath: {{ $w.tlsDir }}
  readOnly: true
{{- end }}
{{- end -}}
{{- end -}}

{{- define "common.webServerVolumes" -}}
{{- include "common.webServerVolumes.items" . | trim -}}
{{- end -}}

{{- define "common.webServerVolumes.items" -}}
{{- $w := include "common.web" . | fromJson -}}
{{- if $w.on -}}
{{- if $w.webSecret }}
- name: {{ $w.volumePrefix }}-config
  secret:
    secretName: {{ $w.webSecret }}
    defaultMode: 0440
{{- end }}
{{- if $w.tls }}
- name: {{ $w.volumePrefix }}-tls
  secret:
    secretName: {{ $w.tlsSecret }}
    defaultMode: 0440
{{- end }}
{{- end -}}
{{- end -}}

{{/*
common.webServerProbe: a probe's handler (httpGet, exec or tcpSocket) for a server component's
health path. Without basic auth: httpGet, scheme HTTPS when TLS is on (the kubelet does not
verify the certificate). With basic auth exporter-toolkit asks for credentials on EVERY path,
/-/ready and /-/healthy included, and a kubelet httpGet probe can carry them only as a literal
header in the pod spec (a credential in the spec): Prometheus then probes with its own promtool
and the client config (exec), the others (Alertmanager, node-exporter, kube-state-metrics, Thanos:
their images have no client that only checks health) with a TCP connect.
Usage: include "common.webServerProbe" (dict "context" . "component" "prometheus" "path" "ready" "port" "http-web")
*/}}
{{- define "common.webServerProbe" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "component") (hasKey . "path") (hasKey . "port") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.webServerProbe" . (list "context" "component" "path" "port")) -}}
{{- end -}}
{{- $w := include "common.web" (dict "context" .context "component" .component) | fromJson -}}
{{- if not $w.basicAuth -}}
httpGet:
  path: {{ include "common.healthPath" (list .component .path) }}
  port: {{ .port }}
  {{- if $w.tls }}
  scheme: HTTPS
  {{- end }}
{{- else if eq .component "prometheus" -}}
exec:
  command:
    - promtool
    - check
    - {{ ternary "healthy" "ready" (eq .path "live") }}
    - --url={{ $w.scheme }}://localhost:{{ include "common.port" (list .component "web") }}
    - --http.config.file={{ include "common.webClientDir" .component }}/client.yml
{{- else -}}
tcpSocket:
  port: {{ .port }}
{{- end -}}
{{- end -}}

{{/*
common.webObjects: the chart's web config Secret of a server component (web-config.yml: TLS key
pair paths and the basic_auth_users bcrypt hashes, hence a Secret; client.yml: the
common.webClientConfig the component's own probes and clients read) and, when
tls.certManager.issuerName is set, the cert-manager Certificate that fills its TLS Secret.
The TLS-only components (common.webTlsComponents) have no web config: only the Certificate.
Nothing when the component's web config is off.
Usage: include "common.webObjects" (dict "context" . "component" "prometheus" "labelComponent" "server")
*/}}
{{- define "common.webObjects" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "component") (hasKey . "labelComponent") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.webObjects" . (list "context" "component" "labelComponent")) -}}
{{- end -}}
{{- $ctx := .context -}}
{{- $w := include "common.web" (dict "context" .context "component" .component) | fromJson -}}
{{- if $w.on -}}
{{- $dir := include "common.webServerDir" .component -}}
{{- if $w.webSecret -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ $w.webSecret }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "common.labels" (dict "context" $ctx "component" .labelComponent) | nindent 4 }}
type: Opaque
stringData:
  web-config.yml: |
    {{- if $w.tls }}
    tls_server_config:
      cert_file: {{ $dir }}/tls/tls.crt
      key_file: {{ $dir }}/tls/tls.key
      min_version: TLS12
    {{- end }}
    {{- if $w.basicAuth }}
    basic_auth_users:
      {{- range $user, $hash := $w.users }}
      {{ $user | quote }}: {{ $hash | quote }}
      {{- end }}
    {{- end }}
  client.yml: |
    {{- include "common.webClientConfig" (dict "context" .context "component" .component) | nindent 4 }}
{{- end }}
{{- with $w.certManager }}
{{- if $w.webSecret }}
---
{{- end }}
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: {{ $w.tlsSecret }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "common.labels" (dict "context" $ctx "component" $.labelComponent) | nindent 4 }}
spec:
  secretName: {{ $w.tlsSecret }}
  issuerRef:
    name: {{ .name }}
    kind: {{ .kind }}
    group: cert-manager.io
  dnsNames:
    {{- $svc := $w.service }}
    - {{ $svc }}
    - {{ printf "%s.%s" $svc $ctx.Release.Namespace }}
    - {{ $w.serverName }}
    - {{ printf "%s.cluster.local" $w.serverName }}
  privateKey:
    algorithm: ECDSA
    size: 256
    rotationPolicy: Always
{{- end }}
{{- end -}}
{{- end -}}

{{/*
common.webIngressCheck: fails when a server component's Ingress is enabled with no authentication
in front of what it exposes (Prometheus' query and admin APIs, Alertmanager's silences): neither
its own basic auth (global.web.<component>.basicAuth.enabled), nor an authentication annotation
in <component>.ingress.annotations (a key containing "auth", e.g.
nginx.ingress.kubernetes.io/auth-url or alb.ingress.kubernetes.io/auth-type, or Traefik's
router.middlewares), nor an explicit <component>.ingress.allowUnauthenticated: true.
Usage: include "common.webIngressCheck" (dict "context" . "component" "prometheus")
*/}}
{{- define "common.webIngressCheck" -}}
{{- $ctx := .context -}}
{{- $ing := $ctx.Values.ingress | default dict -}}
{{- if $ing.enabled -}}
{{- $w := include "common.web" . | fromJson -}}
{{- $annotated := false -}}
{{- range $k, $_ := $ing.annotations | default dict -}}
{{- if or (contains "auth" (lower $k)) (hasSuffix "router.middlewares" $k) -}}
{{- $annotated = true -}}
{{- end -}}
{{- end -}}
{{- if not (or $w.basicAuth $annotated $ing.allowUnauthenticated) -}}
{{- fail (printf "%s.ingress.enabled: the Ingress would let anyone who reaches it use %s's API; turn on global.web.%s.basicAuth.enabled, or put authentication in front with %s.ingress.annotations (e.g. nginx.ingress.kubernetes.io/auth-url), or set %s.ingress.allowUnauthenticated: true (README, Authentication and TLS)" .component .component .component .component .component) -}}
{{- end -}}
{{- end -}}
{{- end -}}
