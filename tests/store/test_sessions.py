"""Admin sign-in sessions, against SQLite and PostgreSQL: made for a key, stored only as a hash,
checked with their key, ended by sign-out, by expiry and by revoking the key."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from waypost.exceptions import AuthError, NotFoundError, ValidationError
from waypost.store._sql import SqlStore
from waypost.store.keys import ApiKey
from waypost.store.sessions import Session, SessionChecker, hash_token, new_session_token

StoreFactory = Callable[..., SqlStore]
HOUR = 3600.0


def reason(store: SqlStore, token: str, **options: Any) -> str:
    with pytest.raises(AuthError) as caught:
        store.authenticate_session(token, **options)
    return caught.value.reason


def session_rows(store: SqlStore) -> list[tuple[Any, ...]]:
    with store._transaction() as conn:
        return conn.execute("SELECT * FROM waypost_sessions")


def test_a_session_signs_in_as_its_key(store: SqlStore) -> None:
    key, presented = store.create_key("write", note="person")
    session, token = store.create_session(key.id, lifetime=8 * HOUR)
    assert token.startswith("wps_") and len(token) == 4 + 43
    assert presented not in token
    assert session.key_id == key.id and not session.expired()
    assert session.expires_at - session.created_at == timedelta(hours=8)
    signed_in = store.authenticate_session(token)
    assert (signed_in.id, signed_in.scope) == (key.id, "write")
    assert store.authenticate_session(token, scope="read").id == key.id
    assert reason(store, token, scope="admin") == "insufficient_scope"
    _, other = store.create_session(key.id, lifetime=HOUR)
    assert other != token  # each sign-in is a session of its own
    assert len(session_rows(store)) == 2


@pytest.mark.parametrize(
    ("make_token", "expected"),
    [
        (lambda presented: presented, "malformed"),  # an old login cookie held the key itself
        (lambda presented: "", "malformed"),
        (lambda presented: "wps_short", "malformed"),
        (lambda presented: new_session_token(), "unknown"),  # well formed, never made
    ],
    ids=["raw-api-key", "empty", "short", "forged"],
)
def test_anything_but_a_live_session_token_is_refused(
    store: SqlStore, make_token: Callable[[str], str], expected: str
) -> None:
    key, presented = store.create_key("admin")
    store.create_session(key.id, lifetime=HOUR)
    assert reason(store, make_token(presented)) == expected


def test_tokens_are_never_stored(store: SqlStore) -> None:
    key, _ = store.create_key("admin")
    _, token = store.create_session(key.id, lifetime=HOUR)
    store.authenticate_session(token)
    store.sessions.flush()
    rows = session_rows(store)
    assert hash_token(token) in repr(rows) and key.id in repr(rows)
    assert token not in repr(rows) and token[4:] not in repr(rows)
    path = getattr(store, "path", None)
    if path is not None:  # SQLite: not in the file, nor in its write-ahead log
        for file in (path, path.with_name(path.name + "-wal")):
            if file.exists():
                assert token[4:].encode() not in file.read_bytes()


def test_signing_out_ends_the_session(store: SqlStore) -> None:
    key, _ = store.create_key("read")
    _, token = store.create_session(key.id, lifetime=HOUR)
    _, kept = store.create_session(key.id, lifetime=HOUR)
    store.authenticate_session(token)  # cached now
    assert store.end_session(token) is True
    assert reason(store, token) == "unknown"
    assert store.end_session(token) is False
    assert store.end_session("wp_not_a_session") is False
    assert store.authenticate_session(kept).id == key.id  # another sign-in goes on


def test_signing_out_elsewhere_takes_effect_within_the_ttl(make_store: StoreFactory) -> None:
    serving = make_store(key_ttl=0.2)
    serving.upgrade()
    key, _ = serving.create_key("read")
    _, token = serving.create_session(key.id, lifetime=HOUR)
    assert serving.authenticate_session(token).id == key.id  # cached now
    assert make_store().end_session(token) is True  # another server
    time.sleep(0.25)
    assert reason(serving, token) == "unknown"


def test_an_expired_session_is_refused_and_purged_at_the_next_sign_in(store: SqlStore) -> None:
    key, _ = store.create_key("read")
    _, short = store.create_session(key.id, lifetime=0.05)
    _, long = store.create_session(key.id, lifetime=HOUR)
    time.sleep(0.1)
    assert reason(store, short) == "expired"
    assert len(session_rows(store)) == 2
    store.create_session(key.id, lifetime=HOUR)
    assert len(session_rows(store)) == 2  # the expired one is gone, the live ones stay
    assert reason(store, short) == "unknown"
    assert store.authenticate_session(long).id == key.id


def test_revoking_the_key_ends_its_sessions(make_store: StoreFactory) -> None:
    store = make_store(key_ttl=0.2)
    store.upgrade()
    key, _ = store.create_key("admin")
    spare, _ = store.create_key("admin")
    _, token = store.create_session(key.id, lifetime=HOUR)
    _, other_token = store.create_session(key.id, lifetime=HOUR)
    _, spare_token = store.create_session(spare.id, lifetime=HOUR)
    assert store.authenticate_session(token).id == key.id  # cached now

    store.revoke_key(key.id)  # in this process: at once
    assert reason(store, token) == "unknown"
    assert [row[1] for row in session_rows(store)] == [spare.id]
    assert store.authenticate_session(spare_token).id == spare.id

    elsewhere = make_store(key_ttl=0.2)  # another server: its cached session ends in the TTL
    assert elsewhere.authenticate_session(spare_token).id == spare.id
    store.revoke_key(spare.id)
    time.sleep(0.25)
    assert reason(elsewhere, spare_token) == "unknown"
    assert reason(store, other_token) == "unknown"


def test_a_session_is_no_more_than_its_key(store: SqlStore) -> None:
    bound, _ = store.create_key("write", host="admin.example.com")
    _, token = store.create_session(bound.id, lifetime=HOUR)
    assert store.authenticate_session(token, host="admin.example.com:8443").id == bound.id
    assert reason(store, token, host="evil.example.net") == "wrong_host"

    ending, _ = store.create_key("read", expires_at=datetime.now(UTC) + timedelta(seconds=0.3))
    _, lasting = store.create_session(ending.id, lifetime=HOUR)
    assert store.authenticate_session(lasting).id == ending.id
    time.sleep(0.35)
    assert reason(store, lasting) == "expired"  # the key's expiry, though the session's is far


def test_only_a_usable_key_gets_a_session(store: SqlStore) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        store.create_session("nope", lifetime=HOUR)
    key, _ = store.create_key("read")
    with pytest.raises(ValidationError, match="lifetime"):
        store.create_session(key.id, lifetime=0)
    store.revoke_key(key.id)
    with pytest.raises(AuthError) as caught:
        store.create_session(key.id, lifetime=HOUR)
    assert caught.value.reason == "revoked"
    assert session_rows(store) == []


def test_last_seen_is_recorded_without_a_write_per_request(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, _ = store.create_key("read")
    _, token = store.create_session(key.id, lifetime=HOUR)
    assert session_rows(store)[0][4] is None
    writes: list[dict[str, datetime]] = []
    record = store._record_session_seen

    def counting(seen: Any) -> None:
        writes.append(dict(seen))
        record(seen)

    monkeypatch.setattr(store.sessions._seen, "_write", counting)
    for _ in range(20):
        store.authenticate_session(token)
    assert len(writes) == 1  # the first use; the rest wait for the interval or close()
    first = store._time_value(session_rows(store)[0][4])
    assert first is not None
    assert store.get_key(key.id).last_used_at is not None  # a session's use is its key's use
    time.sleep(0.01)
    store.authenticate_session(token)
    store.sessions.flush()
    assert len(writes) == 2
    last = store._time_value(session_rows(store)[0][4])
    assert last is not None and last > first


def test_the_session_cache_expires_and_a_local_sign_out_is_immediate() -> None:
    now = [0.0]
    lookups: list[str] = []
    token = new_session_token()
    key = ApiKey("abcdefghijkm", "read")
    moment = datetime.now(UTC)
    stored = {hash_token(token): (Session(key.id, moment, moment + timedelta(hours=1)), key)}

    def lookup(digest: str) -> tuple[Session, ApiKey] | None:
        lookups.append(digest)
        return stored.get(digest)

    checker = SessionChecker(lookup, lambda seen: None, ttl=2.0, clock=lambda: now[0])
    checker.authenticate(token)
    checker.authenticate(token)
    assert len(lookups) == 1
    now[0] = 2.5
    checker.authenticate(token)
    assert len(lookups) == 2
    del stored[hash_token(token)]
    checker.forget(digest=hash_token(token))
    with pytest.raises(AuthError, match="ended"):
        checker.authenticate(token)
    assert "SessionChecker(ttl=2.0" in repr(checker)
