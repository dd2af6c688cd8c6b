"""The console at scale (issue 9): 100,000 consumers, 10,000 service providers and
1,000,000 tokens (100,000 of them on one consumer), against an empty store.

Fills a store directly (bulk SQL), then runs the real console headless (Textual's
test driver, which lays out and renders every frame as a terminal would) in a child
process per store and prints, for each:

* open: from creating the app to the Consumers tab painted with its rows;
* filter: each key of a 4-key filter typed one at a time, key to updated list;
* sort: `s` to the list re-sorted; `G`: to the last row shown;
* detail: `enter` on the consumer with 100,000 tokens to its tokens shown;
* scroll: `pagedown` through its tokens, key to rows shown;
* peak RSS of the child.

Times run from the key, sent as the terminal driver sends it, to the rows being in the
widget; Textual paints them with its next frame (at most 60 a second: <= 17 ms more).

Targets: open at most 1.5 times the empty store's, filter at most 50 ms, sort at most
100 ms, G at most 50 ms, detail at most 200 ms, peak RSS at most 1.3 times.

    .venv/bin/python benchmarks/console_scale.py [--consumers N] [--db URL]
    scripts/run-tests.sh --exec '.venv/bin/python benchmarks/console_scale.py \\
        --db "$TUI_OAUTH_TEST_PG_URL"'      # on a throw-away PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from list_memory import SPKI  # noqa: E402

from tui_oauth.core.registry import services  # noqa: E402

CONSUMER_SQL = (
    "INSERT INTO consumers (uid, key, name, description, public_key, has_shared_secret,"
    " callback_url, signature_method, allow_plaintext, three_lo_allowed, two_lo_allowed,"
    " two_lo_execute_as, two_lo_impersonation, created_at, updated_at) VALUES"
    " (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, NULL, ?, ?, ?)")
PROVIDER_SQL = (
    "INSERT INTO service_providers (uid, name, description, consumer_key, has_shared_secret,"
    " signature_method, request_token_url, authorization_url, access_token_url, allow_private,"
    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'HMAC-SHA1', ?, ?, ?, ?, ?, ?)")
TOKENS_INSERT = ("INSERT INTO tokens (token, consumer_id, type, state, user, issued_at)"
             " VALUES (?, ?, ?, 'active', ?, ?)")


def rows(consumers: int, providers: int, tokens: int) -> dict[str, Any]:
    when = "2026-01-01 00:00:00"
    return {
        "consumers": ((str(uuid.uuid4()), f"app:{i:07d}", f"Application {i % 977} #{i}",
                       "a consumer", SPKI, False, "RSA-SHA1", False, True, bool(i % 3), False,
                       when, when) for i in range(consumers)),
        "providers": ((str(uuid.uuid4()), f"Provider {i:05d}", None, f"ck-{i}", False,
                       f"https://sp{i}.example.com/oauth/request_token",
                       f"https://sp{i}.example.com/oauth/authorize",
                       f"https://sp{i}.example.com/oauth/access_token", False, when, when)
                      for i in range(providers)),
        # a tenth on the first consumer, the rest spread over all
        "tokens": ((f"t{i:09d}", 1 if i < tokens // 10 else 1 + (i * 7919) % consumers,
                    "access", f"user{i % 5000}", when) for i in range(tokens)),
    }


def fill_sqlite(url: str, consumers: int, providers: int, tokens: int) -> None:
    from tui_oauth.core.store import open_store

    open_store(url, create=True).close()
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    data = rows(consumers, providers, tokens)
    conn.execute("BEGIN")
    conn.executemany(CONSUMER_SQL, data["consumers"])
    conn.executemany(PROVIDER_SQL, data["providers"])
    conn.executemany(TOKENS_INSERT, data["tokens"])
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def fill_postgresql(url: str, consumers: int, providers: int, tokens: int) -> None:
    import psycopg

    from tui_oauth.core.database import make_engine
    from tui_oauth.core.migrations import upgrade

    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    data = rows(consumers, providers, tokens)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("TRUNCATE consumers, service_providers, tokens, held_tokens,"
                     " audit_log, nonces RESTART IDENTITY CASCADE")
        for table, sql in (("consumers", CONSUMER_SQL), ("service_providers", PROVIDER_SQL),
                           ("tokens", TOKENS_INSERT)):
            columns = sql.split("(", 1)[1].split(")", 1)[0]
            columns = columns.replace(" user,", ' "user",')
            key = {"consumers": "consumers", "service_providers": "providers",
                   "tokens": "tokens"}[table]
            with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in data[key]:
                    copy.write_row(_pg_row(table, row))
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # as autovacuum would, soon after a bulk load


def _pg_row(table: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row of the INSERT's placeholders with its constants put in, for COPY."""
    if table == "consumers":  # the statement's NULL callback and execute-as are columns
        r = list(row)
        return (*r[:6], None, *r[6:10], None, *r[10:])
    if table == "tokens":
        return (*row[:3], "active", *row[3:])
    return (*row[:5], "HMAC-SHA1", *row[5:])  # service_providers


