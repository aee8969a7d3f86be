#!/usr/bin/env bash
# Installs extra CPython interpreters (3.13, 3.14, 3.15) from Debian's unstable suite into a
# private cache folder, together with their own glibc, without touching the machine's apt setup.
#
#   .ci/install-pythons.sh
#
# Result, under CACHE = ${SAMPLER_PYTHONS_DIR:-<repo root>/.cache/pythons}:
#   CACHE/root/                      every package unpacked with `dpkg-deb -x`
#   CACHE/root/usr/bin/python3.X     the interpreter, patched (patchelf) to use CACHE/root's
#                                    ld.so and libraries; sys.prefix is CACHE/root/usr
#   CACHE/root/usr/include/python3.X/                     headers (internal/ included)
#   CACHE/root/usr/include/x86_64-linux-gnu/python3.X/    pyconfig.h
#   CACHE/bin/python3.X              symlink to the patched binary (so /proc/PID/exe of a launched
#                                    process is the Python executable itself, never a wrapper)
#   CACHE/.complete                  stamp: written last, lists the package versions
#
# stdout: one line per interpreter, `python3.X -> CACHE/bin/python3.X (VERSION)`; all else goes
# to stderr. Idempotent: when the stamp is there, a run only verifies the interpreters.
# The binaries hold absolute paths into CACHE/root: moving the folder forces a reinstall.
#
# Environment:
#   SAMPLER_PYTHONS_DIR    cache folder (default: <repo root>/.cache/pythons)
#   SAMPLER_DEBIAN_MIRROR  Debian mirror URI; default: the one this machine's apt already uses
#                          (first `URIs:` of /etc/apt/sources.list.d/debian.sources, else the
#                          first `deb` line of /etc/apt/sources.list)
#   SAMPLER_PYTHONS_FORCE  set to 1 to reinstall even if the stamp is present
set -euo pipefail

readonly VERSIONS=(3.13 3.14 3.15)
readonly MULTIARCH=x86_64-linux-gnu
readonly STAMP_FORMAT=1

# Runtime packages (the interpreters, their stdlib and the libraries they load), plus the -dev
# packages for the headers.
# libgcc-s1: python3.15 has libgcc_s.so.1 as a direct DT_NEEDED (without it in the private root
# the machine's own copy gets loaded).
PACKAGES=(
    libc6 libgcc-s1 libexpat1 zlib1g libssl3t64 libzstd1 libffi8 libbz2-1.0 liblzma5 libsqlite3-0
    libmpdec4 libncursesw6 libtinfo6 libreadline8t64 libuuid1
)
for v in "${VERSIONS[@]}"; do
    PACKAGES+=("python$v-minimal" "libpython$v-minimal" "libpython$v-stdlib" "libpython$v-dev")
done
readonly PACKAGES

log() { printf 'install-pythons: %s\n' "$*" >&2; }
die() { printf 'install-pythons: ERROR: %s\n' "$*" >&2; exit 1; }

# A Python in the environment's PYTHONHOME/PYTHONPATH must not leak into these interpreters.
unset PYTHONHOME PYTHONPATH PYTHONSTARTUP PYTHONUSERBASE

[[ "$(uname -m)" == x86_64 ]] || die "only x86_64 is supported (this machine: $(uname -m))"

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
CACHE=${SAMPLER_PYTHONS_DIR:-$REPO_ROOT/.cache/pythons}
mkdir -p -- "$CACHE"
CACHE=$(cd -- "$CACHE" && pwd -P)   # physical path: it is written into the binaries
ROOT=$CACHE/root
STAMP=$CACHE/.complete

# One run at a time per cache folder (parallel CI jobs, test harnesses).
exec 9>"$CACHE/.lock"
flock 9

# --------------------------------------------------------------------------------------------
# Verification (used by both the warm and the cold path)
# --------------------------------------------------------------------------------------------

# Run inside each interpreter. argv[1] = ROOT. Prints the version on success.
read -r -d '' CHECK_PY <<'EOF' || true
import asyncio, threading, ctypes, sqlite3, sys, os
root = sys.argv[1]
def inside(p):
    return isinstance(p, str) and os.path.realpath(p).startswith(root + "/")
errors = []
exe = os.readlink("/proc/self/exe")
if not inside(exe):
    errors.append(f"/proc/self/exe is {exe}, not inside {root}")
for name, p in (("sys.prefix", sys.prefix), ("sys.exec_prefix", sys.exec_prefix),
                ("os.__file__", os.__file__), ("asyncio.__file__", asyncio.__file__)):
    if not inside(p):
        errors.append(f"{name} = {p} is not inside {root}")
