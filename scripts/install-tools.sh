#!/usr/bin/env bash
# Build the pinned upstream tools (tools.versions) into bin/ with `go install`.
#
# A tool is skipped when bin/<tool> already reports the pinned version's build stamp,
# or when the user points the harness at their own binary (HELM=..., PROMTOOL=...).
# Builds are kept in a per-user cache keyed by tool and version
# ($XDG_CACHE_HOME/phase5-monitoring/tools/<tool>/<version>), so a fresh clone on a
# machine that built them once only copies them.
#
# Usage: scripts/install-tools.sh [tool ...]    (default: every tool in tools.versions)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
versions="$root/tools.versions"
bindir="$root/bin"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/phase5-monitoring/tools"
mkdir -p "$bindir" "$cache"
# One build at a time per user: concurrent runs (two clones, two make targets) wait.
exec 9>"$cache/.lock"
flock 9

command -v go >/dev/null 2>&1 || { echo "install-tools: Go 1.26+ is required to build the tools (https://go.dev/dl/)" >&2; exit 1; }

# build_from_source NAME MODULE VERSION DEST: for modules `go install pkg@version` refuses
# (replace directives: jaeger) or cannot build from the module zip (alertmanager embeds
# a web UI that the zip lacks). Builds in a scratch copy of the module, as its main module.
build_from_source() {
  local name=$1 module=$2 version=$3 dest=$4
  local root=${module%%/cmd/*} sub=${module#*/cmd/}
  local src tmp
  src=$(go mod download -json "$root@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d "$src" ]] || { echo "install-tools: cannot download $root@$version" >&2; return 1; }
  tmp=$(mktemp -d)
  cp -r "$src/." "$tmp/" && chmod -R u+w "$tmp"
  if [[ -f "$tmp/ui/web.go" ]] && grep -q 'go:embed app/dist' "$tmp/ui/web.go"; then
    # Alertmanager's UI is built with npm upstream; the API works without it.
    mkdir -p "$tmp/ui/app/dist/elm" "$tmp/ui/app/dist/mantine"
    echo '<html><body>UI not built; the API works.</body></html>' > "$tmp/ui/app/dist/elm/index.html"
    cp "$tmp/ui/app/dist/elm/index.html" "$tmp/ui/app/dist/mantine/index.html"
  fi
  local rc=0
  (cd "$tmp" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -o "$dest/$name" "./cmd/$sub") || rc=$?
  rm -rf "$tmp"
  return $rc
}

want=("$@")
status=0
while read -r name module version; do
  [[ -z "${name:-}" || "$name" == \#* ]] && continue
  if [[ ${#want[@]} -gt 0 && ! " ${want[*]} " == *" $name "* ]]; then continue; fi
  envvar=$(echo "$name" | tr '[:lower:]-' '[:upper:]_')
  if [[ -n "${!envvar:-}" ]]; then
    echo "install-tools: $name: using \$$envvar=${!envvar}"
    continue
  fi
  stamp="$bindir/.$name.version"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$module@$version" ]] \
     && [[ -x "$bindir/$name" || -x "$bindir/kubernetes/$version/kube-apiserver" ]]; then
    continue
  fi
  cached="$cache/$name/$version"
  case "$module" in
    k8s.io/kubernetes|go.etcd.io/etcd/server/v3)
      # Replace directives: built through a wrapper module. Kubernetes gives four binaries
      # (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl), kept per version
      # under bin/kubernetes/<version>/ so the newest and the oldest minor live side by side.
      kind=kubernetes first=kube-apiserver
      [[ "$module" == go.etcd.io/* ]] && kind=etcd first=etcd
      if [[ ! -x "$cached/$first" ]]; then
        echo "install-tools: building $name $version ($module, wrapper module) - minutes on a cold cache"
        if ! "$root/scripts/build-wrapped.sh" "$kind" "$version" "$cached.tmp" 2>"$cache/$name.err"; then
          echo "install-tools: FAILED to build $name $version from $module: $(tail -c 600 "$cache/$name.err")" >&2
          rm -rf "$cached.tmp"; status=1; continue
        fi
        rm -rf "$cached" && mv "$cached.tmp" "$cached"
      fi
      if [[ $kind == etcd ]]; then
        cp -f "$cached/etcd" "$bindir/etcd.tmp" && mv -f "$bindir/etcd.tmp" "$bindir/etcd"
      else
        rm -rf "$bindir/kubernetes/$version" && mkdir -p "$bindir/kubernetes" && cp -r "$cached" "$bindir/kubernetes/$version"
        # The newest Kubernetes' kubectl is the one on bin/ (deploy script, make cluster).
        [[ $name == kubernetes ]] && ln -sf "kubernetes/$version/kubectl" "$bindir/kubectl"
      fi
      echo "$module@$version" > "$stamp"
      echo "install-tools: $name $version -> bin/$([[ $kind == etcd ]] && echo etcd || echo "kubernetes/$version/")"
      continue ;;
  esac
  # The command's binary name (helm for helm4): go install names it after the package.
  binary=${module##*/}
  if [[ ! -x "$cached/$name" ]]; then
    echo "install-tools: building $name $version ($module) - minutes on a cold cache"
    mkdir -p "$cached"
    if ! GOBIN="$cached" CGO_ENABLED=0 go install "$module@$version" 2>"$cache/$name.err" \
       && ! { echo "install-tools: go install refused $name ($(head -c 300 "$cache/$name.err" | tr '\n' ' ')); building from the module source"; \
              build_from_source "$name" "$module" "$version" "$cached"; }; then
      echo "install-tools: FAILED to build $name $version from $module" >&2
      rm -rf "$cached"
      status=1
      continue
    fi
    [[ "$binary" != "$name" && -x "$cached/$binary" ]] && mv -f "$cached/$binary" "$cached/$name"
  fi
  cp -f "$cached/$name" "$bindir/$name.tmp" && mv -f "$bindir/$name.tmp" "$bindir/$name"
  echo "$module@$version" > "$stamp"
  echo "install-tools: $name $version -> bin/$name"
done < "$versions"
exit $status
