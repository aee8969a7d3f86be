#!/usr/bin/env bash
# Installs the real programs that read sampler's output formats, so the tests can feed them what
# sampler writes instead of trusting our own idea of each format:
#   go tool pprof      pprof (gzipped profile.proto); Debian's golang-go, with apt-get
#   gprof2dot          pstats; PyPI, into a private venv
#   snakeviz           pstats (its server's own loader, snakeviz.stats); PyPI, same venv
#   speedscope         speedscope JSON (its published file-format schema and its importer);
#                      npm, with ajv (JSON-schema validator) for the schema
#   @paulirish/trace_engine   Chrome Trace Event JSON: the trace model of Chrome DevTools'
#                      Performance panel, packaged to run under Node; npm
# The npm packages are pinned by tests/consumers/package.json and package-lock.json (the lock
# records no download addresses; npm takes them from the machine's own configuration).
#
#   .ci/install-consumers.sh
#
# Result, under CACHE = ${SAMPLER_CONSUMERS_DIR:-<repo root>/.cache/consumers}:
#   CACHE/venv/bin/python          Python with gprof2dot and snakeviz: runs
#                                  tests/consumers/snakeviz_load.py and gprof2dot_check.py
#   CACHE/venv/bin/gprof2dot       gprof2dot's own command line
#   CACHE/node/node_modules/       speedscope, ajv, @paulirish/trace_engine: used by
#                                  tests/consumers/speedscope_check.mjs and chrometrace_check.mjs
#                                  (they find this folder themselves, or via SAMPLER_CONSUMERS_DIR)
#   go (on PATH, /usr/bin/go)      `go tool pprof`: used by tests/consumers/pprof_check.py
#   CACHE/.complete                stamp: written last, lists what was installed
#
# stdout: one line per consumer, `NAME VERSION WHERE` (e.g. `gprof2dot 2025.4.14 CACHE/venv/bin/gprof2dot`,
# `go go1.19.8 /usr/bin/go`); all else goes to stderr. Idempotent: when the stamp is current a run
# only verifies (about 0.3 s); a broken install is redone once. Installing golang-go needs root.
#
# The checkers the tests run (each prints one JSON document on success; exit 1 and one line on
# stderr otherwise; see each file's header for its JSON):
#   node tests/consumers/speedscope_check.mjs FILE
#   node tests/consumers/chrometrace_check.mjs FILE
#   .cache/consumers/venv/bin/python tests/consumers/snakeviz_load.py FILE
#   .cache/consumers/venv/bin/python tests/consumers/gprof2dot_check.py FILE [GPROF2DOT_OPTION...]
#   python3 tests/consumers/pprof_check.py FILE
#
# To move an npm pin: edit tests/consumers/package.json, then in tests/consumers run
#   npm install --package-lock-only --ignore-scripts --omit-lockfile-registry-resolved
# (the last option keeps download addresses out of the lock). speedscope_check.mjs reaches into
# speedscope's minified bundle: check it still runs after moving speedscope.
#
# Environment:
#   SAMPLER_CONSUMERS_DIR    cache folder (default: <repo root>/.cache/consumers)
#   SAMPLER_CONSUMERS_FORCE  set to 1 to reinstall the venv and node folder even if the stamp is there
set -euo pipefail

# Pinned PyPI versions (what pip found on 2026-11-21). tornado is snakeviz's one dependency.
readonly GPROF2DOT_VERSION=2025.4.14
readonly SNAKEVIZ_VERSION=2.2.2
readonly TORNADO_VERSION=6.6.1
readonly STAMP_FORMAT=1

log() { printf 'install-consumers: %s\n' "$*" >&2; }
die() { printf 'install-consumers: ERROR: %s\n' "$*" >&2; exit 1; }

# The environment's Python settings must not leak into the venv.
unset PYTHONHOME PYTHONPATH PYTHONSTARTUP PYTHONUSERBASE

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
NODE_SPEC=$REPO_ROOT/tests/consumers
CACHE=${SAMPLER_CONSUMERS_DIR:-$REPO_ROOT/.cache/consumers}
mkdir -p -- "$CACHE"
CACHE=$(cd -- "$CACHE" && pwd -P)
VENV=$CACHE/venv
NODE_DIR=$CACHE/node
STAMP=$CACHE/.complete

[[ -f $NODE_SPEC/package.json && -f $NODE_SPEC/package-lock.json ]] \
    || die "missing $NODE_SPEC/package.json or package-lock.json"

# One run at a time per cache folder.
exec 9>"$CACHE/.lock"
flock 9

# --------------------------------------------------------------------------------------------
# go tool pprof, from Debian's golang-go
# --------------------------------------------------------------------------------------------

pprof_works() { command -v go >/dev/null 2>&1 && go tool pprof -h >/dev/null 2>&1; }

if ! pprof_works; then
    [[ $EUID -eq 0 ]] || die "go tool pprof not available; install Debian's golang-go (apt-get install golang-go) or run as root"
    export DEBIAN_FRONTEND=noninteractive
    log "installing golang-go"
    # The package lists may be missing or stale on a fresh machine: update once if needed.
    if ! apt-get install -y -q --no-install-recommends golang-go </dev/null >&2; then
        apt-get update -q </dev/null >&2 || die "apt-get update failed"
        apt-get install -y -q --no-install-recommends golang-go </dev/null >&2 \
            || die "could not install golang-go"
    fi
    hash -r
    pprof_works || die "go tool pprof still does not run after installing golang-go"
fi

# --------------------------------------------------------------------------------------------
# Stamp: what a complete install of this script's pins looks like
# --------------------------------------------------------------------------------------------

