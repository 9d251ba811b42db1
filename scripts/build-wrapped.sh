#!/usr/bin/env bash
# Build Go commands that `go install pkg@version` refuses because their module has
# replace directives: the Kubernetes control plane (k8s.io/kubernetes points every
# k8s.io/<staging> module at ./staging) and etcd. A small wrapper module requires the
# module at the pinned version, pins what the replace block pointed at to its published
# release, and builds the commands from there.
#
# Usage: scripts/build-wrapped.sh kubernetes VERSION DEST   kube-apiserver, kube-controller-manager,
#                                                          kube-scheduler, kubectl (version-stamped)
#        scripts/build-wrapped.sh etcd VERSION DEST         etcd
#        scripts/build-wrapped.sh prometheus-operator VERSION DEST
#                                                          prometheus-operator (cmd/operator; its nested
#                                                          pkg/apis/monitoring and pkg/client pinned to VERSION)
#        scripts/build-wrapped.sh thanos VERSION DEST      thanos (cmd/thanos; its go.mod's replace
#                                                          block copied into the wrapper, version-stamped)
#        scripts/build-wrapped.sh prometheus-operator-crds VERSION DEST CONTROLLER_GEN
#                                                          the monitoring.coreos.com CRDs, generated from
#                                                          pkg/apis/monitoring@VERSION by controller-gen
set -euo pipefail

kind=$1 version=$2 dest=$3 controller_gen=${4:-}
mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOFLAGS=-mod=mod CGO_ENABLED=0

