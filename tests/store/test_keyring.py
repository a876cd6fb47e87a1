"""StoreKeyRing: the access keys of a store, in memory, following the store from a thread
(against SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import StoreFactory
from waypost.exceptions import StoreUnavailable
from waypost.store import open_store
from waypost.store._sql import SqlStore
from waypost.store.keyring import StoreKeyRing, open_keyring


def wait_for(condition: object, seconds: float = 5.0) -> float:
    """Poll ``condition()`` until true (<= ``seconds``); how long it took."""
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - started < seconds, "not within the deadline"
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
def stores(make_store: StoreFactory) -> tuple[SqlStore, SqlStore]:
    """Two stores on one database: two processes, or two instances."""
    first = make_store()
    first.upgrade()
    return first, make_store()


def test_a_ring_holds_only_live_access_keys(stores: tuple[SqlStore, SqlStore]) -> None:
    store, _ = stores
    access, _ = store.create_key(None, audiences=["partners", "staff"], host="API.example.com:443")
    store.create_key("admin")  # an admin key: opens no guarded path
    revoked, _ = store.create_key(None, audiences=["partners"])
    store.revoke_key(revoked.id)
    ring = store.keyring()
    try:
        assert len(ring) == 1
        held = ring.get(access.id)
        assert held is not None
        assert (held.audiences, held.host) == (frozenset({"partners", "staff"}), "api.example.com")
        assert len(held.secret_hash) == 64  # the hash, never the secret
    finally:
        ring.close()


def test_a_change_made_by_another_store_reaches_the_ring_within_its_refresh(
    stores: tuple[SqlStore, SqlStore],
) -> None:
    mine, other = stores
    ring = mine.keyring(refresh=0.1)
    try:
        key, _ = other.create_key(None, audiences=["partners"])
        wait_for(lambda: ring.get(key.id) is not None, 2)
        other.revoke_key(key.id)
        took = wait_for(lambda: ring.get(key.id) is None, 2)
        assert took < 1
    finally:
        ring.close()


def test_its_own_store_changes_reach_it_at_once(stores: tuple[SqlStore, SqlStore]) -> None:
    store, _ = stores
    ring = store.keyring(refresh=60)  # no look at the store in this test's time
    try:
        key, _ = store.create_key(None, audiences=["partners"])
        assert ring.get(key.id) is not None
        store.revoke_key(key.id)
        assert ring.get(key.id) is None
    finally:
        ring.close()


def test_last_use_is_written_on_flush_and_on_close(stores: tuple[SqlStore, SqlStore]) -> None:
    store, _ = stores
    key, _ = store.create_key(None, audiences=["partners"])
    ring = store.keyring(refresh=60)
    ring.note_use(key.id)
    assert store.get_key(key.id).last_used_at is None  # noted in memory only
    ring.close()
    assert store.get_key(key.id).last_used_at is not None


def test_an_unreachable_store_keeps_the_keys_held(
    stores: tuple[SqlStore, SqlStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = stores
    key, _ = store.create_key(None, audiences=["partners"])
    ring = StoreKeyRing(store, refresh=0.05)
    ring.start()
    try:

        def down() -> int:
            raise StoreUnavailable("the database is down")

        monkeypatch.setattr(store, "keys_version", down)
        wait_for(lambda: ring.errors >= 2, 2)
        assert ring.get(key.id) is not None  # kept, not emptied
        with pytest.raises(StoreUnavailable):
            ring.refresh_if_changed()
    finally:
        monkeypatch.undo()
        ring.close()


def test_open_keyring_loads_once_and_starts_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    store = open_store(url)
    store.upgrade()
    key, _ = store.create_key(None, audiences=["partners"])
    store.close()
    ring = open_keyring(url)
    assert ring.get(key.id) is not None
    assert ring._thread is None  # a server's worker starts it after the fork
    ring.start()
    try:
        assert ring._thread is not None and ring._thread.daemon
    finally:
        ring.close()


def test_an_unknown_key_makes_the_ring_look_at_the_store_soon(
    stores: tuple[SqlStore, SqlStore],
) -> None:
    mine, other = stores
    ring = mine.keyring(refresh=60)  # no look of its own within this test
    try:
        key, _ = other.create_key(None, audiences=["partners"])
        assert ring.get(key.id) is None
        ring.missed()  # what the api_key guard does for an unknown id
        took = wait_for(lambda: ring.get(key.id) is not None, 2)
        assert took < 1
    finally:
        ring.close()
