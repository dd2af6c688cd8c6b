"""core/sqlite_reads.py: the standard-library listing equals the service's, and it steps
aside (None) whenever it cannot vouch for the store."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_oauth.core.models import Token
from tui_oauth.core.registry import services
from tui_oauth.core.sqlite_reads import (
    CONSUMER_SORTS,
    consumer_summaries,
    open_current,
    sqlite_file,
)
from tui_oauth.core.store import Store

# Names and descriptions chosen to trip a hand-written query: case (ASCII and not),
# LIKE's wildcards and its escape character, ties on every sort column.
NAMES = ["Jira", "jira", "JIRA 50%", "under_score", "back\\slash", "Ärger", "ärger",
         "Zed", "alpha", "Alpha", "", "mIxEd", "%", "_"]
FILTERS = ["", "  ", "j", "IR", "%", "_", "\\", "ä", "Ä", "50%", "score", "a", "zz", "e_s"]


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, sqlite3.Connection]]:
    from tests.conftest import new_sqlite_store
    from tests.keyring_backends import MemoryKeyring
    from tui_oauth.core.store import open_store

    url = f"sqlite:///{tmp_path_factory.mktemp('reads') / 'store.db'}"
    new_sqlite_store(url)
    store = open_store(url, secrets_backend=MemoryKeyring())
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(40):
        name = NAMES[i % len(NAMES)] + ("" if i < len(NAMES) else f" {i // 7}")
        services(store).consumers.add(key=f"{'kK'[i % 2]}ey-{i % 9}-{i:02d}", name=name or f"n{i}",
                                      description=["a 50% cut", "under_score", None,
                                                   "Ärger"][i % 4],
                                      shared_secret="s" * 16, two_lo_allowed=i % 3 == 0)
    with store.session() as s:  # ties on created_at; some consumers with tokens
        rows = list(services(store).consumers.iter_list())
        for i, row in enumerate(rows):
            consumer = services(store).consumers.get(row.key)
            assert consumer.id is not None
            consumer.created_at = start + timedelta(minutes=i // 4)
            s.add(consumer)
            for t in range(i % 5):
                s.add(Token(token=f"t-{i}-{t}", consumer_id=consumer.id, type="access"))
        s.commit()
    db = open_current(url)
    assert db is not None
    yield store, db
    db.close()
    store.close()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filter_=st.sampled_from(FILTERS) | st.text(max_size=3),
       sort=st.sampled_from(sorted(CONSUMER_SORTS)), desc=st.booleans(),
       page=st.integers(min_value=1, max_value=50))
def test_listing_equals_the_service(listed: tuple[Store, sqlite3.Connection], filter_: str,
                                    sort: str, desc: bool, page: int) -> None:
    store, db = listed
    expected = list(services(store).consumers.iter_list(filter_, sort=sort, descending=desc,
                                                        page_size=page))
    got = list(consumer_summaries(db, filter_, sort=sort, descending=desc, page_size=page))
    assert got == expected


def test_the_fixture_has_what_the_comparison_needs(listed: tuple[Store, sqlite3.Connection]
                                                   ) -> None:
    """The comparison above is only worth something if the store holds ties, tokens and
    both cases of a name."""
    _, db = listed
    rows = list(consumer_summaries(db, sort="created"))
    assert len(rows) == 40
    assert len({r.created_at for r in rows}) < 40
    assert {r.token_count for r in rows} == {0, 1, 2, 3, 4}
    assert {r.name for r in rows} >= {"Jira", "jira"}
    assert rows[0].created_at.tzinfo is UTC


def test_the_service_sorts_by_the_same_names() -> None:
    from tui_oauth.core.services.consumers import SORT_COLUMNS

    assert SORT_COLUMNS.keys() == CONSUMER_SORTS.keys()


def test_steps_aside_for_what_it_cannot_vouch_for(tmp_path: Path, sqlite_url: str) -> None:
    assert sqlite_file("postgresql://u@127.0.0.1/db") is None
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("sqlite:////tmp/a%20b.db?timeout=3") == Path("/tmp/a b.db")
    assert open_current(f"sqlite:///{tmp_path / 'missing.db'}") is None
    assert not (tmp_path / "missing.db").exists()  # and it was not created
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    assert open_current(f"sqlite:///{tmp_path / 'junk.db'}") is None
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
    assert open_current(f"sqlite:///{tmp_path / 'other.db'}") is None

    db = open_current(sqlite_url)
    assert db is not None
    db.close()
    path = sqlite_file(sqlite_url)
    assert path is not None
    with sqlite3.connect(path) as raw:  # an older schema: not ours to read
        raw.execute("UPDATE alembic_version SET version_num = '0005'")
    raw.close()
    assert open_current(sqlite_url) is None


def test_reads_never_write(sqlite_url: str) -> None:
    db = open_current(sqlite_url)
    assert db is not None
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        db.execute("DELETE FROM consumers")
    db.close()


def test_importing_it_loads_no_database_layer() -> None:
    import subprocess

    code = ("import sys, tui_oauth.core.sqlite_reads; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sqlalchemy', 'sqlmodel', 'pydantic')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
