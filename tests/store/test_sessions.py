"""Admin sign-in sessions, against SQLite and PostgreSQL: made for a key, stored only as a hash,
with the user agent and address that signed in (cleaned of control characters, for every payload
of the hostile-input corpus), checked with their key, listed by a public id, ended by sign-out,
by id, for a whole key, by expiry and by revoking the key; and a database made before migration 3
upgraded in place."""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from tests.test_security import PAYLOADS, needs_corpus
from waypost.exceptions import AuthError, NotFoundError, ValidationError
from waypost.store import _sql
from waypost.store._cache import CheckCache
from waypost.store._sql import SqlStore
from waypost.store.keys import ApiKey
from waypost.store.migrations import LATEST, MIGRATIONS
from waypost.store.sessions import (
    CLIENT_ADDRESS_MAX,
    USER_AGENT_MAX,
    Session,
    SessionChecker,
    clean_client_text,
    hash_token,
    new_session_token,
    session_id,
    token_session_id,
)

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

    monkeypatch.setattr(store.sessions, "_record_use", counting)
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
    session = Session("0123456789abcdef", key.id, moment, moment + timedelta(hours=1))
    stored = {hash_token(token): (session, key)}

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


# -- listing and ending sessions ----------------------------------------------------------------


def test_sessions_are_listed_by_a_public_id_never_by_token(store: SqlStore) -> None:
    person, _ = store.create_key("admin", note="person")
    robot, _ = store.create_key("read", note="robot")
    first, token = store.create_session(person.id, lifetime=HOUR)
    second, _ = store.create_session(person.id, lifetime=2 * HOUR)
    third, other = store.create_session(robot.id, lifetime=HOUR)
    assert re.fullmatch(r"[0-9a-f]{16}", first.id)
    assert first.id == session_id(hash_token(token)) == token_session_id(token)
    assert token_session_id("wp_not_a_session") is None and token_session_id(None) is None
    store.authenticate_session(token)  # last seen: pending in this process until listed

    listed = store.list_sessions()
    assert [s.id for s in listed] == [first.id, second.id, third.id]  # oldest first
    assert [s.key_id for s in listed] == [person.id, person.id, robot.id]
    assert (listed[0].created_at, listed[0].expires_at) == (first.created_at, first.expires_at)
    assert listed[0].last_seen_at is not None and listed[1].last_seen_at is None
    shown = repr(listed) + repr([s.to_dict() for s in listed])
    for secret in (token, other, token[4:], hash_token(token), hash_token(other)):
        assert secret not in shown
    assert set(listed[0].to_dict()) == {
        "id",
        "key_id",
        "created_at",
        "expires_at",
        "last_seen_at",
        "user_agent",
        "client_address",
    }

    assert [s.id for s in store.list_sessions(key_id=robot.id)] == [third.id]
    with pytest.raises(NotFoundError, match="nope"):
        store.list_sessions(key_id="nope")


def test_ending_a_session_by_id_stops_it_at_once_and_nothing_else(store: SqlStore) -> None:
    key, presented = store.create_key("write")
    ended, token = store.create_session(key.id, lifetime=HOUR)
    kept, other = store.create_session(key.id, lifetime=HOUR)
    assert store.authenticate_session(token).id == key.id  # cached now

    assert store.end_session_by_id(ended.id.upper()).id == ended.id  # read in any case
    assert reason(store, token) == "unknown"  # at once, though the check was cached
    assert store.authenticate_session(other).id == key.id
    assert store.authenticate(presented).id == key.id  # the key stays valid
    assert [s.id for s in store.list_sessions()] == [kept.id]
    for wrong in (ended.id, "0" * 16, "", "not an id", hash_token(other)):
        with pytest.raises(NotFoundError, match="no sign-in session"):
            store.end_session_by_id(wrong)
    assert store.end_session(token) is False  # signing out of it afterwards changes nothing


