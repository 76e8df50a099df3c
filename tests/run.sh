#!/usr/bin/env bash
# The one test command (README): installs what the tests need on a fresh Debian machine
# (idempotent; skips what is already there), then runs everything: format, lints, unit
# and golden tests, end-to-end tests with ffmpeg/ffprobe/boto3/aws-cli/hls.js in
# Chromium against the local store and against S3 + DynamoDB in moto, the SAM template
# checks, and the Lambda release build for arm64 (cargo lambda, then `sam build`).
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
step() { printf '\n==> %s\n' "$*"; }

step "system packages (ffmpeg, chromium, curl, GStreamer as a DASH player)"
missing=()
for pkg in ffmpeg chromium curl gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
  gstreamer1.0-plugins-bad gstreamer1.0-libav; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

step "python packages (in venvs under ${SLUICE_TOOLS_DIR:-~/.cache/sluice-tools})"
# Test clients in one venv; the SAM CLI in another, because it pins boto3/botocore
# versions that conflict with aws-cli v1's pins.
TOOLS="${SLUICE_TOOLS_DIR:-$HOME/.cache/sluice-tools}"
PY_VENV="$TOOLS/py"
[ -x "$PY_VENV/bin/python" ] || python3 -m venv "$PY_VENV"
if ! "$PY_VENV/bin/python" -c "import boto3, moto, pytest, xdist, m3u8, mpegdash, flask_cors, ziglang, imageio_ffmpeg" 2>/dev/null ||
  [ ! -x "$PY_VENV/bin/aws" ] || [ ! -x "$PY_VENV/bin/cfn-lint" ] || [ ! -x "$PY_VENV/bin/cargo-lambda" ]; then
  "$PY_VENV/bin/python" -m pip install -q --disable-pip-version-check \
    boto3 awscli "moto[server]" pytest pytest-xdist m3u8 mpegdash cfn-lint cargo-lambda ziglang imageio-ffmpeg
fi
export PATH="$PY_VENV/bin:$PATH"
SAM_VENV="$TOOLS/sam"
if [ ! -x "$SAM_VENV/bin/sam" ]; then
  python3 -m venv "$SAM_VENV"
  "$SAM_VENV/bin/python" -m pip install -q --disable-pip-version-check aws-sam-cli
fi
sam() { "$SAM_VENV/bin/sam" "$@"; }

step "npm packages (playwright-core; the browser is Debian's chromium)"
if [ ! -d tests/node_modules/playwright-core ] || [ ! -d tests/node_modules/dashjs ] ||
  [ ! -d tests/node_modules/shaka-player ] || [ ! -d tests/node_modules/mp4box ]; then
  (cd tests && npm ci --no-audit --no-fund --silent)
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "layout rules (tests/layout.sh)"
bash tests/layout.sh

step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test (unit, golden, Lambda event tests)"
SLUICE_REQUIRE_MOTO=1 cargo test --workspace

step "build sluice-local for the end-to-end tests"
cargo build -p sluice-local --quiet

step "end-to-end tests (two workers, each test file on one: most of a test is waiting on real time)"
python3 -m pytest -q -n 2 --dist loadfile tests/e2e

step "SAM template: cfn-lint and sam validate --lint"
cfn-lint template.yaml
sam validate --lint --region us-east-1

step "Lambda release build for arm64 (cargo lambda build --release --arm64)"
if rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu; then
  cargo lambda build --release --arm64 --quiet
  ls -l target/lambda/*/bootstrap
  step "sam build (the template's rust-cargolambda builds; reuses the build above)"
  SAM_CLI_BETA_RUST_CARGO_LAMBDA=1 sam build --region us-east-1 >/dev/null
  ls -l .aws-sam/build/*/bootstrap
else
  echo "SKIPPED: the aarch64-unknown-linux-gnu standard library cannot be installed on this machine" >&2
fi

step "all checks passed"
