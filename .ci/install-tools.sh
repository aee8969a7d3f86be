#!/usr/bin/env bash
# Installs the system tools the tests use that a fresh Debian machine may lack, with the
# machine's own apt setup:
#   tmux   the `top` tests run sampler in a real terminal (tests/suite/top.rs)
# Does nothing when every tool is present; installing needs root.
#
#   .ci/install-tools.sh
set -euo pipefail

log() { printf 'install-tools: %s\n' "$*" >&2; }
die() { printf 'install-tools: ERROR: %s\n' "$*" >&2; exit 1; }

missing=()
for tool in tmux; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
((${#missing[@]} == 0)) && exit 0

[[ $EUID -eq 0 ]] || die "${missing[*]} not installed; install (apt-get install ${missing[*]}) or run as root"
export DEBIAN_FRONTEND=noninteractive
log "installing ${missing[*]}"
# The package lists may be missing or stale on a fresh machine: update once if needed.
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >&2; then
    apt-get update -q </dev/null >&2 || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >&2 \
        || die "could not install ${missing[*]}"
fi
for tool in "${missing[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool still not found after installing it"
done
