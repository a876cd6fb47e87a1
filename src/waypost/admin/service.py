"""What the admin API does, apart from HTTP: answers built from the store, the engine and the
format converters. The routes only translate requests and errors.

- :class:`EngineCache`: an :class:`~waypost.engine.Engine` for the stored rules, rebuilt only
  when the store's revision moves (resolve and explain run against it);
- :func:`validate`: a dry run of a rule, a bulk change or a whole rule set, every problem listed;
- :func:`import_text` / :func:`export_snapshot`: rules files in Waypost's own YAML/JSON and in the
  formats of :mod:`waypost.tools.formats`;
- :func:`create_rule`: the one way the API adds a rule, from ``POST /api/rules`` and from a
  not-found row (:func:`redirect_not_found`);
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import yaml

from waypost.engine import Engine
from waypost.exceptions import ValidationError
from waypost.store import check_rule_set, to_json_value
from waypost.store.base import Store
from waypost.store.model import (
    DeleteRule,
    ImportMode,
    ImportOutcome,
    Operation,
    Revision,
    Snapshot,
    StoredRule,
    UpsertRule,
)
from waypost.store.stats import NotFoundStats
from waypost.store.transfer import dump_document
from waypost.tools.formats import (
    EXPORTERS,
    IMPORTERS,
    ImportResult,
    detect_format,
    export_rules,
    guarded_rules,
)
from waypost.tools.stored import EngineCache, Resolved, RuleRefDict, nearly_answered

__all__ = [
    "EXPORT_FORMATS",
    "IMPORT_FORMATS",
    "EngineCache",
    "ExportNoteDict",
    "ExportedDict",
    "ImportReport",
    "ProblemDict",
    "Resolved",
    "RuleRefDict",
    "ServedEngine",
    "UnsupportedDict",
    "create_rule",
    "export_snapshot",
    "import_text",
    "nearly_answered",
    "problems_out",
    "redirect_not_found",
    "validate",
]

log = logging.getLogger("waypost.admin")

#: Waypost's own rules documents: the whole rule set with ``defaults``, ``allowed_hosts``,
#: ``proxy_hosts`` and ``guards``.
_OWN_FORMATS = ("yaml", "json")
IMPORT_FORMATS: tuple[str, ...] = tuple(sorted({*_OWN_FORMATS, *IMPORTERS}))
EXPORT_FORMATS: tuple[str, ...] = tuple(sorted({*_OWN_FORMATS, *EXPORTERS}))


# -- resolve and explain --------------------------------------------------------------------


class ServedEngine(EngineCache):
    """The engine a server serves from a rules file, for what the admin API says about rules
    (its rules have no store ids: they are named by ``file:line``)."""

    def __init__(self, engine: Callable[[], Engine]) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return f"ServedEngine({self._engine!r})"

    def get(self) -> Resolved:
        """The engine serving now."""
        return Resolved(0, self._engine(), {})


# -- validate -------------------------------------------------------------------------------


class ProblemDict(TypedDict):
    """One problem as the API shows it (:class:`~waypost.admin.schemas.Problem`)."""

    path: str
    message: str


def problems_out(problems: Iterable[tuple[str, str]]) -> list[ProblemDict]:
    """``(path, message)`` pairs as the API's ``{"path", "message"}`` objects."""
    return [{"path": path, "message": message} for path, message in problems]


