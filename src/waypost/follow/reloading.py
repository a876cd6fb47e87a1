"""Hot reload: each worker watches the rules file and swaps a new rule set in atomically.

The watcher polls the file's ``stat()`` (size, mtime, inode) every ``reload_interval`` seconds on
a daemon thread. Polling rather than inotify is deliberate: it sees editors that write in place and
editors that rename a new file over the old one, works on network and container file systems, and
costs one ``stat`` call per interval.

**A half-written file is told from a real edit by waiting until it stops changing.** A change is
loaded only once the file has stayed the same for 0.1 s (or the interval, if shorter): its
modification time is that old, or a second check, made when it will be, finds the same
``stat()``.
It is read and compiled off the event loop; if it changed again while it was read, nothing is
swapped in and the checks start over. A writer that pauses for longer than that in the middle
of the file can still be read half-way: then the file either does not load (every
error is logged with ``file:line:col``, the old rules keep serving) or it is shorter, which is
what the **shrink guard** is for: a reload that would leave no rule, or drop more than
``reload_max_shrink`` of the rules serving, is held back (the old rules keep serving, health
says ``degraded`` with the reason, the reload-failure metric counts it, a warning is logged)
until the file changes again, or for good when the file says ``allow_shrink: true``.

:meth:`Engine.reload` swaps one reference: a request sees the old rules or the new ones, never a
mix, and never an error. Every worker process runs its own watcher; with several workers they
share a ``decisions`` folder: the first worker to weigh a version of the file decides for all of
them (they could otherwise weigh it against different rules, having seen different versions), and
the version last let through is kept there, for a worker started later and for one that missed
it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from waypost.engine import Engine
from waypost.exceptions import RulesError
from waypost.follow.sources import FileSource
from waypost.rules.load import FORMATS, parse_rules
from waypost.rules.model import RuleSet
from waypost.store._background import BackgroundLoop

__all__ = [
    "LoadedRules",
    "RulesWatcher",
    "file_revision",
    "file_signature",
    "shrink_problem",
]

logger = logging.getLogger("waypost.server")

Signature = tuple[int, int, int, int]
# What check() compares for a file that is not there (so that missing, too, must last two checks).
_MISSING: Signature = (-1, -1, -1, -1)
# How long a changed file must stay unchanged before it is read (at most the check interval).
_QUIET_SECONDS = 0.1
# How long the guard's verdict on a version is kept for the other workers (see _shared_verdict).
_VERDICT_SECONDS = 600


def file_signature(path: str | Path) -> Signature | None:
    """What identifies a version of the file (inode, size, times); None when it is missing."""
    return _signature(Path(path))


def _signature(path: Path) -> Signature | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def shrink_problem(serving: int, loaded: int, max_shrink: float) -> str | None:
    """Why a reload from ``serving`` rules to ``loaded`` rules must be held back (None: it may go).

    It is held back when it would leave no rule, or drop more than ``max_shrink`` (a share, 0.5
    for half) of the rules serving; ``max_shrink`` 1 lets every reload through.
    """
    if serving == 0 or loaded >= serving or max_shrink >= 1:
        return None
    dropped = (serving - loaded) / serving
    if loaded == 0:
        return f"it has no rules, where {serving} are serving"
    if dropped > max_shrink:
        return (
            f"it has {loaded} rules where {serving} are serving: it would drop {dropped:.0%} of "
            f"them, more than reload_max_shrink ({max_shrink:.0%})"
        )
    return None


def file_revision(path: Path) -> str:
    """The first 12 hex digits of the SHA-256 of the file's bytes ('' when unreadable)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    except OSError:
        return ""


@dataclass(frozen=True, slots=True)
class LoadedRules:
    """What is serving now: the file's content hash, when it was loaded, and how many rules."""

    revision: str
    loaded_at: datetime
    rule_count: int

    @property
    def label(self) -> str:
        """``'<hash>@<load time>'``: changes with every successful load."""
        return f"{self.revision}@{self.loaded_at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"


class _HeldBack(Exception):
    """The loaded rules are not swapped in (the guard, or the file changed while it was read)."""

    def __init__(self, reason: str | None) -> None:
        super().__init__(reason)
        self.reason = reason


