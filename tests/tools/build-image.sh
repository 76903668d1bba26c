#!/usr/bin/env bash
# Builds berth's container image from the Dockerfile with podman (daemonless:
# there is no Docker engine here) and tags it localhost/berth:dev.
#
# No container registry is reachable from the machines berth is developed
# and tested on, so the Dockerfile's two base images are made here from
# Debian's packages, once, and kept in podman's storage (outside the clone):
#   localhost/berth-base/debian:bookworm-slim  debootstrap --variant=minbase bookworm
#   localhost/berth-base/rust:1-bookworm       that, with gcc, pkg-config and
#                                              libssl-dev, this machine's
#                                              stable Rust toolchain and its
#                                              certificate authorities
# They take the place of docker.io's debian:bookworm-slim and rust:1-bookworm
# through the Dockerfile's RUST_IMAGE and RUNTIME_IMAGE arguments; the
# Dockerfile's own steps run unchanged.
#
#   tests/tools/build-image.sh             build the image (base images when missing)
#   tests/tools/build-image.sh --print-env print what podman needs in its environment
#
# The machine's sandbox needs three podman settings, written to
# $tools_dir/containers.conf (CONTAINERS_CONF): runc (crun refuses a hybrid
# cgroup hierarchy), cgroupfs, and rlimits within the sandbox's hard limits.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
workspace=$(cd "$here/../.." && pwd)
# shellcheck source=cache-dirs.sh
source "$here/cache-dirs.sh"

image=localhost/berth:dev
debian_image=localhost/berth-base/debian:bookworm-slim
rust_image=localhost/berth-base/rust:1-bookworm
containers_conf="$tools_dir/containers.conf"

write_containers_conf() {
  mkdir -p "$tools_dir"
  local nofile nproc
  nofile=$(ulimit -Hn)
  nproc=$(ulimit -Hu)
  # conmon caps its children at 32768 processes whatever the hard limit.
  if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
  if [ "$nofile" = unlimited ] || [ "$nofile" -gt 1048576 ]; then nofile=1048576; fi
  cat >"$containers_conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
}

case "${1:-}" in
  --print-env) write_containers_conf; echo "CONTAINERS_CONF=$containers_conf"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print-env]" >&2; exit 2 ;;
esac

missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing ${missing[*]}; install them (apt-get install ${missing[*]})" >&2
    exit 1
  fi
  apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi

write_containers_conf
export CONTAINERS_CONF="$containers_conf"

# One build at a time on this machine.
exec 8>"$tools_dir/.image-lock"
flock 8

if ! podman image exists "$debian_image"; then
  echo "making $debian_image with debootstrap (once per machine)"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$tools_dir/debootstrap.log" 2>&1 \
    || { tail -20 "$tools_dir/debootstrap.log" >&2; exit 1; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | podman import --quiet - "$debian_image" >/dev/null
  rm -rf "$root"
  trap - EXIT
fi

if ! podman image exists "$rust_image"; then
  echo "making $rust_image from $debian_image and this machine's Rust toolchain (once per machine)"
  toolchain=$(rustc --print sysroot)
  # The toolchain without its documentation and sources: what cargo build needs.
  context=$(mktemp -d)
  trap 'rm -rf "$context"' EXIT
  mkdir -p "$context/rust" "$context/ca"
  cp -a "$toolchain/bin" "$toolchain/lib" "$toolchain/libexec" "$context/rust/"
  # This machine's own certificate authorities (an egress proxy's, which
  # crates.io is reached through), so that cargo in the builder trusts what
  # cargo here trusts.
  cp /usr/local/share/ca-certificates/*.crt "$context/ca/" 2>/dev/null || true
  cat >"$context/Containerfile" <<EOF
FROM $debian_image
RUN apt-get update \\
 && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev pkg-config libssl-dev \\
 && rm -rf /var/lib/apt/lists/*
COPY ca /usr/local/share/ca-certificates
RUN update-ca-certificates
COPY rust /usr/local/rust
ENV CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EOF
  podman build --quiet --pull=never -t "$rust_image" "$context" >/dev/null
  rm -rf "$context"
  trap - EXIT
fi

echo "building $image from $workspace/Dockerfile"
started=$(date +%s)
podman build --pull=never \
  --build-arg RUST_IMAGE="$rust_image" \
  --build-arg RUNTIME_IMAGE="$debian_image" \
  -t "$image" "$workspace"
echo "built $image in $(( $(date +%s) - started )) s: $(podman image inspect --format '{{.Size}}' "$image" | numfmt --to=iec) bytes"
