#!/usr/bin/env bash
# Produce the CPython layout tables in python-offsets/ from interpreter headers.
#
#   extract.sh INCLUDE_DIR [PYCONFIG_DIR]   print one table (TOML) to stdout
#   extract.sh --all                        regenerate every table whose headers
#                                           are on this machine
#   extract.sh --check                      regenerate into a temp dir and diff
#                                           against the committed tables
#   extract.sh --list                       show each table and where its
#                                           headers are (or that they are missing)
#
# INCLUDE_DIR holds Python.h and internal/; PYCONFIG_DIR holds pyconfig.h when
# it lives elsewhere (Debian keeps it in a multiarch directory).
#
# Environment:
#   CC                      compiler (default gcc)
#   PYENV_ROOT              pyenv root (default: `pyenv root`, else ~/.pyenv)
#   SAMPLER_PYTHONS_DIR     where .ci/install-pythons.sh unpacked the Debian
#                           interpreters (default <repo>/.cache/pythons)
#   SAMPLER_OFFSETS_STRICT  if 1, --check fails when a table cannot be checked
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
CC=${CC:-gcc}

# ---------------------------------------------------------------------------
# The tables and where their headers come from. This is the only place that
# says so. One line per table:
#
#   TABLE   SOURCE  VERSION
#
#   TABLE    file name without .toml: the first CPython version it applies to
#   SOURCE   pyenv  -> $PYENV_ROOT/versions/VERSION/include/pythonX.Y
#                      (pythonX.Ym for 3.6 and 3.7, built with pymalloc)
#            debian -> $SAMPLER_PYTHONS_DIR/root/usr/include/pythonVERSION,
#                      pyconfig.h from the multiarch directory beside it
#   VERSION  pyenv: the exact installed version; debian: X.Y
TABLES='
2.7.0   pyenv   2.7.18
3.6.0   pyenv   3.6.15
3.7.0   pyenv   3.7.16
3.8.0   pyenv   3.8.18
3.9.0   pyenv   3.9.18
3.10.0  pyenv   3.10.13
3.11.0  pyenv   3.11.7
3.12.0  pyenv   3.12.1
3.13.0  pyenv   3.13.0
3.14.0  debian  3.14
3.15.0  debian  3.15
'
# ---------------------------------------------------------------------------

die() { echo "extract.sh: $*" >&2; exit 2; }

pyenv_root() {
    if [[ -n ${PYENV_ROOT:-} ]]; then
        echo "$PYENV_ROOT"
    elif command -v pyenv >/dev/null 2>&1 && pyenv root 2>/dev/null; then
        :
    else
        echo "$HOME/.pyenv"
    fi
}

# has_no_internal VERSION: true for the versions whose headers have no
# internal/ directory (2.x, 3.0-3.6).
has_no_internal() {
    local major minor
    major=$(printf '%s' "$1" | cut -d. -f1)
    minor=$(printf '%s' "$1" | cut -d. -f2)
    [[ $major -lt 3 || ( $major -eq 3 && $minor -lt 7 ) ]]
}

pythons_dir() { echo "${SAMPLER_PYTHONS_DIR:-$REPO/.cache/pythons}"; }

# locate SOURCE VERSION: print "INCLUDE_DIR<TAB>PYCONFIG_DIR" and succeed, or
# print a one-line reason and fail.
locate() {
    local source=$1 version=$2 inc cfg base d minor
    case $source in
        pyenv)
            minor=$(printf '%s' "$version" | cut -d. -f1,2)
            inc=$(pyenv_root)/versions/$version/include/python$minor
            # 3.6 and 3.7 name the directory after the ABI flags.
            if [[ ! -d $inc && -d ${inc}m ]]; then inc=${inc}m; fi
            cfg=$inc
            ;;
        debian)
            base=$(pythons_dir)/root/usr/include
            inc=$base/python$version
            cfg=
            # Prefer the compiler's own multiarch directory, then any other.
            for d in "$base/$($CC -dumpmachine 2>/dev/null || true)/python$version" \
                     "$base"/*/"python$version"; do
                if [[ -f $d/pyconfig.h ]]; then cfg=$d; break; fi
            done
            if [[ -z $cfg ]]; then
                echo "no pyconfig.h under $base/*/python$version"
                return 1
            fi
            ;;
        *) die "unknown header source '$source' in TABLES" ;;
    esac
    if [[ ! -f $inc/Python.h ]]; then
        echo "no Python.h in $inc"
        return 1
    fi
    # internal/ exists (and is needed) from 3.7 on.
    if [[ ! -d $inc/internal ]] && ! has_no_internal "$version"; then
        echo "no internal/ in $inc"
        return 1
    fi
    printf '%s\t%s\n' "$inc" "$cfg"
}

