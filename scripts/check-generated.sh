#!/usr/bin/env bash
# check-generated.sh WHAT TEMPLATE COMPARE FIX: fail when committed generated code is stale.
#
# Regenerates TEMPLATE (a buf.gen.yaml whose plugins all write to one `out`) into a temporary
# folder, with `buf generate` run from the repository root as `make proto` / `make clients` run it,
# and compares COMPARE (the committed folder: that `out` or a folder inside it) with its fresh twin.
# The caller puts the template's plugins on PATH. BUF overrides the buf binary (default: the
# repository's pinned one, tools/buf). Used by `make check-proto` and every client's
# `make check-generated`.
set -euo pipefail
what=$1 template=$2 compare=$3 fix=$4
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() { echo "check-generated: $*" >&2; exit 2; }
out=$(sed -n 's/^ *out: *//p' "$template" | sort -u)
[ -n "$out" ] && [ "$(wc -l <<<"$out")" = 1 ] || die "$template: every plugin must write to one 'out'"
case "$compare" in "$out" | "$out"/*) ;; *) die "$compare is not inside $template's out ($out)" ;; esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s#^\( *out: *\)$out\$#\1$tmp/out#" "$template" >"$tmp/buf.gen.yaml"
# Never regenerate over the committed code: that would compare it with itself.
grep -q "out: $tmp/out\$" "$tmp/buf.gen.yaml" || die "$template: could not point 'out' at a temporary folder"
"${BUF:-tools/buf/node_modules/.bin/buf}" generate --template "$tmp/buf.gen.yaml"

if diff -rq -x __pycache__ "$tmp/out${compare#"$out"}" "$compare"; then
  echo "$what: generated code is up to date"
else
  echo "$what: generated code is stale; run '$fix' and commit the result"
  exit 1
fi
