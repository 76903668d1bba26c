# Where the built test servers live; sourced by the build scripts.
# BERTH_TOOLS_DIR overrides the cache directory
# (default: ${XDG_CACHE_HOME:-$HOME/.cache}/berth/tools).
# shellcheck shell=bash
tools_dir=${BERTH_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/tools}
bin_dir="$tools_dir/bin"
stamp_dir="$tools_dir/stamps"
src_dir="$tools_dir/src"
