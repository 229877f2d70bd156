#!/usr/bin/env bash
# Run every benchmark scenario and rewrite docs/BENCHMARKS.md and the plots in docs/bench/.
#
#   scripts/bench.sh                       every scenario (about ten minutes)
#   scripts/bench.sh --only http,footprint extra arguments go to `bindery-bench suite`
#   BENCH_NOTE="..." scripts/bench.sh      a sentence on what else the machine was doing
#
# Installs nginx (the reverse-proxy baseline) and the DejaVu font (the plots' labels) from
# Debian's packages when missing, starts the backends that are down (scripts/backends.sh),
# builds the release binary with every binding and the slim one, then runs crates/bench.
# Everything runs on 127.0.0.1; every load loop is bounded in time and count.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/bindery-target}"
BIN_DIR="${BENCH_BIN_DIR:-/var/tmp/bindery-bench}"
FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
mkdir -p "$BIN_DIR"

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ] || [ ! -f "$FONT" ]; then
    echo "bench: installing nginx and fonts-dejavu-core"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx fonts-dejavu-core >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in 6379 5672 4222 19092; do
    if ! port_open "$port"; then
        echo "bench: 127.0.0.1:$port is down; starting the backends"
        scripts/backends.sh
        break
    fi
done

echo "bench: building the slim release binary (binding-http, binding-cron)"
cargo build --release --locked -p bindery --no-default-features --features binding-http,binding-cron
cp "$CARGO_TARGET_DIR/release/bindery" "$BIN_DIR/bindery-slim"
echo "bench: building the release binary with every binding"
cargo build --release --locked -p bindery
cp "$CARGO_TARGET_DIR/release/bindery" "$BIN_DIR/bindery"
echo "bench: building the load generator"
cargo build --release --locked -p bindery-bench

# What else is using the CPU right now, for the report.
busy="$(top -b -n 2 -d 1 -w 200 2>/dev/null | awk '/^top -/{n++} n==2 && $1 ~ /^[0-9]+$/ && $9+0 >= 5 {printf "%s%s (%s%%)", sep, $12, $9; sep=", "}')"
note="${BENCH_NOTE:-}"
if [ -n "$busy" ]; then
    note="${note:+$note; }processes above 5 % CPU just before the run: $busy"
else
    note="${note:+$note; }no other process above 5 % CPU just before the run"
fi

"$CARGO_TARGET_DIR/release/bindery-bench" suite \
    --bindery "$BIN_DIR/bindery" \
    --slim "$BIN_DIR/bindery-slim" \
    --nginx "$NGINX" \
    --out docs \
    --machine-note "$note" \
    "$@"
