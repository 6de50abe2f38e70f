#!/usr/bin/env bash
# The fleet benchmark (issue "fleet"): a repository in a Garage of its own
# holding 200 instances x 50 snapshots (by default), and the time and memory
# of `list --instance X`, `restore latest --instance X` and `prune
# --instance X --dry-run` among them, and of `list` and `prune --dry-run` of
# everything. See scripts/bench/fleet.py for how the repository is made
# (each instance's snapshots and data in its own group directories).
#
#   scripts/bench-fleet.sh [--instances N] [--snapshots N] [--runs N] [--promsnap BIN]
#
# Needs what scripts/install-deps.sh installs (garage, the venv) and boto3,
# which it installs into the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bench_py=$PWD/scripts/bench

log() { echo "bench-fleet: $*" >&2; }
die() {
    log "FAILED: $*"
    exit 1
}

instances=200 snapshots=50 runs=3 promsnap=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --instances) instances=$2; shift 2 ;;
        --snapshots) snapshots=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --promsnap) promsnap=$2; shift 2 ;;
        -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

command -v garage >/dev/null || bash scripts/install-deps.sh
venv=${PROMSNAP_VENV:-$HOME/.cache/promsnap/venv}
[[ -x $venv/bin/python ]] || bash scripts/install-deps.sh
"$venv/bin/python" -c "import boto3" 2>/dev/null || "$venv/bin/pip" install --quiet boto3
if [[ -z $promsnap ]]; then
    log "building promsnap (release)"
    cargo build --release --locked --quiet
    promsnap=$PWD/target/release/promsnap
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/promsnap-fleet.XXXXXX")
garage_pid=""
cleanup() {
    if [[ -n $garage_pid ]]; then
        kill "$garage_pid" 2>/dev/null || true
        wait "$garage_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The fixture blocks as a data directory.
mkdir -p "$work/data"
for block in fixtures/data/*/; do
    cp -r "$block" "$work/data/"
done

# shellcheck source=scripts/bench/garage.sh
source "$bench_py/garage.sh"
start_garage "$work"
garage_cli bucket create fleet >/dev/null
garage_cli bucket allow --read --write --owner fleet --key "$key_id" >/dev/null

"$venv/bin/python" "$bench_py/fleet.py" --promsnap "$promsnap" --data "$work/data" \
    --endpoint "http://127.0.0.1:$s3_port" --key-id "$key_id" --secret "$secret" \
    --instances "$instances" --snapshots "$snapshots" --runs "$runs" --work "$work"
