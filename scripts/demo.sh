#!/usr/bin/env bash
# End-to-end demo on a fresh Debian machine, into a local repository:
#   Prometheus serving fixtures/data -> promsnap backup -> promsnap list ->
#   promsnap restore latest -> a second Prometheus on the restored dir ->
#   the same PromQL answers from both.
# Everything lives in a temp dir that is removed on exit, together with the
# Prometheus servers this script started. Needs python3 (for free ports and
# HTTP queries, so curl is not required).
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

log() { echo "demo: $*" >&2; }
die() { log "FAILED: $*"; exit 1; }

command -v python3 >/dev/null || die "python3 is required"
if ! command -v prometheus >/dev/null; then
    log "installing Debian package prometheus"
    if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus
fi

log "building promsnap (release)"
cargo build --release --locked
promsnap=$PWD/target/release/promsnap

work=$(mktemp -d -t promsnap-demo.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# A fixed instant inside the fixture range: 2026-01-01T03:00:00Z.
at=1767236400
queries=('count({__name__=~".+"})' 'sum(node_load1)' 'sum(rate(node_cpu_seconds_total[5m]))')

printf 'global:\n  scrape_interval: 15s\n' >"$work/prometheus.yml"

# start_prometheus NAME DATA_DIR: starts a server, sets $url once it is ready.
start_prometheus() {
    local name=$1 data=$2 port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$data" \
        --storage.tsdb.retention.time=100y --web.enable-admin-api \
        --web.listen-address="127.0.0.1:$port" >"$work/$name.log" 2>&1 &
    pids+=($!)
    url="http://127.0.0.1:$port"
    for _ in $(seq 300); do
        if python3 - "$url/-/ready" 2>/dev/null <<'EOF'; then
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2)
EOF
            log "$name Prometheus ready at $url"
            return
        fi
        sleep 0.1
    done
    tail -n 30 "$work/$name.log" >&2
    die "$name Prometheus did not become ready"
}

# query URL EXPR: prints the instant-query result at $at as compact JSON.
query() {
    python3 - "$1" "$2" "$at" <<'EOF'
import json, sys, urllib.parse, urllib.request
url, expr, at = sys.argv[1:]
qs = urllib.parse.urlencode({"query": expr, "time": at})
with urllib.request.urlopen(f"{url}/api/v1/query?{qs}", timeout=10) as resp:
    body = json.load(resp)
result = sorted(body["data"]["result"], key=lambda r: json.dumps(r["metric"], sort_keys=True))
print(json.dumps(result, sort_keys=True))
EOF
}

log "copying fixtures/data"
cp -r fixtures/data "$work/data"
start_prometheus source "$work/data"
source_url=$url

run() { log "\$ promsnap $*"; "$promsnap" "$@"; }
run init --repo "$work/repo"
run backup --prometheus-url "$source_url" --data-dir "$work/data" --repo "$work/repo"
run list --repo "$work/repo"
run restore latest --repo "$work/repo" --data-dir "$work/restored"

start_prometheus restored "$work/restored"
restored_url=$url

same=true
for q in "${queries[@]}"; do
    a=$(query "$source_url" "$q")
    b=$(query "$restored_url" "$q")
    echo "query:    $q @ $at"
    echo "  source:   $a"
    echo "  restored: $b"
    [[ $a == "$b" && $a != "[]" ]] || same=false
done

$same || die "answers differ (or are empty)"
echo "OK: identical"