if sqlite3.connect(":memory:").execute("select 41 + 1").fetchone() != (42,):
    errors.append("sqlite3 does not work")
if ctypes.CDLL(None).getpid() != os.getpid():
    errors.append("ctypes does not work")
threading.Thread(target=lambda: None).start()
asyncio.run(asyncio.sleep(0))
# Optional extension modules: their shared libraries must come from ROOT too.
for mod in ("ssl", "hashlib", "zlib", "bz2", "lzma", "decimal", "uuid", "readline", "curses"):
    try:
        __import__(mod)
    except Exception as e:
        print(f"warning: python{sys.version_info[0]}.{sys.version_info[1]}: import {mod}: {e}",
              file=sys.stderr)
foreign = {m.__file__ for m in list(sys.modules.values())
           if isinstance(getattr(m, "__file__", None), str) and not inside(m.__file__)}
with open("/proc/self/maps") as maps:
    for line in maps:
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/") and ".so" in parts[5]:
            p = parts[5].strip()
            if not inside(p):
                foreign.add(p)
if foreign:
    errors.append("modules or libraries loaded from outside the private root: " + ", ".join(sorted(foreign)))
if errors:
    sys.exit("; ".join(errors))
print(sys.version.split()[0])
EOF

# verify VERSION -> prints the interpreter's full version on stdout; non-zero on any problem
# (with the reason on stderr).
verify_one() {
    local v=$1 entry="$CACHE/bin/python$1" out
    if [[ ! -L "$entry" ]]; then
        echo "$entry is missing or not a symlink" >&2
        return 1
    fi
    if [[ "$(readlink -f -- "$entry")" != "$ROOT/usr/bin/python$v" ]]; then
        echo "$entry does not resolve to $ROOT/usr/bin/python$v" >&2
        return 1
    fi
    local inc=$ROOT/usr/include/python$v
    local f
    for f in "$inc/Python.h" "$inc/internal/pycore_frame.h" \
             "$ROOT/usr/include/$MULTIARCH/python$v/pyconfig.h"; do
        [[ -f "$f" ]] || { echo "header $f is missing" >&2; return 1; }
    done
    if ! out=$(cd / && "$entry" -c "$CHECK_PY" "$ROOT" </dev/null); then
        echo "python$v failed its self-check (import asyncio, threading, ctypes, sqlite3)" >&2
        return 1
    fi
    [[ "$out" == "$v".* ]] || { echo "python$v reports version '$out'" >&2; return 1; }
    printf '%s\n' "$out"
}

# verify_all -> prints the summary lines; non-zero if any interpreter is broken.
verify_all() {
    local v ver lines=() status=0
    for v in "${VERSIONS[@]}"; do
        if ver=$(verify_one "$v"); then
            lines+=("python$v -> $CACHE/bin/python$v ($ver)")
        else
            log "python$v: verification FAILED"
            status=1
        fi
    done
    ((status == 0)) || return 1
    printf '%s\n' "${lines[@]}"
}

stamp_is_current() {
    [[ -f "$STAMP" ]] || return 1
    [[ "$(sed -n 1p "$STAMP")" == "format $STAMP_FORMAT" ]] || return 1
    [[ "$(sed -n 2p "$STAMP")" == "root $ROOT" ]] || return 1
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        grep -q "^package $pkg " "$STAMP" || return 1
    done
}

# --------------------------------------------------------------------------------------------
# Warm path
# --------------------------------------------------------------------------------------------
if [[ "${SAMPLER_PYTHONS_FORCE:-0}" != 1 ]] && stamp_is_current; then
    if summary=$(verify_all); then
        printf '%s\n' "$summary"
        exit 0
    fi
    log "the installation in $CACHE is marked complete but fails verification: reinstalling"
fi

# --------------------------------------------------------------------------------------------
# Cold path
# --------------------------------------------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive

ensure_patchelf() {
    command -v patchelf >/dev/null 2>&1 && return 0
    [[ $EUID -eq 0 ]] || die "patchelf is not installed; install it (apt-get install patchelf) or run as root"
    log "installing patchelf"
    if ! apt-cache show patchelf >/dev/null 2>&1 \
        || ! apt-get install -y -q --no-install-recommends patchelf </dev/null >&2; then
        apt-get update -q </dev/null >&2 || die "apt-get update failed"
        apt-get install -y -q --no-install-recommends patchelf </dev/null >&2 \
            || die "could not install patchelf"
    fi
    command -v patchelf >/dev/null 2>&1 || die "patchelf still not found after installing it"
}

