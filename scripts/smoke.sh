#!/usr/bin/env bash
# smoke.sh LKC_BINARY: a quick check that an lkc build works at all: it
# prints its version and runs one busybox container to completion, in a
# state root and bundle of its own that it removes. scripts/test.sh runs it
# on the builds the integration suite does not test (make lkc-pie).
set -euo pipefail
lkc=$(realpath "${1:?usage: smoke.sh LKC_BINARY}")
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$(mktemp -d /tmp/lkc-smoke.XXXXXX)
id=smoke-$$
trap '"$lkc" --root "$dir/state" delete -f "$id" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
fail() {
  echo "smoke: $lkc: $*" >&2
  exit 1
}
"$lkc" --version | grep -q '^lkc version ' || fail "--version printed no version"
"$repo/scripts/mkrootfs.sh" "$dir"
"$lkc" spec --bundle "$dir"
sed -i -e 's/"terminal": true/"terminal": false/' \
  -e 's/^\([[:space:]]*\)"sh"$/\1"echo", "smoke ok"/' "$dir/config.json"
out=$(timeout 30 "$lkc" --root "$dir/state" run --bundle "$dir" "$id" </dev/null) ||
  fail "run exited with status $?"
[ "$out" = "smoke ok" ] || fail "run printed \"$out\", want \"smoke ok\""