def _apply_in_memory(
    snapshot: Snapshot, operations: Sequence[Operation]
) -> tuple[list[object], list[str], list[tuple[str, str]]]:
    """The rule set after ``operations`` (without writing): rules, their labels, problems."""
    order = list(snapshot.rule_ids)
    content: dict[str, object] = dict(zip(snapshot.rule_ids, snapshot.rules, strict=True))
    labels: dict[str, str] = {rule_id: f"rules[{rule_id}]" for rule_id in order}
    problems: list[tuple[str, str]] = []
    for index, operation in enumerate(operations):
        where = f"changes[{index}]"
        if not isinstance(operation, UpsertRule | DeleteRule):  # pragma: no cover - not built
            continue
        rule_id = operation.id
        if rule_id is not None and rule_id not in content:
            problems.append((f"{where}.id", f"there is no rule {rule_id!r}"))
            continue
        if isinstance(operation, DeleteRule):
            order.remove(operation.id)
            del content[operation.id]
            continue
        if rule_id is None:
            if operation.rule is None:
                problems.append((f"{where}.rule", "a new rule needs its mapping"))
                continue
            rule_id = f"new-{index}"
            order.append(rule_id)
        if operation.rule is not None:
            content[rule_id] = to_json_value(operation.rule, f"{where}.rule", problems)
            labels[rule_id] = f"{where}.rule"
        if operation.position is not None:
            order.remove(rule_id)
            order.insert(min(operation.position, len(order)), rule_id)
    return [content[i] for i in order], [labels[i] for i in order], problems


def validate(
    snapshot: Snapshot,
    *,
    rule: Mapping[str, Any] | None = None,
    rule_id: str | None = None,
    operations: Sequence[Operation] | None = None,
    rules: Sequence[Mapping[str, Any]] | None = None,
    defaults: Mapping[str, Any] | None = None,
    allowed_hosts: Sequence[str] | None = None,
    proxy_hosts: Sequence[str] | None = None,
    guards: Mapping[str, Any] | None = None,
) -> list[ProblemDict]:
    """Every problem (``{"path", "message"}``) of one of: ``rule`` among the stored rules
    (standing in for ``rule_id`` when given), ``operations`` applied to the stored rules, or
    ``rules`` alone with ``defaults``, ``allowed_hosts``, ``proxy_hosts`` and ``guards``.
    Writes nothing; the guards are checked as the store checks them (declarations, not
    built)."""
    problems: list[tuple[str, str]] = []
    settings_label = "settings"
    if rules is not None:
        candidates = [to_json_value(r, f"rules[{i}]", problems) for i, r in enumerate(rules)]
        labels = [f"rules[{i}]" for i in range(len(candidates))]
        use_defaults = to_json_value(dict(defaults or {}), "defaults", problems)
        hosts = to_json_value(list(allowed_hosts or ()), "allowed_hosts", problems)
        proxy = to_json_value(list(proxy_hosts or ()), "proxy_hosts", problems)
        declared = to_json_value(dict(guards or {}), "guards", problems)
    else:
        use_defaults, hosts = dict(snapshot.defaults), list(snapshot.allowed_hosts)
        proxy, declared = list(snapshot.proxy_hosts), dict(snapshot.guards)
        if rule is not None:
            change = UpsertRule(rule, id=rule_id)
            candidates, labels, problems = _apply_in_memory(snapshot, [change])
            problems = [(path.replace("changes[0].", "", 1), text) for path, text in problems]
            labels = [label.replace("changes[0].", "", 1) for label in labels]
        else:
            candidates, labels, problems = _apply_in_memory(snapshot, operations or ())
    if problems:
        return problems_out(problems)
    try:
        check_rule_set(
            candidates,
            labels,
            defaults=use_defaults,
            allowed_hosts=hosts,
            proxy_hosts=proxy,
            settings_label=settings_label,
            guards=declared,
        )
    except ValidationError as exc:
        return problems_out(exc.problems)
    return []


