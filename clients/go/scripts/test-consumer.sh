#!/usr/bin/env bash
# Issue 21's done-criterion for Go: a Go user `go get`s the module path router.proto names and calls
# Generate in about ten lines. A throwaway module outside the repository points the path at this
# directory with a `replace` (the module is not published at its path yet), `go get`s it, builds
# example/main.go as its own main package and runs it against the live sidecar, checking the output:
# the answer, then "model: <name>, cost: $<formatted>". Without TURNOUT_ADDRESS the run (not the
# build) is skipped, unless TURNOUT_REQUIRE_LIVE=1.
set -euo pipefail

module=github.com/turnout-router/turnout/clients/go
version=v1.0.0 # the release (tag clients/go/v1.0.0); naming it spares a proxy lookup of "latest"
client=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/turnout-go-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=mod"

go mod init example.com/chat >/dev/null 2>&1
go mod edit -replace "$module=$client"
if ! got=$(go get "$module@$version" 2>&1); then
  printf 'clients/go: go get %s failed:\n%s\n' "$module@$version" "$got" >&2
  exit 1
fi
cp "$client/example/main.go" .
go build -o chat .
echo "clients/go: a module outside the repository built the example against $module"

bash "$client/../scripts/run-example.sh" go ./chat
