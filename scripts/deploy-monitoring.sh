#!/usr/bin/env bash
# Deploy the Phase 5 monitoring stack with one command.
#
#   scripts/deploy-monitoring.sh [--profile dev|production|defaults|...] [--values FILE]...
#                                [--namespace monitoring] [--release p5] [--timeout 10m]
#                                [--dry-run] [--out build] [--no-health-check] [--uninstall] [--help]
#
# Checks prerequisites (helm, kubectl, a reachable cluster), creates the namespace with its
# Pod Security labels, runs `helm upgrade --install` with the chosen profile, checks every
# component's health with `helm test` and prints how to reach them (`helm get notes`). Before
# upgrading a release whose StatefulSet volumeClaimTemplates change (a larger persistence.size,
# new labels) it grows the PVCs where the StorageClass allows expansion and re-creates the
# StatefulSet with --cascade=orphan, keeping every PVC; where a change cannot be made it stops
# before changing anything and says what to do. --no-health-check skips `helm test` (nodes
# that run no containers, e.g. the test suite's simulated nodes). With no reachable cluster it
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
health_check=true
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

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

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
    --no-health-check) health_check=false; shift ;;
    -h|--help)   usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

# --profile defaults: the chart's own defaults, no profile file.
profile_file="$root/values/$profile.yaml"
[[ "$profile" == defaults || -f "$profile_file" ]] || die "no profile '$profile' (values/$profile.yaml); profiles: defaults $(cd "$root/values" && ls *.yaml | sed 's/\.yaml$//' | tr '\n' ' ')"
for f in "${extra_values[@]}"; do [[ -f "$f" ]] || die "--values $f: no such file"; done

# Tools: $HELM, then the project's bin/, then PATH (make tools builds bin/helm).
helm=${HELM:-}
[[ -z "$helm" && -x "$root/bin/helm" ]] && helm="$root/bin/helm"
[[ -z "$helm" ]] && helm=$(command -v helm || true)
[[ -n "$helm" ]] || die "helm not found: run 'make tools' (builds bin/helm) or install Helm 3.x"
kubectl=${KUBECTL:-}
[[ -z "$kubectl" && -x "$root/bin/kubectl" ]] && kubectl="$root/bin/kubectl"
[[ -z "$kubectl" ]] && kubectl=$(command -v kubectl || true)

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

values_args=()
[[ "$profile" != defaults ]] && values_args+=(-f "$profile_file")
for f in "${extra_values[@]}"; do values_args+=(-f "$f"); done

# StatefulSet volumeClaimTemplates are immutable: plan the change before helm sees it.
if "$helm" status "$release" --namespace "$namespace" >/dev/null 2>&1; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  "$kubectl" -n "$namespace" get statefulsets -l "app.kubernetes.io/instance=$release" -o json > "$tmp/live.json"
  server_version=$("$kubectl" version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])') \
    || die "cannot read the cluster's Kubernetes version"
  "$helm" template "$release" "$chart" --namespace "$namespace" --kube-version "$server_version" "${values_args[@]}" > "$tmp/rendered.yaml" \
    || die "helm template failed (the values above?)"
  "$kubectl" create --dry-run=client -o json -f "$tmp/rendered.yaml" > "$tmp/rendered.json" 2>"$tmp/err" \
    || die "cannot read the render: $(cat "$tmp/err")"
  "$kubectl" -n "$namespace" get pvc -o json > "$tmp/pvcs.json"
  "$kubectl" get storageclass -o json > "$tmp/classes.json"
  python3 "$root/scripts/storage_plan.py" --live "$tmp/live.json" --rendered "$tmp/rendered.json" \
    --pvcs "$tmp/pvcs.json" --classes "$tmp/classes.json" > "$tmp/plan" || die "storage plan failed"
  if grep -q '^stop ' "$tmp/plan"; then
    printf '%serror:%s the upgrade changes StatefulSet storage in a way that cannot keep the data as it is:\n' "$c_err" "$c_off" >&2
    sed -n 's/^stop /  - /p' "$tmp/plan" >&2
    die "nothing was changed"
  fi
  while read -r action obj arg; do
    case "$action" in
      expand)
        info "PVC $obj: growing to $arg (the StorageClass allows expansion)"
        "$kubectl" -n "$namespace" patch pvc "$obj" --type merge \
          -p "{\"spec\":{\"resources\":{\"requests\":{\"storage\":\"$arg\"}}}}" >/dev/null \
          || die "PVC $obj could not grow; the StatefulSets are unchanged" ;;
      recreate)
        info "StatefulSet $obj: volumeClaimTemplates change; re-created with --cascade=orphan (pods and PVCs stay)"
        "$kubectl" -n "$namespace" delete statefulset "$obj" --cascade=orphan --wait=true >/dev/null \
          || die "could not delete StatefulSet $obj (orphan)" ;;
    esac
  done < "$tmp/plan"
fi
info "helm upgrade --install $release (profile $profile)"
# Its stdout (status and NOTES) is not shown here: the NOTES follow at the end (helm get notes).
"$helm" upgrade --install "$release" "$chart" --namespace "$namespace" "${values_args[@]}" \
  --wait --timeout "$timeout" >/dev/null || die "helm upgrade --install failed; see: $kubectl -n $namespace get pods,events"

info "waiting for rollouts"
for kind in deployment statefulset daemonset; do
  for obj in $("$kubectl" -n "$namespace" get "$kind" -l "app.kubernetes.io/instance=$release" -o name); do
    "$kubectl" -n "$namespace" rollout status "$obj" --timeout "$timeout" >/dev/null && ok "$obj" || die "$obj did not roll out"
  done
done

# Health: the chart's own `helm test` pods (one per running component, asking its Service for
# its health endpoint; the component list in the chart gives names, ports and paths).
if $health_check; then
  info "helm test $release (each component's health endpoint)"
  "$helm" test "$release" --namespace "$namespace" --timeout "$timeout" \
    || die "helm test failed; see: $kubectl -n $namespace get pods -l app.kubernetes.io/component=helm-test (and their logs)"
  ok "helm test passed"
else
  warn "--no-health-check: helm test was skipped (pods were judged by their Ready condition only)"
fi

printf '\n%sPhase 5 monitoring is running%s (release %s, namespace %s, profile %s).\n\n' \
  "$c_ok" "$c_off" "$release" "$namespace" "$profile"
# How to reach each component and where the Grafana password is: the chart's NOTES.
"$helm" get notes "$release" --namespace "$namespace" || warn "helm get notes failed"
