#!/usr/bin/env bash
# Everything CI checks: formatting, lints, and all tests, including the
# end-to-end ones against a real Prometheus and a real Garage.
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/install-deps.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --locked

echo "==> OK: fmt, clippy and all tests passed"
