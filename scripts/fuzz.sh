#!/usr/bin/env bash
# Fuzz component loading and HTTP request decoding for a short while (cargo fuzz, libFuzzer).
#
#   scripts/fuzz.sh            each target for 20 s
#   scripts/fuzz.sh 300        each target for 300 s
#
# Needs the nightly toolchain (libFuzzer's instrumentation); cargo-fuzz is installed from
# crates.io when missing. Seeds are in fuzz/seeds/<target>/; what a run learns stays in
# fuzz/corpus/ (git-ignored); a crash is saved in fuzz/artifacts/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-20}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: the nightly toolchain is not installed (rustup toolchain list); it is needed for cargo fuzz" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi
for target in load_components decode_output_request; do
    mkdir -p "fuzz/corpus/$target"
    echo "fuzz: $target for ${SECONDS_EACH}s"
    cargo +nightly fuzz run --fuzz-dir fuzz "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -print_final_stats=1 2>&1 | tail -n 12
done
echo "fuzz: no crash"
