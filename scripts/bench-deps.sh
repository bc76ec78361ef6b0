#!/usr/bin/env bash
# What `make bench` needs beyond the Python environment:
#   Portkey's gateway (tools/portkey, pinned by its package-lock.json) for the proxy comparison,
#   installed with npm ci when npm is there; without it that target is skipped, with the reason.
#   valgrind, for the instruction counts (benchmarks/instructions_bench.py). Installed with apt-get
#   when missing and we are root; otherwise that section is skipped, with the reason.
# The rest of the benchmarks run either way.
set -euo pipefail
cd "$(dirname "$0")/.."

note() { echo "bench-deps: $*" >&2; }

PORTKEY_STAMP=tools/portkey/node_modules/.installed
if [[ -f "$PORTKEY_STAMP" && "$PORTKEY_STAMP" -nt tools/portkey/package-lock.json ]]; then
    :
elif ! command -v npm >/dev/null 2>&1; then
    note "npm is not on PATH; Portkey's gateway is left out of the proxy comparison"
elif npm ci --prefix tools/portkey --no-audit --no-fund --loglevel=error >/dev/null; then
    touch "$PORTKEY_STAMP"
else
    note "npm ci in tools/portkey failed; Portkey's gateway is left out of the proxy comparison"
fi

if command -v valgrind >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [[ "$(id -u)" != 0 ]]; then
    note "valgrind is not on PATH; install it (Debian/Ubuntu: sudo apt-get install valgrind) for the" \
        "instruction counts; that section will be skipped"
    exit 0
fi
start=$SECONDS
if DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null; then
    note "valgrind: installed in $((SECONDS - start)) s"
else
    note "valgrind: apt-get install failed (network to the Debian mirrors?); that section will be skipped"
fi
