"""Small helpers shared by the benchmark scripts (Python 3.11 stdlib only)."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

_T0 = time.monotonic()


def log(msg):
    """Progress goes to stderr, prefixed with the seconds since start."""
    print(f"bench [{time.monotonic() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(f"FAILED: {msg}")
    sys.exit(1)


def free_port():
    """A loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, method="GET", timeout=10):
    """Returns (status, body) of a plain HTTP request; raises OSError if unreachable."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def run(cmd, **kw):
    """Runs a command that must succeed; on failure prints its output and exits."""
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        die(f"`{' '.join(map(str, cmd))}` exited {p.returncode}:\n{p.stdout}{p.stderr}")
    return p.stdout


def tree_bytes(path):
    """Sum of the sizes of the regular files under `path` (like `du -sb`, minus dirs)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            total += os.lstat(os.path.join(root, f)).st_size
    return total


def stop(proc, timeout=30):
    """SIGTERM a child we started, then SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
