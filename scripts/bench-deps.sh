#!/usr/bin/env bash
# What `make bench` needs beyond the Python environment: valgrind, for the instruction counts
# (benchmarks/instructions_bench.py). Installed with apt-get when missing and we are root;
# otherwise that section is skipped, with the reason, and the rest of the benchmarks run.
set -euo pipefail

note() { echo "bench-deps: $*" >&2; }

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
