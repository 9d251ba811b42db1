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
  if [[ -x "$bindir/$name" && -f "$stamp" && "$(cat "$stamp")" == "$module@$version" ]]; then
    continue
  fi
  cached="$cache/$name/$version"
  if [[ ! -x "$cached/$name" ]]; then
    echo "install-tools: building $name $version ($module) - minutes on a cold cache"
    mkdir -p "$cached"
    # GOFLAGS=-mod=mod: go install pkg@version ignores any local go.mod anyway.
    if ! GOBIN="$cached" CGO_ENABLED=0 go install "$module@$version"; then
      echo "install-tools: FAILED to build $name $version from $module" >&2
      rm -rf "$cached"
      status=1
      continue
    fi
  fi
  cp -f "$cached/$name" "$bindir/$name.tmp" && mv -f "$bindir/$name.tmp" "$bindir/$name"
  echo "$module@$version" > "$stamp"
  echo "install-tools: $name $version -> bin/$name"
done < "$versions"
exit $status
