#!/usr/bin/env python3
"""Write node_exporter-like samples as OpenMetrics text, one 2h window per file.

The benchmark TSDB must be made by real Prometheus code (promtool, then a real
Prometheus compacting it), but its *input* only has to look like what a fleet
of node_exporters produces, at a 15 s scrape interval:

  * counters with irregular, bursty increments (CPU seconds with 2 decimals,
    network/disk bytes and packets, context switches, TCP segments, ...),
    and rarely-moving ones (errors, drops, steal, nice);
  * noisy gauges that wander around a level (memory in kB granularity, load
    averages with 2 decimals, filesystem space, sockets), and constants;
  * a classic histogram per handler (12 buckets incl. +Inf, _sum, _count);
  * `job`/`instance` labels, hosts of different sizes (2-16 CPUs, 1-3 disks,
    2-5 network devices), so series counts per host vary (~170-340).

Why one window per file: `promtool tsdb create-blocks-from openmetrics`
re-reads its whole input for every 2h block it writes, so a 15-day file would
be parsed ~180 times. One file per 2h window is parsed twice (once for its
time range, once for the block).

Speed matters (the ~1 GiB data set is ~480 M samples), so the per-sample work
runs in C: increments are slices of pre-drawn pools (`array` of ints, one pool
per distribution and mean), turned into values with `itertools.accumulate`,
formatted with `map(str, ...)` and glued with `str.join` using the series'
`name{labels} ` prefix as separator. Python-level work is per series and
window only. Counters and gauges carry their state from one window to the
next, so windows must be written in order (`Generator.write_window`).
Everything comes from one seeded RNG: the same arguments give the same bytes.

Usage (standalone; the benchmark imports `Generator` instead):
  gen_openmetrics.py --hosts 30 --windows 12 --out-dir DIR [--start UNIX]
"""

import argparse
import array
import itertools
import math
import os
import random
from operator import add, truediv

STEP = 15  # scrape interval, seconds
WINDOW = 2 * 3600  # one promtool block
POOL_SIZE = 1 << 16  # pre-drawn increments per pool
DEFAULT_START = 1767225600  # 2026-01-01T00:00:00Z

# Histogram buckets of http_request_duration_seconds (Prometheus client defaults).
BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
HANDLERS = ["/api/v1/query", "/api/v1/query_range", "/metrics", "/-/healthy"]


def grid(mean):
    """Quantise a mean to a 1-1.5-2-3-5-7 log grid so pools can be shared."""
    if mean <= 0:
        return 0.0
    exp = math.floor(math.log10(mean))
    base = mean / 10**exp
    step = min((1, 1.5, 2, 3, 5, 7, 10), key=lambda s: abs(s - base))
    return step * 10**exp


class Pools:
    """Lazily drawn arrays of integer increments, keyed by (distribution, mean).

    `slice(dist, mean, n)` returns n consecutive draws starting at a random
    offset: cheap, and different for every series and window.
    """

    def __init__(self, rng):
        self.rng = rng
        self.pools = {}

    def _draw(self, dist, mean):
        r = self.rng
        if dist == "exp":  # irregular: most steps near the mean, a long tail
            return [int(r.expovariate(1 / mean) + r.random()) for _ in range(POOL_SIZE)]
        if dist == "burst":  # steady with occasional 10-60x bursts (backups, deploys)
            return [
                int(mean * r.uniform(0.4, 1.2) * (r.uniform(10, 60) if r.random() < 0.01 else 1))
                for _ in range(POOL_SIZE)
            ]
        if dist == "steady":  # +-30 % jitter around the mean
            return [int(mean * r.uniform(0.7, 1.3) + r.random()) for _ in range(POOL_SIZE)]
        if dist == "walk":  # signed random-walk steps with standard deviation `mean`
            return [round(r.gauss(0, mean)) for _ in range(POOL_SIZE)]
        raise ValueError(dist)

    def slice(self, dist, mean, n):
        key = (dist, grid(mean))
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = array.array("q", self._draw(dist, key[1] or 0.0))
        off = self.rng.randrange(POOL_SIZE - n)
        return pool[off : off + n]


