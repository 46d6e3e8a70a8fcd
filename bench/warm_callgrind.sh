#!/bin/sh
# Instructions safex itself executes on a warm launch, up to its exec of
# `node` (or the venv's python): a number that is stable on a noisy machine,
# unlike wall time.
#
#   bench/warm_callgrind.sh [SPEC]            # default: server-memory, npx
#   SAFEX_KIND=uvx bench/warm_callgrind.sh mcp-server-time==2026.10.19
#
# The cache and lockfile: SAFEX_CACHE_DIR and SAFEX_LOCKFILE if set (they
# must already hold SPEC, warm); otherwise a temporary pair is filled by one
# launch first (npm: the registry from `npm config get registry` unless
# SAFEX_NPM_REGISTRY is set; uvx: SAFEX_PYPI_INDEX must be set). The measured
# launch runs with SAFEX_OFFLINE=1, so it cannot touch the network.
#
# valgrind runs with --trace-children=no, so node (or python) runs natively
# after safex's execve and is not counted; an exec'd-away process never
# reaches valgrind's exit, so callgrind is told to dump its counts on entry
# to exec (--dump-before): the total is safex's own work (start-up,
# lockfile, marker) up to the exec.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
safex=${SAFEX_BIN:-$here/../target/release/safex}
kind=${SAFEX_KIND:-npx}
if [ "$kind" = npx ]; then
    spec=${1:-@modelcontextprotocol/server-memory@2026.8.31}
    set -- npx -y "$spec"
else
    spec=${1:?a PyPI spec, e.g. mcp-server-time==2026.10.19}
    set -- uvx "$spec"
fi
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }
[ -x "$safex" ] || { echo "no safex at $safex: cargo build --release" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/safex-callgrind-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
export SAFEX_CONFIG="$work/none.toml" SAFEX_AUDIT_LOG="$work/audit.log"
if [ -z "${SAFEX_CACHE_DIR:-}" ] || [ -z "${SAFEX_LOCKFILE:-}" ]; then
    export SAFEX_CACHE_DIR="$work/cache" SAFEX_LOCKFILE="$work/safex.lock"
    if [ "$kind" = npx ] && [ -z "${SAFEX_NPM_REGISTRY:-}" ]; then
        SAFEX_NPM_REGISTRY=$(npm config get registry 2>/dev/null)
        export SAFEX_NPM_REGISTRY
    fi
    echo "filling a temporary cache with $spec ..." >&2
    # The server exits when its stdin closes.
    "$safex" -q "$@" </dev/null >/dev/null 2>"$work/fill.err" || {
        # A server that exits non-zero on EOF is fine as long as the tree is there.
        [ -d "$SAFEX_CACHE_DIR/v1" ] || { cat "$work/fill.err" >&2; exit 1; }
    }
fi

out="$work/callgrind.out"
SAFEX_OFFLINE=1 valgrind --tool=callgrind --trace-children=no --callgrind-out-file="$out" \
    --dump-before='*execv*' --dump-instr=no \
    "$safex" -q "$@" </dev/null >/dev/null 2>"$work/valgrind.err" || true
# The dump on exec is "$out.1" (a launch that failed before exec dumps "$out" at exit).
[ -s "$out.1" ] && out="$out.1"
if [ ! -s "$out" ]; then
    cat "$work/valgrind.err" >&2
    exit 1
fi
total=$(sed -n 's/^summary: *//p; s/^totals: *//p' "$out" | head -n 1)
echo "safex warm launch of $spec, until exec: $total instructions (Ir)"
if [ -n "${CALLGRIND_TOP:-}" ] && command -v callgrind_annotate >/dev/null; then
    callgrind_annotate --inclusive=yes "$out" 2>/dev/null | head -n "$CALLGRIND_TOP"
fi
if [ -n "${CALLGRIND_KEEP:-}" ]; then
    cp "$out" "$CALLGRIND_KEEP"
    echo "callgrind output: $CALLGRIND_KEEP" >&2
fi
