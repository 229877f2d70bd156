#!/usr/bin/env bash
# Build bindery and run it on the bundled example components (cron, localstorage, http) with a
# small example app, so input events visibly flow. Needs no external service. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

# Only the bindings the example uses: a slim build is quick to compile.
cargo build --release --locked -p bindery --no-default-features \
    --features binding-cron,binding-http,binding-localstorage
BIN="${CARGO_TARGET_DIR:-target}/release/bindery"

python3 examples/quickstart/app.py 3000 &
APP=$!
trap 'kill $APP 2>/dev/null || true' EXIT

cat <<'MSG'

bindery is starting on 127.0.0.1:3500 with examples/quickstart/components.
The app prints an event from the `tick` cron binding every 2 seconds. In another terminal try:

  curl -s localhost:3500/v1.0/bindings/files -d '{"operation":"create","data":"hello","metadata":{"fileName":"hello.txt"}}'
  curl -s localhost:3500/v1.0/bindings/files -d '{"operation":"get","metadata":{"fileName":"hello.txt"}}'
  curl -s localhost:3500/v1.0/bindings/files -d '{"operation":"list"}'
  curl -s -i localhost:3500/v1.0/bindings/echo -d '{"operation":"post","data":{"order":42},"metadata":{"path":"orders"}}'
  curl -s localhost:3500/v1.0/metadata
  curl -s -i localhost:3500/v1.0/healthz

MSG
"$BIN" --app-id quickstart --app-port 3000 --resources-path examples/quickstart/components
