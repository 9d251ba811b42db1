#!/usr/bin/env bash
# Deploy the Phase 5 monitoring stack with one command.
#
#   scripts/deploy-monitoring.sh [--profile dev|production|...] [--values FILE]...
#                                [--namespace monitoring] [--release p5] [--timeout 10m]
#                                [--dry-run] [--out build] [--uninstall] [--help]
#
# Checks prerequisites (helm, kubectl, a reachable cluster), creates the namespace with its
# Pod Security labels, runs `helm upgrade --install` with the chosen profile, waits for the
# components to be healthy and prints how to reach them. With no reachable cluster it
# creates a local kind cluster when kind and a container engine exist; otherwise it says
# so and renders the profile to build/ instead (as --dry-run does).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
chart="$root/charts/phase5-monitoring"
profile=dev
namespace=monitoring
release=p5
timeout=10m
out="$root/build"
dry_run=false
uninstall=false
extra_values=()

if [[ -t 1 ]]; then
  c_ok=$'\e[32m' c_warn=$'\e[33m' c_err=$'\e[31m' c_info=$'\e[36m' c_off=$'\e[0m'
else
  c_ok='' c_warn='' c_err='' c_info='' c_off=''
fi
info() { printf '%s==>%s %s\n' "$c_info" "$c_off" "$*"; }
ok()   { printf '%s ok%s %s\n' "$c_ok" "$c_off" "$*"; }
warn() { printf '%swarning:%s %s\n' "$c_warn" "$c_off" "$*" >&2; }
die()  { printf '%serror:%s %s\n' "$c_err" "$c_off" "$*" >&2; exit 1; }

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --profile)   profile=${2:?--profile needs a value}; shift 2 ;;
    --values|-f) extra_values+=("${2:?--values needs a file}"); shift 2 ;;
    --namespace|-n) namespace=${2:?--namespace needs a value}; shift 2 ;;
    --release)   release=${2:?--release needs a value}; shift 2 ;;
    --timeout)   timeout=${2:?--timeout needs a value}; shift 2 ;;
    --dry-run)   dry_run=true; shift ;;
    --out)       out=${2:?--out needs a directory}; shift 2 ;;
    --uninstall) uninstall=true; shift ;;
    -h|--help)   usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

profile_file="$root/values/$profile.yaml"
[[ -f "$profile_file" ]] || die "no profile '$profile' (values/$profile.yaml); profiles: $(cd "$root/values" && ls *.yaml | sed 's/\.yaml$//' | tr '\n' ' ')"
for f in "${extra_values[@]}"; do [[ -f "$f" ]] || die "--values $f: no such file"; done

# Tools: $HELM, then the project's bin/, then PATH (make tools builds bin/helm).
helm=${HELM:-}
[[ -z "$helm" && -x "$root/bin/helm" ]] && helm="$root/bin/helm"
[[ -z "$helm" ]] && helm=$(command -v helm || true)
[[ -n "$helm" ]] || die "helm not found: run 'make tools' (builds bin/helm) or install Helm 3.x"
kubectl=${KUBECTL:-$(command -v kubectl || true)}

render_instead() {
  info "rendering profile '$profile' to $out/$profile/ instead"
  local py="$root/.venv/bin/python"
  [[ -x "$py" ]] || die "no .venv: run 'make venv' (or 'make deploy', which does)"
  local args=(--profile "$profile" --release "$release" --namespace "$namespace" --out "$out")
  for f in "${extra_values[@]}"; do args+=(-f "$f"); done
  exec "$py" "$root/scripts/render.py" "${args[@]}"
}

$dry_run && render_instead

[[ -n "$kubectl" ]] || { warn "kubectl not found: cannot reach a cluster"; render_instead; }

cluster_reachable() { "$kubectl" version --request-timeout=5s >/dev/null 2>&1; }

