#!/usr/bin/env python3
"""Measure promsnap against its references; print markdown, write JSON.

Started by scripts/bench.sh, which has built promsnap, built or found the
cached data set (dataset.py) and started a Garage on loopback (this script
only creates buckets in it). See `scripts/bench.sh --help` for the options.

Every case is one command whose resources are taken from `os.wait4` on that
child: wall time, user+sys CPU (including the children a shell pipeline
waited for); peak RSS (the largest single process of the command) comes from
GNU time, which wraps every command. The
Garage server's own CPU time during the case is read from /proc and reported
separately: on 2 cores it competes with the client. Before every measured
command the page cache is dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`)
when that file is writable, so every case starts cold; otherwise all runs are
warm and the report says so.

Each run starts from empty repositories: a fresh local dir, and fresh Garage
buckets for promsnap, restic and the rclone script. Runs are interleaved
(run 1 of every case, then run 2, ...) so that load from other work on the
machine spreads over all cases instead of hitting one.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import die, log, run, tree_bytes  # noqa: E402
import dataset  # noqa: E402
import floor as floor_scan  # noqa: E402

# case -> (group, what it does, which snapshot's bytes count for MB/s)
CASES = {
    "ref-tar": ("ref", "tar -cf - . | cat > /dev/null (read limit)", "base"),
    "ref-zstd": ("ref", "tar -cf - . | zstd -1 -T0 | wc -c (compression limit)", "base"),
    "ref-zstd-mm4": ("ref", "tar -cf - . | zstd -1 --zstd=minMatch=4 -T0 > /dev/null (promsnap's compression work)",
                     "base"),
    "ref-zstd3": ("ref", "tar -cf - . | zstd -3 -T0 | wc -c (same at promsnap's default level; info)", "base"),
    "local-full": ("local", "promsnap backup, empty local repo", "base"),
    "local-incr-same": ("local", "promsnap backup again, nothing new", "base"),
    "local-incr-day": ("local", "promsnap backup after one more day + compaction", "next"),
    "local-restore": ("local", "promsnap restore from local repo", "base"),
    "local-full-z3": ("local", "promsnap backup --zstd-level 3, empty local repo (info)", "base"),
    "local-verify": ("local", "promsnap verify (download + SHA-256 of every object)", "base"),
    "local-verify-deep": ("local", "promsnap verify --deep (decompress, SHA-256 and TSDB structure of every file, streaming)", "base"),
    "ref-unzstd": ("local", "zstd -d of the local repo's packs (archives in format 1), one process per core "
                   "(decompression limit; info)", "base"),
    "ref-unzstd-sha": ("local", "zstd -d of each pack + SHA-256 of the output twice (blobs, files), one process "
                       "per core (deep's reference)", "base"),
    "local-restore-largest": ("local", "promsnap restore --concurrency 1 of a repo holding only the largest block",
                              "largest"),
    "local-verify-deep-largest": ("local", "promsnap verify --deep --concurrency 1 of that repo", "largest"),
    "ref-unzstd-largest": ("local", "zstd -d of that repo's packs + SHA-256 of the output twice, one process "
                           "per core (deep's reference)", "largest"),
    "f1-restore-largest": ("local", "the same restore from a format 1 repo (one tar.zst stream: the single-stream "
                           "time before format 2)", "largest"),
    "f1-verify-deep-largest": ("local", "the same verify --deep of the format 1 repo", "largest"),
    "garage-full": ("garage", "promsnap backup, empty bucket", "base"),
    "garage-incr-same": ("garage", "promsnap backup again, nothing new", "base"),
    "garage-incr-day": ("garage", "promsnap backup after one more day + compaction", "next"),
    "garage-restore": ("garage", "promsnap restore from Garage", "base"),
    "garage-verify": ("garage", "promsnap verify (download + SHA-256 of every object)", "base"),
    "garage-verify-deep": ("garage", "promsnap verify --deep (decompress, SHA-256 and TSDB structure of every file, streaming)", "base"),
    "restic-full": ("restic", "restic backup, fresh repo in Garage", "base"),
    "restic-incr-same": ("restic", "restic backup again, nothing new", "base"),
    "restic-incr-day": ("restic", "restic backup of the next snapshot dir (new path)", "next"),
    "restic-restore": ("restic", "restic restore from Garage", "base"),
    "rclone-full": ("rclone", "tar | zstd -1 -T0 | rclone rcat to Garage", "base"),
    "rclone-restore": ("rclone", "rclone cat | zstd -d | tar -x (info)", "base"),
    "mem-full": ("mem", "promsnap backup of the memory set (many series), empty local repo", "mem"),
    "mem-restore": ("mem", "promsnap restore of the memory set", "mem"),
    "mem-verify-deep": ("mem", "promsnap verify --deep of the memory set", "mem"),
}
GROUPS = ["ref", "local", "garage", "restic", "rclone", "mem"]
# The memory cases and the case of the main set that does the same.
MEMORY_PAIRS = {"mem-full": "local-full", "mem-restore": "local-restore", "mem-verify-deep": "local-verify-deep"}
VERIFY_CASES = ("local-verify", "garage-verify", "local-verify-deep", "garage-verify-deep", "local-verify-deep-largest",
                "f1-verify-deep-largest", "mem-verify-deep")
INCR_DAY_CASES = ("local-incr-day", "garage-incr-day", "restic-incr-day")


class Bench:
    def __init__(self, args, info, memory_info=None):
        self.args = args
        self.info = info
        self.memory_info = memory_info
        self.snap = {"base": info["snap_base"]["path"], "next": info["snap_next"]["path"]}
        self.bytes = {"base": info["snap_base"]["bytes"], "next": info["snap_next"]["bytes"]}
        if memory_info:
            self.snap["mem"] = memory_info["snap_base"]["path"]
            self.bytes["mem"] = memory_info["snap_base"]["bytes"]
        self.work = args.work
        self.results = {name: [] for name in CASES}
        self.selected = select(args.only)
        # Extra flags for every promsnap backup (not local-full-z3) / restore,
        # to compare settings: e.g. --backup-args "--zstd-level 1".
        self.backup_args = shlex.split(args.backup_args)
        self.restore_args = shlex.split(args.restore_args)
        self.verify = self._verify_available()
        if not self.verify:
            self.selected -= set(VERIFY_CASES)
        self.cold = self._can_drop_caches()
        self.clk = os.sysconf("SC_CLK_TCK")
        g = args.garage_endpoint
        # The caller's AWS_*/RESTIC_*/RCLONE_*/PROMSNAP_* settings (profiles, CA
        # bundles, other repos) must not leak into the tools talking to our Garage.
        own = ("AWS_", "RESTIC_", "RCLONE_", "PROMSNAP_", "GARAGE_")
        self.s3_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(own)},
            "AWS_ACCESS_KEY_ID": args.garage_key_id,
            "AWS_SECRET_ACCESS_KEY": args.garage_secret,
            "PROMSNAP_S3_ENDPOINT": g,
            "PROMSNAP_S3_REGION": "garage",
            "PROMSNAP_S3_PATH_STYLE": "true",
            "RESTIC_PASSWORD": "promsnap-bench-only",
            "RESTIC_CACHE_DIR": os.path.join(self.work, "restic-cache"),
            "RCLONE_CONFIG": os.path.join(self.work, "rclone.conf"),  # empty: remotes come from env
            "RCLONE_CONFIG_GARAGE_TYPE": "s3",
            "RCLONE_CONFIG_GARAGE_PROVIDER": "Other",
            "RCLONE_CONFIG_GARAGE_ENDPOINT": g,
            "RCLONE_CONFIG_GARAGE_ACCESS_KEY_ID": args.garage_key_id,
            "RCLONE_CONFIG_GARAGE_SECRET_ACCESS_KEY": args.garage_secret,
            "RCLONE_CONFIG_GARAGE_REGION": "garage",
            "RCLONE_CONFIG_GARAGE_FORCE_PATH_STYLE": "true",
        }
        open(self.s3_env["RCLONE_CONFIG"], "w").close()

    # -- plumbing -----------------------------------------------------------

    def _verify_available(self):
        # HOOK(verify): the verify cases run only if this binary has the
        # command (it arrived after this benchmark was written; older builds
        # skip them). The command line used is in promsnap_group().
        p = subprocess.run([self.args.promsnap, "verify", "--help"], capture_output=True)
        return p.returncode == 0

    def _can_drop_caches(self):
        if self.args.no_drop_caches:
            return False
        try:
            self._drop_caches()
            return True
        except OSError:
            return False

    @staticmethod
    def _drop_caches():
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")

    def garage_cpu(self):
        """user+sys CPU seconds the Garage server has used so far."""
        try:
            with open(f"/proc/{self.args.garage_pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / self.clk
        except (OSError, IndexError, ValueError):
            return 0.0

    def _settle(self, quiet=0.01, every=0.5, most=30.0):
        """Waits (at most `most` seconds) until the Garage server is idle:
        at most `quiet` CPU seconds in `every` seconds. Garage goes on
        working for a while after the uploads of a backup (block writes,
        metadata, resync queues); a command measured while it does shares
        the cores with it, and its time depends on what ran before it."""
        if not self.args.garage_pid:
            return
        deadline = time.monotonic() + most
        last = self.garage_cpu()
        while time.monotonic() < deadline:
            time.sleep(every)
            now = self.garage_cpu()
            if now - last <= quiet:
                return
            last = now
        log(f"Garage still busy after {most:.0f} s; measuring anyway")

    def step(self, name, cmd, snap="base", env=None, cwd=None, check=True):
        """Runs one command; records its measurements if `name` is selected.

        Unselected steps still run when a selected one depends on them (e.g.
        the full backup before a restore), but are not measured or recorded.
        Returns (record, stdout).
        """
        measured = name in self.selected
        if measured:
            self._settle()
        if measured and self.cold:
            self._drop_caches()
        if isinstance(cmd, str):  # a shell pipeline
            cmd = ["bash", "-o", "pipefail", "-c", cmd]
        out_path = os.path.join(self.work, "step.out")
        err_path = os.path.join(self.work, "step.err")
        rss_path = os.path.join(self.work, "step.rss")
        # Peak RSS comes from GNU time (%M): the ru_maxrss of our own wait4
        # would include the Python parent's RSS, inherited by the child
        # between fork and exec (~25 MB floor).
        cmd = ["/usr/bin/time", "-f", "%M", "-o", rss_path, *cmd]
        server0 = self.garage_cpu()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                    env=env or self.s3_env, cwd=cwd)
            _, status, ru = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4 already
        with open(out_path, errors="replace") as f:
            stdout = f.read()
        if proc.returncode != 0:
            with open(err_path, errors="replace") as f:
                tail = f.read()[-3000:]
            if check:
                die(f"{name}: `{' '.join(cmd)}` exited {proc.returncode}:\n{tail}")
            log(f"{name}: exited {proc.returncode} (not fatal): {tail.strip()[-300:]}")
        rec = {
            "wall_s": round(wall, 3),
            "user_s": round(ru.ru_utime, 3),
            "sys_s": round(ru.ru_stime, 3),
            "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
            "server_cpu_s": round(self.garage_cpu() - server0, 3),
            "peak_rss_mb": round(read_rss_kib(rss_path) * 1024 / 1e6, 1),
            "mb_per_s": round(self.bytes[snap] / 1e6 / wall, 1),
            "exit_code": proc.returncode,
        }
        if measured:
            self.results[name].append(rec)
            log(f"  {name:17} {wall:7.2f}s  cpu {rec['cpu_s']:6.2f}s  rss {rec['peak_rss_mb']:6.1f} MB"
                f"  {rec['mb_per_s']:7.1f} MB/s")
        return rec, stdout

    def want(self, *names):
        return any(n in self.selected for n in names)

    def garage(self, *args):
        return run([self.args.garage_bin, "-c", self.args.garage_config, *args])

    def bucket(self, name):
        self.garage("bucket", "create", name)
        self.garage("bucket", "allow", "--read", "--write", "--owner", name, "--key", self.args.garage_key_id)
        return name

    def bucket_bytes(self, bucket):
        """Sum of object sizes in a bucket (exact, via rclone's listing)."""
        out = run(["rclone", "size", "--json", f"garage:{bucket}"], env=self.s3_env)
        return json.loads(out)["bytes"]

    # -- the cases ----------------------------------------------------------

    def promsnap(self, *args):
        return [self.args.promsnap, *args]

    def refs(self):
        base = self.snap["base"]
        if self.want("ref-tar"):
            # Through cat: GNU tar does not read file contents when writing to /dev/null.
            self.step("ref-tar", "tar -cf - . | cat > /dev/null", cwd=base)
        if self.want("ref-zstd"):
            rec, out = self.step("ref-zstd", "tar -cf - . | zstd -1 -T0 | wc -c", cwd=base)
            rec["stored_bytes"] = int(out.strip())
        if self.want("ref-zstd-mm4"):
            self.step("ref-zstd-mm4", "tar -cf - . | zstd -1 --zstd=minMatch=4 -T0 > /dev/null", cwd=base)
        if self.want("ref-zstd3"):
            rec, out = self.step("ref-zstd3", "tar -cf - . | zstd -3 -T0 | wc -c", cwd=base)
            rec["stored_bytes"] = int(out.strip())

    def promsnap_group(self, kind, r):
        """local-* or garage-*: full, incremental (same, +1 day), restore, verify."""
        names = [f"{kind}-{c}" for c in ("full", "incr-same", "incr-day", "restore", "verify", "verify-deep")]
        if kind == "local":
            repo_dir = os.path.join(self.work, f"local-repo-{r}")
            repo = repo_dir
            stored = lambda: tree_bytes(repo_dir)  # noqa: E731
        else:
            bucket = self.bucket(f"promsnap-{r}")
            repo = f"s3://{bucket}/prometheus"
            stored = lambda: self.bucket_bytes(bucket)  # noqa: E731
        deep_refs = ("ref-unzstd", "ref-unzstd-sha") if kind == "local" else ()
        if self.want(*names, *deep_refs):
            backup = self.promsnap("backup", "--init", "--repo", repo, "--instance", "bench", "--json",
                                   *self.backup_args)
            rec, out = self.step(names[0], [*backup, "--from-dir", self.snap["base"]])
            full = json.loads(out)
            rec.update(promsnap=full, stored_bytes=stored())
            if kind == "local":
                # What the full snapshot is stored in: the reference for verify --deep.
                full_objects = list_objects(repo_dir, os.path.join(self.work, f"full-objects-{r}"))
            if self.want(names[1]):
                rec, out = self.step(names[1], [*backup, "--from-dir", self.snap["base"]])
                rec.update(promsnap=json.loads(out), stored_bytes=stored())
            if self.want(names[2]):
                before = stored()
                rec, out = self.step(names[2], [*backup, "--from-dir", self.snap["next"]], snap="next")
                after = stored()
                rec.update(promsnap=json.loads(out), stored_bytes=after, stored_added_bytes=after - before)
            if self.want(names[3]):
                target = os.path.join(self.work, f"{kind}-restore-{r}")
                rec, out = self.step(names[3], self.promsnap("restore", full["snapshot_id"], "--repo", repo,
                                                             "--data-dir", target, "--json", *self.restore_args))
                rec.update(promsnap=json.loads(out), restored_bytes=tree_bytes(target))
                if rec["restored_bytes"] != self.bytes["base"]:
                    log(f"WARNING: {names[3]} restored {rec['restored_bytes']} bytes, "
                        f"snapshot has {self.bytes['base']}")
                shutil.rmtree(target)
            if self.want(names[4]):
                # HOOK(verify): runs only when `promsnap verify --help` succeeds.
                # Default mode: download every object of the full snapshot and
                # check its SHA-256. Exit 3 (problems found) is reported, not fatal.
                rec, _ = self.step(names[4], self.promsnap("verify", full["snapshot_id"], "--repo", repo,
                                                           "--json"), check=False)
                if rec["exit_code"] != 0:
                    log(f"WARNING: {names[4]} exited {rec['exit_code']}")
            if self.want(names[5]):
                rec, _ = self.step(names[5], self.promsnap("verify", full["snapshot_id"], "--repo", repo,
                                                           "--deep", "--json"), check=False)
                if rec["exit_code"] != 0:
                    log(f"WARNING: {names[5]} exited {rec['exit_code']}")
        if kind == "local" and os.path.isdir(repo_dir):
            # The references for verify --deep read the packs just verified.
            if self.want("ref-unzstd"):
                self.step("ref-unzstd", per_object(full_objects, UNZSTD), cwd=repo_dir)
            if self.want("ref-unzstd-sha"):
                self.step("ref-unzstd-sha", per_object(full_objects, UNZSTD_SHA), cwd=repo_dir)
        if kind == "local" and self.want("local-restore-largest", "local-verify-deep-largest", "ref-unzstd-largest",
                                         "f1-restore-largest", "f1-verify-deep-largest"):
            self.largest_block(r)
        if kind == "local":
            shutil.rmtree(repo_dir, ignore_errors=True)
            if self.want("local-full-z3"):
                repo_z3 = os.path.join(self.work, f"local-repo-z3-{r}")
                rec, out = self.step("local-full-z3", self.promsnap(
                    "backup", "--init", "--repo", repo_z3, "--instance", "bench", "--json", "--zstd-level", "3",
                    "--from-dir", self.snap["base"]))
                rec.update(promsnap=json.loads(out), stored_bytes=tree_bytes(repo_z3))
                shutil.rmtree(repo_z3)

    def largest_block(self, r):
        """Restore and deep verify of the largest block alone, --concurrency 1.

        Prometheus's largest blocks hold most of the data, so this block
        sets the wall time of a restore or a deep verify. In format 1 it is
        one tar.zst stream, decoded on one core (the `f1-*` cases: the
        single-stream time); format 2 must use every core for it. The
        reference is zstd -d of its packs plus the two SHA-256 passes deep
        must make (each blob, each file), one process per core.
        """
        base = self.snap["base"]
        blocks = [d for d in os.listdir(base) if len(d) == 26 and os.path.isdir(os.path.join(base, d))]
        largest = max(blocks, key=lambda d: tree_bytes(os.path.join(base, d)))
        src = os.path.join(self.work, f"largest-src-{r}")

        def link(a, b):
            try:
                os.link(a, b)
            except OSError:
                shutil.copy2(a, b)

        shutil.copytree(os.path.join(base, largest), os.path.join(src, largest), copy_function=link)
        self.bytes["largest"] = tree_bytes(src)
        for fmt, restore_case, deep_case, ref in (
                (2, "local-restore-largest", "local-verify-deep-largest", "ref-unzstd-largest"),
                (1, "f1-restore-largest", "f1-verify-deep-largest", None)):
            if not self.want(restore_case, deep_case, *([ref] if ref else [])):
                continue
            repo = os.path.join(self.work, f"largest-repo-f{fmt}-{r}")
            out = run(self.promsnap("backup", "--init", "--repo", repo, "--instance", "bench", "--from-dir", src, "--json",
                                    "--repository-format", str(fmt)))
            snapshot = json.loads(out)["snapshot_id"]
            if self.want(restore_case):
                target = os.path.join(self.work, f"largest-restore-{r}")
                rec, _ = self.step(restore_case, self.promsnap("restore", snapshot, "--repo", repo, "--data-dir",
                                                               target, "--concurrency", "1", "--json"),
                                   snap="largest")
                rec["restored_bytes"] = tree_bytes(target)
                if rec["restored_bytes"] != self.bytes["largest"]:
                    log(f"WARNING: {restore_case} restored {rec['restored_bytes']} bytes, "
                        f"the block has {self.bytes['largest']}")
                shutil.rmtree(target)
            if self.want(deep_case):
                rec, _ = self.step(deep_case, self.promsnap("verify", "--repo", repo, "--deep", "--concurrency", "1",
                                                            "--json"), snap="largest", check=False)
                if rec["exit_code"] != 0:
                    log(f"WARNING: {deep_case} exited {rec['exit_code']}")
            if ref and self.want(ref):
                objects = list_objects(repo, os.path.join(self.work, f"largest-objects-{r}"))
                self.step(ref, per_object(objects, UNZSTD_SHA), snap="largest", cwd=repo)
            shutil.rmtree(repo)
        shutil.rmtree(src)

    def memory_group(self, r):
        """Backup, restore and deep verify of the memory set (at least 100 000
        series for --size large): peak RSS must not grow with the series."""
        if not self.memory_info or not self.want(*MEMORY_PAIRS):
            return
        repo = os.path.join(self.work, f"mem-repo-{r}")
        rec, out = self.step("mem-full", self.promsnap("backup", "--init", "--repo", repo, "--instance", "bench", "--json",
                                                       *self.backup_args, "--from-dir", self.snap["mem"]), snap="mem")
        full = json.loads(out)
        rec.update(promsnap=full, stored_bytes=tree_bytes(repo))
        if self.want("mem-restore"):
            target = os.path.join(self.work, f"mem-restore-{r}")
            rec, out = self.step("mem-restore", self.promsnap("restore", full["snapshot_id"], "--repo", repo,
                                                              "--data-dir", target, "--json", *self.restore_args),
                                 snap="mem")
            rec["restored_bytes"] = tree_bytes(target)
            if rec["restored_bytes"] != self.bytes["mem"]:
                log(f"WARNING: mem-restore restored {rec['restored_bytes']} bytes, snapshot has {self.bytes['mem']}")
            shutil.rmtree(target)
        if self.want("mem-verify-deep"):
            rec, _ = self.step("mem-verify-deep", self.promsnap("verify", full["snapshot_id"], "--repo", repo,
                                                                "--deep", "--json"), snap="mem", check=False)
            if rec["exit_code"] != 0:
                log(f"WARNING: mem-verify-deep exited {rec['exit_code']}")
        shutil.rmtree(repo)

    def restic_group(self, r):
        names = ("restic-full", "restic-incr-same", "restic-incr-day", "restic-restore")
        if not self.want(*names):
            return
        bucket = self.bucket(f"restic-{r}")
        opts = ["-r", f"s3:{self.args.garage_endpoint}/{bucket}", "-o", "s3.region=garage",
                "-o", "s3.bucket-lookup=path"]
        shutil.rmtree(self.s3_env["RESTIC_CACHE_DIR"], ignore_errors=True)
        run(["restic", *opts, "init"], env=self.s3_env)
        backup = ["restic", *opts, "backup", "--host", "bench", "--json"]

        def summary(out):
            docs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            return next(d for d in reversed(docs) if d.get("message_type") == "summary")

        rec, out = self.step("restic-full", [*backup, self.snap["base"]])
        full = summary(out)
        rec.update(restic=full, stored_bytes=self.bucket_bytes(bucket))
        if self.want("restic-incr-same"):
            rec, out = self.step("restic-incr-same", [*backup, self.snap["base"]])
            rec.update(restic=summary(out), stored_bytes=self.bucket_bytes(bucket))
        if self.want("restic-incr-day"):
            # A new snapshot dir is a new path to restic: no parent snapshot, so it
            # reads every file (and stores only chunks it has not seen).
            before = self.bucket_bytes(bucket)
            rec, out = self.step("restic-incr-day", [*backup, self.snap["next"]], snap="next")
            after = self.bucket_bytes(bucket)
            rec.update(restic=summary(out), stored_bytes=after, stored_added_bytes=after - before)
        if self.want("restic-restore"):
            target = os.path.join(self.work, f"restic-restore-{r}")
            rec, _ = self.step("restic-restore", ["restic", *opts, "restore", full["snapshot_id"],
                                                  "--target", target])
            rec["restored_bytes"] = tree_bytes(target)
            shutil.rmtree(target)

    def rclone_group(self, r):
        if not self.want("rclone-full", "rclone-restore"):
            return
        bucket = self.bucket(f"rclone-{r}")
        rec, _ = self.step("rclone-full", f"tar -cf - . | zstd -1 -T0 | rclone rcat garage:{bucket}/x.tar.zst",
                           cwd=self.snap["base"])
        rec["stored_bytes"] = self.bucket_bytes(bucket)
        if self.want("rclone-restore"):
            target = os.path.join(self.work, f"rclone-restore-{r}")
            os.makedirs(target)
            rec, _ = self.step("rclone-restore",
                               f"rclone cat garage:{bucket}/x.tar.zst | zstd -d | tar -xf - -C {target}")
            rec["restored_bytes"] = tree_bytes(target)
            shutil.rmtree(target)

    def run_all(self):
        for r in range(1, self.args.runs + 1):
            log(f"run {r}/{self.args.runs}")
            self.refs()
            self.promsnap_group("local", r)
            self.promsnap_group("garage", r)
            self.restic_group(r)
            self.rclone_group(r)
            self.memory_group(r)


# What `per_object` pipes each pack's blobs (or each format 1 archive) into.
UNZSTD = "zstd -qdc > /dev/null"
UNZSTD_SHA = "zstd -qdc | tee >(openssl dgst -sha256 > /dev/null) | openssl dgst -sha256 > /dev/null"
# A pack's blobs are back to back before its header; its last 12 bytes are
# the header's length (u32 LE) and "PSNPACK2" (docs/FORMAT.md).
PACK_BLOBS = ('n=$(( $(stat -c %s "$0") - 12 - $(tail -c 12 "$0" | od -A n -t u4 --endian=little -N 4) )); '
              'head -c "$n" "$0"')


def list_objects(repo_dir, listfile):
    """Writes the packs (format 2) or archives (format 1) in `repo_dir` to
    `listfile`, NUL-separated and relative to it, for `per_object`."""
    found = []
    for top in ("packs", "blocks"):
        for root, _dirs, files in os.walk(os.path.join(repo_dir, top)):
            for f in files:
                rel = os.path.relpath(os.path.join(root, f), repo_dir)
                if top == "packs" or rel.endswith(".tar.zst"):
                    found.append(rel)
    with open(listfile, "w") as f:
        f.write("".join(p + "\0" for p in sorted(found)))
    return listfile


def per_object(listfile, then):
    """A shell command, run in the repo dir: for each object of `listfile`,
    its zstd frames (a pack's bytes before its header, an archive whole)
    piped into `then`, one process per core."""
    cores = os.cpu_count() or 1
    script = f'case "$0" in packs/*) {PACK_BLOBS} ;; *) cat "$0" ;; esac | {then}'
    return f"xargs -0 -r -a {shlex.quote(listfile)} -P{cores} -n1 bash -o pipefail -c {shlex.quote(script)}"


def floor_of(info, cache):
    """The floor of the incr-day step (floor.py), cached next to the data set."""
    key = {"version": 2, "zstd_level": 1,
           "base": [b["ulid"] for b in info["snap_base"]["blocks"]],
           "next": [b["ulid"] for b in info["snap_next"]["blocks"]]}
    path = os.path.join(cache, "floor.json")
    try:
        with open(path) as f:
            doc = json.load(f)
        if doc.get("key") == key:
            return doc["floor"]
    except (OSError, ValueError, KeyError):
        pass
    log("floor: hashing every chunk record of snap-base and of snap-next's new blocks")
    result = floor_scan.compute(info["snap_base"]["path"], info["snap_next"]["path"], key["zstd_level"])
    log(f"floor: {result['floor_bytes'] / 1e6:.1f} MB in {result['seconds']} s")
    with open(path + ".tmp", "w") as f:
        json.dump({"key": key, "floor": result}, f, indent=1)
    os.rename(path + ".tmp", path)
    return result


def largest_share(blocks):
    """(hours, share of the bytes) of the largest block of a block table."""
    big = max(blocks, key=lambda b: b["bytes"])
    return big["hours"], big["bytes"] / max(1, sum(b["bytes"] for b in blocks))


def read_rss_kib(path):
    """The %M (KiB) that GNU time wrote as the last line of `path`."""
    with open(path) as f:
        return int(f.read().split()[-1])


def select(only):
    """Case names from --only (case names or group names; empty = all)."""
    if not only:
        return set(CASES)
    chosen = set()
    for item in filter(None, (s.strip() for s in only.split(","))):
        if item in GROUPS:
            chosen |= {n for n, c in CASES.items() if c[0] == item}
        elif item in CASES:
            chosen.add(item)
        else:
            die(f"--only: unknown case or group {item!r}; known: {', '.join(GROUPS + list(CASES))}")
    return chosen


# -- summary and report -----------------------------------------------------------


def summarise(records):
    """median/min/max of every numeric field present in all runs."""
    out = {}
    for key in records[0]:
        vals = [r[key] for r in records if isinstance(r.get(key), (int, float))]
        if len(vals) == len(records):
            out[key] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    return out


def targets(summary, floor=None):
    """The issue's targets as rows: (target, lhs case/field, rhs, ratio or value, goal, pass)."""
    def med(case, field="wall_s"):
        return summary.get(case, {}).get(field, {}).get("median")

    def show(case, field, x):
        if field == "wall_s":
            return f"{case} {x:.2f} s"
        if field == "peak_rss_mb":
            return f"{case} {x:.0f} MB"
        return f"{case} {x / 1e6:.1f} MB"

    rows = []

    def compare(label, a, x, b, y, limit, field):
        if x is None or y is None or y == 0:
            return
        rows.append({"target": label, "promsnap": show(a, field, x), "reference": show(b, field, y),
                     "value": round(x / y, 3), "goal": f"<= {limit}x", "pass": x / y <= limit})

    def ratio(label, a, b, limit, field="wall_s"):
        compare(label, a, med(a, field), b, med(b, field), limit, field)

    def absolute(label, case, field, limit, unit, scale=1):
        vals = [med(c, field) for c in case]
        vals = [v for v in vals if v is not None]
        if not vals:
            return
        worst = max(vals)
        rows.append({"target": label, "promsnap": ", ".join(f"{c} {med(c, field) * scale:.2f}"
                                                             for c in case if med(c, field) is not None),
                     "reference": "-", "value": round(worst * scale, 3), "goal": f"< {limit} {unit}",
                     "pass": worst * scale < limit})

    ratio("full backup to Garage vs restic backup", "garage-full", "restic-full", 0.5)
    ratio("full backup to Garage vs tar|zstd|rclone rcat", "garage-full", "rclone-full", 0.9)
    ratio("full backup local vs compression limit", "local-full", "ref-zstd", 1.25)
    ratio("full backup local vs tar | zstd -1 --zstd=minMatch=4 -T0 (the same compression work)", "local-full",
          "ref-zstd-mm4", 1.0)
    ratio("stored bytes (Garage, full) vs restic's", "garage-full", "restic-full", 1.0, field="stored_bytes")
    ratio("stored bytes added after one more day (Garage) vs restic's", "garage-incr-day", "restic-incr-day", 0.3,
          field="stored_added_bytes")
    if floor:
        for case, where in (("garage-incr-day", "Garage"), ("local-incr-day", "local")):
            compare(f"stored bytes added after one more day ({where}) vs the floor", case,
                    med(case, "stored_added_bytes"), "floor", floor["floor_bytes"], 1.5, "stored_added_bytes")
        compare("restic's stored bytes added after one more day vs the floor (info)", "restic-incr-day",
                med("restic-incr-day", "stored_added_bytes"), "floor", floor["floor_bytes"], float("inf"),
                "stored_added_bytes")
    absolute("incremental, nothing new (wall)", ["local-incr-same", "garage-incr-same"], "wall_s", 2, "s")
    ratio("restore from Garage vs restic restore", "garage-restore", "restic-restore", 0.8)
    ratio("verify --deep (local) vs zstd -d + SHA-256 twice on all cores", "local-verify-deep", "ref-unzstd-sha", 1.0)
    ratio("verify --deep (local) vs zstd -d alone on all cores (info)", "local-verify-deep", "ref-unzstd",
          float("inf"))
    ratio("restore --concurrency 1 of the largest block vs format 1 (single stream)", "local-restore-largest",
          "f1-restore-largest", 0.65)
    ratio("verify --deep --concurrency 1 of the largest block vs format 1 (single stream)",
          "local-verify-deep-largest", "f1-verify-deep-largest", 0.65)
    ratio("verify --deep of the largest block vs zstd -d + SHA-256 twice on all cores", "local-verify-deep-largest",
          "ref-unzstd-largest", 1.0)
    absolute("peak RSS on the memory set (backup, restore, verify --deep)", list(MEMORY_PAIRS), "peak_rss_mb",
             200, "MB")
    for mem, same in MEMORY_PAIRS.items():
        ratio(f"peak RSS on the memory set vs this set ({same.split('-', 1)[1]})", mem, same, 1.5,
              field="peak_rss_mb")
    promsnap_cases = [c for c in CASES if c.startswith(("local-", "garage-", "f1-", "mem-")) and c in summary]
    if promsnap_cases:
        worst = max(promsnap_cases, key=lambda c: summary[c]["peak_rss_mb"]["max"])
        v = summary[worst]["peak_rss_mb"]["max"]
        rows.append({"target": "peak RSS of promsnap (max over all cases and runs)",
                     "promsnap": f"{worst} {v:.0f} MB", "reference": "-", "value": v,
                     "goal": "< 200 MB", "pass": v < 200})
    for row in rows:
        if row["goal"] == "<= infx":
            row["goal"] = "info"
    return rows


def fmt_range(s, field, fmt="{:.2f}", scale=1.0):
    if field not in s:
        return "-"
    m, lo, hi = (fmt.format(s[field][k] * scale) for k in ("median", "min", "max"))
    return m if lo == hi else f"{m} ({lo}-{hi})"


def cell(text):
    """Markdown table cell: a literal | would end the cell."""
    return str(text).replace("|", "\\|")


def markdown(report):
    meta, summary = report["meta"], report["summary"]
    ds = meta["dataset"]
    out = [f"## promsnap benchmark: {meta['size']} data set, {meta['runs']} run(s), {meta['date']}", ""]
    out.append(f"- Data: {ds['series']} series, {ds['samples'] / 1e6:.0f} M samples (15 days incl. the held-back "
               f"day; built once in {ds['generation_seconds']:.0f} s, cached); snap-base {ds['base_bytes'] / 1e6:.0f} MB "
               f"in {ds['base_blocks']} blocks ({ds['base_hours']} h), snap-next {ds['next_bytes'] / 1e6:.0f} MB "
               f"in {ds['next_blocks']} blocks.")
    out.append(f"- Machine: {meta['cpus']} CPUs, {meta['mem_gib']} GiB; load average {meta['load_before']} before, "
               f"{meta['load_after']} after (shared machine: numbers are noisy). Page cache: {meta['cache']}.")
    out.append(f"- Versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}; "
               f"promsnap binary: {meta['promsnap_rev']}.")
    hours, share = ds["largest_block_hours"], ds["largest_block_share"]
    out.append(f"- Largest block of snap-base: {hours:g} h, {share:.0%} of its bytes"
               + ("" if hours >= 162 else " (no full 162 h block: the restore targets also want one)") + ".")
    if report.get("floor"):
        fl = report["floor"]
        out.append(f"- Floor of the incr-day step (record-level hash scan, `scripts/bench/floor.py`): "
                   f"**{fl['floor_bytes'] / 1e6:.1f} MB** = zstd -{fl['zstd_level']} --zstd=minMatch=4 of the "
                   f"{fl['new_unique_record_bytes'] / 1e6:.1f} MB of chunk records ({fl['new_unique_records']} of "
                   f"{fl['new_records']}) in snap-next's {fl['new_blocks']} new blocks "
                   f"({fl['new_chunk_file_bytes'] / 1e6:.1f} MB of chunk files) that snap-base does not hold, "
                   f"plus their {fl['new_index_bytes'] / 1e6:.1f} MB of index files.")
    if meta.get("memory_set"):
        ms = meta["memory_set"]
        out.append(f"- Memory set (`mem-*`): {ms['series']} series, {ms['samples'] / 1e6:.0f} M samples, "
                   f"{ms['bytes'] / 1e6:.0f} MB in {ms['blocks']} blocks ({ms['hours']} h).")
    if meta["backup_args"] or meta["restore_args"]:
        out.append(f"- Extra flags: backup `{meta['backup_args']}`, restore `{meta['restore_args']}`.")
    out.append("- Median (min-max) over runs. MB = 10^6 bytes; MB/s = TSDB bytes / wall time. CPU = user+sys "
               "of the command incl. its pipeline; Garage CPU = the S3 server's CPU during the case.")
    out.append("")
    out.append("| case | what | wall s | MB/s | CPU s | Garage CPU s | peak RSS MB | stored MB |")
    out.append("|---|---|---|---|---|---|---|---|")
    for name, s in summary.items():
        stored = fmt_range(s, "stored_bytes", "{:.0f}", 1e-6)
        if "stored_added_bytes" in s:
            stored += " (+" + fmt_range(s, "stored_added_bytes", "{:.0f}", 1e-6) + ")"
        out.append(f"| {name} | {cell(CASES[name][1])} | {fmt_range(s, 'wall_s')} | {fmt_range(s, 'mb_per_s', '{:.0f}')} | "
                   f"{fmt_range(s, 'cpu_s', '{:.1f}')} | {fmt_range(s, 'server_cpu_s', '{:.1f}')} | "
                   f"{fmt_range(s, 'peak_rss_mb', '{:.0f}')} | {stored} |")
    out.append("")
    if report["targets"]:
        out.append("| target | promsnap | reference | ratio / value | goal | result |")
        out.append("|---|---|---|---|---|---|")
        for t in report["targets"]:
            result = "info" if t["goal"] == "info" else "PASS" if t["pass"] else "**FAIL**"
            out.append(f"| {cell(t['target'])} | {t['promsnap']} | {t['reference']} | {t['value']:.2f} | {t['goal']} | "
                       f"{result} |")
        out.append("")
    return "\n".join(out)


def versions(promsnap):
    def first_line(cmd):
        """The first version-looking word of the tool's version output."""
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return "?"
        m = re.search(r"v?\d+\.\d+[\w.+-]*", p.stdout or p.stderr)
        return m.group(0) if m else "?"
    return {
        "promsnap": first_line([promsnap, "--version"]),
        "restic": first_line(["restic", "version"]),
        "rclone": first_line(["rclone", "version"]),
        "zstd": first_line(["zstd", "--version"]),
        "garage": first_line(["garage", "--version"]),
        "prometheus": first_line(["prometheus", "--version"]),
    }


def main():
    ap = argparse.ArgumentParser(description="promsnap benchmark runner (use scripts/bench.sh)")
    ap.add_argument("--size", choices=sorted(dataset.SIZES), default="large")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", default="~/.cache/promsnap-bench")
    ap.add_argument("--out")
    ap.add_argument("--only", default="")
    ap.add_argument("--no-drop-caches", action="store_true")
    ap.add_argument("--backup-args", default="", help="extra flags for promsnap backup")
    ap.add_argument("--restore-args", default="", help="extra flags for promsnap restore")
    ap.add_argument("--promsnap", required=True)
    ap.add_argument("--promsnap-rev", default="?", help="where the binary came from (for the report)")
    ap.add_argument("--work", required=True, help="scratch dir (removed by bench.sh)")
    ap.add_argument("--garage-bin", required=True)
    ap.add_argument("--garage-config", required=True)
    ap.add_argument("--garage-pid", type=int, required=True)
    ap.add_argument("--garage-endpoint", required=True)
    ap.add_argument("--garage-key-id", required=True)
    ap.add_argument("--garage-secret", required=True)
    args = ap.parse_args()
    if args.runs < 1:
        die("--runs must be at least 1")

    info = dataset.ensure(args.size, args.data)
    cache = os.path.join(os.path.expanduser(args.data), args.size)
    out = args.out or os.path.join(cache, "bench-results.json")
    chosen = select(args.only)
    memory_info = None
    if chosen & set(MEMORY_PAIRS):
        memory_info = dataset.ensure(args.size, args.data, memory=True)
        want = dataset.MEMORY_MIN_SERIES[dataset.MEMORY_SET[args.size]]
        if memory_info["generate"]["series"] < want:
            die(f"the memory set has {memory_info['generate']['series']} series, fewer than {want}")
    floor = floor_of(info, cache) if chosen & set(INCR_DAY_CASES) else None
    bench = Bench(args, info, memory_info)
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    log(f"page cache: {'dropped before every measured command' if bench.cold else 'warm'}; "
        f"cases: {', '.join(n for n in CASES if n in bench.selected)}")
    t0 = time.monotonic()
    bench.run_all()

    summary = {n: summarise(recs) for n, recs in bench.results.items() if recs}
    base_blocks = info["snap_base"]["blocks"]
    report = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "size": args.size, "runs": args.runs, "only": args.only or "all",
            "seconds": round(time.monotonic() - t0, 1),
            "cache": "cold (drop_caches before every measured command)" if bench.cold else "warm (could not drop caches)",
            "cpus": os.cpu_count(), "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "kernel": platform.release(),
            "load_before": load_before, "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "versions": versions(args.promsnap),
            "verify_available": bench.verify,
            "promsnap_rev": args.promsnap_rev,
            "backup_args": args.backup_args, "restore_args": args.restore_args,
            "dataset": {
                "series": info["generate"]["series"], "samples": info["generate"]["samples"],
                "base_bytes": info["snap_base"]["bytes"], "base_blocks": len(base_blocks),
                "base_hours": " ".join(f"{b['hours']:g}" for b in base_blocks),
                "next_bytes": info["snap_next"]["bytes"], "next_blocks": len(info["snap_next"]["blocks"]),
                "generation_seconds": info["total_seconds"],
                "largest_block_hours": largest_share(base_blocks)[0],
                "largest_block_share": round(largest_share(base_blocks)[1], 3),
            },
            "memory_set": memory_info and {
                "series": memory_info["generate"]["series"], "samples": memory_info["generate"]["samples"],
                "bytes": memory_info["snap_base"]["bytes"], "blocks": len(memory_info["snap_base"]["blocks"]),
                "hours": " ".join(f"{b['hours']:g}" for b in memory_info["snap_base"]["blocks"]),
            },
        },
        "summary": summary,
        "floor": floor,
        "targets": targets(summary, floor),
        "runs": {n: recs for n, recs in bench.results.items() if recs},
        "dataset": info,
    }
    md = markdown(report)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.splitext(out)[0] + ".md", "w") as f:
        f.write(md + "\n")
    print(md)
    log(f"wrote {out} and {os.path.splitext(out)[0]}.md ({report['meta']['seconds']:.0f}s of measuring)")


if __name__ == "__main__":
    main()
