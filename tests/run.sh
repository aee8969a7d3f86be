#!/usr/bin/env bash
# The whole test suite, as the README states it and as CI runs it (.ci/run calls exactly this).
# Installs what the tests need (tmux; patchelf and Debian sid's CPython 3.13/3.14/3.15, into
# .cache/pythons), then checks formatting, lints, docs, and runs every test in release mode
# (the live tests sample at 1000 Hz and want an optimised profiler).
# With CI=true a missing interpreter or a refused ptrace fails the run instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "installing test tools"
.ci/install-tools.sh

step "installing test interpreters"
.ci/install-pythons.sh

step "installing output consumers"
.ci/install-consumers.sh

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy"
cargo clippy --all-targets -- -D warnings

step "cargo doc"
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps --quiet

step "cargo test"
# The accuracy tests compare sample shares with the target's own clock; they run alone,
# after the rest, so the other live tests do not compete with them for the two CPUs (the
# name picks both: cpu_split_shares_match_the_ground_truth and ..._for_short_calls).
cargo test --release --lib --bins --tests -- --skip cpu_split_shares_match_the_ground_truth
cargo test --release --doc
cargo test --release --bench walk   # each benchmark once, as a test
cargo test --release --test suite cpu_split_shares_match_the_ground_truth -- --test-threads=1
