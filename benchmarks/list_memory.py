"""`consumers list` at scale: time, time to the first line and peak memory for 1,000 and
100,000 consumers, as JSON (`--json`) and as the table.

Fills two fresh SQLite stores directly (bulk SQL), then runs the real program on each
and prints its wall time, when its first line arrived and its peak RSS (the kernel's
accounting of that child alone, wait4). Both forms stream a page at a time, so the
peaks at 1,000 and 100,000 should be close, and the first line should come as fast.

    .venv/bin/python benchmarks/list_memory.py [--large 100000]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tui_oauth.core.store import open_store  # noqa: E402

SPKI = ("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ff"
        "AtOkuyVFSn8tE/MJSFq2qNxBmQOfmKxBn54UZdjzI0lLhG5mB2lDVE2Sm+FgF5wOsfA5H0jVtw+r9Jmh/FRy2A"
        "kfHtCIE9MOfWKUsCK8TnPDVSfmFVO3LZOw0IHGvEy6gZgbAPHMNeTOqJbGKXzXjvAUyPMWHnqnrBIU3kSpePYj"
        "Vm/1vO4vXhGqlfgHFwq5/yGdRJhiWlsDSyYWzb6uqnIBnoM3Rxdh2kOTgDy4b24dWvRx8DS4A7sMl0Ay0cuoD5"
        "nF0CBgDYQ0dIO8tUIHQBjFZhvTBbUzLw/Tgx5mBwmwIDAQAB")


def fill(path: Path, n: int) -> None:
    from benchmarks.bench_support import insert_consumers

    open_store(f"sqlite:///{path}", create=True).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    insert_consumers(conn, n, SPKI)
    conn.execute("COMMIT")
    conn.close()


LAUNCHER = ("import resource, subprocess, sys\n"
            "code = subprocess.run(sys.argv[1:]).returncode\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(code)\n")


def run(path: Path, *form: str) -> tuple[float, float, int, int]:
    """Wall seconds, seconds to the first line, peak RSS (KiB) and bytes printed by
    `consumers list` with ``form`` (e.g. ``--json``)."""
    t0 = time.perf_counter()
    # Started by a small launcher that reports its child's peak RSS: a child forked from
    # this process (which filled the store) would count this one's memory as its own, as
    # Linux keeps the pre-exec high-water mark in ru_maxrss.
    child = subprocess.Popen([sys.executable, "-c", LAUNCHER, sys.executable, "-m", "tui_oauth",
                              "--db", str(path), "consumers", "list", *form], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "PYTHON_KEYRING_BACKEND": ""})
    assert child.stdout is not None and child.stderr is not None
    size = len(child.stdout.readline())
    first = time.perf_counter() - t0
    while chunk := child.stdout.read(1 << 16):
        size += len(chunk)
    report = child.stderr.read().decode()
    child.wait()
    elapsed = time.perf_counter() - t0
    if child.returncode != 0:
        raise SystemExit(f"consumers list {' '.join(form)} exited {child.returncode}: {report}")
    return elapsed, first, int(report.split()[-1]), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="list-memory-"))
    for n in (1_000, args.large):
        path = tmp / f"{n}.db"
        fill(path, n)
        for name, form in (("--json", ("--json",)), ("table", ())):
            elapsed, first, peak, size = run(path, *form)
            print(f"{n:>7,} consumers: consumers list {name:<6} in {elapsed:5.2f} s, "
                  f"first line after {first:.2f} s, peak RSS {peak / 1024:.0f} MiB, "
                  f"{size / 1048576:.1f} MiB printed")


if __name__ == "__main__":
    main()
