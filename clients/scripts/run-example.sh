#!/usr/bin/env bash
# run-example.sh CLIENT COMMAND...: run a client's example, built outside the repository by that
# client's scripts/test-consumer.sh, against the live sidecar, and check what it printed: a
# non-empty answer, then "model: <name>, cost: $0.<digits>". Without TURNOUT_ADDRESS the run is
# skipped (a failure when TURNOUT_REQUIRE_LIVE=1, as `make clients-test` sets).
set -euo pipefail
client=$1
shift
if [ -z "${TURNOUT_ADDRESS:-}" ]; then
  why="no sidecar: TURNOUT_ADDRESS is unset (run 'make clients-test' from the repository root)"
  if [ "${TURNOUT_REQUIRE_LIVE:-}" = 1 ]; then echo "clients/$client: $why" >&2; exit 1; fi
  echo "clients/$client: the example's run is skipped: $why"
  exit 0
fi
output=$("$@")
answer=$(sed '$d' <<<"$output")
summary=$(tail -n 1 <<<"$output")
if [ -z "${answer//[[:space:]]/}" ] || ! [[ $summary =~ ^model:\ [A-Za-z0-9._-]+,\ cost:\ \$0\.[0-9]{2,9}$ ]]; then
  printf 'clients/%s: the example printed something unexpected:\n%s\n' "$client" "$output" >&2
  exit 1
fi
echo "clients/$client: the installed example answered through $TURNOUT_ADDRESS: $summary"
