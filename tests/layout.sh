#!/usr/bin/env bash
# Layout rules of shared/src (issue 13) that hold today; each prints what breaks it.
set -euo pipefail
cd "$(dirname "$0")/.."
failed=0
fail() { echo "layout: $*" >&2; failed=1; }

# The storage fault injector is for tests: only sluice-local compiles it in.
for function in sluice-ingest sluice-playback sluice-control; do
  if cargo tree -p "$function" -e features --prefix none | grep -q 'sluice feature "faults"'; then
    fail "$function is built with the fault injector (sluice feature \"faults\")"
  fi
done
cargo tree -p sluice-local -e features --prefix none | grep -q 'sluice feature "faults"' ||
  fail "sluice-local is built without the fault injector (--faults would not exist)"

exit "$failed"
