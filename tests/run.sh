#!/usr/bin/env bash
# The one test command (README): installs what the tests need on a fresh Debian machine
# (idempotent; skips what is already there), then runs everything: format, lints, unit
# and golden tests, end-to-end tests with ffmpeg/ffprobe/boto3/aws-cli/hls.js in
# Chromium against the local store and against S3 + DynamoDB in moto, the SAM template
# checks, and the Lambda release build for arm64.
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
step() { printf '\n==> %s\n' "$*"; }

step "system packages (ffmpeg, chromium, curl)"
missing=()
for pkg in ffmpeg chromium curl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

step "python packages"
py_missing=0
python3 -c "import boto3, moto, pytest, m3u8, flask_cors" 2>/dev/null || py_missing=1
for cmd in aws moto_server cfn-lint sam cargo-lambda; do command -v "$cmd" >/dev/null || py_missing=1; done
python3 -c "import ziglang" 2>/dev/null || py_missing=1
if ((py_missing)); then
  python3 -m pip install -q --disable-pip-version-check \
    boto3 awscli "moto[server]" pytest m3u8 cfn-lint aws-sam-cli cargo-lambda ziglang
fi

step "npm packages (playwright-core; the browser is Debian's chromium)"
if [ ! -d tests/node_modules/playwright-core ]; then
  (cd tests && npm ci --no-audit --no-fund --silent)
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test (unit, golden, Lambda event tests)"
cargo test --workspace

step "build sluice-local for the end-to-end tests"
cargo build -p sluice-local --quiet

step "end-to-end tests"
python3 -m pytest -q tests/e2e

step "SAM template: cfn-lint and sam validate --lint"
cfn-lint template.yaml
sam validate --lint --region us-east-1

step "Lambda release build for arm64 (cargo lambda build --release --arm64)"
if rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu; then
  cargo lambda build --release --arm64 --quiet
  ls -l target/lambda/*/bootstrap
else
  echo "SKIPPED: the aarch64-unknown-linux-gnu standard library cannot be installed on this machine" >&2
fi

step "all checks passed"
