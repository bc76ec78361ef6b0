#!/usr/bin/env bash
# Issue 21's "installable from the repo" for TypeScript: `npm pack` the package, install the tarball
# into a throwaway project outside the repository, then use it as a user would: require() it from
# CommonJS, type-check the example (examples/chat.mts) against the installed typings, and run the
# compiled example (ESM) against the live sidecar, checking its output: the answer, then
# "model: <name>, cost: $<formatted>". Without TURNOUT_ADDRESS the run is skipped, unless
# TURNOUT_REQUIRE_LIVE=1.
set -euo pipefail

client=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/turnout-ts-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
npm_quiet=(--no-audit --no-fund --prefer-offline --ignore-scripts --loglevel=error)

# npm pack runs the package's prepack (tsc), so the tarball is what `npm publish` would upload.
tarball=$(cd "$client" && npm pack --pack-destination "$work" --silent | tail -n 1)
mkdir "$work/app"
cd "$work/app"
printf '{ "name": "turnout-consumer", "private": true, "type": "module" }\n' >package.json
if ! got=$(npm install "${npm_quiet[@]}" "$work/$tarball" 2>&1); then
  printf 'clients/typescript: npm install %s failed:\n%s\n' "$tarball" "$got" >&2
  exit 1
fi
node -e '
  const { formatUsd, TurnoutClient, TurnoutError, VERSION } = require("@turnout/client");
  if (formatUsd(1500000000n) !== "$1.50" || VERSION !== "1.0.0" || typeof TurnoutClient !== "function") process.exit(1);
  if (!(new TurnoutError({ code: 5, message: "x" }) instanceof Error)) process.exit(1);
'
cp "$client/examples/chat.mts" .
"$client/node_modules/.bin/tsc" --strict --target es2022 --module nodenext --skipLibCheck \
  --typeRoots "$client/node_modules/@types" --types node chat.mts
echo "clients/typescript: a project outside the repository installed $tarball and compiled the example against it"

bash "$client/../scripts/run-example.sh" typescript node chat.mjs