if ! cluster_reachable; then
  if command -v kind >/dev/null 2>&1 && { docker info >/dev/null 2>&1 || podman info >/dev/null 2>&1; }; then
    info "no reachable cluster: creating kind cluster 'phase5' (ci/kind.yaml)"
    kind create cluster --name phase5 --config "$root/ci/kind.yaml" --wait 120s
    cluster_reachable || die "kind cluster created but not reachable"
  else
    warn "no reachable cluster (kubectl version failed), and no kind + container engine to create one"
    render_instead
  fi
fi
ok "cluster reachable: $("$kubectl" config current-context 2>/dev/null || echo in-cluster)"

if $uninstall; then
  info "uninstalling release $release from namespace $namespace"
  "$helm" uninstall "$release" --namespace "$namespace" --wait --timeout "$timeout" || die "helm uninstall failed"
  warn "PersistentVolumeClaims are kept (Prometheus, Alertmanager, Loki, Grafana data); delete them with:"
  echo "  $kubectl -n $namespace delete pvc -l app.kubernetes.io/instance=$release"
  exit 0
fi

# The stack namespace runs the host collectors (node-exporter, Promtail/Alloy), which the
# "restricted" and "baseline" Pod Security levels reject: enforce privileged, and warn and
# audit at restricted so any other pod that drifts is reported.
info "namespace $namespace (Pod Security: enforce=privileged, warn/audit=restricted)"
"$kubectl" create namespace "$namespace" --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
"$kubectl" label namespace "$namespace" --overwrite \
  pod-security.kubernetes.io/enforce=privileged \
  pod-security.kubernetes.io/warn=restricted \
  pod-security.kubernetes.io/audit=restricted >/dev/null

values_args=(-f "$profile_file")
for f in "${extra_values[@]}"; do values_args+=(-f "$f"); done
info "helm upgrade --install $release (profile $profile)"
"$helm" upgrade --install "$release" "$chart" --namespace "$namespace" "${values_args[@]}" \
  --wait --timeout "$timeout" || die "helm upgrade --install failed; see: $kubectl -n $namespace get pods,events"

info "waiting for rollouts"
for kind in deployment statefulset daemonset; do
  for obj in $("$kubectl" -n "$namespace" get "$kind" -l "app.kubernetes.io/instance=$release" -o name); do
    "$kubectl" -n "$namespace" rollout status "$obj" --timeout "$timeout" >/dev/null && ok "$obj" || die "$obj did not roll out"
  done
done

# Health endpoints through the API server's service proxy: no port-forward, no curl in images.
probe() { # name service port path
  local name=$1 svc="$release-$2" port=$3 path=$4 i
  "$kubectl" -n "$namespace" get service "$svc" >/dev/null 2>&1 || { warn "$name: service $svc absent (disabled?)"; return 0; }
  for i in $(seq 1 30); do
    if "$kubectl" get --raw "/api/v1/namespaces/$namespace/services/http:$svc:$port/proxy$path" >/dev/null 2>&1; then
      ok "$name healthy ($path)"; return 0
    fi
    sleep 5
  done
  die "$name: $path on $svc:$port not healthy after 150s"
}
probe Prometheus prometheus 9090 /-/ready
probe Alertmanager alertmanager 9093 /-/ready
probe Grafana grafana 3000 /api/health
probe Loki loki 3100 /ready
probe Jaeger jaeger 13133 /status

cat <<INFO

${c_ok}Phase 5 monitoring is running${c_off} (release $release, namespace $namespace, profile $profile).

  Grafana       $kubectl -n $namespace port-forward svc/$release-grafana 3000:3000        -> http://localhost:3000
  Prometheus    $kubectl -n $namespace port-forward svc/$release-prometheus 9090:9090     -> http://localhost:9090
  Alertmanager  $kubectl -n $namespace port-forward svc/$release-alertmanager 9093:9093   -> http://localhost:9093
  Jaeger        $kubectl -n $namespace port-forward svc/$release-jaeger 16686:16686       -> http://localhost:16686

  Grafana user 'admin', password:
    $kubectl -n $namespace get secret $release-grafana -o jsonpath='{.data.admin-password}' | base64 -d; echo
INFO