class RulesWatcher(BackgroundLoop):
    """Keeps ``engine`` in step with the rules file of ``source``: a
    :class:`~waypost.follow.sources.FileSource` (its ``signature`` and ``revision`` describe the
    file as ``engine`` was loaded from it, its ``decisions`` folder is shared with the other
    workers for the shrink guard's verdicts), or just the file's path.

    ``on_reload(ok)`` is called after every load attempt (for the metrics). ``max_shrink`` is the
    shrink guard's share (see the module docstring). :attr:`degraded` says why the rules serving
    are not the file's (None when they are). Start the polling thread with :meth:`start` in the
    worker process (after any fork), stop it with :meth:`stop`.
    """

    def __init__(
        self,
        engine: Engine,
        source: FileSource | str | Path,
        *,
        interval: float = 0.25,
        on_reload: Callable[[bool], None] | None = None,
        max_shrink: float = 0.5,
    ) -> None:
        if not isinstance(source, FileSource):
            source = FileSource(source)
        self.engine = engine
        self.path = Path(source.path)
        self.interval = interval
        self.on_reload = on_reload
        self.max_shrink = max_shrink
        self.decisions = Path(source.decisions) if source.decisions is not None else None
        self.degraded: str | None = None
        # The file as it was when ``engine`` was loaded (in the main process, before the fork):
        # a change made while a worker was starting must still reach that worker.
        seen = source.signature if source.signature is not None else _signature(self.path)
        self._seen: Signature = seen or _MISSING
        self._pending: Signature | None = None
        self._reported: Signature | None = None
        #: How long a change must stay unchanged before it is loaded.
        self.quiet = min(interval, _QUIET_SECONDS) if interval > 0 else _QUIET_SECONDS
        self._wait = self.quiet  # until the next check, while a change settles
        loaded_revision = source.revision
        if loaded_revision is None:
            loaded_revision = file_revision(self.path)
        self.loaded = LoadedRules(loaded_revision, datetime.now(UTC), len(engine))
        super().__init__()

    thread_name = "reload"

    def __repr__(self) -> str:
        return f"RulesWatcher({self.engine!r}, {str(self.path)!r}, interval={self.interval!r})"

    def _wanted(self) -> bool:
        return self.interval > 0  # an interval of 0 turns hot reload off

    def _run(self) -> None:
        self.catch_up()
        while not self._stop.wait(self._wait if self._pending is not None else self.interval):
            try:
                self.check()
            except Exception:  # the watcher must outlive any surprise; the old rules keep serving
                logger.exception("waypost: checking %s for changes failed", self.path)

    def check(self) -> bool | None:
        """Reload if the file changed since the last load and has stopped changing: True
        reloaded, False failed or held back, None no change (or not settled yet: check again
        :attr:`quiet` seconds later)."""
        signature = _signature(self.path) or _MISSING
        if signature == self._seen:
            self._pending = None
            return None
        # Changed since the last load: load it once it has stayed the same for ``quiet``
        # seconds, so that a writer is not caught half-way: its modification time is that old
        # already, or the next check (``quiet`` later, see _run) finds the same stat(). (The
        # clock is not trusted further: a time in the future means a second look.)
        age = time.time_ns() - signature[2]
        settled = signature != _MISSING and age >= self.quiet * 1e9
        if signature != self._pending and not settled:
            self._pending = signature
            # Look again when it will have been unchanged for ``quiet`` seconds, if it still is.
            left = self.quiet - age / 1e9 if age >= 0 else self.quiet
            self._wait = min(max(left, 0.01), self.quiet)
            return None
        self._pending = None
        if signature == _MISSING:
            self._seen = signature
            self._fail(signature, f"{self.path} is missing", log=logging.WARNING)
            return False
        return self.reload(signature)

    def reload(self, signature: Signature | None = None) -> bool:
        """Load the file now and swap it in; on errors keep the current rules and log them all."""
        signature = signature or _signature(self.path) or _MISSING
        self._seen = signature
        revision = file_revision(self.path)
        serving = self.loaded
        started, cpu = time.perf_counter(), time.thread_time()

        def accept(ruleset: RuleSet) -> None:
            if _signature(self.path) != signature:
                raise _HeldBack(None)  # written to while it was read: load it once it settles
            if ruleset.allow_shrink:
                return
            problem = shrink_problem(serving.rule_count, len(ruleset), self.max_shrink)
            problem = self._shared_verdict(revision, problem)
            if problem is not None:
                raise _HeldBack(problem)

        try:
            self.engine.reload(self.path, accept=accept)
        except _HeldBack as held:
            if held.reason is None:  # its new stat() differs from _seen: the next checks load it
                return False
            self._fail(
                signature,
                f"{self.path} is held back: {held.reason}",
                log=logging.WARNING,
                hint="if the file is being written, this clears once it is complete; if the "
                "shrink is meant, add 'allow_shrink: true' to the file (or raise "
                "--reload-max-shrink)",
            )
            return False
        except RulesError as exc:
            count = len(exc.errors)
            reason = f"{self.path} has {count} error{'' if count == 1 else 's'}"
            first = f"{reason} (first: {exc.errors[0]})" if exc.errors else reason
            self._fail(signature, first, details=[str(e) for e in exc.errors], summary=reason)
            return False
        except OSError as exc:
            self._fail(signature, f"cannot read {self.path} ({exc.strerror or exc})")
            return False
        self._reported = None
        self.degraded = None
        self.loaded = LoadedRules(revision, datetime.now(UTC), len(self.engine))
        self._share_accepted()
        # The time, and this thread's CPU time: under load the difference is the time it waited
        # for the CPU and the GIL while the worker served.
        logger.info(
            "waypost: reloaded %s: %d rules, revision %s (%.0f ms, %.0f ms of CPU)",
            self.path,
            self.loaded.rule_count,
            revision,
            (time.perf_counter() - started) * 1000,
            (time.thread_time() - cpu) * 1000,
        )
        self._notify(ok=True)
        return True

    def catch_up(self) -> bool:
        """Serve the version of the file last let through by any worker, when it is not the
        one this worker serves: True when it loaded it.

        Called when the watcher starts (a worker started later, after one died, is a fork of the
        rules loaded at start-up, which may be several versions old) and when a version is kept
        out (this worker may have missed the last one let through, in place for less than two
        of its checks). Each version let through is kept in the shared folder (see
        :meth:`_share_accepted`).
        """
        copy = self._accepted_copy()
        if copy is None:
            return False
        try:
            raw = copy.read_bytes()
        except OSError:
            return False
        revision = hashlib.sha256(raw).hexdigest()[:12]
        if revision == self.loaded.revision:
            return False
        # Parsed as the rules file itself, so that rules name it (in traces, in errors).
        ruleset, errors = parse_rules(
            raw.decode("utf-8", "replace"),
            format=FORMATS[copy.suffix],
            file=str(self.path),
            pack_rules=self.engine.pack_rules,
            guard_names=self.engine.guard_names,
        )
        try:
            if errors:
                raise RulesError(errors)
            self.engine.replace(ruleset)
        except RulesError as exc:  # the file is the source of truth: carry on from it
            logger.warning("waypost: cannot load the other workers' rules (%s): %s", copy, exc)
            return False
        self.loaded = LoadedRules(revision, datetime.now(UTC), len(self.engine))
        logger.info(
            "waypost: serving %d rules, revision %s, as the other workers do",
            self.loaded.rule_count,
            revision,
        )
        self._notify(ok=True)
        return True

    def _accepted_copy(self) -> Path | None:
        if self.decisions is None:
            return None
        copy = self.decisions / f"accepted{self.path.suffix.lower()}"
        return copy if copy.exists() and copy.suffix in FORMATS else None

    def _share_accepted(self) -> None:
        """Keep a copy of the version this worker now serves, for workers started later."""
        if self.decisions is None:
            return
        mine = self.decisions / f".accepted.{os.getpid()}{self.path.suffix}"
        try:
            mine.write_bytes(self.path.read_bytes())
            if file_revision(mine) == self.loaded.revision:  # not a later version of the file
                os.replace(mine, self.decisions / f"accepted{self.path.suffix.lower()}")
        except OSError as exc:
            logger.warning("waypost: cannot keep the rules in %s: %s", self.decisions, exc)
        finally:
            mine.unlink(missing_ok=True)

    def _fail(
        self,
        signature: Signature,
        reason: str,
        *,
        log: int = logging.ERROR,
        hint: str = "",
        details: list[str] | None = None,
        summary: str | None = None,
    ) -> None:
        """Keep the rules serving: say why in health, count it, and log it (once per change);
        then serve what the other workers serve (this worker may have missed the version they
        let through, if it was in place for less than two of its checks)."""
        self.degraded = reason
        if signature != self._reported:
            self._reported = signature
            logger.log(
                log,
                "waypost: %s; still serving the previous rules (%s)%s",
                summary or reason,
                self.loaded.label,
                f". {hint[:1].upper()}{hint[1:]}" if hint else "",
            )
            for line in details or ():
                logger.log(log, "  %s", line)
        self._notify(ok=False)
        self.catch_up()

    def _shared_verdict(self, key: str, problem: str | None) -> str | None:
        """The guard's verdict on this version of the file as the first worker to weigh it
        reached it (None: let it through).

        Every worker weighs the same version, but it may hold other rules (a version in place
        too briefly for it to see): the first verdict is kept in the shared folder, under the
        version's revision, and the others adopt it. So a version is let through by every
        worker or by none, and when it is held back, every worker serves the version last let
        through (see :meth:`catch_up`).
        """
        if self.decisions is None:
            return problem
        final = self.decisions / key
        mine = self.decisions / f".{key}.{os.getpid()}"
        try:
            mine.write_text(problem or "", encoding="utf-8")
            try:
                os.link(mine, final)  # atomic: fails if another worker decided first
            except FileExistsError:
                problem = final.read_text(encoding="utf-8") or None
            else:
                self._forget_old_verdicts()
            finally:
                mine.unlink(missing_ok=True)
        except OSError as exc:  # no shared verdict: this worker's own stands
            logger.warning(
                "waypost: cannot share the reload verdict in %s: %s", self.decisions, exc
            )
        return problem

    def _forget_old_verdicts(self) -> None:
        """Remove verdicts older than ``_VERDICT_SECONDS``: the workers weigh a version within
        seconds of each other, and a server reloading all day must not fill the folder."""
        assert self.decisions is not None
        oldest = time.time() - _VERDICT_SECONDS
        for entry in os.scandir(self.decisions):
            if entry.name.startswith((".", "accepted")):
                continue
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < oldest:
                    os.unlink(entry.path)

    def _notify(self, *, ok: bool) -> None:
        if self.on_reload is not None:
            self.on_reload(ok)