# -- import and export ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import read (``result``: rules, skipped lines, notes), the settings it brings
    (None: keep the stored ones; ``allowed_hosts`` is None for another format than Waypost's,
    whose ``proxy_hosts`` are the origins its rules proxy to), and what it did to the stored
    rules (``outcome``: None before it ran; its revision is None for a dry run, or when nothing
    changed). ``guards`` are a Waypost document's (None for another format: it has none)."""

    result: ImportResult
    allowed_hosts: tuple[str, ...] | None
    outcome: ImportOutcome | None = None
    proxy_hosts: tuple[str, ...] | None = None
    guards: Mapping[str, Any] | None = None

    @property
    def revision(self) -> Revision | None:
        """The revision the import made (None: a dry run, or no change)."""
        return None if self.outcome is None else self.outcome.revision

    def to_dict(self, *, dry_run: bool) -> dict[str, object]:
        """A JSON-ready dict: counts, every skipped line and note, the CLI's summary, what it
        did to the stored rules and the revision that undoes it (``rollback_to``)."""
        result = self.result
        outcome = self.outcome
        written = self.revision is not None
        return {
            "format": result.format,
            "imported": len(result.rules),
            "guards": sorted(self.guards or {}),
            "skipped": [
                {"line": s.line, "text": s.text, "reason": s.reason} for s in result.skipped
            ],
            "notes": [{"line": n.line, "text": n.text, "message": n.message} for n in result.notes],
            "summary": result.summary(),
            "dry_run": dry_run,
            "mode": None if outcome is None else outcome.mode,
            "outcome": None if outcome is None else outcome.to_dict(),
            "revision": None if self.revision is None else self.revision.to_dict(),
            "rollback_to": outcome.previous_revision if outcome is not None and written else None,
        }


def _host_list(document: Mapping[str, Any], key: str, problems: list[tuple[str, str]]) -> list[Any]:
    """The document's top-level host list ``key`` (one host may be given as text)."""
    hosts = document.get(key) or []
    if isinstance(hosts, str):
        hosts = [hosts]
    if not isinstance(hosts, list):
        problems.append((f"content.{key}", "must be a list of host names"))
        return []
    return hosts


def _own_document(text: str, format: str) -> ImportReport:
    """A Waypost YAML or JSON document: its rules, defaults, allowed hosts, proxy hosts and
    guards (a path in them must be absolute: there is no rules file for it to be relative
    to)."""
    try:
        document = json.loads(text) if format == "json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        what = "JSON" if format == "json" else "YAML"
        raise ValidationError([("content", f"not valid {what}: {exc}")]) from None
    if isinstance(document, list):
        document = {"rules": document}
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ValidationError(
            [("content", "a rules document is a mapping with 'rules' (or a list of rules)")]
        )
    problems: list[tuple[str, str]] = []
    rules = document.get("rules") or []
    defaults = document.get("defaults") or {}
    if not isinstance(rules, list):
        problems.append(("content.rules", "must be a list of rules"))
    if not isinstance(defaults, dict):
        problems.append(("content.defaults", "must be a mapping"))
    hosts = _host_list(document, "allowed_hosts", problems)
    proxy = _host_list(document, "proxy_hosts", problems)
    guards = document.get("guards") or {}
    if not isinstance(guards, dict):
        problems.append(("content.guards", "must map a guard name to its declaration"))
    if problems:
        raise ValidationError(problems)
    result = ImportResult(
        list(rules), [], format, [], dict(defaults), proxy_hosts=list(proxy), guards=guards
    )
    return ImportReport(result, tuple(hosts), proxy_hosts=tuple(proxy), guards=guards)


def read_import(text: str, format: str, filename: str | None) -> ImportReport:
    """Read ``text`` in ``format`` (``auto``: guessed from ``filename`` and the text)."""
    if format == "auto":
        guessed = detect_format(filename or "", text)
        if guessed is None:
            raise ValidationError(
                [
                    (
                        "format",
                        "cannot tell the format of this file; give format, one of "
                        + ", ".join(IMPORT_FORMATS),
                    )
                ]
            )
        format = guessed
    if format in _OWN_FORMATS:
        return _own_document(text, format)
    importer = IMPORTERS.get(format)
    if importer is None:
        raise ValidationError(
            [("format", f"{format!r} is not a format; use auto, {', '.join(IMPORT_FORMATS)}")]
        )
    try:
        result = importer(text)
    except Exception as exc:  # a converter's bug must not become a 500 for a file upload
        log.exception("the %s importer failed", format)
        raise ValidationError([("content", f"the {format} importer failed: {exc}")]) from None
    # The origins the file's rules proxy to (Netlify's 200 to a URL, Vercel's rewrites to
    # another origin) are its proxy hosts: without them those rules do not load.
    return ImportReport(result, None, proxy_hosts=tuple(result.proxy_hosts))


