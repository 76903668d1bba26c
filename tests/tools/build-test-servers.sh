#!/usr/bin/env bash
# Builds the real servers berth's integration tests run against (kube-apiserver,
# kube-controller-manager, kube-scheduler, etcd, kwok, helm 3 and 4, vault) from
# the Go module proxy at the versions pinned in versions.env, and helm-render:
# berth's own small programs (tests/tools/helm-render) that link Helm's
# rendering packages, one per Helm major, for the differential tests.
#
# Idempotent: each binary has a stamp holding its version; a binary whose stamp
# matches the pin is not rebuilt. The cache lives outside the clone so a fresh
# clone on the same machine reuses it.
#
#   tests/tools/build-test-servers.sh                 build what is missing
#   tests/tools/build-test-servers.sh --control-plane only the control plane's servers
#                                                     (etcd, kube-*, kwok: what
#                                                     `cargo xtask demo` needs)
#   tests/tools/build-test-servers.sh --print-dir      print the bin directory only
#
# BERTH_TOOLS_DIR overrides the cache directory
# (default: ${XDG_CACHE_HOME:-$HOME/.cache}/berth/tools).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

# shellcheck source=cache-dirs.sh
source "$here/cache-dirs.sh"

control_plane_only=false
case "${1:-}" in
  --print-dir) echo "$bin_dir"; exit 0 ;;
  --control-plane) control_plane_only=true ;;
  "") ;;
  *) echo "usage: $0 [--control-plane | --print-dir]" >&2; exit 2 ;;
esac

if ! command -v go >/dev/null 2>&1; then
  echo "error: 'go' is not on PATH; the test servers are built from the Go module proxy with the go toolchain (install Go 1.24 or newer)" >&2
  exit 1
fi

mkdir -p "$bin_dir" "$stamp_dir" "$src_dir"

# One build at a time per cache directory (a test run and a developer may race).
exec 9>"$tools_dir/.lock"
flock 9

export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

up_to_date() { # name version
  [[ -x "$bin_dir/$1" && -f "$stamp_dir/$1" && "$(cat "$stamp_dir/$1")" == "$2" ]]
}

# Writes a throwaway module that requires $module at $version and pins the
# tools' packages through build-tagged imports, so `go mod tidy` records them.
prepare_module() { # dir module version package...
  local dir=$1 module=$2 version=$3
  shift 3
  rm -rf "$dir"
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module berth.invalid/test-servers/$(basename "$dir")

go 1.24

require $module $version
MOD
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for package in "$@"; do printf '\t_ "%s"\n' "$package"; done
    printf ')\n'
  } >"$dir/tools.go"
}

# kube-apiserver, kube-controller-manager and kube-scheduler: one module, one
# version, built together.
KUBERNETES_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler)

