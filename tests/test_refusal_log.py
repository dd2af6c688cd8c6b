"""The refusal log: the service (filters, summary, clock, purge) on both engines, the
recorder, and every oauth_problem produced over real HTTP on 127.0.0.1."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from tui_oauth.core.errors import NotFoundError
from tui_oauth.core.models import ConsumerClock, Refusal
from tui_oauth.core.provider.settings import set_setting
from tui_oauth.core.store import Store
from tui_oauth.core.timeutil import utcnow


def put(store: Store, n: int = 1, **fields: Any) -> None:
    values: dict[str, Any] = {"problem": "signature_invalid", "answered": "signature_invalid",
                              "consumer_key": "c1", "bucket": "c1", "method": "GET",
                              "url": "https://pub.example/rest/whoami",
                              "seen_url": "https://pub.example/rest/whoami",
                              "client_addr": "127.0.0.1", "signature_method": "HMAC-SHA1"}
    values.update(fields)
    with store.transaction() as uow:
        for _ in range(n):
            uow.session.add(Refusal(**values))


def test_service_filters_summary_clock_and_purge(store: Store) -> None:
    put(store, 3)
    put(store, 2, problem="timestamp_refused", answered="timestamp_refused", offset=-432,
        timestamp=1_700_000_000)
    put(store, 1, consumer_key="junk", bucket="", problem="consumer_key_unknown",
        answered="consumer_key_unknown", client_addr="10.9.8.7")
    put(store, 1, consumer_key="c2", bucket="c2",
        seen_url="http://127.0.0.1:8080/rest/whoami")
    svc = store.refusals

    rows = svc.list()
    assert [r.id for r in rows] == sorted((r.id for r in rows), reverse=True)  # newest first
    assert len(rows) == 7
    assert {r.consumer_key for r in svc.list(consumer="c1")} == {"c1"}
    assert len(svc.list(consumer="c1")) == 5
    junk = svc.list(consumer="junk")
    assert len(junk) == 1 and not junk[0].known and junk[0].problem == "consumer_key_unknown"
    assert len(svc.list(problem="timestamp_refused")) == 2
    assert [r.client_addr for r in svc.list(text="10.9.8")] == ["10.9.8.7"]
    assert len(svc.list(text="TIMESTAMP_ref")) == 2  # ignoring case
    assert svc.list(since=utcnow() + timedelta(minutes=1)) == []
    assert len(svc.list(limit=2)) == 2
    assert [r.id for r in svc.iter(batch=2)] == [r.id for r in rows]
    assert len(list(svc.iter(consumer="c1", batch=2))) == 5

    ts = svc.list(problem="timestamp_refused")[0]
    assert ts.offset == -432 and "7 min 12 s behind ours" in ts.advice
    assert "the window is 5 min" in ts.advice
    proxied = svc.list(consumer="c2")[0]
    assert ("may have signed http://127.0.0.1:8080/rest/whoami; this server checks against "
            "https://pub.example/rest/whoami") in proxied.advice
    assert svc.get(proxied.id) == proxied
    with pytest.raises(NotFoundError) as err:
        svc.get(10**9)
    assert err.value.hint

    summary = svc.summary("c1", recent=2)
    assert summary.counts == {"signature_invalid": 3, "timestamp_refused": 2}
    assert list(summary.counts) == ["signature_invalid", "timestamp_refused"]
    assert summary.total == 5 and len(summary.recent) == 2

    assert svc.clock("c1") is None
    with store.transaction() as uow:
        uow.session.add(ConsumerClock(consumer_key="c1", median_offset=-432, samples=40))
    clock = svc.clock("c1")
    assert clock is not None and clock.median_offset == -432
    assert clock.words == "7 min 12 s behind, from 40 request(s)"

    # purge: past the retention, then beyond the cap per bucket (unknown keys: one bucket)
    put(store, 2, at=utcnow() - timedelta(days=8))
    put(store, 14, consumer_key="junk2", bucket="", problem="consumer_key_unknown",
        answered="consumer_key_unknown")
    assert svc.purge() == 2  # past 7 days; the default cap (200) is far
    set_setting(store, "refusal_rows_per_consumer", 10)
    assert svc.purge() == 5  # bucket "" had 15 rows: 10 kept
    with store.session() as s:
        left = s.exec(select(Refusal.bucket, Refusal.consumer_key)
                      .where(Refusal.bucket == "").order_by(col(Refusal.id))).all()
    assert len(left) == 10 and all(k == "junk2" for _b, k in left)  # the newest kept
    assert min(r.at for r in svc.list(limit=1000)) > utcnow() - timedelta(days=7)
    set_setting(store, "refusal_retention", 3600)
    put(store, 1, at=utcnow() - timedelta(hours=2))
    assert svc.purge() == 1