def import_text(
    store: Store,
    text: str,
    *,
    format: str,
    filename: str | None = None,
    mode: ImportMode = "merge",
    dry_run: bool = False,
    confirm_deletes: int | None = None,
    key_id: str | None = None,
    message: str = "",
) -> ImportReport:
    """Import a file's ``text`` in ``mode`` (see :meth:`Store.import_rules`): ``merge`` puts its
    rules into the stored ones (a rule with the same name, or the same ``from`` and conditions,
    is replaced in place; nothing is deleted), ``append`` adds them at the end, ``replace`` makes
    the rule set exactly the file's. A Waypost document also brings its defaults, allowed hosts
    and proxy hosts; another format keeps the stored ones but for the order its peer applies
    rules in (``order: first_match`` for Netlify, Cloudflare Pages, Apache), which a merge or
    append into rules tried in the other order refuses, and the origins its rules proxy to, which
    are its proxy hosts (a replace takes them, a merge or append adds them to the stored ones).
    ``dry_run`` checks and counts without writing.

    Raises :class:`~waypost.exceptions.ValidationError` with every problem, located
    (``rules[3].to``), and :class:`~waypost.exceptions.ConfirmationError` for a replace that
    deletes more than it keeps beyond ``confirm_deletes``.
    """
    report = read_import(text, format, filename)
    result = report.result
    own = report.allowed_hosts is not None
    outcome = store.import_rules(
        result.rules,
        mode=mode,
        defaults=result.defaults if own else None,
        order=None if own else result.defaults.get("order"),
        allowed_hosts=report.allowed_hosts,
        proxy_hosts=report.proxy_hosts,
        guards=report.guards,
        confirm_deletes=confirm_deletes,
        dry_run=dry_run,
        key_id=key_id,
        message=message or f"import ({result.format}, {mode})",
    )
    return ImportReport(result, report.allowed_hosts, outcome, report.proxy_hosts, report.guards)


class UnsupportedDict(TypedDict):
    """A rule the export format cannot express (:class:`~waypost.admin.schemas.UnsupportedOut`)."""

    index: int
    rule_id: str | None
    reason: str


class ExportNoteDict(TypedDict):
    """A rule exported with a difference (:class:`~waypost.admin.schemas.ExportNoteOut`)."""

    index: int
    rule_id: str | None
    note: str


class ExportedDict(TypedDict):
    """What :func:`export_snapshot` answers (:class:`~waypost.admin.schemas.ExportOut`)."""

    format: str
    revision: int
    content: str
    exported: int
    unsupported: list[UnsupportedDict]
    notes: list[ExportNoteDict]


