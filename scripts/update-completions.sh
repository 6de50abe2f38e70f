#!/usr/bin/env bash
# Regenerates the committed shell completions from the binary itself.
# tests/cli.rs fails while they are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
bin=target/debug/promsnap
"$bin" completions bash > completions/promsnap.bash
"$bin" completions zsh > completions/_promsnap
"$bin" completions fish > completions/promsnap.fish
"$bin" completions elvish > completions/promsnap.elv
"$bin" completions powershell > completions/_promsnap.ps1
echo "completions/ updated"
