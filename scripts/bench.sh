#!/usr/bin/env bash
# Benchmark promsnap backup/restore against restic, an rclone script and the
# raw read/compression limits, on a realistic Prometheus TSDB (issue 6).
#
# What it does:
#   1. installs missing tools (zstd, restic, rclone via apt; prometheus and
#      garage through scripts/install-deps.sh) and builds promsnap --release;
#   2. builds the benchmark TSDB once and caches it (scripts/bench/dataset.py:
#      OpenMetrics -> promtool 2h blocks -> compaction by a real Prometheus ->
#      admin-API snapshots "snap-base" and, after one more day, "snap-next");
#      the memory set (100k+ series; built by run.py when a mem case runs) and
#      the floor of the incr-day step (scripts/bench/floor.py) are cached too;
#   3. starts its own Garage on loopback (free ports, temp dir; stopped and
#      removed on exit by a trap);
#   4. runs the cases --runs times each (scripts/bench/run.py), prints a
#      markdown report with PASS/FAIL against the issue's targets, and writes
#      the JSON (and the markdown) to --out.
#
# Numbers are only comparable between runs on the same machine; on a machine
# shared with other work they are noisy (the report records the load average).
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/bench.sh [options]

Options:
  --size small|medium|large
                       data set: small ~35 MB (1 host), medium ~200 MB (4 hosts),
                       large ~1.2 GB (25 hosts); all 14 days + 1 held-back day;
                       the memory set (mem-*) has 2211 series (small) or 103460
                       (medium, large) [default: large]
  --runs N             measured runs per case [default: 3]
  --data DIR           cache for the generated data [default: ~/.cache/promsnap-bench]
  --out FILE           JSON results (markdown next to it as .md)
                       [default: DIR/SIZE/bench-results.json]
  --only NAME[,NAME]   run a subset: groups ref, local, garage, restic, rclone, mem, or
                       cases such as garage-full, garage-restore, restic-full
                       (prerequisites such as the full backup still run, unmeasured)
  --no-drop-caches     keep the page cache warm (default: drop it before every
                       measured command when /proc/sys/vm/drop_caches is writable)
  --regenerate         rebuild the cached data set first
  --promsnap BIN       benchmark this binary instead of building target/release/promsnap
  --backup-args 'ARGS' extra flags for every promsnap backup, to compare settings
                       (e.g. --backup-args '--zstd-level 1 --concurrency 1')
  --restore-args 'ARGS' extra flags for every promsnap restore
  -h, --help           this help

Cases: ref-tar ref-zstd ref-zstd-mm4 ref-zstd3 | local-full local-incr-same local-incr-day local-restore
local-verify local-verify-deep ref-unzstd ref-unzstd-sha local-restore-largest
local-verify-deep-largest ref-unzstd-largest f1-restore-largest f1-verify-deep-largest
local-full-z3 | garage-full garage-incr-same garage-incr-day garage-restore garage-verify
garage-verify-deep | restic-full restic-incr-same restic-incr-day restic-restore |
rclone-full rclone-restore | mem-full mem-restore mem-verify-deep

The report prints the floor of the incr-day step (the chunk records of
snap-next's new blocks that snap-base does not hold, plus their indexes,
zstd -1 with 4-byte matches) and the stored bytes each tool added against it and against restic.
EOF
}

log() { echo "bench: $*" >&2; }
die() {
    log "FAILED: $*"
    exit 1
}

size=large runs=3 data="$HOME/.cache/promsnap-bench" out="" only="" drop=() regenerate=false promsnap=""
backup_args="" restore_args=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --size) size=${2:?--size needs a value} && shift ;;
    --runs) runs=${2:?--runs needs a value} && shift ;;
    --data) data=${2:?--data needs a value} && shift ;;
    --out) out=${2:?--out needs a value} && shift ;;
    --only) only=${2:?--only needs a value} && shift ;;
    --no-drop-caches) drop=(--no-drop-caches) ;;
    --regenerate) regenerate=true ;;
    --backup-args) backup_args=${2?--backup-args needs a value} && shift ;;
    --restore-args) restore_args=${2?--restore-args needs a value} && shift ;;
    --promsnap) promsnap=$(realpath "${2:?--promsnap needs a value}") && shift ;;
    -h | --help) usage && exit 0 ;;
    *) usage >&2 && exit 2 ;;
    esac
    shift
done
[[ $size == small || $size == medium || $size == large ]] || die "--size must be small, medium or large"
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"

cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bench_py=scripts/bench

# -- 1. tools and the promsnap binary -----------------------------------------
as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}
missing=()
for tool in zstd:zstd restic:restic rclone:rclone tar:tar python3:python3 /usr/bin/time:time; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]}"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null || ! command -v garage >/dev/null; then
    bash scripts/install-deps.sh
fi

if [[ -z $promsnap ]]; then
    log "building promsnap (release)"
    cargo build --release --locked --quiet
    promsnap=$PWD/target/release/promsnap
    rev="commit $(git rev-parse --short HEAD)"
    [[ -z $(git status --porcelain -- src Cargo.toml Cargo.lock) ]] || rev+=" + uncommitted changes"
else
    rev="given: $promsnap"
fi
[[ -x $promsnap ]] || die "$promsnap is not an executable"

# -- 2. the data set (cached) ---------------------------------------------------
gen_args=(--size "$size" --data "$data")
$regenerate && gen_args+=(--force)
python3 "$bench_py/dataset.py" "${gen_args[@]}" >&2

# -- 3. Garage on loopback ---------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/promsnap-bench.XXXXXX")
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

# shellcheck source=scripts/bench/garage.sh
source "$bench_py/garage.sh"
start_garage "$work"

# -- 4. measure ------------------------------------------------------------------
run_args=(--size "$size" --runs "$runs" --data "$data" --only "$only" "${drop[@]}"
    --backup-args="$backup_args" --restore-args="$restore_args"
    --promsnap "$promsnap" --promsnap-rev "$rev" --work "$work"
    --garage-bin "$(command -v garage)" --garage-config "$conf" --garage-pid "$garage_pid"
    --garage-endpoint "http://127.0.0.1:$s3_port" --garage-key-id "$key_id" --garage-secret "$secret")
[[ -n $out ]] && run_args+=(--out "$out")
python3 "$bench_py/run.py" "${run_args[@]}"
