"""`info rotate-key --overlap`: our old public key stays published in the consumer-info
document as <previousPublicKey> until the window ends; readers of one key (Atlassian's,
ours) take <publicKey>, the new one (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlmodel import select

from tests.cli_support import Cli
from tests.provider_support import running_server
from tui_oauth.core.consumer_info_doc import parse_consumer_info
from tui_oauth.core.errors import ValidationError
from tui_oauth.core.models import AuditEntry, ConsumerInfo
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store
from tui_oauth.core.timeutil import utcnow


def test_the_old_key_is_published_for_the_overlap_only(store: Store) -> None:
    first = services(store).consumer_info.view().public_key
    old, new = services(store).consumer_info.rotate_key(overlap=timedelta(days=1))
    assert old.fingerprint == first.fingerprint != new.fingerprint
    xml = services(store).consumer_info.export_xml()
    assert b"<previousPublicKey>" in xml and old.base64_der.encode() in xml
    assert parse_consumer_info(xml).public_key.base64_der == new.base64_der
    with running_server(store) as srv:  # the document the provider serves
        served = requests.get(srv.url("/plugins/servlet/oauth/consumer-info"), timeout=10)
        assert old.base64_der in served.text and new.base64_der in served.text
    with store.transaction() as uow:  # the window ends (as time would)
        row = uow.session.exec(select(ConsumerInfo)).one()
        row.previous_key_until = utcnow() - timedelta(seconds=1)
        uow.session.add(row)
    assert b"previousPublicKey" not in services(store).consumer_info.export_xml()  # at once
    assert services(store).consumer_info.forget_previous_key()
    assert not services(store).consumer_info.forget_previous_key()
    with store.session() as s:
        row = s.exec(select(ConsumerInfo)).one()
        actions = [e.action for e in s.exec(select(AuditEntry)).all()]
    assert row.previous_public_key is None and row.previous_key_until is None
    assert "consumer_info.previous_key_end" in actions
    # A rotation without overlap publishes one key only, and drops an earlier old one.
    services(store).consumer_info.rotate_key(overlap=timedelta(hours=1))
    services(store).consumer_info.rotate_key()
    assert b"previousPublicKey" not in services(store).consumer_info.export_xml()
    report = services(store).doctor.run()
    assert not report.secrets_without_row and not report.rows_without_secret


def test_the_overlap_is_bounded(store: Store) -> None:
    with pytest.raises(ValidationError, match="between 0 and 90 days"):
        services(store).consumer_info.rotate_key(overlap=timedelta(days=91))


def test_the_command(cli: Cli) -> None:
    bad = cli("info", "rotate-key", "--overlap", "soon", "--yes", rc=2)
    assert "--overlap" in bad.stderr and "not a duration" in bad.stderr
    done = cli("info", "rotate-key", "--overlap", "7d", "--yes")
    said = done.stdout + done.stderr
    assert "<previousPublicKey>" in said and "Atlassian providers read only <publicKey>" in said
    until = cli.query("SELECT previous_key_until FROM consumer_info")[0][0]
    assert until is not None
