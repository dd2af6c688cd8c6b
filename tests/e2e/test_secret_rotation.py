"""A consumer's shared secret rotated with an overlap: the provider accepts the old and
the new one over HTTP until the window ends, then only the new one; the purge forgets
the old one; nothing secret reaches the audit log (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlmodel import select

from tests.cli_support import Cli
from tests.provider_support import add_hmac_consumer, add_rsa_consumer, auth, running_server
from tui_oauth.core.errors import ValidationError
from tui_oauth.core.models import AuditEntry, Consumer, previous_secret_item
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store
from tui_oauth.core.timeutil import utcnow

KEY, OLD, NEW = "partner:rotating", "old-secret-0123456789", "new-secret-9876543210"


def whoami(srv: Any, secret: str) -> requests.Response:
    return requests.get(srv.url("/rest/whoami"), auth=auth(KEY, secret=secret),
                        headers={"Connection": "close"}, timeout=10)


def test_both_secrets_work_inside_the_window_and_only_the_new_one_after(store: Store) -> None:
    add_hmac_consumer(store, KEY, OLD, two_lo_allowed=True)
    with running_server(store) as srv:
        assert whoami(srv, OLD).status_code == 200
        rotation = services(store).consumers.rotate_secret(KEY, secret=NEW,
                                                           overlap=timedelta(hours=1))
        assert rotation.secret == NEW and not rotation.generated
        assert rotation.previous_until is not None
        assert whoami(srv, NEW).status_code == 200
        assert whoami(srv, OLD).status_code == 200  # inside the overlap
        wrong = whoami(srv, "not-the-secret-at-all")
        assert wrong.status_code == 401 and "signature_invalid" in wrong.text
        with store.transaction() as uow:  # the window ends (as time would)
            row = uow.session.exec(select(Consumer).where(Consumer.key == KEY)).one()
            row.previous_secret_until = utcnow() - timedelta(seconds=1)
            uow.session.add(row)
        refused = whoami(srv, OLD)
        assert refused.status_code == 401 and "signature_invalid" in refused.text
        assert whoami(srv, NEW).status_code == 200
        report = services(store).doctor.run()
        assert any(c.name == "rotated secrets" and c.status == "warn" for c in report.checks)
        assert services(store).consumers.forget_old_secrets() == 1
        consumer = services(store).consumers.get(KEY)
        assert consumer.previous_secret_until is None
        assert store.secrets.get(previous_secret_item(consumer)) is None
        assert whoami(srv, OLD).status_code == 401 and whoami(srv, NEW).status_code == 200
    report = services(store).doctor.run()
    assert not report.secrets_without_row and not report.rows_without_secret
    assert not any(c.name == "rotated secrets" for c in report.checks)
    with store.session() as s:
        audit = " ".join(f"{e.action} {e.detail} {e.before} {e.after}"
                         for e in s.exec(select(AuditEntry)).all())
    assert "consumer.rotate_secret" in audit and "consumer.secret_overlap_end" in audit
    assert OLD not in audit and NEW not in audit


def test_rotation_without_overlap_drops_the_old_secret_at_once(store: Store) -> None:
    add_hmac_consumer(store, KEY, OLD, two_lo_allowed=True)
    rotation = services(store).consumers.rotate_secret(KEY)  # generated, no overlap
    assert rotation.generated and len(rotation.secret) >= 24 and rotation.previous_until is None
    assert services(store).consumers.shared_secret(KEY) == rotation.secret
    with running_server(store) as srv:
        assert whoami(srv, OLD).status_code == 401
        assert whoami(srv, rotation.secret).status_code == 200


def test_a_secret_set_by_hand_ends_the_overlap(store: Store) -> None:
    add_hmac_consumer(store, KEY, OLD, two_lo_allowed=True)
    services(store).consumers.rotate_secret(KEY, secret=NEW, overlap=timedelta(days=1))
    consumer = services(store).consumers.get(KEY)
    assert store.secrets.get(previous_secret_item(consumer)) == OLD
    services(store).consumers.edit(KEY, shared_secret="third-secret-000000000")
    consumer = services(store).consumers.get(KEY)
    assert consumer.previous_secret_until is None
    assert store.secrets.get(previous_secret_item(consumer)) is None
    services(store).consumers.rotate_secret(KEY, secret=NEW, overlap=timedelta(days=1))
    services(store).consumers.remove(KEY)  # and removing the consumer leaves no old secret behind
    report = services(store).doctor.run()
    assert not report.secrets_without_row


@pytest.mark.parametrize(("overlap", "said"), [(timedelta(days=91), "between 0 and 90"),
                                               (timedelta(seconds=-1), "between 0 and 90")])
def test_refusals(store: Store, overlap: timedelta, said: str) -> None:
    add_hmac_consumer(store, KEY, OLD)
    with pytest.raises(ValidationError, match=said):
        services(store).consumers.rotate_secret(KEY, overlap=overlap)
    add_rsa_consumer(store, "rsa:only")
    with pytest.raises(ValidationError, match="no shared secret to rotate"):
        services(store).consumers.rotate_secret("rsa:only")


def test_the_commands(cli: Cli, tmp_path: Path) -> None:
    """rotate-secret prints a generated secret once (stdout only); the old one stays for
    the overlap; `tokens purge` forgets it once the overlap has ended."""
    cli("consumers", "add", "--key", KEY, "--name", "Rotating", "--signature-method",
        "HMAC-SHA1", "--secret-stdin", input=OLD + "\n")
    bad = cli("consumers", "rotate-secret", KEY, "--overlap", "a while", rc=2)
    assert "--overlap" in bad.stderr and "not a duration" in bad.stderr
    done = cli("consumers", "rotate-secret", KEY, "--overlap", "2h")
    new = done.stdout.strip()
    assert len(new) >= 24 and "old one works until" in done.stderr
    until = cli.query("SELECT previous_secret_until FROM consumers WHERE key = :k", k=KEY)[0][0]
    assert until is not None
    from tui_oauth.core.database import make_engine

    assert cli.db_url is not None
    engine = make_engine(cli.db_url)
    with engine.begin() as conn:  # the overlap ends
        conn.exec_driver_sql("UPDATE consumers SET previous_secret_until = '2000-01-01 00:00:00'")
    engine.dispose()
    purged = cli("tokens", "purge", "--json").json()
    assert purged["old_secrets"] == 1
    again = cli("consumers", "rotate-secret", KEY, "--overlap", "0", "--json").json()
    assert again["previous_secret_until"] is None and again["secret"] not in (None, new)
    assert OLD not in cli.everything_printed()
    cli("consumers", "add", "--key", "rsa:k", "--name", "RSA", "--public-key-file",
        str(_pem_file(tmp_path)))
    refused = cli("consumers", "rotate-secret", "rsa:k", rc=1)
    assert "no shared secret to rotate" in refused.stderr


def _pem_file(tmp_path: Path) -> Path:
    from tests.helpers import pem_spki, rsa_key

    path = tmp_path / "key.pem"
    path.write_text(pem_spki(rsa_key(0)), encoding="utf-8")
    return path
