"""SQLite's write lock held by another connection (a purge's batch, the CLI, the console)
while signed requests arrive: the event loop does not wait for it (other requests are
answered meanwhile), the nonce's write is handed to a thread that waits, and every
guarantee holds: each request is answered (no 500), its nonce is stored, a replay is
refused, a 3-legged request still records the token's last use.  No timing is
asserted: the order of events is."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from sqlalchemy import func, select, text
from sqlmodel import col

from tests.provider_support import (
    OAUTH,
    Server,
    add_hmac_consumer,
    auth,
    oauth_session,
    problem_of,
)
from tui_oauth.core.database import BUSY_TIMEOUT_MS
from tui_oauth.core.models import Nonce, Token
from tui_oauth.core.provider.engine import WriteBusy
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store

KEY, SECRET = "www.google.com", "kd94hf93k423kf44"


@contextmanager
def write_lock_held(store: Store) -> Iterator[None]:
    """Another connection holds the write lock (BEGIN IMMEDIATE) until the block ends."""
    assert store.path is not None
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("COMMIT")
        other.close()


@pytest.fixture
def handed_over(server: Server, monkeypatch: pytest.MonkeyPatch) -> threading.Semaphore:
    """Released once per signed request whose write the engine handed to a thread."""
    seen = threading.Semaphore(0)
    verify = server.engine.verify

    def spy(*args: Any, **kwargs: Any) -> Any:
        try:
            return verify(*args, **kwargs)
        except WriteBusy:
            seen.release()
            raise

    monkeypatch.setattr(server.engine, "verify", spy)
    return seen


def send_in_thread(prepared: requests.PreparedRequest, answers: list[requests.Response]
                   ) -> threading.Thread:
    def run() -> None:
        with requests.Session() as http:
            answers.append(http.send(prepared, timeout=30))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def nonces(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Nonce)).scalar_one())


def test_two_legged_requests_wait_for_the_lock_off_the_event_loop(
        server: Server, sqlite_store: Store, handed_over: threading.Semaphore) -> None:
    add_hmac_consumer(sqlite_store, KEY, SECRET, two_lo_allowed=True)
    with requests.Session() as http:  # the loop's connections are made and used once
        assert http.get(server.url("/rest/whoami"), auth=auth(KEY, secret=SECRET),
                        timeout=10).status_code == 200
    before = nonces(sqlite_store)
    prepared = requests.Request("GET", server.url("/rest/whoami"),
                                auth=auth(KEY, secret=SECRET)).prepare()
    answers: list[requests.Response] = []
    with write_lock_held(sqlite_store):
        # The same request twice (a replay racing the original) and a third one.
        threads = [send_in_thread(prepared, answers), send_in_thread(prepared, answers)]
        for _ in threads:
            assert handed_over.acquire(timeout=10), "the write was not handed to a thread"
        other = requests.Request("GET", server.url("/rest/whoami"),
                                 auth=auth(KEY, secret=SECRET)).prepare()
        threads.append(send_in_thread(other, answers))
        assert handed_over.acquire(timeout=10)
        # The loop is free while the lock is held: an unprotected request is answered.
        assert requests.get(server.url("/rest/ping"), timeout=10).status_code == 200
        assert all(t.is_alive() for t in threads)  # nothing answered without its nonce
    for t in threads:
        t.join(30)
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200, 200, 401], [r.text for r in answers]
    assert [problem_of(r) for r in answers if r.status_code == 401] == ["nonce_used"]
    assert nonces(sqlite_store) == before + 2
    with requests.Session() as http:  # the original, once more: refused
        replay = http.send(prepared, timeout=10)
    assert replay.status_code == 401 and problem_of(replay) == "nonce_used"
    # Quiet again: the loop writes itself (nothing more handed over).
    assert requests.get(server.url("/rest/whoami"), auth=auth(KEY, secret=SECRET),
                        timeout=10).status_code == 200
    assert not handed_over.acquire(blocking=False)
    # The loop's writer never waits, but the pool's connections still do.
    with sqlite_store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == BUSY_TIMEOUT_MS


def test_three_legged_request_records_last_use_when_handed_over(
        server: Server, sqlite_store: Store, handed_over: threading.Semaphore) -> None:
    add_hmac_consumer(sqlite_store, KEY, SECRET)
    s = oauth_session(KEY, callback_uri="oob", secret=SECRET)
    rt = s.fetch_request_token(server.url(OAUTH + "/request-token"))
    verifier = services(sqlite_store).tokens.authorize(rt["oauth_token"], "alice").verifier
    at = oauth_session(KEY, resource_owner_key=rt["oauth_token"],
                       resource_owner_secret=rt["oauth_token_secret"], verifier=verifier,
                       secret=SECRET).fetch_access_token(server.url(OAUTH + "/access-token"))
    prepared = requests.Request("GET", server.url("/rest/whoami"), auth=auth(
        KEY, secret=SECRET, resource_owner_key=at["oauth_token"],
        resource_owner_secret=at["oauth_token_secret"])).prepare()
    answers: list[requests.Response] = []
    with write_lock_held(sqlite_store):
        thread = send_in_thread(prepared, answers)
        assert handed_over.acquire(timeout=10)
    thread.join(30)
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].json()["user"] == "alice"
    with sqlite_store.engine.connect() as conn:
        used = conn.execute(select(col(Token.last_used_at))
                            .where(col(Token.token) == at["oauth_token"])).scalar()
    assert used is not None
    with requests.Session() as http:
        replay = http.send(prepared, timeout=10)
    assert replay.status_code == 401 and problem_of(replay) == "nonce_used"