def test_ending_a_key_s_sessions_leaves_the_key_and_other_keys(store: SqlStore) -> None:
    key, presented = store.create_key("admin")
    spare, _ = store.create_key("admin")
    _, token = store.create_session(key.id, lifetime=HOUR)
    _, second = store.create_session(key.id, lifetime=HOUR)
    _, spare_token = store.create_session(spare.id, lifetime=HOUR)
    assert store.authenticate_session(token).id == key.id  # cached now

    ended = store.end_key_sessions(key.id)
    assert {s.id for s in ended} == {token_session_id(token), token_session_id(second)}
    assert reason(store, token) == "unknown" and reason(store, second) == "unknown"
    assert store.authenticate_session(spare_token).id == spare.id
    assert store.authenticate(presented).id == key.id  # the key stays valid,
    _, again = store.create_session(key.id, lifetime=HOUR)  # and may sign in again
    assert store.authenticate_session(again).id == key.id
    assert store.end_key_sessions(spare.id)[0].key_id == spare.id
    assert store.end_key_sessions(spare.id) == ()
    with pytest.raises(NotFoundError, match="no API key 'nope'"):
        store.end_key_sessions("nope")


def test_expired_sessions_are_pruned_when_sessions_are_listed_or_ended(store: SqlStore) -> None:
    key, _ = store.create_key("read")
    short, _ = store.create_session(key.id, lifetime=0.05)
    long, _ = store.create_session(key.id, lifetime=HOUR)
    time.sleep(0.1)
    assert [s.id for s in store.list_sessions()] == [long.id]
    assert len(session_rows(store)) == 1

    brief, _ = store.create_session(key.id, lifetime=0.05)
    time.sleep(0.1)
    with pytest.raises(NotFoundError):
        store.end_session_by_id(brief.id)  # expired: already gone
    assert [s.id for s in store.end_key_sessions(key.id)] == [long.id]
    assert session_rows(store) == [] and short.id != long.id


def test_ending_sessions_elsewhere_takes_effect_within_the_ttl(make_store: StoreFactory) -> None:
    serving = make_store(key_ttl=0.2)
    serving.upgrade()
    key, _ = serving.create_key("read")
    one, token = serving.create_session(key.id, lifetime=HOUR)
    _, other = serving.create_session(key.id, lifetime=HOUR)
    assert serving.authenticate_session(token).id == key.id  # cached now
    assert serving.authenticate_session(other).id == key.id
    elsewhere = make_store()  # another server, or the command line
    assert elsewhere.list_sessions(key_id=key.id)[0].id == one.id
    elsewhere.end_session_by_id(one.id)
    time.sleep(0.25)
    assert reason(serving, token) == "unknown"
    elsewhere.end_key_sessions(key.id)
    time.sleep(0.25)
    assert reason(serving, other) == "unknown"


# -- a check already asking the database when a session is ended -----------------------------


def test_a_check_in_flight_cannot_cache_a_session_ended_meanwhile() -> None:
    token = new_session_token()
    key = ApiKey("abcdefghijkm", "read")
    moment = datetime.now(UTC)
    row = (Session("0123456789abcdef", key.id, moment, moment + timedelta(hours=1)), key)
    stored = {hash_token(token): row}
    lookups: list[str] = []
    checker: SessionChecker

    def lookup(digest: str) -> tuple[Session, ApiKey] | None:
        lookups.append(digest)
        found = stored.get(digest)
        if len(lookups) == 1:  # ended while this lookup was on its way back
            del stored[digest]
            checker.forget(digest=digest)
        return found

    checker = SessionChecker(lookup, lambda seen: None, ttl=60.0)
    checker.authenticate(token)  # it had read the row: this request goes through,
    with pytest.raises(AuthError, match="ended"):  # but the next one asks again
        checker.authenticate(token)
    assert len(lookups) == 2


