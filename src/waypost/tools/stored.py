"""The rules a store serves, as an engine, for what the tools say about them: an
:class:`EngineCache` rebuilt only when the store's revision moves, each rule named by its store
id (:class:`Resolved`), and which rule nearly answered a path that answered 404
(:func:`nearly_answered`). The admin API and ``waypost stats`` share it; it needs no web
framework."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from waypost.engine import Decision, Engine, Trace
from waypost.exceptions import WaypostError
from waypost.follow.store_sync import snapshot_engine
from waypost.guards import KeyRing
from waypost.rules.model import Rule
from waypost.store.base import Store
from waypost.store.model import Snapshot
from waypost.tools.near import nearly_matched

__all__ = ["EngineCache", "Resolved", "RuleRefDict", "nearly_answered"]


class RuleRefDict(TypedDict):
    """The rule that decided, as the API names it (:class:`~waypost.admin.schemas.RuleRef`)."""

    id: str | None
    name: str | None
    source: str


@dataclass(frozen=True, slots=True)
class Resolved:
    """An engine for one revision of the stored rules, and the store id of each of its rules."""

    revision: int
    engine: Engine
    rule_ids: Mapping[int, str]

    def rule_ref(self, rule: Rule | None) -> RuleRefDict | None:
        """``{"id", "name", "source"}`` of ``rule`` (None for no rule)."""
        if rule is None:
            return None
        return {"id": self.rule_ids.get(id(rule)), "name": rule.name, "source": rule.source}

    def decision(self, decision: Decision) -> dict[str, Any]:
        """``decision`` as JSON, its rule named by store id, with the revision."""
        out = decision.to_dict()
        out["rule"] = self.rule_ref(decision.rule)
        out["revision"] = self.revision
        return out

    def trace(self, trace: Trace) -> dict[str, Any]:
        """``trace`` as JSON, each rule named by store id, with the revision."""
        out = trace.to_dict()
        out["decision"] = self.decision(trace.decision)
        for step, original in zip(out["steps"], trace.steps, strict=True):
            step["rule"] = self.rule_ref(original.rule)
            step["pattern"] = original.rule.path
        out["revision"] = self.revision
        return out


class EngineCache:
    """The stored rules as an engine, rebuilt when the revision changes (one cheap read of the
    revision per request; the whole rule set only after a change).

    The engine has the stored guards, built as the server builds them (the htpasswd file read,
    the secret taken from this process's environment, the store's access keys for an
    ``api_key`` guard), so that resolve and explain answer as the server does; a guard this
    process cannot build makes them answer 500 ``rules_error`` saying why."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._current: Resolved | None = None
        self._keys: KeyRing | None = None

    def __repr__(self) -> str:
        revision = None if self._current is None else self._current.revision
        return f"EngineCache(store={self._store!r}, revision={revision!r})"

    def get(self) -> Resolved:
        """The engine for the store's current revision."""
        current = self._current
        if current is not None and current.revision == self._store.current_revision():
            return current
        with self._lock:  # one rebuild at a time; the others wait for it and reuse it
            current = self._current
            revision = self._store.current_revision()
            if current is None or current.revision != revision:
                current = self._build(self._store.load_snapshot())
                self._current = current
        return current

    def _build(self, snapshot: Snapshot) -> Resolved:
        if self._keys is None and any("api_key" in body for body in snapshot.guards.values()):
            # Only then: the ring follows the store from a thread (closed with the store).
            self._keys = self._store.keyring()
        engine = snapshot_engine(snapshot, keys=self._keys)
        pairs = zip(engine.rules, snapshot.rule_ids, strict=True)
        ids = {id(rule): rule_id for rule, rule_id in pairs}
        return Resolved(snapshot.revision, engine, ids)


def nearly_answered(engines: EngineCache, paths: Sequence[str]) -> list[dict[str, Any] | None]:
    """For each of ``paths`` (that answered 404), the rule that nearly answered it and why, as
    ``{"rule": {"id", "name", "source"}, "reason"}`` (None: no rule came near), from the rules
    the store serves now; all None when they cannot be built here (a guard's missing
    secret)."""
    try:
        resolved = engines.get()
    except WaypostError:
        return [None] * len(paths)
    out: list[dict[str, Any] | None] = []
    for path in paths:
        near = nearly_matched(resolved.engine, path)
        out.append(
            None if near is None else {"rule": resolved.rule_ref(near.rule), "reason": near.reason}
        )
    return out
