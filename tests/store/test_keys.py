"""API keys, against SQLite and PostgreSQL: create, check, expire, revoke, bind to a host."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from waypost.exceptions import AuthError, NotFoundError, ValidationError
from waypost.store._sql import SqlStore
from waypost.store.keys import (
    ApiKey,
    KeyChecker,
    hash_secret,
    normalize_host,
    parse_expiry,
    split_key,
)

StoreFactory = Callable[..., SqlStore]


def reason(store: SqlStore, presented: str, **options: Any) -> str:
    with pytest.raises(AuthError) as caught:
        store.authenticate(presented, **options)
    return caught.value.reason


def test_a_key_is_shown_once_and_checked(store: SqlStore) -> None:
    key, presented = store.create_key("write", note="deploy bot", created_by="admin1")
    assert presented.startswith(f"wp_{key.id}_")
    assert split_key(presented) == (key.id, presented.split("_", 2)[2])
    checked = store.authenticate(presented)
    assert (checked.id, checked.scope, checked.note, checked.created_by) == (
        key.id,
        "write",
        "deploy bot",
        "admin1",
    )
    assert checked.allows("read") and checked.allows("write") and not checked.allows("admin")

    assert reason(store, presented[:-1] + ("A" if presented[-1] != "A" else "B")) == "bad_secret"
    assert reason(store, f"wp_zzzzzzzzzzzz_{'x' * 43}") == "unknown"
    assert reason(store, "Bearer nonsense") == "malformed"
    assert reason(store, presented, scope="admin") == "insufficient_scope"
    assert store.authenticate(presented, scope="read").id == key.id

    with pytest.raises(ValidationError, match="scope"):
        store.create_key("root")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        store.revoke_key("nope")


def test_expired_and_revoked_keys_are_refused(make_store: StoreFactory) -> None:
    store = make_store(key_ttl=0.2)
    store.upgrade()
    past = datetime.now(UTC) - timedelta(seconds=1)
    _, expired = store.create_key("read", expires_at=past)
    assert reason(store, expired) == "expired"
    key, presented = store.create_key("admin", expires_at=datetime.now(UTC) + timedelta(days=30))
    assert store.authenticate(presented).id == key.id

    other = make_store()  # another server: revoking there reaches this one within the TTL
    revoked = other.revoke_key(key.id)
    assert revoked.revoked_at is not None and revoked.status() == "revoked"
    assert reason(other, presented) == "revoked"
    time.sleep(0.25)
    assert reason(store, presented) == "revoked"
    assert [k.status() for k in store.list_keys()] == ["expired", "revoked"]


def test_a_key_bound_to_a_host_works_only_there(store: SqlStore) -> None:
    key, presented = store.create_key("write", host="Admin.Example.com.")
    assert key.host == "admin.example.com"
    assert store.authenticate(presented, host="admin.example.com:8443").id == key.id
    assert store.authenticate(presented, host="ADMIN.example.com").id == key.id
    assert reason(store, presented, host="evil.example.net") == "wrong_host"
    assert reason(store, presented) == "wrong_host"
    _, anywhere = store.create_key("read")
    assert store.authenticate(anywhere, host="any.example.org").scope == "read"


def test_last_use_is_recorded_without_a_write_per_request(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, presented = store.create_key("read")
    assert store.list_keys()[0].last_used_at is None
    writes: list[dict[str, datetime]] = []
    record = store._record_key_use

    def counting(used: Any) -> None:
        writes.append(dict(used))
        record(used)

    monkeypatch.setattr(store.keys, "_record_use", counting)
    for _ in range(20):
        store.authenticate(presented)
    assert len(writes) == 1  # the first use; the rest wait for the interval or close()
    first = store.get_key(key.id).last_used_at
    assert first is not None
    time.sleep(0.01)
    store.authenticate(presented)
    listed = store.list_keys()[0]  # listing writes pending uses first
    assert listed.last_used_at is not None and listed.last_used_at > first
    assert len(writes) == 2


def test_secrets_are_never_stored(store: SqlStore) -> None:
    key, presented = store.create_key("admin", note="n")
    _, secret = split_key(presented)
    store.authenticate(presented)
    store.keys.flush()
    with store._transaction() as conn:
        rows = conn.execute("SELECT * FROM waypost_keys")
    assert key.id in repr(rows)
    assert secret not in repr(rows) and presented not in repr(rows)
    path = getattr(store, "path", None)
    if path is not None:  # SQLite: not in the file, nor in its write-ahead log
        for file in (path, path.with_name(path.name + "-wal")):
            if file.exists():
                assert secret.encode() not in file.read_bytes()


def test_secrets_are_compared_in_constant_time(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store()
    store.upgrade()
    _, presented = store.create_key("read")
    calls: list[tuple[Any, Any]] = []
    original = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    fresh = make_store()  # no cached check
    fresh.authenticate(presented)
    assert len(calls) == 1 and len(calls[0][0]) == 64


def test_the_cache_expires_and_a_local_revoke_is_immediate() -> None:
    from waypost.store.keys import ApiKey, hash_secret

    now = [0.0]
    lookups: list[str] = []
    stored = {"abcdefghijkm": ApiKey("abcdefghijkm", "read")}
    secret = "s" * 43

    def lookup(key_id: str) -> tuple[ApiKey, str] | None:
        lookups.append(key_id)
        return (stored[key_id], hash_secret(secret)) if key_id in stored else None

    checker = KeyChecker(lookup, lambda used: None, ttl=2.0, clock=lambda: now[0])
    presented = f"wp_abcdefghijkm_{secret}"
    checker.authenticate(presented)
    checker.authenticate(presented)
    assert len(lookups) == 1
    now[0] = 2.5
    checker.authenticate(presented)
    assert len(lookups) == 2
    checker.forget("abcdefghijkm")
    checker.authenticate(presented)
    assert len(lookups) == 3
    assert "KeyChecker(ttl=2.0" in repr(checker)


def test_a_key_check_in_flight_cannot_cache_a_key_revoked_meanwhile() -> None:
    secret = "s" * 43
    stored = {"abcdefghijkm": ApiKey("abcdefghijkm", "read")}
    lookups: list[str] = []
    checker: KeyChecker

    def lookup(key_id: str) -> tuple[ApiKey, str] | None:
        lookups.append(key_id)
        found = stored[key_id]
        if len(lookups) == 1:
            stored[key_id] = ApiKey(key_id, "read", revoked_at=datetime.now(UTC))  # elsewhere
            checker.forget(key_id)
        return found, hash_secret(secret)

    checker = KeyChecker(lookup, lambda used: None, ttl=60.0)
    presented = f"wp_abcdefghijkm_{secret}"
    checker.authenticate(presented)
    with pytest.raises(AuthError, match="revoked"):
        checker.authenticate(presented)
    assert len(lookups) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
    ],
    ids=["days", "hours", "minutes", "weeks"],
)
def test_expiry_durations(text: str, expected: timedelta) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_expiry(text, now=now) == now + expected


def test_expiry_dates_and_mistakes() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_expiry("2026-12-31", now=now) == datetime(2026, 12, 31, tzinfo=UTC)
    assert parse_expiry("2026-06-01T12:00:00Z", now=now).hour == 12
    with pytest.raises(ValueError, match="'soon' is not an expiry"):
        parse_expiry("soon", now=now)
    with pytest.raises(ValueError, match="in the past"):
        parse_expiry("2020-01-01", now=now)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("Example.COM", "example.com"),
        ("example.com:8080", "example.com"),
        ("example.com.", "example.com"),
        ("[::1]:8080", "[::1]"),
    ],
    ids=["case", "port", "trailing-dot", "ipv6"],
)
def test_hosts_are_normalized(host: str, expected: str) -> None:
    assert normalize_host(host) == expected