def test_the_check_cache_refuses_a_value_looked_up_before_a_drop() -> None:
    cache: CheckCache[str] = CheckCache(ttl=60.0, size=4)
    before = cache.generation
    cache.put("a", "fresh", generation=before)
    assert cache.get("a") == "fresh"
    cache.drop(lambda digest, _: digest == "b")  # any drop: the lookup may have read "a" too
    cache.put("c", "stale", generation=before)
    assert cache.get("c") is None
    cache.put("c", "fresh", generation=cache.generation)
    assert cache.get("c") == "fresh"
    threads = [threading.Thread(target=cache.drop) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.generation == before + 9 and cache.get("c") is None


# -- what signed in: the user agent and the client address ------------------------------------

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
# What a listing must never show as is: controls (C0, DEL, C1), format characters (bidi
# overrides, zero-width), line and paragraph separators.
_UNSHOWN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def shows_only_text(value: str) -> bool:
    return not any(unicodedata.category(char) in _UNSHOWN for char in value)


def test_a_session_records_the_user_agent_and_address_that_signed_in(store: SqlStore) -> None:
    key, _ = store.create_key("admin")
    made, token = store.create_session(
        key.id, lifetime=HOUR, user_agent=FIREFOX, client_address="2001:db8::7"
    )
    bare, _ = store.create_session(key.id, lifetime=HOUR)  # a program that said nothing
    assert (made.user_agent, made.client_address) == (FIREFOX, "2001:db8::7")
    assert (bare.user_agent, bare.client_address) == (None, None)

    listed = {s.id: s for s in store.list_sessions()}
    assert (listed[made.id].user_agent, listed[made.id].client_address) == (FIREFOX, "2001:db8::7")
    assert listed[made.id].to_dict()["user_agent"] == FIREFOX
    assert listed[bare.id].to_dict()["client_address"] is None
    assert store.authenticate_session(token).id == key.id  # the check reads the new columns
    found = store._find_session(hash_token(token))
    assert found is not None and found[0].user_agent == FIREFOX
    assert store.end_session_by_id(made.id).client_address == "2001:db8::7"
    assert [s.user_agent for s in store.end_key_sessions(key.id)] == [None]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("\t\r\n", None),
        ("  curl/8.5.0  ", "curl/8.5.0"),
        ("Mozilla/5.0 (Macintosh) Safari/605.1.15", "Mozilla/5.0 (Macintosh) Safari/605.1.15"),
        ("Navigateur Français/2.0 📎", "Navigateur Français/2.0 📎"),
        ("evil\r\nX-Injected: 1", "evil\ufffd\ufffdX-Injected: 1"),
        ("nul\x00byte", "nul\ufffdbyte"),
        ("\x1b[2J\x1b[31mred", "\ufffd[2J\ufffd[31mred"),
        ("c1\x85\x9bcontrols\x7f", "c1\ufffd\ufffdcontrols\ufffd"),
        ("abc\u202edcba", "abc\ufffddcba"),  # right-to-left override: would show reversed
        ("zero\u200bwidth\u2028line", "zero\ufffdwidth\ufffdline"),
    ],
    ids=[
        "none",
        "empty",
        "spaces",
        "only-controls",
        "stripped",
        "plain",
        "unicode",
        "crlf",
        "nul",
        "terminal-escapes",
        "c1-and-del",
        "bidi-override",
        "zero-width-and-separator",
    ],
)
def test_client_text_is_kept_without_control_characters(sent: str | None, kept: str | None) -> None:
    assert clean_client_text(sent, USER_AGENT_MAX) == kept


def test_client_text_is_cut_to_its_limit_and_says_so() -> None:
    assert clean_client_text("a" * USER_AGENT_MAX, USER_AGENT_MAX) == "a" * USER_AGENT_MAX
    cut = clean_client_text("b" * 5000, USER_AGENT_MAX)
    assert cut == "b" * (USER_AGENT_MAX - 1) + "\u2026"
    assert clean_client_text("ab cd", 4) == "ab\u2026"  # no space left before the ellipsis