# The Debian mirror this machine already uses (never hard-coded in the repo).
find_mirror() {
    local uri=${SAMPLER_DEBIAN_MIRROR:-}
    if [[ -z "$uri" && -f /etc/apt/sources.list.d/debian.sources ]]; then
        uri=$(awk '/^[[:space:]]*URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
    fi
    if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
        uri=$(sed -E -n '/^[[:space:]]*deb[[:space:]]/ {
                  s/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p; q }' \
                  /etc/apt/sources.list)
    fi
    [[ -n "$uri" ]] || die "no Debian mirror found in /etc/apt/sources.list.d/debian.sources" \
        "or /etc/apt/sources.list; set SAMPLER_DEBIAN_MIRROR"
    printf '%s\n' "${uri%/}"
}

ensure_patchelf
MIRROR=$(find_mirror)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sampler-pythons.XXXXXX")
STAGE=$CACHE/.root.new.$$
OLD=$CACHE/.root.old.$$
cleanup() { rm -rf -- "$WORK" "$STAGE" "$OLD"; }
trap cleanup EXIT
# Leftovers of an interrupted run (we hold the lock: no other run is using them).
rm -rf -- "$CACHE"/.root.new.* "$CACHE"/.root.old.*

# Private apt configuration. APT_CONFIG is read before the configuration parts, so it can point
# Dir::Etc::parts at a private copy of the machine's apt.conf.d (keeping e.g. proxy settings)
# with a last file that drops the update/dpkg hooks (they would act on the machine's own apt
# folders) and the index targets we do not need.
mkdir -p "$WORK/apt.conf.d" "$WORK/state/lists/partial" "$WORK/cache/archives/partial" \
         "$WORK/debs" "$WORK/log"
if [[ -d /etc/apt/apt.conf.d ]]; then
    find /etc/apt/apt.conf.d -maxdepth 1 -type f -exec cp -t "$WORK/apt.conf.d" {} +
fi
cat >"$WORK/apt.conf.d/zzzz-sampler-private" <<'EOF'
#clear APT::Update::Pre-Invoke;
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
#clear DPkg::Pre-Invoke;
#clear DPkg::Post-Invoke;
#clear DPkg::Pre-Install-Pkgs;
#clear Acquire::IndexTargets::deb::DEP-11;
#clear Acquire::IndexTargets::deb::DEP-11-icons;
#clear Acquire::IndexTargets::deb::DEP-11-icons-small;
#clear Acquire::IndexTargets::deb::DEP-11-icons-large;
#clear Acquire::IndexTargets::deb::DEP-11-icons-hidpi;
#clear Acquire::IndexTargets::deb::Contents-deb;
#clear Acquire::IndexTargets::deb::CNF;
Acquire::Languages "none";
Acquire::Check-Valid-Until "false";
APT::Sandbox::User "root";
EOF
cat >"$WORK/apt.conf" <<EOF
Dir::Etc::parts "$WORK/apt.conf.d";
Dir::Etc::main "/dev/null";
Dir::Etc::sourcelist "$WORK/sources.list";
Dir::Etc::sourceparts "/dev/null";
Dir::Etc::preferences "/dev/null";
Dir::Etc::preferencesparts "/dev/null";
Dir::State "$WORK/state";
Dir::State::Lists "$WORK/state/lists";
Dir::State::status "/dev/null";
Dir::Cache "$WORK/cache";
Dir::Log "$WORK/log";
EOF
printf 'deb [trusted=yes] %s sid main\n' "$MIRROR" >"$WORK/sources.list"

apt_private() { APT_CONFIG="$WORK/apt.conf" apt-get -q "$@" </dev/null; }

log "reading the unstable (sid) package index"
# apt-get update only warns when an index cannot be fetched: Error-Mode makes it fail (apt >= 2.1),
# and the check for a Packages index covers older versions.
apt_private -o APT::Update::Error-Mode=any update >&2 \
    || die "apt-get update of the private unstable (sid) sources at $MIRROR failed"
compgen -G "$WORK/state/lists/*_dists_sid_main_binary-amd64_Packages*" >/dev/null \
    || die "no sid package index could be fetched from $MIRROR"

log "downloading ${#PACKAGES[@]} packages"
(cd "$WORK/debs" && apt_private download "${PACKAGES[@]}") >&2 \
    || die "apt-get download failed (a package may have been renamed in sid): ${PACKAGES[*]}"

# Unpack everything into a staging folder next to the final one (same file system: atomic mv).
rm -rf -- "$STAGE"
mkdir -p -- "$STAGE"
declare -A PKG_VERSION=()
for deb in "$WORK"/debs/*.deb; do
    [[ -e "$deb" ]] || die "no .deb was downloaded"
    pkg=$(dpkg-deb -f "$deb" Package)
    PKG_VERSION[$pkg]=$(dpkg-deb -f "$deb" Version)
    dpkg-deb -x "$deb" "$STAGE" || die "dpkg-deb -x $deb failed"
done
for pkg in "${PACKAGES[@]}"; do
    [[ -n "${PKG_VERSION[$pkg]:-}" ]] || die "package $pkg was not downloaded"
done

# The static libpython archives of the -dev packages (~80 MB) and their libpython3.X.so links
# (dangling: the shared library package is not installed) are of no use here: only the headers
# are wanted.
find "$STAGE" \( -name 'libpython3*.a' -o \( -name 'libpython3*.so' -xtype l \) \) -delete

# Absolute symlinks (e.g. usr/lib/python3.X/sitecustomize.py -> /etc/python3.X/sitecustomize.py)
# would reach into the machine's own files: point them into the private root instead, or drop
# them when the target is not part of it.
while IFS= read -r -d '' link; do
    target=$(readlink -- "$link")
    if [[ -e "$STAGE$target" ]]; then
        ln -sfn -- "$(realpath -s --relative-to="$(dirname -- "$link")" -- "$STAGE$target")" "$link"
    else
        rm -f -- "$link"
    fi
done < <(find "$STAGE" -type l -lname '/*' -print0)

# The dynamic loader: a regular file (symlinks such as /lib64/ld-linux-x86-64.so.2 may be
# absolute and would point at the machine's own loader).
LDSO_REL=
for cand in usr/lib/$MULTIARCH/ld-linux-x86-64.so.2 lib/$MULTIARCH/ld-linux-x86-64.so.2 \
            usr/lib64/ld-linux-x86-64.so.2 lib64/ld-linux-x86-64.so.2; do
    if [[ -f "$STAGE/$cand" && ! -L "$STAGE/$cand" ]]; then
        LDSO_REL=$cand
        break
    fi
done
[[ -n "$LDSO_REL" ]] || die "no ld-linux-x86-64.so.2 in the unpacked libc6"

# Patch the interpreters in place: they are private copies extracted from the .debs, and keeping
# their location (ROOT/usr/bin) and name (python3.X) means Python finds its standard library
# (sys.prefix = ROOT/usr) and tools that look at the executable's name see python3.X.
# --force-rpath writes DT_RPATH (not DT_RUNPATH): the executable's DT_RPATH is also searched for
# the dependencies of dlopen()ed extension modules (e.g. _ssl -> libssl.so.3), which must come
# from ROOT and not from the machine's older libraries.
RPATH="$ROOT/usr/lib/$MULTIARCH:$ROOT/lib/$MULTIARCH"
for v in "${VERSIONS[@]}"; do
    bin=$STAGE/usr/bin/python$v
    [[ -f "$bin" && ! -L "$bin" ]] || die "$bin is missing from python$v-minimal"
    patchelf --set-interpreter "$ROOT/$LDSO_REL" --force-rpath --set-rpath "$RPATH" "$bin" \
        || die "patchelf failed on $bin"
done

# Swap the new tree in. The stamp goes away first and comes back only after verification, so an
# interrupted or failed run never leaves a tree that looks complete.
rm -f -- "$STAMP"
if [[ -e "$ROOT" ]]; then
    mv -- "$ROOT" "$OLD"
fi
mv -- "$STAGE" "$ROOT"
rm -rf -- "$OLD"
mkdir -p -- "$CACHE/bin"
for v in "${VERSIONS[@]}"; do
    ln -sfn -- "../root/usr/bin/python$v" "$CACHE/bin/python$v"
done

summary=$(verify_all) || die "the freshly installed interpreters fail verification (see above)"

{
    echo "format $STAMP_FORMAT"
    echo "root $ROOT"
    echo "loader $ROOT/$LDSO_REL"
    for pkg in "${PACKAGES[@]}"; do
        echo "package $pkg ${PKG_VERSION[$pkg]}"
    done
} >"$STAMP.tmp"
mv -- "$STAMP.tmp" "$STAMP"

for v in "${VERSIONS[@]}"; do
    log "python$v headers: $ROOT/usr/include/python$v (pyconfig.h: $ROOT/usr/include/$MULTIARCH/python$v)"
done
printf '%s\n' "$summary"
