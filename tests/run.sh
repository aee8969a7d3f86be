#!/usr/bin/env bash
# The whole test suite, as the README states it and as CI runs it (.ci/run calls exactly this).
# Installs what the tests need (patchelf and Debian sid's CPython 3.13/3.14/3.15, into
# .cache/pythons), then checks formatting, lints, docs, and runs every test in release mode
# (the live tests sample at 1000 Hz and want an optimised profiler).
# With CI=true a missing interpreter or a refused ptrace fails the run instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "installing test interpreters"
.ci/install-pythons.sh

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy"
cargo clippy --all-targets -- -D warnings

step "cargo doc"
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps --quiet

step "cargo test"
cargo test --release --all-targets
cargo test --release --doc
