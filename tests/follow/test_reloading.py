"""The hot-reload watcher, in process: when a change is loaded, and the shrink guard.

A change is loaded once two checks in a row find the file unchanged; a file that would leave no
rule, or drop more than ``reload_max_shrink`` of the rules serving, keeps the old rules serving
(health ``degraded`` with the reason, a failed reload counted, a warning logged) until it is fixed
or says ``allow_shrink: true``.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from waypost import Engine
from waypost.follow.reloading import RulesWatcher, file_revision, shrink_problem
from waypost.follow.sources import FileSource, StoreSource
from waypost.follow.store_sync import StoreSync
from waypost.server.config import Settings
from waypost.server.core import WaypostServer
from waypost.store.model import Snapshot


def rules_text(count: int, tag: str = "a") -> str:
    lines = ["rules:"] + [f"  - {{from: /r{i}, to: /{tag}{i}}}" for i in range(count)]
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    """Write ``text`` and move the file's times on, so that its stat() differs from before."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    later = max(path.stat().st_mtime_ns, before + 1_000_000)
    os.utime(path, ns=(later, later))


class Watched:
    """A rules file of four rules, its engine, and a watcher whose outcomes are kept."""

    def __init__(self, tmp_path: Path, decisions: Path | None = None, **options: Any) -> None:
        self.path = tmp_path / "rules.yaml"
        self.path.write_text(rules_text(4), encoding="utf-8")
        self.engine = Engine.from_file(self.path)
        self.outcomes: list[bool] = []
        self.watcher = RulesWatcher(
            self.engine,
            FileSource(self.path, decisions=decisions),
            on_reload=self.outcomes.append,
            **options,
        )

    def settle(self) -> bool | None:
        """Two checks, as two intervals of the watcher's thread would make."""
        first = self.watcher.check()
        assert first is None, "a change is never loaded at first sight"
        return self.watcher.check()

    def location(self, path: str) -> str | None:
        return self.engine.resolve("GET", path).location


@pytest.fixture
def watched(tmp_path: Path) -> Watched:
    return Watched(tmp_path)


def test_a_change_is_loaded_once_two_checks_find_it_unchanged(watched: Watched) -> None:
    write(watched.path, rules_text(4, "b"))
    assert watched.watcher.check() is None
    assert watched.location("/r0") == "/a0"
    assert watched.watcher.check() is True
    assert watched.location("/r0") == "/b0"
    assert watched.watcher.check() is None  # nothing new


