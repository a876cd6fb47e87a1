"""The values the rule store hands out and takes in: frozen, slotted, free of I/O.

- :class:`StoredRule`: one rule as stored: a stable ``id``, its ``position`` (priority, file
  order), its ``version`` (an ETag) and its mapping in the rules file's structure;
- :class:`RulePage`: one page of :meth:`Store.list_rules`, with the cursor of the next page;
- :class:`RuleSetSettings`: the rule set's ``defaults``, ``allowed_hosts``, ``proxy_hosts`` and
  ``guards``, with their version;
- :class:`Snapshot`: the whole rule set at a revision, ready for ``Engine.replace``;
- :class:`Revision`, :class:`RuleChange`: one committed change set and what it changed;
- :class:`RevisionDiff`, :class:`RuleDiff`: how the rule set differs between two revisions;
- :class:`UpsertRule`, :class:`DeleteRule`, :class:`SetRuleSetSettings`: the operations of a bulk
  change (:meth:`Store.apply`);
- :class:`ImportOutcome`: what an import does (or would do) to the stored rules, in which mode;
- :class:`SchemaStatus`: where a database stands in the numbered migrations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

__all__ = [
    "IMPORT_MODES",
    "ChangeOp",
    "DeleteRule",
    "DiffKind",
    "ImportMode",
    "ImportOutcome",
    "Operation",
    "Revision",
    "RevisionDiff",
    "RuleChange",
    "RuleDiff",
    "RulePage",
    "RuleSetSettings",
    "SchemaStatus",
    "SetRuleSetSettings",
    "Snapshot",
    "StoredRule",
    "UpsertRule",
]

ChangeOp = Literal["create", "update", "move", "delete", "settings"]
DiffKind = Literal["added", "removed", "changed", "moved"]
ImportMode = Literal["merge", "append", "replace"]
#: How an import meets the stored rules (see :meth:`Store.import_rules`); merge is the default.
IMPORT_MODES: tuple[ImportMode, ...] = ("merge", "append", "replace")


def _plain(value: object) -> object:
    """``value`` as JSON holds it: a datetime in ISO 8601, a mapping as a dict, a tuple as a list
    (of plain items), a value of this module as its own ``to_dict()``."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, _Shown):
        return value.to_dict()
    return value


