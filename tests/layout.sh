#!/usr/bin/env bash
# Layout rules of shared/src (issue 13) that hold today; each prints what breaks it.
set -euo pipefail
cd "$(dirname "$0")/.."
failed=0
fail() { echo "layout: $*" >&2; failed=1; }

# The storage fault injector is for tests: only sluice-local compiles it in.
for function in sluice-ingest sluice-playback sluice-control sluice-authorizer sluice-staged; do
  if cargo tree -p "$function" -e features --prefix none | grep -q 'sluice feature "faults"'; then
    fail "$function is built with the fault injector (sluice feature \"faults\")"
  fi
done
cargo tree -p sluice-local -e features --prefix none | grep -q 'sluice feature "faults"' ||
  fail "sluice-local is built without the fault injector (--faults would not exist)"

# Each Lambda builds only its own services (app::{Ingest,Playback,Control}Services), not the
# local server's App, and each flow takes only its function's services.
whole=$(grep -ln "App::from_config\|sluice::App" functions/*/src/*.rs || true)
[ -z "$whole" ] || fail "a Lambda builds every function's services (App): $whole"

cd shared/src
# Nothing on the lower floors (media core, writers, pure live rules) does I/O or speaks HTTP.
lower=$(grep -rlE "tokio|crate::store|StatusCode" media media.rs manifest manifest.rs live live.rs || true)
[ -z "$lower" ] || fail "tokio, the store or HTTP status on a lower floor: $lower"
# Only the AWS adapters name the AWS SDK.
aws=$(grep -rlE "aws_sdk_|aws_config" . | grep -vxE "./store/aws.rs|./store/aws/.*|./secrets.rs|./alarms.rs" || true)
[ -z "$aws" ] || fail "the AWS SDK outside the AWS adapters: $aws"
# The data plane does not import the control plane.
api=$(grep -rn "crate::api" ingest* origin* access_log.rs || true)
[ -z "$api" ] || fail "the data plane imports crate::api: $api"
# Only the HTTP edges (http/, api/) name axum; the flows below them name no HTTP status.
axum=$(grep -rl "axum" . | grep -vE "^./(http|api)(/|\.rs$)" || true)
[ -z "$axum" ] || fail "axum outside http/ and api/: $axum"
status=$(grep -rn "StatusCode::" ingest* origin* live* || true)
[ -z "$status" ] || fail "an HTTP status chosen in a flow: $status"
flows=$(grep -rnE "\bApp\b" ingest* origin* api* access_log.rs | grep -v "^[^:]*:[0-9]*: *//" || true)
[ -z "$flows" ] || fail "a flow takes every function's services (App) instead of its own: $flows"
# The writers share the output timeline in live/, not each other; time arithmetic goes
# through time.rs (Ticks::as_millis, millis_since, from_secs) instead of bare "/ 90".
writers=$(grep -n "manifest::hls" manifest/dash.rs || true)
[ -z "$writers" ] || fail "the DASH writer imports the HLS writer: $writers"
ninety=$(grep -rnE "/ 90\b|/ 90_000\b" . | grep -vE "^./(time\.rs|media/)" || true)
[ -z "$ninety" ] || fail "bare 90 kHz arithmetic outside time.rs and media/: $ninety"
# Every key layout is in store/keys.rs.
keys=$(grep -rnE 'format!\("[a-z0-9_]*#|format!\("\{[^}]*\}#|"(rendition|playlist|target|stream|fmp4init)#' . | grep -v "^./store/keys.rs:" || true)
[ -z "$keys" ] || fail "a key format outside store/keys.rs: $keys"
# No file over 450 lines (tests included): split by concept.
long=$(find . -name "*.rs" -exec wc -l {} + | awk '$2 != "total" && $1 > 450 {print $2 " (" $1 ")"}')
[ -z "$long" ] || fail "files over 450 lines: $long"

exit "$failed"