build_kubernetes() {
  local version=$KUBERNETES_VERSION name missing=()
  for name in "${KUBERNETES_COMPONENTS[@]}"; do
    if up_to_date "$name" "$version"; then
      echo "$name $version: cached in $bin_dir"
    else
      missing+=("$name")
    fi
  done
  [[ ${#missing[@]} -eq 0 ]] && return
  echo "${missing[*]} $version: building from k8s.io/kubernetes (several minutes each)"
  local dir="$src_dir/kubernetes" packages=()
  for name in "${KUBERNETES_COMPONENTS[@]}"; do packages+=("k8s.io/kubernetes/cmd/$name"); done
  prepare_module "$dir" k8s.io/kubernetes "$version" "${packages[@]}"
  # k8s.io/kubernetes points its staging modules (k8s.io/api, ...) at local
  # directories; a consumer must pin each one to its published v0.x release.
  local gomod staging_version="v0.${version#v1.}"
  gomod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
  grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk '{print $1}' | sort -u |
    while read -r staged; do echo "replace $staged => $staged $staging_version"; done >>"$dir/go.mod"
  (cd "$dir" && go mod tidy)
  local major=${version#v}; major=${major%%.*}
  local minor=${version#v*.}; minor=${minor%%.*}
  for name in "${missing[@]}"; do
    (cd "$dir" && go build -trimpath -o "$bin_dir/$name" \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean" \
      "k8s.io/kubernetes/cmd/$name")
    echo "$version" >"$stamp_dir/$name"
  done
}

# kwok: fake nodes, and pods that follow the stages the tests configure.
build_kwok() {
  local name=kwok version=$KWOK_VERSION
  up_to_date $name "$version" && { echo "$name $version: cached in $bin_dir"; return; }
  echo "$name $version: building from sigs.k8s.io/kwok"
  local dir="$src_dir/$name"
  prepare_module "$dir" sigs.k8s.io/kwok "$version" sigs.k8s.io/kwok/cmd/kwok
  (cd "$dir" && go mod tidy && go build -trimpath -o "$bin_dir/$name" \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$version" sigs.k8s.io/kwok/cmd/kwok)
  echo "$version" >"$stamp_dir/$name"
}

build_etcd() {
  local name=etcd version=$ETCD_VERSION
  up_to_date $name "$version" && { echo "$name $version: cached in $bin_dir"; return; }
  echo "$name $version: building from go.etcd.io/etcd/server/v3"
  local dir="$src_dir/$name"
  prepare_module "$dir" go.etcd.io/etcd/server/v3 "$version" go.etcd.io/etcd/server/v3
  (cd "$dir" && go mod tidy && go build -trimpath -ldflags "-s -w" -o "$bin_dir/$name" go.etcd.io/etcd/server/v3)
  echo "$version" >"$stamp_dir/$name"
}

# The -ldflags helm's own Makefile gives, for Helm <major> built in <dir>:
# the version and, for Helm 3, the default Capabilities.KubeVersion derived
# from the client-go it is built with (Helm 4 reads that from its build
# information) so that `helm template` matches releases.
helm_ldflags() { # major version dir
  local major=$1 version=$2 dir=$3 pkg=helm.sh/helm/v$1
  local flags="-s -w -X $pkg/internal/version.version=$version -X $pkg/internal/version.gitTreeState=clean"
  if [[ $major == 3 ]]; then
    local client_go kube_major kube_minor
    client_go=$(cd "$dir" && go list -m -f '{{.Version}}' k8s.io/client-go)
    client_go=${client_go#v}
    kube_major=$(( ${client_go%%.*} + 1 ))
    kube_minor=$(echo "$client_go" | cut -d. -f2)
    flags+=" -X $pkg/pkg/chartutil.k8sVersionMajor=$kube_major -X $pkg/pkg/chartutil.k8sVersionMinor=$kube_minor"
    flags+=" -X $pkg/pkg/lint/rules.k8sVersionMajor=$kube_major -X $pkg/pkg/lint/rules.k8sVersionMinor=$kube_minor"
  fi
  echo "$flags"
}

build_helm() { # major: 3 builds helm, 4 builds helm4
  local major=$1 name version pkg=helm.sh/helm/v$1
  if [[ $major == 3 ]]; then name=helm version=$HELM_VERSION; else name=helm4 version=$HELM4_VERSION; fi
  up_to_date $name "$version" && { echo "$name $version: cached in $bin_dir"; return; }
  echo "$name $version: building from $pkg"
  local dir="$src_dir/$name"
  prepare_module "$dir" $pkg "$version" $pkg/cmd/helm
  (cd "$dir" && go mod tidy)
  (cd "$dir" && go build -trimpath -o "$bin_dir/$name" -ldflags "$(helm_ldflags "$major" "$version" "$dir")" $pkg/cmd/helm)
  echo "$version" >"$stamp_dir/$name"
}

# helm-render3 and helm-render4: tests/tools/helm-render/v3 and v4 built
# against the pinned Helm modules. The stamp holds the pin and a hash of the
# source, so an edit rebuilds.
build_helm_render() { # major module version
  local major=$1 module=$2 version=$3 name=helm-render$1
  local source="$here/helm-render/v$major/main.go" stamp
  stamp="$version $(sha256sum "$source" | cut -c1-16)"
  up_to_date "$name" "$stamp" && { echo "$name ($module $version): cached in $bin_dir"; return; }
  echo "$name: building against $module $version"
  local dir="$src_dir/$name"
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$source" "$dir/main.go"
  cat >"$dir/go.mod" <<MOD
module berth.invalid/test-servers/$name

go 1.24

require $module $version
MOD
  (cd "$dir" && go mod tidy)
  (cd "$dir" && go build -trimpath -ldflags "$(helm_ldflags "$major" "$version" "$dir")" -o "$bin_dir/$name" .)
  echo "$stamp" >"$stamp_dir/$name"
}

build_vault() {
  local name=vault version=$VAULT_VERSION module=github.com/hashicorp/vault
  up_to_date $name "$version" && { echo "$name $version: cached in $bin_dir"; return; }
  echo "$name $version: building from $module (the longest build: many minutes, several GiB of memory to link)"
  local dir="$src_dir/$name"
  prepare_module "$dir" $module "$version" $module
  # vault's go.mod points its own submodules (api, api/auth/*, sdk) at local
  # directories, which are not part of its module zip, and replaces a few
  # third-party modules. A consumer's go.mod ignores a dependency's replace lines,
  # so: pin each local one to the published version vault itself requires, and
  # copy the others as they are. The list comes from vault's go.mod, so it
  # follows the pin.
  local info gomod
  info=$(cd "$dir" && go mod download -json "$module@$version")
  gomod=$(sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p' <<<"$info")
  vault_replacements "$gomod" >>"$dir/go.mod"
  (cd "$dir" && go mod tidy)
  # As vault's scripts/ci-helper.sh does: version (also embedded from its VERSION
  # file) and build date via ldflags; the date is the tagged commit's time as the
  # module proxy reports it. No git checkout here, so no revision.
  local info_file build_date
  info_file=$(sed -n 's/^\t"Info": "\(.*\)",$/\1/p' <<<"$info")
  build_date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info_file")
  (cd "$dir" && go build -trimpath -o "$bin_dir/$name" \
    -ldflags "-s -w -X $module/version.Version=${version#v} -X $module/version.BuildDate=$build_date" \
    $module)
  echo "$version" >"$stamp_dir/$name"
}

# Prints the replace lines a module depending on vault needs, from vault's go.mod:
# local replacements become pins to the required version, the others are copied.
vault_replacements() { # go.mod
  awk '
    { sub(/\/\/.*/, "") }
    /^replace[ \t]*\($/ { block = "replace"; next }
    /^require[ \t]*\($/ { block = "require"; next }
    /^\)/ { block = ""; next }
    /^replace[ \t]/ { sub(/^replace[ \t]+/, ""); replaces[++n] = $0; next }
    /^require[ \t]/ { required[$2] = $3; next }
    block == "replace" && NF { replaces[++n] = $0; next }
    block == "require" && NF { required[$1] = $2; next }
    END {
      for (i = 1; i <= n; i++) {
        split(replaces[i], side, /[ \t]*=>[ \t]*/)
        split(side[1], old, /[ \t]+/)
        if (side[2] ~ /^\.\.?\//) {
          if (!(old[1] in required)) { print "vault_replacements: " old[1] " is replaced locally but not required" > "/dev/stderr"; exit 1 }
          print "replace " old[1] " => " old[1] " " required[old[1]]
        } else {
          print "replace " replaces[i]
        }
      }
    }' "$1"
}

started=$(date +%s)
build_etcd
build_kubernetes
build_kwok
if ! $control_plane_only; then
  build_helm 3
  build_helm 4
  build_helm_render 3 helm.sh/helm/v3 "$HELM_VERSION"
  build_helm_render 4 helm.sh/helm/v4 "$HELM4_VERSION"
  build_vault
fi
echo "test servers ready in $bin_dir ($(( $(date +%s) - started ))s)"