case "$kind" in
  kubernetes)
    module=k8s.io/kubernetes
    gomod=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
    [[ -f "$gomod" ]] || { echo "build-wrapped: cannot download $module@$version" >&2; exit 1; }
    IFS=. read -r major minor patch <<<"${version#v}"
    staging=$(sed -n '/^replace (/,/^)/p' "$gomod" | awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}')
    {
      echo "module phase5-monitoring/kubernetes-build"
      echo
      echo "go $(go env GOVERSION | sed 's/^go\([0-9]*\.[0-9]*\).*/\1/')"
      echo
      echo "require $module $version"
      echo
      echo "replace ("
      for m in $staging; do echo "	$m => $m v0.$minor.$patch"; done
      echo ")"
    } > go.mod
    cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
    {
      echo "//go:build tools"
      echo "package tools"
      echo "import ("
      for c in "${cmds[@]}"; do echo "	_ \"$module/cmd/$c\""; done
      echo ")"
    } > tools.go
    go mod tidy >/dev/null
    ld="-s -w"
    for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
      ld+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
      ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    # One build for the four commands: their packages compile once and the four links (each
    # single-threaded) run beside the compiles still going.
    go build -tags tools -trimpath -ldflags "$ld" -o "$dest/" "${cmds[@]/#/$module/cmd/}"
    ;;
  etcd)
    module=go.etcd.io/etcd/server/v3
    printf 'module phase5-monitoring/etcd-build\n\ngo %s\n\nrequire %s %s\n' \
      "$(go env GOVERSION | sed 's/^go\([0-9]*\.[0-9]*\).*/\1/')" "$module" "$version" > go.mod
    printf '//go:build tools\npackage tools\nimport _ "%s"\n' "$module" > tools.go
    go mod tidy >/dev/null
    go build -trimpath -ldflags "-s -w" -o "$dest/etcd" "$module"
    ;;
  prometheus-operator)
    # The root module replaces its nested pkg/apis/monitoring and pkg/client with ./pkg/...;
    # the wrapper requires all three at the same published version instead.
    module=github.com/prometheus-operator/prometheus-operator
    {
      echo "module phase5-monitoring/prometheus-operator-build"
      echo
      echo "go $(go env GOVERSION | sed 's/^go\([0-9]*\.[0-9]*\).*/\1/')"
      echo
      echo "require ("
      echo "	$module $version"
      echo "	$module/pkg/apis/monitoring $version"
      echo "	$module/pkg/client $version"
      echo ")"
    } > go.mod
    printf '//go:build tools\npackage tools\nimport _ "%s/cmd/operator"\n' "$module" > tools.go
    go mod tidy >/dev/null
    go build -tags tools -trimpath \
      -ldflags "-s -w -X github.com/prometheus/common/version.Version=${version#v} -X github.com/prometheus/common/version.Branch=HEAD" \
      -o "$dest/prometheus-operator" "$module/cmd/operator"
    ;;
  thanos)
    # Thanos' go.mod replaces a few third-party modules (forks, pins) with other published
    # modules, which `go install pkg@version` refuses: the wrapper requires Thanos and copies
    # its replace block verbatim (every target is a published module, none a local path).
    module=github.com/thanos-io/thanos
    gomod=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
    [[ -f "$gomod" ]] || { echo "build-wrapped: cannot download $module@$version" >&2; exit 1; }
    if sed -n '/^replace (/,/^)/p' "$gomod" | awk '$2 == "=>" && $3 ~ /^\./ {found=1} END {exit !found}'; then
      echo "build-wrapped: $module@$version replaces a module with a local path; the wrapper cannot copy that" >&2; exit 1
    fi
    {
      echo "module phase5-monitoring/thanos-build"
      echo
      echo "go $(go env GOVERSION | sed 's/^go\([0-9]*\.[0-9]*\).*/\1/')"
      echo
      echo "require $module $version"
      echo
      sed -n '/^replace (/,/^)/p' "$gomod"
    } > go.mod
    # No tools.go, no `go mod tidy` and no `-tags tools`: tidy loads every build tag, and with the
    # tag `tools` a dependency's own tools.go (go.elastic.co/apm imports a program) breaks it.
    # `go get` of the command adds exactly what the default build needs.
    go get "$module/cmd/thanos@$version" >/dev/null
    # The build tags of upstream's own release build (.promu.yml: netgo, slicelabels). Without
    # slicelabels Prometheus' labels package is its default string layout, which Thanos' labelpb
    # casts as a slice: the sidecar then panics answering Query's first Info call (a negative
    # message size in grpc's buffer pool).
    src=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    tags=$(awk '/^  tags:/ {t = 1; next} t && /^    all:/ {a = 1; next} a && /^      - / {print $2; next} a {exit}' \
           "$src/.promu.yml" | paste -sd, -)
    [[ ",$tags," == *,slicelabels,* ]] || { echo "build-wrapped: no slicelabels tag in $module@$version's .promu.yml ('$tags')" >&2; exit 1; }
    # Without the stamp `thanos --version` prints an empty version.
    go build -trimpath -tags "$tags" \
      -ldflags "-s -w -X github.com/prometheus/common/version.Version=${version#v} -X github.com/prometheus/common/version.Branch=HEAD" \
      -o "$dest/thanos" "$module/cmd/thanos"
    ;;
  prometheus-operator-crds)
    # Generated, never copied: controller-gen reads the API types of pkg/apis/monitoring in a
    # writable copy of the module (the module cache is read-only) and writes one CRD per kind.
    [[ -x "$controller_gen" ]] || { echo "build-wrapped: controller-gen not executable: '$controller_gen'" >&2; exit 1; }
    module=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring
    src=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -d "$src" ]] || { echo "build-wrapped: cannot download $module@$version" >&2; exit 1; }
    mkdir -p "$work/apis" && cp -r "$src/." "$work/apis/" && chmod -R u+w "$work/apis"
    # As upstream's `make generate-crds`: v1 and v1alpha1 (v1beta1 AlertmanagerConfig needs the
    # conversion webhook, which the standard CRDs do not configure).
    (cd "$work/apis" && "$controller_gen" crd:crdVersions=v1,maxDescLen=0 \
       paths=./v1/. paths=./v1alpha1/. output:crd:dir="$dest")
    ls "$dest"/*.yaml >/dev/null
    ;;
  *)
    echo "build-wrapped: unknown kind $kind (kubernetes|etcd|prometheus-operator|prometheus-operator-crds|thanos)" >&2; exit 2 ;;
esac