# generate INCLUDE_DIR PYCONFIG_DIR: compile extract.c against them and run it.
generate() {
    local inc=$1 cfg=${2:-$1} work rc=0
    work=$(mktemp -d "${TMPDIR:-/tmp}/pyoffsets.XXXXXX")
    local -a incs=(-I"$cfg" -I"$inc")
    # Debian's include/pythonX.Y/pyconfig.h is only a wrapper that does
    # #include <MULTIARCH/pythonX.Y/pyconfig.h>; let that resolve to the tree
    # PYCONFIG_DIR belongs to rather than to the build machine's /usr/include.
    if [[ $cfg != "$inc" ]]; then
        incs+=(-I"$(cd "$cfg/../.." && pwd)")
    fi
    if ! "$CC" -std=gnu11 -O0 -w -DPy_BUILD_CORE "${incs[@]}" \
            "$HERE/extract.c" -o "$work/extract" 2>"$work/cc.log"; then
        cat "$work/cc.log" >&2
        rm -rf "$work"
        die "could not compile extract.c against $inc"
    fi
    "$work/extract" || rc=$?
    rm -rf "$work"
    [[ $rc -eq 0 ]] || die "extract failed against $inc"
}

# each_table CALLBACK: call CALLBACK TABLE SOURCE VERSION for every line.
each_table() {
    local table source version
    while read -r table source version; do
        [[ -n $table ]] || continue
        "$1" "$table" "$source" "$version"
    done <<<"$TABLES"
}

# ---------------------------------------------------------------------------

cmd_list_one() {
    local where
    if where=$(locate "$2" "$3"); then
        printf '%s.toml\t%s %s\t%s\n' "$1" "$2" "$3" "${where%%$'\t'*}"
    else
        printf '%s.toml\t%s %s\tMISSING: %s\n' "$1" "$2" "$3" "$where"
    fi
}

cmd_all_one() {
    local table=$1 where out
    if ! where=$(locate "$2" "$3"); then
        echo "skipped $table.toml: $where" >&2
        return 0
    fi
    out=$(mktemp "$HERE/.$table.toml.XXXXXX")
    if ! (generate "${where%%$'\t'*}" "${where#*$'\t'}") >"$out"; then
        rm -f "$out"
        exit 2
    fi
    chmod 644 "$out"
    mv -f "$out" "$HERE/$table.toml"
    echo "wrote python-offsets/$table.toml" >&2
}

CHECK_DIR=
CHECK_FAILED=0
CHECK_SKIPPED=0
CHECK_OK=0
cmd_check_one() {
    local table=$1 where
    if ! where=$(locate "$2" "$3"); then
        echo "not checked: $table.toml ($2 $3 headers missing: $where)"
        CHECK_SKIPPED=$((CHECK_SKIPPED + 1))
        return 0
    fi
    if ! (generate "${where%%$'\t'*}" "${where#*$'\t'}") >"$CHECK_DIR/$table.toml"; then
        echo "FAILED: could not regenerate $table.toml from $2 $3 headers"
        CHECK_FAILED=$((CHECK_FAILED + 1))
        return 0
    fi
    if [[ ! -f $HERE/$table.toml ]]; then
        echo "FAILED: python-offsets/$table.toml is not committed; run extract.sh --all"
        CHECK_FAILED=$((CHECK_FAILED + 1))
    elif diff -u --label "committed/$table.toml" --label "regenerated/$table.toml" \
            "$HERE/$table.toml" "$CHECK_DIR/$table.toml"; then
        echo "ok: $table.toml"
        CHECK_OK=$((CHECK_OK + 1))
    else
        echo "FAILED: python-offsets/$table.toml differs from its headers; run extract.sh --all"
        CHECK_FAILED=$((CHECK_FAILED + 1))
    fi
}

cmd_check() {
    local f name
    CHECK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pyoffsets-check.XXXXXX")
    trap 'rm -rf "$CHECK_DIR"' EXIT
    each_table cmd_check_one
    # A committed table that TABLES does not know about could never be checked.
    for f in "$HERE"/*.toml; do
        [[ -e $f ]] || continue
        name=$(basename "$f" .toml)
        if ! grep -Eq "^$(printf '%s' "$name" | sed 's/\./\\./g')[[:space:]]" <<<"$TABLES"; then
            echo "FAILED: python-offsets/$name.toml has no entry in TABLES in extract.sh"
            CHECK_FAILED=$((CHECK_FAILED + 1))
        fi
    done
    echo "offset tables: $CHECK_OK identical, $CHECK_FAILED failed, $CHECK_SKIPPED not checked"
    if [[ $CHECK_FAILED -ne 0 ]]; then
        return 1
    fi
    if [[ $CHECK_SKIPPED -ne 0 && ${SAMPLER_OFFSETS_STRICT:-0} == 1 ]]; then
        echo "SAMPLER_OFFSETS_STRICT=1 and some tables could not be checked"
        return 1
    fi
    return 0
}

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

case ${1:-} in
    --all)   [[ $# -eq 1 ]] || die "--all takes no argument"; each_table cmd_all_one ;;
    --check) [[ $# -eq 1 ]] || die "--check takes no argument"; cmd_check ;;
    --list)  [[ $# -eq 1 ]] || die "--list takes no argument"; each_table cmd_list_one ;;
    -h|--help) usage ;;
    ''|-*)   usage >&2; exit 2 ;;
    *)
        [[ $# -le 2 ]] || die "too many arguments"
        [[ -f $1/Python.h ]] || die "no Python.h in $1"
        generate "$1" "${2:-$1}"
        ;;
esac
