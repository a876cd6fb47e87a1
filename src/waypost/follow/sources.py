"""Where the standalone server's rules come from: a rules file it watches (:class:`FileSource`) or
a rule store it follows (:class:`StoreSource`).

``waypost serve`` makes one as it loads the rules; :func:`~waypost.server.run.run_server`
completes it before the workers fork, and each worker's
:class:`~waypost.server.core.WaypostServer` follows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from waypost.follow.reloading import Signature

__all__ = ["FileSource", "RulesSource", "StoreSource"]


@dataclass(frozen=True, slots=True)
class FileSource:
    """The rules file at ``path``, reloaded when it changes (see
    :class:`~waypost.follow.reloading.RulesWatcher`).

    ``signature`` and ``revision`` describe the file as it was loaded (None: as the worker finds
    it when it starts). Taken before the workers fork, they let an edit made while the workers
    start reach every one, and health report ``revision`` until a reload. ``decisions`` is the
    folder the workers share for the shrink guard's verdicts (None with one worker).
    ``stats_url`` is the temporary store the workers count into with ``--stats`` (None without):
    made at start, deleted at exit, so the counts last as long as the server.
    """

    path: str | Path
    signature: Signature | None = None
    revision: str | None = None
    decisions: str | Path | None = None
    stats_url: str | None = None


@dataclass(frozen=True, slots=True)
class StoreSource:
    """The rule store at ``url``, whose revision ``revision`` is the one loaded; every committed
    revision after it is loaded too (see :class:`~waypost.follow.store_sync.StoreSync`)."""

    url: str
    revision: int = 0
    #: The store ids of that revision's rules, by position (what its statistics are keyed by).
    rule_ids: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # A repr ends up in logs and tracebacks: never the database's password.
        from waypost.store.postgres import redact_url

        return f"StoreSource({redact_url(self.url)!r}, revision={self.revision!r})"


#: Where the server's rules come from.
RulesSource = FileSource | StoreSource