def test_a_file_still_being_written_is_not_loaded_until_it_stops_changing(
    watched: Watched,
) -> None:
    full = rules_text(4, "b")
    write(watched.path, full[: len(full) // 3])
    assert watched.watcher.check() is None
    write(watched.path, full)  # the writer carried on: the part seen first is never loaded
    assert watched.watcher.check() is None
    assert watched.watcher.check() is True
    assert (len(watched.engine), watched.outcomes) == (4, [True])


HELD = [
    ("", "it has no rules, where 4 are serving"),
    ("# being rewritten\n", "it has no rules, where 4 are serving"),
    ("rules: []\n", "it has no rules, where 4 are serving"),
    (
        rules_text(1, "b"),
        "it has 1 rules where 4 are serving: it would drop 75% of them, more than "
        "reload_max_shrink (50%)",
    ),
]


@pytest.mark.parametrize(
    ("text", "reason"), HELD, ids=["emptied", "comments only", "no rules", "a quarter left"]
)
def test_a_file_that_drops_too_many_rules_is_held_back(
    watched: Watched, text: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    write(watched.path, text)
    with caplog.at_level(logging.WARNING, logger="waypost.server"):
        assert watched.settle() is False
    assert (len(watched.engine), watched.location("/r3")) == (4, "/a3")
    assert watched.watcher.degraded == f"{watched.path} is held back: {reason}"
    assert watched.outcomes == [False]
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert reason in record.message
    assert "still serving the previous rules" in record.message
    assert "add 'allow_shrink: true' to the file" in record.message


@pytest.mark.parametrize(
    ("text", "count"),
    [(rules_text(2, "b"), 2), (rules_text(9, "b"), 9)],
    ids=["half left", "more rules"],
)
def test_a_file_that_keeps_enough_rules_is_loaded(watched: Watched, text: str, count: int) -> None:
    write(watched.path, text)
    assert watched.settle() is True
    assert (len(watched.engine), watched.watcher.degraded) == (count, None)


def test_allow_shrink_in_the_file_lets_it_through(watched: Watched) -> None:
    write(watched.path, "allow_shrink: true\nrules: []\n")
    assert watched.settle() is True
    assert (len(watched.engine), watched.watcher.degraded) == (0, None)


def test_reload_max_shrink_1_lets_every_file_through(tmp_path: Path) -> None:
    watched = Watched(tmp_path, max_shrink=1.0)
    write(watched.path, "")
    assert watched.settle() is True
    assert len(watched.engine) == 0


def test_held_back_until_fixed_and_said_once(
    watched: Watched, caplog: pytest.LogCaptureFixture
) -> None:
    write(watched.path, "")
    with caplog.at_level(logging.WARNING, logger="waypost.server"):
        assert watched.settle() is False
        for _ in range(3):
            assert watched.watcher.check() is None  # the same file: not weighed again
    assert len(caplog.records) == 1
    write(watched.path, rules_text(3, "c"))
    assert watched.settle() is True
    assert (watched.location("/r0"), watched.watcher.degraded) == ("/c0", None)
    assert watched.outcomes == [False, True]


def test_a_broken_file_keeps_the_old_rules_and_says_degraded(watched: Watched) -> None:
    write(watched.path, "rules:\n  - from: /r0/<itn:x>\n    to: /b\n")
    assert watched.settle() is False
    reason = watched.watcher.degraded or ""
    assert reason.startswith(f"{watched.path} has 1 error (first: {watched.path}:2:")
    assert watched.location("/r0") == "/a0"


def test_a_missing_file_keeps_the_old_rules_and_says_degraded(watched: Watched) -> None:
    watched.path.unlink()
    assert watched.settle() is False
    assert watched.watcher.degraded == f"{watched.path} is missing"
    write(watched.path, rules_text(4, "b"))
    assert watched.settle() is True
    assert (watched.location("/r0"), watched.watcher.degraded) == ("/b0", None)


def test_workers_take_the_first_workers_verdict(tmp_path: Path) -> None:
    # Two workers weigh the same change; the second would let it through (here: its own
    # reload_max_shrink; in life: it read the file at another moment, or holds other rules).
    decisions = tmp_path / "decisions"
    decisions.mkdir()
    first = Watched(tmp_path, decisions=decisions)
    second = Watched(tmp_path, decisions=decisions, max_shrink=1.0)
    write(first.path, rules_text(1, "b"))
    assert first.settle() is False
    assert second.settle() is False
    assert second.watcher.degraded == first.watcher.degraded
    assert (len(first.engine), len(second.engine)) == (4, 4)
    assert [p.name for p in decisions.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("serving", "loaded", "max_shrink", "held"),
    [
        (4, 0, 0.5, True),
        (4, 1, 0.5, True),
        (4, 2, 0.5, False),
        (4, 4, 0.5, False),
        (4, 9, 0.5, False),
        (0, 0, 0.5, False),
        (1, 0, 0.99, True),
        (4, 0, 1.0, False),
        (10, 9, 0.0, True),
    ],
    ids=[
        "all gone",
        "three quarters gone",
        "half gone",
        "same",
        "grown",
        "nothing serving",
        "all gone, nearly any share allowed",
        "guard off",
        "no drop allowed",
    ],
)
def test_shrink_problem(serving: int, loaded: int, max_shrink: float, held: bool) -> None:
    assert (shrink_problem(serving, loaded, max_shrink) is not None) is held


def test_health_and_metrics_say_degraded_while_held_back(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(rules_text(4), encoding="utf-8")
    server = WaypostServer(Engine.from_file(path), Settings(), source=FileSource(path))
    assert server.watcher is not None
    write(path, "")
    server.watcher.check()
    server.watcher.check()
    health = server.health()
    assert (health["status"], health["rules"]) == ("degraded", 4)
    assert health["reason"] == f"{path} is held back: it has no rules, where 4 are serving"
    metrics = server.metrics.render().decode()
    assert "waypost_reload_failures_total 1.0" in metrics
    assert "waypost_degraded 1.0" in metrics
    write(path, rules_text(4, "b"))
    server.watcher.check()
    server.watcher.check()
    health = server.health()
    assert (health["status"], health["reason"]) == ("ok", None)
    assert "waypost_degraded 0.0" in server.metrics.render().decode()


class _Store:
    """Stands in for a rule store whose latest revision this version cannot load."""

    def __init__(self, rules: list[dict[str, object]], revision: int) -> None:
        self.snapshot = Snapshot(revision, {}, (), tuple(rules))

    def load_snapshot(self) -> Snapshot:
        return self.snapshot


def test_a_store_revision_that_does_not_load_says_degraded_and_keeps_its_revision() -> None:
    engine = Engine([{"from": "/a", "to": "/b"}])
    outcomes: list[bool] = []
    sync = StoreSync(engine, StoreSource("sqlite:///unused.db", 3), on_reload=outcomes.append)
    sync._store = _Store([{"from": "/a/<itn:x>", "to": "/c"}], revision=4)
    sync._load()
    assert (sync.revision, len(engine), outcomes) == (3, 1, [False])
    assert (sync.degraded or "").startswith("revision 4 does not load: ")
    sync._store = _Store([{"from": "/a", "to": "/d"}], revision=5)
    sync._load()
    assert (sync.revision, sync.degraded, outcomes) == (5, None, [False, True])


def test_a_worker_started_later_serves_what_the_others_serve(tmp_path: Path) -> None:
    # A worker that dies is forked again from the rules loaded at start-up; the file may have
    # lost rules since, in steps the guard let through, which it must not weigh against those.
    decisions = tmp_path / "decisions"
    decisions.mkdir()
    path = tmp_path / "rules.yaml"
    path.write_text(rules_text(10), encoding="utf-8")
    started_with = (os.stat(path), file_revision(path))
    running = RulesWatcher(Engine.from_file(path), FileSource(path, decisions=decisions))
    for count in (6, 4):  # 40% fewer, then a third fewer: each passes
        write(path, rules_text(count, "b"))
        assert running.check() is None
        assert running.check() is True
    engine = Engine([{"from": f"/r{i}", "to": f"/a{i}"} for i in range(10)])
    signature = file_signature_of(started_with[0])
    loaded = FileSource(path, signature=signature, revision=started_with[1], decisions=decisions)
    restarted = RulesWatcher(engine, loaded)
    assert restarted.catch_up() is True
    assert (len(engine), restarted.loaded.revision) == (4, running.loaded.revision)
    assert engine.rules[0].file == str(path)
    assert restarted.check() is None
    assert restarted.check() is True  # the file, weighed against what the others serve
    assert (len(engine), restarted.degraded) == (4, None)
    assert restarted.catch_up() is False  # nothing newer


def file_signature_of(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@pytest.mark.parametrize("first", ["the worker that saw it", "the worker that missed it"])
def test_workers_that_saw_different_versions_end_up_serving_the_same(
    tmp_path: Path, first: str
) -> None:
    # One worker saw a version (600 rules: 40% fewer, let through) that was in place too
    # briefly for the other, still at the 1,000 of the start. The next version (400 rules) is
    # 33% fewer than the one and 60% fewer than the other: whichever weighs it first decides,
    # and then both serve the same rules.
    decisions = tmp_path / "decisions"
    decisions.mkdir()
    path = tmp_path / "rules.yaml"
    path.write_text(rules_text(1000), encoding="utf-8")
    shared = FileSource(path, decisions=decisions)
    saw = RulesWatcher(Engine.from_file(path), shared)
    missed = RulesWatcher(Engine.from_file(path), shared)
    # Each first check() must see the change as not settled yet, however long the other
    # worker's reload takes on a loaded machine: the settle time is made long here.
    saw.quiet = missed.quiet = 3600.0
    write(path, rules_text(600, "b"))
    assert saw.check() is None
    assert saw.check() is True
    write(path, rules_text(400, "c"))
    order = [saw, missed] if first == "the worker that saw it" else [missed, saw]
    for watcher in order:
        assert watcher.check() is None
        watcher.check()
    assert len(saw.engine) == len(missed.engine)
    assert saw.loaded.revision == missed.loaded.revision
    assert saw.degraded == missed.degraded
    if first == "the worker that saw it":
        assert (len(saw.engine), saw.degraded) == (400, None)
    else:
        assert len(saw.engine) == 600 and "is held back" in (saw.degraded or "")


@pytest.mark.parametrize(
    ("name", "full", "empty"),
    [
        ("rules.csv", "from,to\n" + "".join(f"/r{i},/a{i}\n" for i in range(4)), "from,to\n"),
        ("rules.toml", "".join(f'[[rules]]\nfrom = "/r{i}"\nto = "/a{i}"\n' for i in range(4)), ""),
        (
            "rules.json",
            '{"rules": ['
            + ", ".join(f'{{"from": "/r{i}", "to": "/a{i}"}}' for i in range(4))
            + "]}",
            '{"rules": []}',
        ),
    ],
    ids=["csv header only", "toml emptied", "json without rules"],
)
def test_every_format_is_guarded(tmp_path: Path, name: str, full: str, empty: str) -> None:
    path = tmp_path / name
    path.write_text(full, encoding="utf-8")
    engine = Engine.from_file(path)
    watcher = RulesWatcher(engine, path)
    write(path, empty)
    assert watcher.check() is None
    assert watcher.check() is False
    assert len(engine) == 4
    assert "is held back: it has no rules, where 4 are serving" in (watcher.degraded or "")


def test_a_store_revision_that_drops_every_rule_is_served_and_warned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A revision is committed, never half-written, and is what the admin API shows: no guard.
    engine = Engine([{"from": f"/r{i}", "to": "/x"} for i in range(4)])
    sync = StoreSync(engine, StoreSource("sqlite:///unused.db", 3))
    sync._store = _Store([], revision=4)
    with caplog.at_level(logging.WARNING, logger="waypost.server"):
        sync._load()
    assert (sync.revision, len(engine), sync.degraded) == (4, 0, None)
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "revision 4 of the rule store is serving, and it has no rules" in record.message


def test_old_verdicts_are_forgotten(tmp_path: Path) -> None:
    decisions = tmp_path / "decisions"
    decisions.mkdir()
    old, recent = decisions / "0123456789ab", decisions / "ba9876543210"
    for verdict in (old, recent):
        verdict.write_text("", encoding="utf-8")
    os.utime(old, (1, 1))  # 1970: long past any use
    watched = Watched(tmp_path, decisions=decisions)
    write(watched.path, rules_text(4, "b"))
    assert watched.settle() is True
    names = {p.name for p in decisions.iterdir()}
    assert old.name not in names
    assert {recent.name, watched.watcher.loaded.revision, "accepted.yaml"} <= names


def test_a_file_unchanged_for_a_while_already_is_loaded_at_first_sight(watched: Watched) -> None:
    # Renamed over the old one (mv keeps the new file's times), or written a while ago.
    watched.path.write_text(rules_text(4, "b"), encoding="utf-8")
    earlier = watched.path.stat().st_mtime_ns - 10_000_000_000
    os.utime(watched.path, ns=(earlier, earlier))
    assert watched.watcher.check() is True
    assert watched.location("/r0") == "/b0"


def test_a_change_is_looked_at_again_after_the_quiet_time_not_a_whole_interval(
    watched: Watched,
) -> None:
    assert (watched.watcher.interval, watched.watcher.quiet) == (0.25, 0.1)
    assert RulesWatcher(watched.engine, watched.path, interval=0.05).quiet == 0.05


def test_the_second_look_comes_when_the_file_will_have_been_quiet_long_enough(
    watched: Watched,
) -> None:
    watched.path.write_text(rules_text(4, "b"), encoding="utf-8")
    written = watched.path.stat().st_mtime_ns
    assert watched.watcher.check() is None
    # The next look is due quiet seconds after the write, not after this check.
    assert 0.01 <= watched.watcher._wait <= watched.watcher.quiet
    assert watched.watcher._wait <= watched.watcher.quiet - (time.time_ns() - written) / 1e9 + 0.01