def export_snapshot(snapshot: Snapshot, format: str) -> ExportedDict:
    """The rule set as a file in ``format``: ``{"format", "revision", "content", "exported",
    "unsupported", "notes"}``; every rule the format cannot express is listed, none dropped
    silently, and every rule it carries with a difference has a note."""
    rules = list(snapshot.rules)
    if format == "yaml":
        content = dump_document(snapshot)
        return _exported(format, snapshot, content, len(rules), [], [])
    if format == "json":
        content = json.dumps(snapshot.to_document(), indent=2, ensure_ascii=False) + "\n"
        return _exported(format, snapshot, content, len(rules), [], [])
    exporter = EXPORTERS.get(format)
    if exporter is None:
        raise ValidationError(
            [("format", f"{format!r} is not an export format; use {', '.join(EXPORT_FORMATS)}")]
        )
    guarded = guarded_rules(rules)
    if guarded and format != "yaml":
        # Exported without its guard, a guarded area would be served open: refused, not dropped.
        raise ValidationError(
            [
                (
                    "format",
                    f"rules with guards (require:) cannot be exported as {format}: the format "
                    "has no equivalent, and an export without them would serve the guarded "
                    "areas open; export as yaml or json, which keep the guards",
                ),
                *(
                    (f"rules[{snapshot.rule_ids[i]}].require", "requires a guard")
                    for i in guarded
                    if i < len(snapshot.rule_ids)
                ),
            ]
        )
    result = export_rules(
        format,
        rules,
        dict(snapshot.defaults) or None,
        allowed_hosts=snapshot.allowed_hosts,
        proxy_hosts=snapshot.proxy_hosts,
        guards=snapshot.guards,
    )
    ids = snapshot.rule_ids

    def rule_id(index: int) -> str | None:
        return ids[index] if 0 <= index < len(ids) else None

    unsupported: list[UnsupportedDict] = [
        {"index": item.index, "rule_id": rule_id(item.index), "reason": item.render()}
        for item in result.unsupported
    ]
    notes: list[ExportNoteDict] = [
        {"index": item.index, "rule_id": rule_id(item.index), "note": item.render()}
        for item in result.notes
    ]
    return _exported(format, snapshot, result.text, result.exported, unsupported, notes)


def _exported(
    format: str,
    snapshot: Snapshot,
    content: str,
    exported: int,
    unsupported: list[UnsupportedDict],
    notes: list[ExportNoteDict],
) -> ExportedDict:
    return {
        "format": format,
        "revision": snapshot.revision,
        "content": content,
        "exported": exported,
        "unsupported": unsupported,
        "notes": notes,
    }


# -- rules and the not-found log ------------------------------------------------------------


def create_rule(
    store: Store,
    rule: Mapping[str, Any],
    *,
    position: int | None = None,
    key_id: str | None = None,
    message: str = "",
) -> StoredRule:
    """Add ``rule`` (a rules-file mapping) last or at ``position``, as one revision by
    ``key_id``: checked by the rules loader with the whole rule set (ValidationError with every
    problem, nothing written). Every rule the API creates one at a time comes through here."""
    return store.create_rule(
        rule, position=position, key_id=key_id, message=message or "create a rule"
    )


def redirect_not_found(
    store: Store,
    row_id: str,
    redirect: Mapping[str, Any],
    *,
    position: int | None = None,
    key_id: str | None = None,
    message: str = "",
) -> tuple[StoredRule, NotFoundStats]:
    """Answer the path of the not-found row ``row_id`` with a rule ``{"from": path,
    **redirect}`` (:func:`create_rule`), then mark the row resolved by it; the rule and the row.

    NotFoundError for an unknown row. A rule the loader refuses is ValidationError whose paths
    name the fields of ``redirect`` (``to``, not ``rule.to``; ``from`` is the row's path), and
    the row stays as it was. The row's path is taken as a pattern: one holding ``<`` is refused
    like any bad pattern."""
    row = store.get_not_found(row_id)
    rule = {"from": row.path, **redirect}
    try:
        stored = create_rule(
            store,
            rule,
            position=position,
            key_id=key_id,
            message=message or f"redirect {row.path} (answered 404) to {redirect.get('to')}",
        )
    except ValidationError as exc:
        raise ValidationError((_body_path(path), text) for path, text in exc.problems) from None
    return stored, store.set_not_found_status(row_id, "resolved", resolved_rule_id=stored.id)


def _body_path(path: str) -> str:
    """A problem's path in the store's words (``.rule.to``) as a field of a not-found row's
    redirect body (``to``); a problem with the rule as a whole (a duplicate) names no field."""
    path = path.lstrip(".")
    if path == "rule":
        return ""
    return path.removeprefix("rule.")
