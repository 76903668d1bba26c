#!/usr/bin/env bash
# Builds Flux's source-controller and helm-controller (the pins of Flux
# v2.9.5) from the Go module proxy into the test-server cache, for the fleet
# benchmark only (cargo xtask bench fleet); CI does not build them.
#
# `go install` refuses both modules: their go.mod replaces the api submodule
# with ./api, a folder the module zip does not hold. So the module source is
# copied, that replace dropped (the published api module at the version the
# go.mod requires is used instead) and the build runs with -mod=mod.
# source-controller's github.com/fluxcd/pkg/artifact v0.18.3 is refused by
# the proxy; v0.18.0 is pinned instead. No `go mod tidy`, which would also
# fetch test-only modules the proxy refuses.
#
#   tests/tools/build-flux.sh              build what is missing
#   tests/tools/build-flux.sh --print-dir  print the bin directory only
#
# Also copies the controllers' CRDs into <cache>/flux-crds.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

# shellcheck source=cache-dirs.sh
source "$here/cache-dirs.sh"
crd_dir="$tools_dir/flux-crds"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$bin_dir"
  exit 0
fi
mkdir -p "$bin_dir" "$stamp_dir" "$src_dir" "$crd_dir"
exec 9>"$tools_dir/.flux-lock"
flock 9

export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

build_controller() { # name version [go mod edit args...]
  local name=$1 version=$2
  shift 2
  if [[ -x "$bin_dir/$name" && "$(cat "$stamp_dir/$name" 2>/dev/null)" == "$version" ]]; then
    echo "$name $version: cached in $bin_dir"
    return
  fi
  echo "$name $version: building from github.com/fluxcd/$name"
  local module=github.com/fluxcd/$name dir="$src_dir/$name" from
  from=$(go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  rm -rf "$dir"
  cp -r "$from" "$dir"
  chmod -R u+w "$dir"
  (
    cd "$dir"
    go mod edit -dropreplace="$module/api"
    for edit in "$@"; do go mod edit "$edit"; done
    # No `go mod tidy`: it would also resolve the controllers' test-only
    # dependencies, some of which the proxy refuses (pkg/helmtestserver).
    go build -trimpath -ldflags "-s -w" -o "$bin_dir/$name" .
  )
  cp "$dir"/config/crd/bases/*.yaml "$crd_dir/"
  echo "$version" >"$stamp_dir/$name"
}

build_controller source-controller "$FLUX_SOURCE_CONTROLLER_VERSION" \
  "-require=github.com/fluxcd/pkg/artifact@v0.18.0"
build_controller helm-controller "$FLUX_HELM_CONTROLLER_VERSION"
echo "Flux controllers ready in $bin_dir; CRDs in $crd_dir"
