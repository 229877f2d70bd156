#!/usr/bin/env bash
# Install what the tests need, start every backend, and run every check bindery has:
# formatting, lints, and the whole test suite (unit, black-box, real backends, official SDKs).
# Exits non-zero when anything fails.
#
#   scripts/test.sh                 everything
#   scripts/test.sh -p bindery      extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing the official Dapr SDKs and test tools"
scripts/install-sdks.sh
echo "== starting backends"
scripts/backends.sh

echo "== cargo fmt"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build (the binary the black-box tests start)"
cargo build --workspace --locked
echo "== cargo test"
cargo test --workspace --locked --no-fail-fast "$@"
echo "== fuzzing component loading and request decoding"
scripts/fuzz.sh 20