# The child: one console, measured ------------------------------------------------


async def measure(url: str) -> dict[str, Any]:
    from textual import events

    from tui_oauth.core.store import open_store
    from tui_oauth.tui.app import make_app
    from tui_oauth.tui.screens.consumer_detail import ConsumerDetailScreen
    from tui_oauth.tui.widgets.virtual_table import VirtualTable

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_support import memory_keyring

    store = open_store(url, secrets_backend=memory_keyring())
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    app = make_app(store)
    async with app.run_test(size=(120, 40)):
        async def until(cond: Callable[[], bool], timeout: float = 30) -> float:
            start = time.perf_counter()
            while not cond():
                if time.perf_counter() - start > timeout:
                    raise TimeoutError(f"the console did not answer; focus {app.focused}"
                                       f" {app.focused.cursor_row} {app.focused.row_count}"
                                       f" {app.focused.size} reading {app.focused._reading}"
                                       f" pages {list(app.focused._pages)}"
                                       f" gen {app.focused._generation}"
                                       f" notes {[n.message for n in app._notifications]}")
                await asyncio.sleep(0.0005)
            return time.perf_counter()

        async def press(key: str) -> None:
            """As a terminal sends it (Pilot.press also waits for the CPU to go idle,
            which adds about 80 ms to every key)."""
            event = events.Key(key, {"slash": "/"}.get(key, key if len(key) == 1 else None))
            event.set_sender(app)
            app._driver.send_message(event)  # type: ignore[union-attr]

        def table() -> VirtualTable:
            return app.screen.query_one("#consumers-table", VirtualTable)

        def settled(t: VirtualTable, loads: int) -> Callable[[], bool]:
            return lambda: t.loads > loads and not t.busy and t.current_key is not None \
                if t.row_count else t.loads > loads and not t.busy

        done = await until(lambda: bool(app.screen.query("#consumers-table"))
                           and table().loaded)
        out["open_ms"] = (done - t0) * 1000
        done = await until(lambda: table().loads > 0)
        out["open_counted_ms"] = (done - t0) * 1000
        out["rows"] = table().row_count
        if not out["rows"]:
            out["rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return out
        t = table()
        await press("slash")
        await until(lambda: getattr(app.focused, "id", None) == "consumers-filter")
        keys = []
        counted = []
        for ch in "0042":
            loads, shows = t.loads, t.shows
            start = time.perf_counter()
            await press(ch)
            keys.append((await until(lambda: t.shows > shows) - start) * 1000)  # noqa: B023
            counted.append((await until(settled(t, loads)) - start) * 1000)
        out["filter_ms"] = keys
        out["filter_counted_ms"] = counted
        out["filter_rows"] = t.row_count
        await press("escape")
        await until(lambda: t.row_count == out["rows"] and not t.busy)
        for name, key in (("sort_ms", "s"), ("sort2_ms", "s"), ("reverse_ms", "S")):
            loads = t.loads
            start = time.perf_counter()
            await press(key)
            out[name] = (await until(settled(t, loads)) - start) * 1000
        # back to key order, ascending
        for key in ("S", "s", "s"):
            loads = t.loads
            await press(key)
            await until(settled(t, loads))
        await press("g")
        await until(lambda: t.cursor_row == 0 and t.current_key is not None)
        start = time.perf_counter()
        await press("G")
        out["G_ms"] = (await until(lambda: t.cursor_row == t.row_count - 1
                                   and t.current_key is not None) - start) * 1000
        await press("g")
        await until(lambda: t.current_key == "app:0000000")
        start = time.perf_counter()
        await press("enter")

        def detail_shown() -> bool:
            screen = app.screen
            return (isinstance(screen, ConsumerDetailScreen)
                    and screen.detail is not None
                    and screen.query_one("#tokens", VirtualTable).current_key is not None)

        out["detail_ms"] = (await until(detail_shown) - start) * 1000
        tokens = app.screen.query_one("#tokens", VirtualTable)
        out["detail_counted_ms"] = (await until(lambda: tokens.loads > 0) - start) * 1000
        out["tokens"] = tokens.row_count
        scrolls = []
        for _ in range(30):
            was = tokens.cursor_row
            start = time.perf_counter()
            await press("pagedown")
            scrolls.append((await until(lambda: tokens.cursor_row > was  # noqa: B023
                                        and tokens.current_key is not None) - start) * 1000)
        out["scroll_ms"] = scrolls
        start = time.perf_counter()
        await press("G")
        out["tokens_G_ms"] = (await until(lambda: tokens.current_key is not None
                                          and tokens.cursor_row == tokens.row_count - 1)
                              - start) * 1000
        await press("escape")
        await until(lambda: not isinstance(app.screen, ConsumerDetailScreen))
        start = time.perf_counter()
        await press("enter")
        out["detail_again_ms"] = (await until(detail_shown) - start) * 1000
        await press("escape")
        await until(lambda: not isinstance(app.screen, ConsumerDetailScreen))
    out["rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    store.close()
    return out


def with_consumer_info(url: str) -> None:
    """A store in use has its Consumer Info; made here, its key pair is not generated
    (RSA, a few hundred ms of CPU) by the console under measurement."""
    from bench_support import memory_keyring

    from tui_oauth.core.store import open_store

    store = open_store(url, secrets_backend=memory_keyring())
    services(store).consumer_info.view()
    store.close()


def combined(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the runs (a list: its items pooled)."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, list):
            out[key] = [x for r in runs for x in r[key]]
        elif isinstance(value, (int, float)) and key not in ("rows", "tokens", "filter_rows"):
            out[key] = median(r[key] for r in runs)
        else:
            out[key] = value
    return out


def child(url: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", url], cwd=ROOT,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHON_KEYRING_BACKEND": ""})
    if done.returncode:
        sys.exit(f"the measuring console failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consumers", type=int, default=100_000)
    parser.add_argument("--providers", type=int, default=10_000)
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--db", help="a PostgreSQL URL (its tables are emptied!)")
    parser.add_argument("--runs", type=int, default=3, help="consoles per store (medians)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(measure(args.child))))
        return
    tmp = Path(tempfile.mkdtemp(prefix="console-scale-"))
    results = {}
    for label, n in (("empty", 0), ("large", 1)):
        if args.db:
            url = args.db
            t = time.perf_counter()
            fill_postgresql(url, args.consumers * n, args.providers * n, args.tokens * n)
        else:
            url = f"sqlite:///{tmp / (label + '.db')}"
            t = time.perf_counter()
            fill_sqlite(url, args.consumers * n, args.providers * n, args.tokens * n)
        filled = time.perf_counter() - t
        with_consumer_info(url)
        runs = [child(url) for _ in range(args.runs)]
        results[label] = combined(runs)
        print(f"{label}: filled in {filled:.1f} s; {json.dumps(runs)}", file=sys.stderr)
    empty, large = results["empty"], results["large"]
    kind = "PostgreSQL" if args.db else "SQLite"
    print(f"console at scale on {kind}: {large['rows']:,} consumers, {args.providers:,} "
          f"providers, {args.tokens:,} tokens ({large['tokens']:,} on one consumer)")
    print(f"  open to first painted Consumers tab: {large['open_ms']:.0f} ms against "
          f"{empty['open_ms']:.0f} ms empty = {large['open_ms'] / empty['open_ms']:.2f}x "
          f"(target <= 1.5x); all counted at {large['open_counted_ms']:.0f} ms")
    f, fc = large["filter_ms"], large["filter_counted_ms"]
    print(f"  filter, key to updated list: median {median(f):.0f} ms, worst {max(f):.0f} ms "
          f"({', '.join(f'{x:.0f}' for x in f)}; {large['filter_rows']} rows match) "
          f"(target <= 50); counted: {', '.join(f'{x:.0f}' for x in fc)} ms")
    print(f"  (medians of {args.runs} consoles a store; keys pooled)")
    print(f"  sort: {large['sort_ms']:.0f}, {large['sort2_ms']:.0f} ms; reverse "
          f"{large['reverse_ms']:.0f} ms (target <= 100)")
    print(f"  G to the last row: {large['G_ms']:.0f} ms (target <= 50)")
    print(f"  consumer with {large['tokens']:,} tokens: detail opens in "
          f"{large['detail_ms']:.0f} ms (target <= 200), again {large['detail_again_ms']:.0f}"
          f" ms, counted at "
          f"{large['detail_counted_ms']:.0f} ms; pagedown median "
          f"{median(large['scroll_ms']):.0f} ms, worst {max(large['scroll_ms']):.0f} ms; "
          f"G {large['tokens_G_ms']:.0f} ms")
    print(f"  peak RSS: {large['rss_kib'] / 1024:.0f} MiB against {empty['rss_kib'] / 1024:.0f}"
          f" MiB empty = {large['rss_kib'] / empty['rss_kib']:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
