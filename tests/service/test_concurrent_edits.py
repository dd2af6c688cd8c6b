"""Two writers at once lose nothing (issue 7, item 1).

Each round starts two edits of *different* fields of the same record at the
same moment, from two stores on the same database (as two processes would
have), and then checks that both changes are there.  Before edits read the
row inside their write transaction, about a quarter of the rounds lost one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from tests.helpers import pem_spki, rsa_key
from tests.keyring_backends import MemoryKeyring
from tui_oauth.core.errors import StaleError
from tui_oauth.core.models import consumer_secret_item
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store, open_store

ROUNDS = 25
SECRET = "s3cret-for-the-race"


@pytest.fixture
def two_stores(db_url: str, memory_keyring: MemoryKeyring) -> Iterator[tuple[Store, Store]]:
    a = open_store(db_url, secrets_backend=memory_keyring)
    b = open_store(db_url, secrets_backend=memory_keyring)
    yield a, b
    a.close()
    b.close()


def race(first: Callable[[], Any], second: Callable[[], Any]) -> None:
    """Run both at once (as close as threads allow); re-raise what either raised."""
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(fn: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            fn()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(fn,)) for fn in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors


def test_consumer_edits_of_different_fields_both_count(two_stores: tuple[Store, Store]) -> None:
    a, b = two_stores
    services(a).consumers.add(key="race", name="n", public_key=pem_spki(rsa_key(0)))
    lost = 0
    for i in range(ROUNDS):
        race(partial(services(a).consumers.edit, "race", name=f"name-{i}"),
             partial(services(b).consumers.edit, "race", description=f"desc-{i}"))
        row = services(a).consumers.get("race")
        lost += (row.name, row.description) != (f"name-{i}", f"desc-{i}")
    assert lost == 0, f"{lost} of {ROUNDS} rounds lost an update"


def test_provider_edits_of_different_fields_both_count(two_stores: tuple[Store, Store]) -> None:
    a, b = two_stores
    services(a).providers.add(name="sp", consumer_key="ck", shared_secret=SECRET,
                              request_token_url="https://sp.example/r",
                              authorization_url="https://sp.example/a",
                              access_token_url="https://sp.example/t")
    lost = 0
    for i in range(ROUNDS):
        race(partial(services(a).providers.edit, "sp", consumer_key=f"ck-{i}"),
             partial(services(b).providers.edit, "sp", description=f"desc-{i}"))
        row = services(a).providers.get("sp")
        lost += (row.consumer_key, row.description) != (f"ck-{i}", f"desc-{i}")
    assert lost == 0, f"{lost} of {ROUNDS} rounds lost an update"


def test_removing_the_secret_while_renaming_leaves_row_and_keyring_agreeing(
        two_stores: tuple[Store, Store], memory_keyring: MemoryKeyring) -> None:
    """The old failure: an HMAC consumer marked as having a secret that is gone."""
    a, b = two_stores
    services(a).consumers.add(key="hmac", name="n", signature_method="HMAC-SHA1",
                              shared_secret=SECRET)
    for i in range(ROUNDS):
        race(partial(services(a).consumers.edit, "hmac", name=f"name-{i}"),
             lambda: services(b).consumers.edit("hmac", shared_secret=None,
                                                public_key=pem_spki(rsa_key(0)),
                                                signature_method="RSA-SHA1"))
        row = services(a).consumers.get("hmac")
        item = a.secrets.get(consumer_secret_item(row))
        assert row.name == f"name-{i}"
        assert row.has_shared_secret == (item is not None), f"round {i}: row and keyring disagree"
        assert not row.has_shared_secret
        # put the secret back for the next round
        services(a).consumers.edit("hmac", shared_secret=SECRET, signature_method="HMAC-SHA1")


def test_info_edits_of_different_fields_both_count(two_stores: tuple[Store, Store]) -> None:
    a, b = two_stores
    services(a).consumer_info.get()
    for i in range(ROUNDS // 2):
        race(partial(services(a).consumer_info.edit, name=f"name-{i}"),
             partial(services(b).consumer_info.edit, description=f"desc-{i}"))
        info = services(a).consumer_info.get()
        assert (info.name, info.description) == (f"name-{i}", f"desc-{i}")


def test_a_form_does_not_save_over_a_change_made_since_it_opened(store: Store) -> None:
    services(store).consumers.add(key="k", name="Old", public_key=pem_spki(rsa_key(0)))
    seen = services(store).consumers.get("k")  # the form opens
    services(store).consumers.edit("k", description="changed elsewhere")
    with pytest.raises(StaleError) as caught:
        services(store).consumers.edit("k", name="Mine", description="",
                                       expected_updated_at=seen.updated_at)
    assert "changed elsewhere since you opened it" in caught.value.message
    row = services(store).consumers.get("k")
    assert (row.name, row.description) == ("Old", "changed elsewhere")
    assert getattr(caught.value.current, "description", None) == "changed elsewhere"
    # With what is current, it saves.
    services(store).consumers.edit("k", name="Mine", expected_updated_at=row.updated_at)
    assert services(store).consumers.get("k").name == "Mine"


def test_stale_provider_and_info_forms_are_refused(store: Store) -> None:
    services(store).providers.add(name="sp", consumer_key="ck", shared_secret=SECRET,
                                  request_token_url="https://sp.example/r",
                                  authorization_url="https://sp.example/a",
                                  access_token_url="https://sp.example/t")
    seen = services(store).providers.get("sp").updated_at
    services(store).providers.edit("sp", description="elsewhere")
    with pytest.raises(StaleError):
        services(store).providers.edit("sp", consumer_key="mine", expected_updated_at=seen)
    assert services(store).providers.get("sp").consumer_key == "ck"

    seen = services(store).consumer_info.get().updated_at
    services(store).consumer_info.edit(name="elsewhere")
    with pytest.raises(StaleError):
        services(store).consumer_info.edit(description="mine", expected_updated_at=seen)
    assert services(store).consumer_info.get().description != "mine"


def test_every_edit_moves_updated_at_forward(store: Store) -> None:
    """updated_at is the version a form compares: two quick edits never share one."""
    services(store).consumers.add(key="k", name="n0", public_key=pem_spki(rsa_key(0)))
    stamps = []
    for i in range(20):
        stamps.append(services(store).consumers.edit("k", name=f"n{i + 1}").updated_at)
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_orphan_sweep_waits_for_a_transaction_that_wrote_a_secret(
        two_stores: tuple[Store, Store], memory_keyring: MemoryKeyring) -> None:
    """doctor --fix must not take a secret whose row is not committed yet for an orphan
    (seen: the new private key of `info rotate-key`, deleted right after it committed)."""
    a, b = two_stores
    services(a).consumer_info.get()
    written, sweeping = threading.Event(), threading.Event()
    swept: list[str] = []

    def rotate_slowly() -> None:
        from sqlmodel import select

        from tui_oauth.core.models import ConsumerInfo, private_key_item

        with a.transaction() as uow:
            row = uow.session.exec(select(ConsumerInfo).with_for_update()).one()
            row.key_uid = "new-key-uid"
            uow.session.add(row)
            uow.session.flush()
            uow.set_secret(private_key_item(row), "new private key")
            written.set()
            assert sweeping.wait(10)
            time.sleep(0.3)  # the sweep is now waiting for this transaction (or racing it)

    def sweep() -> None:
        assert written.wait(10)
        sweeping.set()
        swept.extend(services(b).doctor.remove_orphan_secrets())

    race(rotate_slowly, sweep)
    info = services(a).consumer_info.get()
    assert info.key_uid == "new-key-uid"
    assert a.secrets.get("consumer-info/new-key-uid/private-key") == "new private key"
    assert "consumer-info/new-key-uid/private-key" not in swept
    # The old key's item is an orphan now, and the sweep (after the commit) may take it.
    assert set(swept) <= {n for n in swept if n.startswith("consumer-info/")}
