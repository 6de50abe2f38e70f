#!/usr/bin/env python3
"""The fleet case of scripts/bench-fleet.sh: a repository in Garage holding
INSTANCES x SNAPSHOTS snapshots, and how long the commands about one
instance take when the others are there.

The repository is made from one real backup (the fixture blocks): its
recipes and packs are copied into each instance's data directories
(`recipes/<instance>/`, `packs/<instance>/`: a group's snapshots reference
only its own data, docs/FORMAT.md "Layout"), and its manifest, as each
instance's and each night's snapshot, into `snapshots/<instance>/<id>.json`
naming that instance's copy of the recipes, which is all the commands below
need. Then, with promsnap itself:

- `list --instance X` and `restore latest --instance X` (the restore of the
  small fixture data, so its time is an upper bound of the planning);
- `prune --instance X --dry-run`, which reads X's manifests and recipes and
  lists X's data directories only;
- `list` of everything (every manifest read, printed group by group: also
  the seconds until its first row) and `prune --dry-run` of everything, for
  comparison.

Prints a markdown table (median of --runs, wall seconds, first row and peak
RSS).
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import boto3
from botocore.config import Config


def run_timed(cmd, env):
    """Wall seconds and peak RSS (MB) of one command, which must succeed."""
    with tempfile.NamedTemporaryFile("r") as t:
        started = time.monotonic()
        out = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", t.name, *cmd],
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.monotonic() - started
        if out.returncode != 0:
            sys.exit(f"fleet: {' '.join(cmd)} failed ({out.returncode}):\n{out.stderr}")
        rss = int(t.read().strip().splitlines()[-1]) / 1024
    return wall, rss


def run_streamed(cmd, env):
    """Wall seconds, seconds until the first row (the line after the
    header) and peak RSS (MB) of a command printing a table."""
    with tempfile.NamedTemporaryFile("r") as t, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        p = subprocess.Popen(
            ["/usr/bin/time", "-f", "%M", "-o", t.name, *cmd],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        first = None
        for n, _ in enumerate(p.stdout):
            if n == 1:
                first = time.monotonic() - started
        p.wait()
        wall = time.monotonic() - started
        if p.returncode != 0:
            err.seek(0)
            sys.exit(f"fleet: {' '.join(cmd)} failed ({p.returncode}):\n{err.read()}")
        rss = int(t.read().strip().splitlines()[-1]) / 1024
    return wall, first, rss


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--promsnap", required=True)
    p.add_argument("--data", required=True, help="a data directory to back up (the fixture)")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--key-id", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--instances", type=int, default=200)
    p.add_argument("--snapshots", type=int, default=50)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--work", required=True)
    a = p.parse_args()

    bucket = "fleet"
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=a.key_id,
        AWS_SECRET_ACCESS_KEY=a.secret,
        AWS_REGION="garage",
        PROMSNAP_S3_ENDPOINT=a.endpoint,
        PROMSNAP_S3_PATH_STYLE="true",
    )
    s3 = boto3.client(
        "s3",
        endpoint_url=a.endpoint,
        aws_access_key_id=a.key_id,
        aws_secret_access_key=a.secret,
        region_name="garage",
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=32),
    )
    # The bucket is made by bench-fleet.sh (garage bucket create).
    repo = f"s3://{bucket}/repo"
    promsnap = a.promsnap

    def ok(*args):
        out = subprocess.run([promsnap, *args, "--repo", repo], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"fleet: promsnap {' '.join(args)} failed:\n{out.stderr}")
        return out.stdout

    ok("init")
    first = json.loads(ok("backup", "--from-dir", a.data, "--instance", "inst-000", "--json"))
    first_key = f"repo/snapshots/inst-000/{first['snapshot_id']}.json"
    template = json.loads(s3.get_object(Bucket=bucket, Key=first_key)["Body"].read())
    s3.delete_object(Bucket=bucket, Key=first_key)
    data = [
        o["Key"]
        for prefix in ("repo/recipes/inst-000/", "repo/packs/inst-000/")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    ]

    def copy_data(i):
        for key in data:
            s3.copy_object(
                Bucket=bucket,
                Key=key.replace("/inst-000/", f"/inst-{i:03}/", 1),
                CopySource={"Bucket": bucket, "Key": key},
            )

    def blocks_of(i):
        blocks = json.loads(json.dumps(template["blocks"]))
        for b in blocks:
            b["object"]["key"] = b["object"]["key"].replace(
                "recipes/inst-000/", f"recipes/inst-{i:03}/", 1
            )
        return blocks

    base = datetime.datetime(2026, 1, 1, 3, 15, tzinfo=datetime.timezone.utc)

    def put(i, j):
        created = base + datetime.timedelta(days=j, seconds=i)
        sid = created.strftime("%Y%m%dT%H%M%SZ") + f"-{i:04x}{j:04x}"
        m = dict(
            template,
            id=sid,
            instance=f"inst-{i:03}",
            created=created.isoformat().replace("+00:00", "Z"),
            blocks=blocks_of(i),
        )
        s3.put_object(
            Bucket=bucket,
            Key=f"repo/snapshots/inst-{i:03}/{sid}.json",
            Body=json.dumps(m).encode(),
        )

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        list(pool.map(copy_data, range(1, a.instances)))
        list(pool.map(lambda ij: put(*ij), [(i, j) for i in range(a.instances) for j in range(a.snapshots)]))
    total = a.instances * a.snapshots
    print(f"fleet: {total} manifests ({a.instances} instances x {a.snapshots}) written in "
          f"{time.monotonic() - started:.0f} s", file=sys.stderr)

    one = f"inst-{a.instances // 2:03}"
    # The list of everything also says when its first row came: it prints
    # group by group as it reads them.
    cases = [
        (f"list --instance {one}", ["list", "--instance", one], False),
        (f"restore latest --instance {one} (planning + the fixture's data)",
         ["restore", "latest", "--instance", one, "--data-dir", "DEST"], False),
        ("list (every instance)", ["list"], True),
        (f"prune --instance {one} --keep-last 10 --dry-run",
         ["prune", "--instance", one, "--keep-last", "10", "--dry-run"], False),
        ("prune --keep-last 10 --dry-run (every instance)", ["prune", "--keep-last", "10", "--dry-run"], False),
    ]
    rows = []
    for name, args, streamed in cases:
        walls, firsts, rsss = [], [], []
        for r in range(a.runs):
            dest = os.path.join(a.work, f"dest-{len(rows)}-{r}")
            cmd = [promsnap, *[dest if x == "DEST" else x for x in args], "--repo", repo]
            if streamed:
                wall, first, rss = run_streamed(cmd, env)
                firsts.append(first)
            else:
                wall, rss = run_timed(cmd, env)
            walls.append(wall)
            rsss.append(rss)
        first = f"{statistics.median(firsts):.2f}" if firsts and None not in firsts else "-"
        rows.append((name, statistics.median(walls), first, max(rsss)))
    print(f"\n## promsnap fleet benchmark: {total} snapshots of {a.instances} instances in Garage, "
          f"median of {a.runs} runs\n")
    print("| command | wall s | first row s | peak RSS MB |")
    print("|---|---|---|---|")
    for name, wall, first, rss in rows:
        print(f"| {name} | {wall:.2f} | {first} | {rss:.0f} |")


if __name__ == "__main__":
    main()
