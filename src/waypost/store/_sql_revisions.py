"""The history half of :class:`~waypost.store._sql.SqlStore`: revisions, the rule set as it was
at any revision (the current one with later changes undone, newest first), diffs between two
revisions, and rollback as a new revision."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from waypost.exceptions import NotFoundError, ValidationError
from waypost.store._sql_base import MAX_PAGE, Conn
from waypost.store._sql_commit import CommitMethods
from waypost.store._state import Entry, Row, State, Write, diff_rows, rewind
from waypost.store.model import Revision, RevisionDiff, RuleChange, RuleSetSettings

__all__ = ["RevisionMethods"]


class RevisionMethods(CommitMethods):
    """``list_revisions``, ``get_revision``, ``diff`` and ``rollback`` (mixed into SqlStore)."""

    def _revision(self, row: Sequence[Any]) -> Revision:
        created_at = self._time_value(row[1])
        assert created_at is not None  # the column is NOT NULL
        rollback_of = None if row[5] is None else int(row[5])
        return Revision(int(row[0]), created_at, row[2], row[3], json.loads(row[4]), rollback_of)

    def list_revisions(self, *, limit: int = 50, before: int | None = None) -> tuple[Revision, ...]:
        """Revisions, newest first (``before``: only those numbered lower, to page back)."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError([("limit", f"must be 1 to {MAX_PAGE}, got {limit}")])
        clause, params = ("WHERE number < ? ", [before]) if before is not None else ("", [])
        rows = self._read(
            "SELECT number, created_at, key_id, message, counts, rollback_of FROM "
            f"waypost_revisions {clause}ORDER BY number DESC LIMIT ?",
            (*params, limit),
        )
        return tuple(self._revision(row) for row in rows)

    def get_revision(self, number: int) -> Revision:
        """Revision ``number`` with what it changed; NotFoundError when there is none."""
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT number, created_at, key_id, message, counts, rollback_of FROM "
                "waypost_revisions WHERE number = ?",
                (number,),
            )
            if not rows:
                raise NotFoundError(f"there is no revision {number}")
            changes = conn.execute(
                "SELECT op, rule_id, before_rule, after_rule FROM waypost_changes "
                "WHERE revision = ? AND op <> 'rekey' ORDER BY seq",
                (number,),
            )
        revision = self._revision(rows[0])
        return Revision(
            revision.number,
            revision.created_at,
            revision.key_id,
            revision.message,
            revision.counts,
            revision.rollback_of,
            tuple(
                RuleChange(
                    op,
                    rule_id,
                    None if b is None else json.loads(b),
                    None if a is None else json.loads(a),
                )
                for op, rule_id, b, a in changes
            ),
        )

    def _at(self, conn: Conn, state: State, number: int) -> tuple[list[Row], RuleSetSettings]:
        if not 0 <= number <= state.revision:
            raise NotFoundError(
                f"there is no revision {number}; revisions run from 0 (empty) to {state.revision}"
            )
        undo = conn.execute(
            "SELECT op, rule_id, before_rule, after_rule, before_key, after_key FROM "
            "waypost_changes WHERE revision > ? ORDER BY revision DESC, seq DESC",
            (number,),
        )
        return rewind(
            state.rows,
            state.settings,
            (
                Write(
                    op,
                    rule_id,
                    None if before is None else json.loads(before),
                    None if after is None else json.loads(after),
                    None if before_key is None else int(before_key),
                    None if after_key is None else int(after_key),
                )
                for op, rule_id, before, after, before_key, after_key in undo
            ),
        )

    def diff(self, from_revision: int, to_revision: int | None = None) -> RevisionDiff:
        """How the rule set at ``to_revision`` (default: the current one) differs from the one at
        ``from_revision``."""
        with self._transaction() as conn:
            state = self._state(conn)
            target = state.revision if to_revision is None else to_revision
            before, before_settings = self._at(conn, state, from_revision)
            after, after_settings = self._at(conn, state, target)
        settings = None
        if (
            before_settings.defaults,
            before_settings.allowed_hosts,
            before_settings.proxy_hosts,
            before_settings.guards,
        ) != (
            after_settings.defaults,
            after_settings.allowed_hosts,
            after_settings.proxy_hosts,
            after_settings.guards,
        ):
            settings = (before_settings, after_settings)
        return RevisionDiff(from_revision, target, tuple(diff_rows(before, after)), settings)

    def rollback(
        self, to_revision: int, *, key_id: str | None = None, message: str = ""
    ) -> Revision | None:
        """Make the rule set what it was at ``to_revision``, as a new revision (None when it
        already is). Rules deleted since come back with their ids."""

        def build(conn: Conn, state: State) -> tuple[list[Entry], RuleSetSettings]:
            rows, settings = self._at(conn, state, to_revision)
            current = {row.id: row for row in state.rows}
            entries = [Entry(r.id, r.rule, f"rules[{r.id}]", current.get(r.id)) for r in rows]
            return entries, RuleSetSettings(
                settings.defaults,
                settings.allowed_hosts,
                state.settings.version,
                settings.proxy_hosts,
                settings.guards,
            )

        revision, _, _ = self._commit(
            build,
            key_id=key_id,
            message=message or f"roll back to revision {to_revision}",
            rollback_of=to_revision,
        )
        return revision