def test_what_signed_in_is_cleaned_and_trimmed_by_the_store(store: SqlStore) -> None:
    key, _ = store.create_key("read")
    long_agent = "Mozilla/5.0 " + "x" * 2000 + "\r\nSet-Cookie: a=b"
    session, _ = store.create_session(
        key.id, lifetime=HOUR, user_agent=long_agent, client_address="10.0.0.1\n" + "9" * 300
    )
    assert session.user_agent is not None and len(session.user_agent) == USER_AGENT_MAX
    assert session.client_address is not None and len(session.client_address) == CLIENT_ADDRESS_MAX
    stored = session_rows(store)[0]
    assert (stored[5], stored[6]) == (session.user_agent, session.client_address)
    assert shows_only_text(stored[5]) and shows_only_text(stored[6])


@needs_corpus
def test_no_corpus_payload_is_stored_with_a_control_character(store: SqlStore) -> None:
    key, _ = store.create_key("read")
    sent = {}
    for payload in PAYLOADS:
        session, _ = store.create_session(
            key.id, lifetime=HOUR, user_agent=payload.text, client_address=payload.text
        )
        sent[session.id] = payload
    failures = []
    for row in session_rows(store):  # as stored, not as the store reads it back
        payload = sent[session_id(row[0])]
        agent, address = row[5], row[6]
        if not all(shows_only_text(value) for value in (agent, address) if value is not None):
            failures.append((payload.id, payload.text, agent, address))
        elif shows_only_text(payload.text) and agent != (payload.text.strip() or None):
            failures.append((payload.id, payload.text, "plain text changed", agent))
        elif (agent, address) != (
            clean_client_text(payload.text, USER_AGENT_MAX),
            clean_client_text(payload.text, CLIENT_ADDRESS_MAX),
        ):
            failures.append((payload.id, payload.text, "not as cleaned", agent, address))
    assert len(sent) == len(PAYLOADS) and not failures, failures[:10]
    assert any(not shows_only_text(p.text) for p in PAYLOADS)  # the corpus does carry some


# -- migration 3 on a database made before it --------------------------------------------------


def test_a_database_from_before_migration_3_upgrades_in_place(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert LATEST >= 3 and MIGRATIONS[2].number == 3
    with monkeypatch.context() as older:  # the Waypost that knew migrations 1 and 2 only
        older.setattr(_sql, "MIGRATIONS", MIGRATIONS[:2])
        older.setattr(_sql, "LATEST", 2)
        before = make_store(auto_upgrade=False)
        assert before.upgrade() == (0, 2)
        token = new_session_token()
        now = datetime.now(UTC)
        with before._transaction(write=True) as conn:  # a key and a sign-in as it stored them
            conn.execute(
                "INSERT INTO waypost_keys (id, secret_hash, scope, note, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                ("oldkey", "0" * 64, "admin", "person", before._time_param(now)),
            )
            key = SimpleNamespace(id="oldkey")
            conn.execute(
                "INSERT INTO waypost_sessions (token_hash, key_id, created_at, expires_at, "
                "last_seen_at) VALUES (?, ?, ?, ?, ?)",
                (
                    hash_token(token),
                    key.id,
                    before._time_param(now),
                    before._time_param(now + timedelta(hours=1)),
                    None,
                ),
            )
        assert len(session_rows(before)[0]) == 5
        before.close()

    after = make_store(auto_upgrade=False)
    status = after.schema_status()
    assert (status.version, status.pending) == (
        2,
        tuple(f"{m.number:04d} {m.name}" for m in MIGRATIONS[2:]),
    )
    assert after.upgrade() == (2, LATEST)
    assert after.upgrade() == (LATEST, LATEST)
    assert after.authenticate_session(token).id == key.id  # the old sign-in goes on
    (old,) = after.list_sessions()
    assert (old.id, old.key_id, old.user_agent, old.client_address) == (
        token_session_id(token),
        key.id,
        None,
        None,
    )
    assert old.last_seen_at is not None  # its use was recorded in the upgraded table
    after.create_session(key.id, lifetime=HOUR, user_agent=FIREFOX, client_address="::1")
    assert [(s.user_agent, s.client_address) for s in after.list_sessions()] == [
        (None, None),
        (FIREFOX, "::1"),
    ]
    assert after.end_session_by_id(old.id).id == old.id
