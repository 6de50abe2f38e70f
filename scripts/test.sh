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

# Every end-to-end test runs against both Prometheus lines: the whole suite
# (unit, integration, doc tests) with Debian 12's 2.42, then the integration
# binary again with the 3.5 LTS (tests/support/prometheus.rs picks the server
# from PROMSNAP_TEST_PROMETHEUS; a missing one fails, never skips).
started=$SECONDS
echo "==> cargo test, Prometheus 2.42"
PROMSNAP_TEST_PROMETHEUS=2.42 cargo test --locked
echo "==> cargo test --test integration, Prometheus 3.5"
PROMSNAP_TEST_PROMETHEUS=3.5 cargo test --locked --test integration
echo "==> tests took $((SECONDS - started)) s"

echo "==> the Debian package: build, dpkg -i, use, dpkg -r and -P"
bash scripts/test-package.sh

echo "==> OK: fmt, clippy and all tests passed (end-to-end on Prometheus 2.42 and 3.5), the package installs and removes"
