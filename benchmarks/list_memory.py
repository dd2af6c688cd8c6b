"""`consumers list --json` at scale: time and peak memory for 1,000 and 100,000 consumers.

Fills two fresh SQLite stores directly (bulk SQL), then runs the real program on each
and prints its wall time and peak RSS (from the kernel's accounting of the child).
The listing streams a page at a time, so the two peaks should be close.

    .venv/bin/python benchmarks/list_memory.py [--large 100000]
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
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
    open_store(f"sqlite:///{path}", create=True).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO consumers (uid, key, name, description, public_key, has_shared_secret,"
        " callback_url, signature_method, allow_plaintext, three_lo_allowed, two_lo_allowed,"
        " two_lo_execute_as, two_lo_impersonation, created_at, updated_at) VALUES"
        " (?, ?, ?, ?, ?, 0, NULL, 'RSA-SHA1', 0, 1, 0, NULL, 0, '2026-01-01 00:00:00',"
        " '2026-01-01 00:00:00')",
        ((str(uuid.uuid4()), f"app:{i:07d}", f"Application {i}", "a consumer", SPKI)
         for i in range(n)))
    conn.execute("COMMIT")
    conn.close()


def run(path: Path) -> tuple[float, int, int]:
    """Wall seconds, peak RSS (KiB) and bytes printed by `consumers list --json`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tui_oauth", "--db", str(path), "consumers",
                           "list", "--json"], cwd=ROOT, capture_output=True, check=True,
                          env={**os.environ, "PYTHON_KEYRING_BACKEND": ""})
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak, before), len(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="list-memory-"))
    for n in (1_000, args.large):  # small first: RUSAGE_CHILDREN keeps the largest peak
        path = tmp / f"{n}.db"
        fill(path, n)
        elapsed, peak, size = run(path)
        print(f"{n:>7,} consumers: consumers list --json in {elapsed:.2f} s, "
              f"peak RSS {peak / 1024:.0f} MiB, {size / 1048576:.1f} MiB of JSON")


if __name__ == "__main__":
    main()