command -v python3 >/dev/null 2>&1 || die "python3 not found (the venv is made with the machine's python3)"
command -v node >/dev/null 2>&1 || die "node not found (the machine's Node.js runs the npm consumers)"
command -v npm >/dev/null 2>&1 || die "npm not found"

node_spec_hash() { cat -- "$NODE_SPEC/package.json" "$NODE_SPEC/package-lock.json" | sha256sum | cut -d' ' -f1; }

expected_stamp() {
    printf 'format %s\n' "$STAMP_FORMAT"
    printf 'cache %s\n' "$CACHE"
    printf 'pypi gprof2dot==%s snakeviz==%s tornado==%s\n' \
        "$GPROF2DOT_VERSION" "$SNAKEVIZ_VERSION" "$TORNADO_VERSION"
    printf 'npm %s\n' "$(node_spec_hash)"
}

stamp_is_current() {
    [[ -f "$STAMP" ]] && [[ "$(cat -- "$STAMP")" == "$(expected_stamp)" ]]
}

# --------------------------------------------------------------------------------------------
# Install (only when the stamp is missing or stale)
# --------------------------------------------------------------------------------------------

install_venv() {
    log "creating $VENV with $(python3 --version 2>&1)"
    rm -rf -- "$VENV"
    python3 -m venv "$VENV" >&2 || die "python3 -m venv failed"
    log "pip install gprof2dot==$GPROF2DOT_VERSION snakeviz==$SNAKEVIZ_VERSION tornado==$TORNADO_VERSION"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input \
        "gprof2dot==$GPROF2DOT_VERSION" "snakeviz==$SNAKEVIZ_VERSION" "tornado==$TORNADO_VERSION" \
        </dev/null >&2 || die "pip install into $VENV failed"
}

install_node() {
    log "npm ci into $NODE_DIR ($(node --version), npm $(npm --version 2>/dev/null))"
    rm -rf -- "$NODE_DIR"
    mkdir -p -- "$NODE_DIR"
    cp -- "$NODE_SPEC/package.json" "$NODE_SPEC/package-lock.json" "$NODE_DIR/"
    # No package here needs an install script; none is run.
    (cd -- "$NODE_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=warn </dev/null >&2) \
        || die "npm ci in $NODE_DIR failed"
}

install_all() {
    rm -f -- "$STAMP"
    install_venv
    install_node
    expected_stamp >"$STAMP.tmp"
    mv -- "$STAMP.tmp" "$STAMP"
}

# --------------------------------------------------------------------------------------------
# Verification (every run): each consumer loads, at the pinned version. On success sets
# got_gprof2dot, got_snakeviz, node_versions; on failure sets verify_error and returns 1.
# --------------------------------------------------------------------------------------------

verify() {
    verify_error=
    if [[ ! -x "$VENV/bin/python" || ! -x "$VENV/bin/gprof2dot" ]]; then
        verify_error="venv incomplete: $VENV"
        return 1
    fi
    local py_versions
    if ! py_versions=$("$VENV/bin/python" -I -c '
import importlib.metadata as md
import gprof2dot, snakeviz.stats, pstats
print(md.version("gprof2dot"), md.version("snakeviz"))
' 2>&1); then
        verify_error="the venv does not import gprof2dot and snakeviz.stats: $py_versions"
        return 1
    fi
    read -r got_gprof2dot got_snakeviz <<<"$py_versions"
    if [[ $got_gprof2dot != "$GPROF2DOT_VERSION" || $got_snakeviz != "$SNAKEVIZ_VERSION" ]]; then
        verify_error="venv has gprof2dot $got_gprof2dot, snakeviz $got_snakeviz; want $GPROF2DOT_VERSION, $SNAKEVIZ_VERSION"
        return 1
    fi
    if ! node_versions=$(cd -- "$NODE_DIR" 2>&1 && node -e '
const fs = require("fs");
const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
const out = [];
for (const name of ["speedscope", "ajv", "@paulirish/trace_engine"]) {
  const got = JSON.parse(fs.readFileSync(`node_modules/${name}/package.json`, "utf8")).version;
  const want = lock.packages[`node_modules/${name}`].version;
  if (got !== want) throw new Error(`${name} ${got} installed, lock wants ${want}`);
  out.push(`${name} ${got}`);
}
require.resolve("ajv");
if (!fs.readdirSync("node_modules/speedscope/dist/release").some(f => /^speedscope-.*\.js$/.test(f)))
  throw new Error("speedscope bundle missing");
fs.accessSync("node_modules/speedscope/dist/release/file-format-schema.json");
fs.accessSync("node_modules/@paulirish/trace_engine/models/trace/trace.js");
console.log(out.join("\n"));
' 2>&1); then
        verify_error="node folder incomplete: $(grep -m1 'Error' <<<"$node_versions" || tail -n 1 <<<"$node_versions")"
        return 1
    fi
}

if [[ "${SAMPLER_CONSUMERS_FORCE:-0}" == 1 ]] || ! stamp_is_current; then
    install_all
    verify || die "$verify_error"
elif ! verify; then
    log "installed consumers are broken ($verify_error): reinstalling"
    install_all
    verify || die "$verify_error"
fi

go_version=$(go env GOVERSION 2>/dev/null) || die "go env GOVERSION failed"

printf 'gprof2dot %s %s\n' "$got_gprof2dot" "$VENV/bin/gprof2dot"
printf 'snakeviz %s %s\n' "$got_snakeviz" "$VENV/bin/python"
while read -r name version; do
    printf '%s %s %s\n' "$name" "$version" "$NODE_DIR/node_modules/$name"
done <<<"$node_versions"
printf 'go %s %s\n' "$go_version" "$(command -v go)"