def diurnal(t, phase=0.0):
    """A daily wave in [0, 1] peaking in the afternoon."""
    return 0.5 + 0.5 * math.sin(2 * math.pi * (t % 86400) / 86400 - math.pi / 2 + phase)


class Series:
    """One time series: its text prefix, how its values move, and the state
    carried from one window to the next.

    kind: "ctr" (counter, mean increment `a` per step, load sensitivity `b`),
    "gauge" (random walk with step `a`, pulled towards level `b`), "const",
    "hbucket"/"hcount" (histogram), "time", "scrape". Values are integers
    internally, written as value * mul, or value / div with decimals.
    """

    __slots__ = ("prefix", "kind", "a", "b", "value", "mul", "div")

    def __init__(self, prefix, kind, a=0.0, b=0.0, value=0, mul=1, div=1):
        self.prefix, self.kind, self.a, self.b = prefix, kind, a, b
        self.value, self.mul, self.div = value, mul, div


def fmt_labels(**kv):
    return "{" + ",".join(f'{k}="{v}"' for k, v in kv.items()) + "}"


class Generator:
    """The whole fleet; `write_window(i, path)` must be called for i = 0, 1, 2, ..."""

    def __init__(self, hosts, start=DEFAULT_START, seed=20260101, interval=STEP):
        # `interval`: seconds between samples (a divisor of WINDOW). The
        # increments stay those of a 15 s scrape; a longer interval only
        # writes fewer samples (the memory set: many series, cheaply).
        self.interval = interval
        self.rng = random.Random(seed)
        self.pools = Pools(self.rng)
        self.start = start
        self.next_window = 0
        self._cum = []  # cumulative values of the previous histogram bucket
        # family name -> (type, help, [Series]); dicts keep insertion order,
        # and each family's series are written contiguously.
        self.families = {}
        for h in range(hosts):
            self._host(h)

    # -- fleet definition ---------------------------------------------------

    def _add(self, family, ftype, help_text, name, labels, kind, **state):
        fam = self.families.setdefault(family, (ftype, help_text, []))
        fam[2].append(Series(f"{name}{fmt_labels(**labels)} ", kind, **state))

    def _counter(self, name, help_text, labels, mean, load, start, div=1):
        self._add(name, "counter", help_text, f"{name}_total", labels, "ctr",
                  a=mean, b=load, value=start, div=div)

    def _gauge(self, name, help_text, labels, step, level, mul=1, div=1):
        self._add(name, "gauge", help_text, name, labels, "gauge",
                  a=step, b=level, value=int(level), mul=mul, div=div)

    def _const(self, name, help_text, labels, value):
        self._add(name, "gauge", help_text, name, labels, "const", value=str(value))

    def _host(self, h):
        r = self.rng
        base = {"instance": f"node-{h:03d}.example.net:9100", "job": "node"}
        ncpu = r.choice([2, 4, 4, 8, 8, 16])
        load = r.uniform(0.1, 0.7)  # how much the daily wave moves this host

        # CPU, in centi-seconds (USER_HZ) per 15 s step. Idle time shrinks
        # when the busy modes grow (negative load sensitivity).
        shares = {"idle": 0.75, "iowait": 0.01, "irq": 0.002, "nice": 0.0005,
                  "softirq": 0.01, "steal": 0.001, "system": 0.06, "user": 0.17}
        for cpu in range(ncpu):
            for mode, share in shares.items():
                self._counter("node_cpu_seconds", "Seconds the CPUs spent in each mode.",
                              {**base, "cpu": str(cpu), "mode": mode}, STEP * 100 * share,
                              -load / 3 if mode == "idle" else load, r.randrange(10**6, 10**8), div=100)
            for mode in ("guest", "guest_nice"):
                self._add("node_cpu_guest_seconds", "counter", "Seconds the CPUs spent in guests.",
                          "node_cpu_guest_seconds_total", {**base, "cpu": str(cpu), "mode": mode},
                          "const", value="0")

        # Network devices: bytes and packets move, errors and drops barely.
        devices = ["eth0", "lo"] + r.sample(["eth1", "docker0", "veth3f2a1c", "bond0"], r.randint(0, 3))
        for dev in devices:
            rate = r.choice([2e3, 2e4, 2e5, 2e6]) * (0.05 if dev == "lo" else 1)  # bytes/s
            for d, k in (("receive", 1.0), ("transmit", 0.4)):
                for what, mean in (("bytes", rate * k * STEP), ("packets", rate * k * STEP / 700),
                                   ("errs", 0.002), ("drop", 0.01)):
                    self._counter(f"node_network_{d}_{what}", f"Network device statistic {d}_{what}.",
                                  {**base, "device": dev}, mean, load,
                                  r.randrange(10**4, 10**12) if mean > 1 else r.randrange(50))

        # Disks: operations, bytes, and seconds with millisecond resolution.
        for disk in ["sda", "sdb", "nvme0n1"][: r.randint(1, 3)]:
            io = r.choice([0.5, 2, 10, 50])  # operations per second
            lbl = {**base, "device": disk}
            for name, mean, div in (("reads_completed", io * STEP * 0.3, 1),
                                    ("writes_completed", io * STEP, 1),
                                    ("read_bytes", io * STEP * 0.3 * 16384, 1),
                                    ("written_bytes", io * STEP * 8192, 1),
                                    ("io_time_seconds", io * STEP * 0.8, 1000),
                                    ("read_time_seconds", io * STEP * 0.3 * 0.9, 1000),
                                    ("write_time_seconds", io * STEP * 1.4, 1000)):
                self._counter(f"node_disk_{name}", f"The total number of {name}.", lbl, mean, load,
                              r.randrange(10**5, 10**10), div=div)
            self._gauge("node_disk_io_now", "The number of I/Os currently in progress.", lbl,
                        1, 0.5 * io)

        # Filesystems: constant sizes, slowly filling space (4 KiB blocks), inodes.
        mounts = [("/", "/dev/sda1", "ext4"), ("/boot", "/dev/sda2", "ext4"),
                  ("/var", "/dev/sdb1", "xfs"), ("/run", "tmpfs", "tmpfs")][: r.randint(2, 4)]
        for mp, dev, fs in mounts:
            lbl = {**base, "device": dev, "fstype": fs, "mountpoint": mp}
            size = r.choice([1, 20, 100, 500]) * 2**30
            avail = int(size * r.uniform(0.2, 0.8)) // 4096
            self._const("node_filesystem_size_bytes", "Filesystem size in bytes.", lbl, size)
            step = r.choice([0.3, 3, 30])
            self._gauge("node_filesystem_avail_bytes", "Filesystem space available to non-root users.",
                        lbl, step, avail, mul=4096)
            self._gauge("node_filesystem_free_bytes", "Filesystem free space in bytes.",
                        lbl, step, avail + size // 4096 // 20, mul=4096)
            self._const("node_filesystem_files", "Filesystem total file nodes.", lbl, size // 16384)
            self._gauge("node_filesystem_files_free", "Filesystem total free file nodes.",
                        lbl, 3, size // 20000)

        # Memory (/proc/meminfo counts kB): levels wander, a few are constant.
        total = ncpu * r.choice([2, 4, 8]) * 2**30
        for field, frac, noise in (("MemFree", 0.1, 3e-4), ("MemAvailable", 0.5, 3e-4),
                                   ("Buffers", 0.02, 1e-5), ("Cached", 0.35, 2e-4),
                                   ("Active", 0.4, 2e-4), ("Inactive", 0.3, 1e-4),
                                   ("Active_anon", 0.2, 1e-4), ("Inactive_anon", 0.05, 1e-5),
                                   ("Active_file", 0.2, 1e-4), ("Inactive_file", 0.25, 1e-4),
                                   ("Dirty", 0.001, 1e-5), ("Writeback", 0.0, 1e-7),
                                   ("AnonPages", 0.25, 1e-4), ("Mapped", 0.05, 1e-5),
                                   ("Shmem", 0.01, 1e-6), ("Slab", 0.04, 1e-5),
                                   ("SReclaimable", 0.03, 1e-5), ("SUnreclaim", 0.01, 1e-6),
                                   ("KernelStack", 0.002, 1e-7), ("PageTables", 0.005, 1e-6),
                                   ("Committed_AS", 0.6, 2e-4), ("VmallocUsed", 0.003, 1e-7)):
            self._gauge(f"node_memory_{field}_bytes", f"Memory information field {field}_bytes.",
                        base, total * noise / 1024, total * frac / 1024, mul=1024)
        for field, val in (("MemTotal", total), ("SwapTotal", 0), ("SwapFree", 0),
                           ("HugePages_Total", 0), ("Hugepagesize", 2097152)):
            self._const(f"node_memory_{field}_bytes", f"Memory information field {field}_bytes.",
                        base, val)

        # Load averages (2 decimals) and process counts.
        for m, sd in (("1", 8), ("5", 3), ("15", 1)):
            self._gauge(f"node_load{m}", f"{m}m load average.", base, sd * ncpu,
                        100 * ncpu * load, div=100)
        self._gauge("node_procs_running", "Number of processes in runnable state.", base,
                    1, 1 + ncpu * load)
        self._gauge("node_procs_blocked", "Number of processes blocked waiting for I/O.", base, 0.3, 0)

        for name, mean in (("context_switches", 2000 * STEP), ("intr", 1500 * STEP),
                           ("forks", 5 * STEP), ("netstat_Tcp_ActiveOpens", 0.5 * STEP),
                           ("netstat_Tcp_PassiveOpens", 2 * STEP), ("netstat_Tcp_RetransSegs", 0.2 * STEP),
                           ("netstat_Tcp_InSegs", 300 * STEP), ("netstat_Tcp_OutSegs", 280 * STEP),
                           ("netstat_Udp_InDatagrams", 20 * STEP), ("netstat_Udp_OutDatagrams", 20 * STEP)):
            self._counter(f"node_{name}", f"Statistic {name}.", base, mean * ncpu / 4, load,
                          r.randrange(10**6, 10**10))
        for name, level, sd in (("sockstat_TCP_inuse", 40, 2), ("sockstat_TCP_tw", 80, 10),
                                ("sockstat_sockets_used", 300, 3), ("filefd_allocated", 2000, 10),
                                ("entropy_available_bits", 256, 0.5)):
            self._gauge(f"node_{name}", f"Statistic {name}.", base, sd, level * ncpu / 4)
        self._const("node_boot_time_seconds", "Node boot time, in unixtime.", base,
                    self.start - r.randrange(86400, 90 * 86400))
        self._add("node_time_seconds", "gauge", "System time in seconds since epoch (1970).",
                  "node_time_seconds", base, "time")

        # A latency histogram per handler (the node also runs a small service).
        hist = "http_request_duration_seconds"
        for handler in HANDLERS:
            rps = r.choice([0.2, 1, 5, 20])
            lbl = {**base, "handler": handler}
            mu = math.log(r.choice([0.02, 0.05, 0.15]))  # log-normal latency
            cdf = [0.5 * (1 + math.erf((math.log(float(b)) - mu) / (1.2 * math.sqrt(2))))
                   for b in BUCKETS[:-1]] + [1.0]
            for i, le in enumerate(BUCKETS):
                p = cdf[i] - (cdf[i - 1] if i else 0.0)  # share of requests in this bucket alone
                self._add(hist, "histogram", "HTTP request latency.", f"{hist}_bucket",
                          {**lbl, "le": le}, "hbucket", a=rps * STEP * p, b=load, mul=i)
            self._add(hist, "histogram", "HTTP request latency.", f"{hist}_count", lbl, "hcount")
            self._add(hist, "histogram", "HTTP request latency.", f"{hist}_sum", lbl, "ctr",
                      a=rps * STEP * math.exp(mu) * 1000, b=load, div=1000)

        self._const("up", "Whether the target was up.", base, 1)
        self._add("scrape_duration_seconds", "gauge", "Scrape duration.",
                  "scrape_duration_seconds", base, "scrape")

    # -- writing ------------------------------------------------------------

    def series_count(self):
        return sum(len(f[2]) for f in self.families.values())

    def write_window(self, index, path):
        """Writes window `index` ([start + index*2h, +2h)) to `path`; returns its line count."""
        if index != self.next_window:
            raise ValueError(f"windows must be written in order: expected {self.next_window}, got {index}")
        self.next_window += 1
        t0 = self.start + index * WINDOW
        times = range(t0, t0 + WINDOW, self.interval)
        n = len(times)
        sfx = [f" {t}\n" for t in times]  # shared by every series of the window
        busy = diurnal(t0 + WINDOW / 2)  # the daily wave, one level per window
        lines = 0
        with open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as out:
            write = out.write
            for family, (ftype, help_text, members) in self.families.items():
                write(f"# TYPE {family} {ftype}\n# HELP {family} {help_text}\n")
                for s in members:
                    write(s.prefix)
                    write(s.prefix.join(map(add, self._values(s, n, times, busy), sfx)))
                    lines += n
            write("# EOF\n")
        return lines

    def _values(self, s, n, times, busy):
        """One window of values of series `s`, as strings; updates its state."""
        kind, pools, rep = s.kind, self.pools, itertools.repeat
        if kind == "const":
            return rep(s.value, n)
        if kind in ("ctr", "hbucket"):
            # Mean increment a, moved by the daily wave as much as b says.
            mean = s.a * max(1 + s.b * (busy - 0.5) * 2, 0.05)
            dist = "exp" if kind == "hbucket" or mean < 5 else ("burst" if mean > 10**5 else "steady")
            vals = list(itertools.accumulate(pools.slice(dist, mean, n), initial=s.value))[1:]
            s.value = vals[-1]
            if kind == "hbucket":
                # Buckets are cumulative: add the lower bucket (mul = bucket index).
                if s.mul:
                    vals = list(map(add, vals, self._cum))
                self._cum = vals
        elif kind == "hcount":
            vals = self._cum  # _count equals the +Inf bucket, written just before
        elif kind == "gauge":
            # Random walk with step a, pulled towards level b between windows.
            start = int(s.value + 0.3 * (s.b - s.value))
            vals = list(map(max, itertools.accumulate(pools.slice("walk", s.a, n), initial=start),
                            rep(0)))[1:]
            s.value = vals[-1]
            if s.mul != 1:
                return map(str, map(int.__mul__, vals, rep(s.mul)))
        elif kind == "time":  # node_time_seconds: the scrape time, in ms resolution
            return map(str, map(add, times, map(truediv, pools.slice("exp", 20, n), rep(1000))))
        elif kind == "scrape":  # full-precision noisy floats: the worst case for XOR chunks
            return map(str, map(truediv, pools.slice("exp", 15000, n), rep(1e6)))
        else:
            raise ValueError(kind)
        if s.div != 1:
            return map(str, map(truediv, vals, rep(s.div)))
        return map(str, vals)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, required=True)
    ap.add_argument("--windows", type=int, required=True, help="number of 2h windows")
    ap.add_argument("--start", type=int, default=DEFAULT_START, help="unix seconds, multiple of 7200")
    ap.add_argument("--out-dir", required=True)
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    gen = Generator(args.hosts, args.start)
    print(f"{gen.series_count()} series")
    for w in range(args.windows):
        gen.write_window(w, os.path.join(args.out_dir, f"w{w:04d}.om"))


if __name__ == "__main__":
    main()
