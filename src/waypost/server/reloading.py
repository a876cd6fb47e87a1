"""Hot reload: each worker watches the rules file and swaps a new rule set in atomically.

The watcher polls the file's ``stat()`` (size, mtime, inode) every ``reload_interval`` seconds on
a daemon thread. Polling rather than inotify is deliberate: it sees editors that write in place and
editors that rename a new file over the old one, works on network and container file systems, and
costs one ``stat`` call per interval. When the file changed, it is read and compiled off the event
loop, then :meth:`Engine.reload` swaps one reference: a request sees the old rules or the new ones,
never a mix, and never an error. A broken file keeps the old rules serving and every error is
logged with ``file:line:col``, once per change.

Every worker process runs its own watcher, so every worker picks up the change (within one
interval plus the load time).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from waypost.engine import Engine
from waypost.exceptions import RulesError
from waypost.server._background import BackgroundLoop

__all__ = ["LoadedRules", "RulesWatcher", "file_revision", "file_signature"]

logger = logging.getLogger("waypost.server")

# A file whose mtime is this recent may still be being written: wait one more interval.
_SETTLE_SECONDS = 0.05

Signature = tuple[int, int, int, int]


def file_signature(path: str | Path) -> Signature | None:
    """What identifies a version of the file (inode, size, times); None when it is missing."""
    return _signature(Path(path))


def _signature(path: Path) -> Signature | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


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


class RulesWatcher(BackgroundLoop):
    """Keeps ``engine`` in step with the rules file at ``path``.

    ``on_reload(ok)`` is called after every load attempt (for the metrics). Start the polling
    thread with :meth:`start` in the worker process (after any fork), stop it with :meth:`stop`.
    """

    def __init__(
        self,
        engine: Engine,
        path: str | Path,
        *,
        interval: float = 0.25,
        on_reload: Callable[[bool], None] | None = None,
        loaded_signature: Signature | None = None,
    ) -> None:
        self.engine = engine
        self.path = Path(path)
        self.interval = interval
        self.on_reload = on_reload
        # The file as it was when ``engine`` was loaded (in the main process, before the fork):
        # a change made while a worker was starting must still reach that worker.
        self._seen = loaded_signature if loaded_signature is not None else _signature(self.path)
        self._failed: Signature | None = None
        self.loaded = LoadedRules(file_revision(self.path), datetime.now(UTC), len(engine))
        super().__init__()

    thread_name = "reload"

    def __repr__(self) -> str:
        return f"RulesWatcher({self.engine!r}, {str(self.path)!r}, interval={self.interval!r})"

    def _wanted(self) -> bool:
        return self.interval > 0  # an interval of 0 turns hot reload off

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # the watcher must outlive any surprise; the old rules keep serving
                logger.exception("waypost: checking %s for changes failed", self.path)

    def check(self) -> bool | None:
        """Reload if the file changed since the last look: True reloaded, False failed, None no
        change (or still being written)."""
        signature = _signature(self.path)
        if signature is None or signature == self._seen:
            return None
        if 0 <= time.time_ns() - signature[2] < _SETTLE_SECONDS * 1e9:
            return None  # written a moment ago: let the writer finish, look again next interval
        return self.reload(signature)

    def reload(self, signature: Signature | None = None) -> bool:
        """Load the file now and swap it in; on errors keep the current rules and log them all."""
        signature = signature or _signature(self.path)
        self._seen = signature
        revision = file_revision(self.path)
        started = time.perf_counter()
        try:
            self.engine.reload(self.path)
        except RulesError as exc:
            if signature != self._failed:
                self._failed = signature
                count = len(exc.errors)
                logger.error(
                    "waypost: %s has %d error%s; still serving the previous rules (%s)",
                    self.path,
                    count,
                    "" if count == 1 else "s",
                    self.loaded.label,
                )
                for error in exc.errors:
                    logger.error("  %s", error)
            self._notify(ok=False)
            return False
        except OSError as exc:
            logger.error(
                "waypost: cannot read %s (%s); still serving the previous rules",
                self.path,
                exc.strerror or exc,
            )
            self._notify(ok=False)
            return False
        self._failed = None
        self.loaded = LoadedRules(revision, datetime.now(UTC), len(self.engine))
        logger.info(
            "waypost: reloaded %s: %d rules, revision %s (%.0f ms)",
            self.path,
            self.loaded.rule_count,
            revision,
            (time.perf_counter() - started) * 1000,
        )
        self._notify(ok=True)
        return True

    def _notify(self, *, ok: bool) -> None:
        if self.on_reload is not None:
            self.on_reload(ok)
