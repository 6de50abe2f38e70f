#!/usr/bin/env python3
"""Build (once) the benchmark TSDB: real blocks, really compacted, really snapshotted.

Pipeline, all with the installed Prometheus 2.42 tools:

 1. `gen_openmetrics.Generator` writes node_exporter-like samples, one 2h
    window per OpenMetrics file (to /dev/shm when there is room), and
    `promtool tsdb create-blocks-from openmetrics` turns each file into one
    2h block, with one promtool per CPU running next to the generator.
    The last day's blocks go to a separate `extra/` dir (held back).
 2. A real Prometheus (no scrape targets, `--storage.tsdb.retention.time=100y`,
    otherwise default block durations, so the largest level is
    min(10 % of retention, 31d)) is started on the other blocks. Its DB loop
    reloads blocks and compacts about one minute after start, and one
    compaction run loops until the planner has nothing left, so the level
    structure is stable once a run was triggered, no `*.tmp-for-creation` dir
    exists, and neither the block set nor `prometheus_tsdb_compactions_total`
    changed for STABLE_SECONDS.
 3. `POST /api/v1/admin/tsdb/snapshot?skip_head=true`; the snapshot (hard
    links) is moved to `<cache>/snap-base`.
 4. Prometheus is stopped, the held-back day's 2h blocks are moved in,
    Prometheus is started again, compacts them (together with the recent
    small blocks) and is snapshotted again: `<cache>/snap-next`, the input of
    the "one more day + compaction" incremental case.
 5. The Prometheus data dir is removed (the snapshots keep their hard links);
    `<cache>/dataset.json` is written last: it marks the cache as complete and
    records sizes, block lists, the compaction timeline and timings.

The memory sets (`--memory`, `ensure_memory`) are a separate cache,
`<cache>/memory-<size>`: many hosts (at least 100 000 series for large), 5
windows at one sample a minute, compacted once (a 6h and two 2h blocks) and snapshotted as
`snap-base`; no held-back day. They show that what promsnap holds does not
grow with the number of series.

Usage: dataset.py --size small|medium|large [--memory] [--data DIR] [--force]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import die, free_port, http, log, stop, tree_bytes  # noqa: E402
import gen_openmetrics  # noqa: E402

# Hosts of ~230 series each, 14 days + 1 held-back day at 15 s. "large" is
# ~1 GiB compacted (25 hosts, 5604 series, ~480 M samples); "small" is one host
# (190 series, ~35 MiB).
#
# The sets start at 2025-12-29 12:00 UTC (START), 24 h before a 162 h range
# ends (ranges are aligned on the epoch): the 14 days then hold a 24 h block,
# one full 162 h block (about half the bytes: the block that sets the wall
# time of a restore) and 150 h of smaller blocks, and the held-back day
# completes the next 162 h range, so Prometheus compacts those 150 h and the
# new day's first 12 h into a second 162 h block. That is the night a
# block-level backup uploads half the TSDB again for one day of new data (as
# in the format 2 issue's measurement: +476 MB for 77 MB new); it comes once
# every 6.75 days, the other nights compact less. (Not a range that is also
# one of 486 h, the largest level with this retention: that night everything
# is compacted into one block.) Before format 2's bench the sets started at
# 2026-01-01 00:00 UTC, where the extra day compacted 2 days into a 54 h block.
START = 1767009600
SIZES = {
    "small": {"hosts": 1, "days": 14, "extra_days": 1, "start": START},
    "medium": {"hosts": 4, "days": 14, "extra_days": 1, "start": START},
    "large": {"hosts": 25, "days": 14, "extra_days": 1, "start": START},
}
# The memory sets: 5 windows (10 h) of many hosts, a sample a minute (one
# chunk per series and window), so that Prometheus compacts the first three
# into a 6 h block (it never plans the newest block, and a range is only
# compacted early once a newer block starts after it). large: 440 hosts,
# 103 460 series (62 M samples); small: 10 hosts, 2211 series, a quick run.
MEMORY_SIZES = {
    "small": {"hosts": 10, "windows": 5, "extra_days": 0, "interval": 60},
    "large": {"hosts": 440, "windows": 5, "extra_days": 0, "interval": 60},
}
MEMORY_MIN_SERIES = {"small": 2000, "large": 100_000}
# The memory set each size runs with: medium uses large's (100k+ series).
MEMORY_SET = {"small": "small", "medium": "large", "large": "large"}
FORMAT = 1  # bump when the generator or the pipeline changes the data
STABLE_SECONDS = 15
COMPACTION_TIMEOUT = 1800
ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def block_dirs(path):
    return sorted(e for e in os.listdir(path) if ULID.match(e) and os.path.isdir(os.path.join(path, e)))


def block_table(path):
    """The blocks of a TSDB dir as dicts (ulid, min/max time, hours, samples, series, bytes)."""
    out = []
    for ulid in block_dirs(path):
        with open(os.path.join(path, ulid, "meta.json")) as f:
            meta = json.load(f)
        out.append({
            "ulid": ulid,
            "min_time": meta["minTime"],
            "max_time": meta["maxTime"],
            "hours": round((meta["maxTime"] - meta["minTime"]) / 3.6e6, 2),
            "level": meta["compaction"]["level"],
            "samples": meta["stats"]["numSamples"],
            "series": meta["stats"]["numSeries"],
            "bytes": tree_bytes(os.path.join(path, ulid)),
        })
    return sorted(out, key=lambda b: b["min_time"])


# -- step 1: OpenMetrics -> 2h blocks ------------------------------------------


def scratch_dir(build):
    """/dev/shm when it has room for a few window files (tmpfs: no disk writes)."""
    shm = "/dev/shm"
    try:
        st = os.statvfs(shm)
        if os.access(shm, os.W_OK) and st.f_bavail * st.f_frsize > 4 << 30:
            d = os.path.join(shm, f"promsnap-bench-{os.getpid()}")
            os.makedirs(d, exist_ok=True)
            return d
    except OSError:
        pass
    d = os.path.join(build, "om")
    os.makedirs(d, exist_ok=True)
    return d


def make_blocks(params, build):
    """Generates every window and runs promtool on each; returns timing info."""
    gen = gen_openmetrics.Generator(params["hosts"], start=params.get("start", gen_openmetrics.DEFAULT_START),
                                    interval=params.get("interval", gen_openmetrics.STEP))
    windows_per_day = 86400 // gen_openmetrics.WINDOW
    base_windows = params.get("windows") or params["days"] * windows_per_day
    total = base_windows + params["extra_days"] * windows_per_day
    dirs = {"base": os.path.join(build, "blocks"), "extra": os.path.join(build, "extra")}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    scratch = scratch_dir(build)
    workers = max(1, os.cpu_count() or 1)
    log(f"generating {total} windows x {gen.series_count()} series "
        f"({base_windows} + {total - base_windows} held back), {workers} promtool workers, scratch {scratch}")

    running = []  # (Popen, om file, window index), oldest first
    t0, gen_seconds, lines = time.monotonic(), 0.0, 0

    def reap_oldest():
        proc, path, i = running.pop(0)
        _, err = proc.communicate()
        if proc.returncode != 0:
            die(f"promtool failed on window {i}:\n{err}")
        os.unlink(path)

    try:
        for i in range(total):
            path = os.path.join(scratch, f"w{i:04d}.om")
            g0 = time.monotonic()
            lines += gen.write_window(i, path)
            gen_seconds += time.monotonic() - g0
            while len(running) >= workers:
                reap_oldest()
            out = dirs["base"] if i < base_windows else dirs["extra"]
            running.append((subprocess.Popen(
                ["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", path, out],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True), path, i))
            if i % 12 == 11:
                el = time.monotonic() - t0
                log(f"  {i + 1}/{total} windows, {lines / 1e6:.0f} M samples, "
                    f"{el:.0f}s, ETA {el / (i + 1) * (total - i - 1):.0f}s")
        while running:
            reap_oldest()
    finally:
        for proc, path, _ in running:
            stop(proc)
        shutil.rmtree(scratch, ignore_errors=True)

    for name, d in dirs.items():
        want = base_windows if name == "base" else total - base_windows
        got = len(block_dirs(d))
        if got != want:
            die(f"expected {want} blocks in {d}, promtool wrote {got}")
    return {"series": gen.series_count(), "samples": lines, "windows": total,
            "seconds": round(time.monotonic() - t0, 1), "generator_cpu_seconds": round(gen_seconds, 1)}


# -- steps 2-4: Prometheus compaction and snapshots -----------------------------


class Prometheus:
    """A Prometheus 2.42 on a data dir, with the admin API, for compaction only."""

    def __init__(self, data_dir, logfile):
        self.data_dir = data_dir
        config = os.path.join(os.path.dirname(data_dir), "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(logfile, "a")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
             "--storage.tsdb.retention.time=100y", "--web.enable-admin-api",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 300  # opening many blocks takes a moment
        while True:
            try:
                if http(f"{self.url}/-/ready", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                die(f"Prometheus did not become ready; see {logfile}")
            time.sleep(0.5)

    def metric(self, name):
        _, body = http(f"{self.url}/metrics")
        m = re.search(rf"^{name} (\S+)$", body.decode(), re.M)
        return float(m.group(1)) if m else 0.0

    def wait_for_compaction(self):
        """Polls until a compaction run happened and nothing changed for a while.

        Returns the timeline: (seconds since call, #blocks, compactions) on change.
        """
        t0 = time.monotonic()
        timeline, last_change, last = [], time.monotonic(), None
        while True:
            entries = os.listdir(self.data_dir)
            busy = any(e.endswith((".tmp-for-creation", ".tmp-for-deletion")) for e in entries)
            state = (tuple(sorted(e for e in entries if ULID.match(e))),
                     self.metric("prometheus_tsdb_compactions_total"))
            triggered = self.metric("prometheus_tsdb_compactions_triggered_total")
            now = time.monotonic()
            if state != last:
                last, last_change = state, now
                timeline.append((round(now - t0, 1), len(state[0]), int(state[1])))
                log(f"  t={now - t0:5.0f}s blocks={len(state[0])} compactions={int(state[1])}")
            if triggered >= 1 and not busy and now - last_change >= STABLE_SECONDS:
                return timeline
            if now - t0 > COMPACTION_TIMEOUT:
                die("compaction did not settle")
            time.sleep(2)

    def snapshot(self, dest):
        status, body = http(f"{self.url}/api/v1/admin/tsdb/snapshot?skip_head=true", method="POST", timeout=120)
        doc = json.loads(body)
        if doc.get("status") != "success":
            die(f"snapshot failed ({status}): {body!r}")
        src = os.path.join(self.data_dir, "snapshots", doc["data"]["name"])
        os.rename(src, dest)  # same file system; the hard links stay valid

    def stop(self):
        stop(self.proc, timeout=120)
        self.log.close()


def compact_and_snapshot(build, dest, logfile):
    prom = Prometheus(os.path.join(build, "prom"), logfile)
    try:
        t0 = time.monotonic()
        timeline = prom.wait_for_compaction()
        seconds = round(time.monotonic() - t0, 1)
        prom.snapshot(dest)
    finally:
        prom.stop()
    return {"seconds": seconds, "timeline": timeline}


# -- driver ---------------------------------------------------------------------


def build(size, cache, params):
    buildd = os.path.join(cache, "build")
    shutil.rmtree(buildd, ignore_errors=True)
    for d in ("snap-base", "snap-next"):
        shutil.rmtree(os.path.join(cache, d), ignore_errors=True)
    os.makedirs(buildd)
    logs = os.path.join(cache, "logs")
    os.makedirs(logs, exist_ok=True)
    t0 = time.monotonic()

    blocks = make_blocks(params, buildd)
    log(f"blocks written in {blocks['seconds']}s")

    prom_dir = os.path.join(buildd, "prom")
    os.rename(os.path.join(buildd, "blocks"), prom_dir)
    log("Prometheus: compacting the base days")
    base = compact_and_snapshot(buildd, os.path.join(cache, "snap-base"), os.path.join(logs, "prometheus-base.log"))

    nxt = None
    if params["extra_days"]:
        for ulid in block_dirs(os.path.join(buildd, "extra")):
            os.rename(os.path.join(buildd, "extra", ulid), os.path.join(prom_dir, ulid))
        log("Prometheus: compacting the extra day")
        nxt = compact_and_snapshot(buildd, os.path.join(cache, "snap-next"),
                                   os.path.join(logs, "prometheus-next.log"))
    shutil.rmtree(buildd)

    info = {
        "format": FORMAT, "size": size, "params": params, "generate": blocks,
        "compaction": {"base": base, "next": nxt},
        "total_seconds": round(time.monotonic() - t0, 1),
        "snap_base": {"path": os.path.join(cache, "snap-base"),
                      "bytes": tree_bytes(os.path.join(cache, "snap-base")),
                      "blocks": block_table(os.path.join(cache, "snap-base"))},
    }
    if nxt is not None:
        info["snap_next"] = {"path": os.path.join(cache, "snap-next"),
                             "bytes": tree_bytes(os.path.join(cache, "snap-next")),
                             "blocks": block_table(os.path.join(cache, "snap-next"))}
    tmp = os.path.join(cache, "dataset.json.tmp")
    with open(tmp, "w") as f:
        json.dump(info, f, indent=1)
    os.rename(tmp, os.path.join(cache, "dataset.json"))
    return info


def ensure(size, data_dir, force=False, memory=False):
    """Returns the dataset info, building it first unless a complete one is cached.

    `memory`: the memory set of that size (MEMORY_SIZES) instead of the bench set.
    """
    if memory:
        size = MEMORY_SET[size]
    params = (MEMORY_SIZES if memory else SIZES)[size]
    name = f"memory-{size}" if memory else size
    cache = os.path.join(os.path.expanduser(data_dir), name)
    os.makedirs(cache, exist_ok=True)
    meta = os.path.join(cache, "dataset.json")
    if not force and os.path.exists(meta):
        with open(meta) as f:
            info = json.load(f)
        if info.get("format") == FORMAT and info.get("params") == params:
            log(f"using cached {name} data set in {cache} ({info['snap_base']['bytes'] / 2**20:.0f} MiB)")
            return info
    log(f"building the {name} data set in {cache}")
    info = build(size, cache, params)
    log(f"data set built in {info['total_seconds']}s: snap-base {info['snap_base']['bytes'] / 2**20:.0f} MiB "
        f"in {len(info['snap_base']['blocks'])} blocks")
    return info


def describe(info):
    """A short human summary of the block levels of both snapshots."""
    lines = []
    for key in ("snap_base", "snap_next"):
        if key not in info:
            continue
        hours = [b["hours"] for b in info[key]["blocks"]]
        lines.append(f"{key}: {len(hours)} blocks, {info[key]['bytes'] / 2**20:.0f} MiB, "
                     f"durations (h): {' '.join(f'{h:g}' for h in hours)}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description="Build the promsnap benchmark TSDB (cached).")
    ap.add_argument("--size", choices=sorted(SIZES), default="large")
    ap.add_argument("--data", default="~/.cache/promsnap-bench")
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    ap.add_argument("--memory", action="store_true", help="the memory set (many series) of that size")
    args = ap.parse_args()
    info = ensure(args.size, args.data, args.force, memory=args.memory)
    print(describe(info))


if __name__ == "__main__":
    main()