class _Shown:
    """A value whose ``to_dict()`` shows the fields ``_shown`` names, in that order, each made
    plain for JSON (:func:`_plain`)."""

    __slots__ = ()
    _shown: ClassVar[tuple[str, ...]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {name: _plain(getattr(self, name)) for name in self._shown}


@dataclass(frozen=True, slots=True)
class StoredRule(_Shown):
    """One rule in the store.

    ``version`` is the number of the revision that last changed this rule (its content or its
    place): it only grows, so it serves as an ETag. ``position`` is the 0-based place in the rule
    set (earlier rules win ties, as in a file).
    """

    id: str
    position: int
    version: int
    rule: Mapping[str, Any]
    created_revision: int

    _shown = ("id", "position", "version", "created_revision", "rule")

    @property
    def name(self) -> str | None:
        """The rule's ``name``, if it has one."""
        name = self.rule.get("name")
        return name if isinstance(name, str) else None

    @property
    def path(self) -> str:
        """The rule's ``from`` pattern."""
        return str(self.rule.get("from", ""))


@dataclass(frozen=True, slots=True)
class RulePage:
    """One page of rules; ``next_cursor`` fetches the next one (None on the last page)."""

    rules: tuple[StoredRule, ...]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class RuleSetSettings:
    """The rule set's ``defaults``, ``allowed_hosts`` (hosts a redirect may send clients to),
    ``proxy_hosts`` (origins a rewrite may proxy to) and ``guards`` (name -> declaration, as
    under a rules file's ``guards:``: ``{"staff": {"basic": {"htpasswd": "/etc/..."}}}``);
    ``version`` as for a rule.

    ``proxy_hosts`` and ``guards`` come after ``version`` so that positional construction from
    before they existed keeps its meaning."""

    defaults: Mapping[str, Any] = field(default_factory=dict)
    allowed_hosts: tuple[str, ...] = ()
    version: int = 0
    proxy_hosts: tuple[str, ...] = ()
    guards: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "defaults": dict(self.defaults),
            "allowed_hosts": list(self.allowed_hosts),
            "proxy_hosts": list(self.proxy_hosts),
            "guards": dict(self.guards),
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole rule set at ``revision``: ``Engine(snapshot.rules, defaults=snapshot.defaults,
    allowed_hosts=snapshot.allowed_hosts, proxy_hosts=snapshot.proxy_hosts,
    guards=snapshot.guards)`` (or ``engine.replace(...)`` with the same)."""

    revision: int
    defaults: Mapping[str, Any]
    allowed_hosts: tuple[str, ...]
    rules: tuple[Mapping[str, Any], ...]
    rule_ids: tuple[str, ...] = ()
    proxy_hosts: tuple[str, ...] = ()
    guards: Mapping[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Any:
        """Unpack as ``revision, defaults, allowed_hosts, rules = snapshot`` (the unpacking
        predates ``proxy_hosts`` and ``guards``, which it leaves out: read them as
        ``snapshot.proxy_hosts`` and ``snapshot.guards``)."""
        return iter((self.revision, self.defaults, self.allowed_hosts, self.rules))

    def to_document(self) -> dict[str, Any]:
        """The rule set in a rules file's structure (what ``waypost db export`` writes)."""
        document: dict[str, Any] = {}
        if self.defaults:
            document["defaults"] = dict(self.defaults)
        if self.allowed_hosts:
            document["allowed_hosts"] = list(self.allowed_hosts)
        if self.proxy_hosts:
            document["proxy_hosts"] = list(self.proxy_hosts)
        if self.guards:
            document["guards"] = {name: dict(body) for name, body in self.guards.items()}
        document["rules"] = [dict(rule) for rule in self.rules]
        return document


@dataclass(frozen=True, slots=True)
class RuleChange(_Shown):
    """What one revision did to one rule (``rule_id``) or to the settings (``op == "settings"``).

    ``before`` / ``after`` are the rule mappings (None for a create / a delete); for settings
    they are ``{"defaults": ..., "allowed_hosts": ..., "proxy_hosts": ..., "guards": ...}`` (a
    record written before the store knew proxy hosts or guards lacks that key: there were none).
    """

    op: ChangeOp
    rule_id: str | None
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None

    _shown = ("op", "rule_id", "before", "after")


@dataclass(frozen=True, slots=True)
class Revision(_Shown):
    """One committed change set: who (``key_id``, None for the command line), when, why.

    ``counts`` tells how many rules were created, updated, moved and deleted, and whether the
    settings changed; ``changes`` lists them (filled by :meth:`Store.get_revision`, empty in
    :meth:`Store.list_revisions`). ``rollback_of`` is the revision a rollback restored.
    """

    number: int
    created_at: datetime
    key_id: str | None
    message: str
    counts: Mapping[str, int] = field(default_factory=dict)
    rollback_of: int | None = None
    changes: tuple[RuleChange, ...] = ()

    _shown = ("number", "created_at", "key_id", "message", "counts", "rollback_of", "changes")


@dataclass(frozen=True, slots=True)
class RuleDiff(_Shown):
    """How one rule differs between two revisions; positions are 0-based (None: absent)."""

    kind: DiffKind
    rule_id: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    before_position: int | None
    after_position: int | None

    _shown = ("kind", "rule_id", "before", "after", "before_position", "after_position")


@dataclass(frozen=True, slots=True)
class RevisionDiff:
    """The rule set at ``to_revision`` compared with ``from_revision``.

    ``settings`` is ``(before, after)`` when the defaults, allowed hosts, proxy hosts or guards
    differ, else None.
    """

    from_revision: int
    to_revision: int
    rules: tuple[RuleDiff, ...]
    settings: tuple[RuleSetSettings, RuleSetSettings] | None = None

    @property
    def empty(self) -> bool:
        """True when the two revisions hold the same rule set."""
        return not self.rules and self.settings is None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        settings = None
        if self.settings is not None:
            before, after = self.settings
            settings = {"before": before.to_dict(), "after": after.to_dict()}
        return {
            "from_revision": self.from_revision,
            "to_revision": self.to_revision,
            "rules": [diff.to_dict() for diff in self.rules],
            "settings": settings,
        }


@dataclass(frozen=True, slots=True)
class UpsertRule:
    """Create a rule (``id`` None) or change one (``id`` given; ``rule`` None keeps its content).

    ``position`` puts the rule at that 0-based place (None: a new rule goes last, a changed one
    stays where it is). ``expected_version`` (an If-Match) makes the write fail with a
    :class:`~waypost.exceptions.ConflictError` when the rule changed since it was read.
    """

    rule: Mapping[str, Any] | None = None
    id: str | None = None
    expected_version: int | None = None
    position: int | None = None


@dataclass(frozen=True, slots=True)
class DeleteRule:
    """Delete the rule ``id`` (``expected_version`` as for :class:`UpsertRule`)."""

    id: str
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class SetRuleSetSettings:
    """Replace the ``defaults``, the ``allowed_hosts``, the ``proxy_hosts`` and/or the ``guards``
    (None leaves that one alone; ``{}`` removes every guard)."""

    defaults: Mapping[str, Any] | None = None
    allowed_hosts: Sequence[str] | None = None
    expected_version: int | None = None
    proxy_hosts: Sequence[str] | None = None
    guards: Mapping[str, Any] | None = None


Operation = UpsertRule | DeleteRule | SetRuleSetSettings


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a database stands: ``version`` applied of ``latest``; ``pending`` names the rest."""

    version: int
    latest: int
    pending: tuple[str, ...] = ()

    @property
    def up_to_date(self) -> bool:
        """True when every migration has been applied."""
        return self.version >= self.latest


@dataclass(frozen=True, slots=True)
class ImportOutcome(_Shown):
    """What an import did, or would do (``dry_run``), to the stored rules.

    Counts are of rules: ``created`` (rules of the file the store did not have), ``updated``
    (stored rules the file changes), ``unchanged`` (stored rules left as they were),
    ``deleted`` (stored rules the file does not have: ``replace`` mode only) and ``kept`` (stored
    rules still there afterwards, changed or not). ``previous_revision`` is the revision before
    the import: rolling back to it undoes the import. ``revision`` is the one the import made
    (None for a dry run, or when nothing changed). ``guards_added``, ``guards_changed`` and
    ``guards_removed`` name the guards whose declarations it adds, changes and removes.
    """

    mode: ImportMode
    previous_revision: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    kept: int = 0
    moved: int = 0
    settings_changed: bool = False
    revision: Revision | None = None
    dry_run: bool = False
    guards_added: tuple[str, ...] = ()
    guards_changed: tuple[str, ...] = ()
    guards_removed: tuple[str, ...] = ()

    # The revision is left out: the API and the CLI show it on its own.
    _shown = (
        "mode",
        "previous_revision",
        "created",
        "updated",
        "unchanged",
        "deleted",
        "kept",
        "moved",
        "settings_changed",
        "dry_run",
        "guards_added",
        "guards_changed",
        "guards_removed",
    )

    @property
    def changed(self) -> bool:
        """True when the import changes (or would change) anything."""
        return bool(
            self.created or self.updated or self.deleted or self.moved or self.settings_changed
        )

    def summary(self) -> str:
        """``3 created, 1 updated, 0 deleted, 12 kept`` (and the settings when they change)."""
        parts = [
            f"{self.created} created",
            f"{self.updated} updated",
            f"{self.deleted} deleted",
            f"{self.kept} kept",
        ]
        if self.moved:
            parts.append(f"{self.moved} moved")
        if self.settings_changed:
            parts.append("settings changed")
        for what, names in (
            ("added", self.guards_added),
            ("changed", self.guards_changed),
            ("removed", self.guards_removed),
        ):
            if names:
                guards = "guard" if len(names) == 1 else "guards"
                parts.append(f"{guards} {', '.join(names)} {what}")
        return ", ".join(parts)
