#!/usr/bin/env bash
# Build/install the real Jaeger, Prometheus and Redis that the integration tests run against.
#
#   Jaeger v2: built with the Go toolchain from the module proxy, pinned by tools/jaeger/go.mod and
#   go.sum, into ${TURNOUT_TOOLS_CACHE:-$HOME/.cache/turnout-tools}/jaeger-<version>/jaeger (outside
#   the clone, so it survives between runs where the machine keeps $HOME). Skipped when that binary
#   already runs.
#   Prometheus and Redis: the Debian packages `prometheus` and `redis-server` (only the binaries are
#   used; the tests start their own instances on free loopback ports), installed with apt-get when
#   the binary is not on PATH and we are root.
#
# Idempotent and fast when everything is already there. A missing tool is a note, not an error, so
# `make test` still works on a laptop without Go or apt (the integration tests then skip, saying
# why) -- except in CI (CI=true), where this script and those tests fail instead.
set -uo pipefail
CI="${CI:-}"
cd "$(dirname "$0")/.."

CACHE="${TURNOUT_TOOLS_CACHE:-$HOME/.cache/turnout-tools}"
JAEGER_VERSION="$(awk '$1 == "github.com/jaegertracing/jaeger" { print $2; exit }' tools/jaeger/go.mod)"
JAEGER_BIN="$CACHE/jaeger-$JAEGER_VERSION/jaeger"
missing=()

note() { echo "test-deps: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

jaeger_runs() { [[ -x "$1" ]] && "$1" version >/dev/null 2>&1; }

find_go() {
    if command -v go >/dev/null 2>&1; then
        command -v go
    elif [[ -x /usr/local/go/bin/go ]]; then
        echo /usr/local/go/bin/go
    else
        return 1
    fi
}

# --- Jaeger -----------------------------------------------------------------------------------------
if [[ -n "${TURNOUT_JAEGER_BIN:-}" ]]; then
    JAEGER_BIN="$TURNOUT_JAEGER_BIN"
    jaeger_runs "$JAEGER_BIN" || { note "TURNOUT_JAEGER_BIN=$JAEGER_BIN does not run"; missing+=(jaeger); }
elif jaeger_runs "$JAEGER_BIN"; then
    note "jaeger $JAEGER_VERSION: cached at $JAEGER_BIN"
elif ! GO="$(find_go)"; then
    note "jaeger $JAEGER_VERSION: no Go toolchain on PATH (https://go.dev/dl/); the Jaeger tests will skip"
    missing+=(jaeger)
else
    note "jaeger $JAEGER_VERSION: building with $("$GO" version) (a cold build takes several minutes)..."
    start="$(now)"
    mkdir -p "$(dirname "$JAEGER_BIN")"
    tmp="$JAEGER_BIN.tmp.$$"
    # -mod=readonly: go.mod/go.sum are the pin; a mismatch fails rather than silently re-resolving.
    if (cd tools/jaeger && "$GO" build -mod=readonly -trimpath -buildvcs=false -o "$tmp" \
        github.com/jaegertracing/jaeger/cmd/jaeger) && jaeger_runs "$tmp"; then
        mv -f "$tmp" "$JAEGER_BIN"
        note "jaeger $JAEGER_VERSION: built in $(since "$start") -> $JAEGER_BIN"
    else
        rm -f "$tmp"
        note "jaeger $JAEGER_VERSION: build failed after $(since "$start") (network to the Go module proxy?)"
        missing+=(jaeger)
    fi
fi

# --- Prometheus and Redis (Debian packages) ---------------------------------------------------------
# Keep apt from starting the packaged services (and anything else) while we install.
apt_install() {  # apt_install PACKAGE SERVICE
    local policy=/usr/sbin/policy-rc.d made_policy=""
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
    fi
    local start ok=0
    start="$(now)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null ||
        ok=1
    [[ -n "$made_policy" ]] && rm -f "$policy"
    # Belt and braces: a systemd machine without policy-rc.d honoured would have started the service.
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now "$2" >/dev/null 2>&1 || true
    fi
    note "$1: apt-get install took $(since "$start")"
    return $ok
}

# find_or_install NAME BINARY PACKAGE SERVICE OVERRIDE_VAR HINT: sets the variable named by
# OVERRIDE_VAR's value (e.g. PROMETHEUS_BIN) to the binary's path, or adds NAME to `missing`.
find_or_install() {
    local name="$1" binary="$2" package="$3" service="$4" override="$5" hint="$6" path
    if [[ -n "${!override:-}" ]]; then
        path="${!override}"
        [[ -x "$path" ]] || { note "$override=$path is not executable"; missing+=("$name"); }
    elif path="$(command -v "$binary")"; then
        note "$name: $path"
    elif ! command -v apt-get >/dev/null 2>&1 || [[ "$(id -u)" != 0 ]]; then
        note "$name: not on PATH; install it (Debian/Ubuntu: sudo apt-get install $package;" \
            "macOS: brew install $hint) or set $override; the $name tests will skip"
        missing+=("$name")
    elif apt_install "$package" "$service" && path="$(command -v "$binary")"; then
        note "$name: installed $path"
    else
        note "$name: apt-get install $package failed (network to the Debian mirrors?)"
        missing+=("$name")
    fi
    printf -v "${override#TURNOUT_}" '%s' "${path:-}"
}

find_or_install prometheus prometheus prometheus prometheus TURNOUT_PROMETHEUS_BIN prometheus
find_or_install redis redis-server redis-server redis-server TURNOUT_REDIS_BIN redis

# --- Report -----------------------------------------------------------------------------------------
# The tests find the binaries the same way (tests/integration/services.py); this file is informative.
mkdir -p "$CACHE" 2>/dev/null &&
    printf 'TURNOUT_JAEGER_BIN=%s\nTURNOUT_PROMETHEUS_BIN=%s\nTURNOUT_REDIS_BIN=%s\n' \
        "$JAEGER_BIN" "${PROMETHEUS_BIN:-}" "${REDIS_BIN:-}" \
        >"$CACHE/test-deps.env" 2>/dev/null

# shellcheck source=scripts/missing-tools.sh
source scripts/missing-tools.sh
exit_for_missing "their integration tests will skip"
