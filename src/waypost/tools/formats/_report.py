"""What an import or an export produced, and what it could not carry over.

An importer never drops a line silently: every line it does not turn into a rule is a
:class:`Skipped` with its line number and the reason. An exporter never drops a rule silently:
every rule the target format cannot express is an :class:`Unsupported` with its index, and a rule
it wrote with a difference the reader should know of carries an :class:`ExportNote`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "ExportNote",
    "ExportResult",
    "ImportResult",
    "Note",
    "Refusal",
    "Skipped",
    "Unsupported",
    "export_each",
]


def _summary(head: str, notes: int, entries: list[tuple[int, str]]) -> str:
    """``head`` (with the count of notes, if any), then the entries' lines in the order of their
    numbers (a source line or a rule index; problems before notes where they tie)."""
    if notes:
        head += f", {notes} note" if notes == 1 else f", {notes} notes"
    entries.sort(key=lambda entry: entry[0])
    return "\n".join([head, *(text for _, text in entries)])


@dataclass(frozen=True, slots=True)
class _AtLine:
    """Something said about a source line: ``line`` is 1-based, ``text`` the line as written."""

    line: int
    text: str

    def _render(self, filename: str, what: str) -> str:
        # file:line: what: 'text', the form compilers and editors understand.
        return f"{filename}:{self.line}: {what}: {self.text!r}"


@dataclass(frozen=True, slots=True)
class Skipped(_AtLine):
    """A source line that was not imported: ``line`` is 1-based, ``text`` the line as written."""

    reason: str

    def render(self, filename: str = "<input>") -> str:
        """The skip as ``file:line: reason: 'text'``, the form compilers and editors understand."""
        return self._render(filename, self.reason)


@dataclass(frozen=True, slots=True)
class Note(_AtLine):
    """A line that was imported with an assumption the reader should check."""

    message: str

    def render(self, filename: str = "<input>") -> str:
        """The note as ``file:line: note: message: 'text'``."""
        return self._render(filename, f"note: {self.message}")


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The rules read from a file in another format, in Waypost's canonical mapping form.

    ``rules`` are plain dicts shaped like the entries of a Waypost YAML ``rules:`` list;
    ``defaults`` is the file's own ``defaults:`` mapping when the format has one (YAML), or the
    order and defaults its peer implies (``{"order": "first_match"}``). ``lines``, when an
    importer records them, gives the source line of each rule (one line may make several rules:
    a Cloudflare splat that also matches the empty text, a Bulk subpath).
    ``proxy_hosts`` are the origins the imported rules proxy to (a ``rewrite`` to an absolute
    URL), written as the file's top-level ``proxy_hosts:`` so that the rules load. ``guards``
    are a Waypost file's ``guards:`` (no other format has guards).
    """

    rules: list[dict[str, Any]]
    skipped: list[Skipped]
    format: str
    notes: list[Note] = field(default_factory=list)
    defaults: dict[str, Any] = field(default_factory=dict)
    lines: list[int] = field(default_factory=list)
    proxy_hosts: list[str] = field(default_factory=list)
    guards: dict[str, Any] = field(default_factory=dict)

    def summary(self, filename: str = "<input>") -> str:
        """A headline such as ``12 imported, 2 skipped``, then one line per skip and note."""
        head = f"{len(self.rules)} imported, {len(self.skipped)} skipped"
        said: list[Skipped | Note] = [*self.skipped, *self.notes]
        entries = [(entry.line, entry.render(filename)) for entry in said]
        return _summary(head, len(self.notes), entries)


def _which_rule(index: int, rule: Any) -> str:
    """``rule N (from '/x')`` for ``rules[index]``; N is 1-based like a line number."""
    origin = rule.get("from") if isinstance(rule, dict) else None
    return f"rule {index + 1}" + (f" (from {origin!r})" if origin is not None else "")


@dataclass(frozen=True, slots=True)
class _AboutRule:
    """Something said about ``rules[index]`` of an export."""

    index: int
    rule: dict[str, Any]

    def _render(self, what: str) -> str:
        # rule N (from '/x'): what; N is 1-based like a line number.
        return f"{_which_rule(self.index, self.rule)}: {what}"


@dataclass(frozen=True, slots=True)
class Unsupported(_AboutRule):
    """A rule (``rules[index]``) that the export format cannot express, and why."""

    reason: str

    def render(self) -> str:
        """The report as ``rule N (from '/x'): reason``; N is 1-based like a line number."""
        return self._render(self.reason)


@dataclass(frozen=True, slots=True)
class ExportNote(_AboutRule):
    """A rule (``rules[index]``) that was exported, but answers differently in some case."""

    message: str

    def render(self) -> str:
        """The note as ``rule N (from '/x'): note: message``; N is 1-based like a line number."""
        return self._render(f"note: {self.message}")


@dataclass(frozen=True, slots=True)
class ExportResult:
    """The exported file's text, every rule that could not be written to it, and the notes on
    rules that were written with a difference."""

    text: str
    unsupported: list[Unsupported]
    exported: int = 0
    notes: list[ExportNote] = field(default_factory=list)

    def summary(self) -> str:
        """A headline such as ``3 exported, 1 unsupported, 1 note``, then one line per
        unsupported rule and per note."""
        head = f"{self.exported} exported, {len(self.unsupported)} unsupported"
        said: list[Unsupported | ExportNote] = [*self.unsupported, *self.notes]
        entries = [(entry.index, entry.render()) for entry in said]
        return _summary(head, len(self.notes), entries)


class Refusal(ValueError):
    """Raised inside an importer or exporter for one line or rule; the message is the reason."""


_Made = TypeVar("_Made")


def export_each(
    rules: Sequence[Mapping[str, Any]],
    export_rule: Callable[[Mapping[str, Any]], _Made],
    order: Sequence[int] | None = None,
) -> tuple[list[tuple[int, Mapping[str, Any], _Made]], list[Unsupported]]:
    """What ``export_rule`` makes of each rule, with the rule and its index, and an
    :class:`Unsupported` for each rule it refuses (raises :class:`Refusal` for): an exporter
    drops no rule silently. ``order`` (indices of ``rules``) is the order to make them in, and
    the order of what is made: the order the format needs them written in (see
    ``_priority``); file order when left out. The unsupported rules come in file order."""
    made: list[tuple[int, Mapping[str, Any], _Made]] = []
    unsupported: list[Unsupported] = []
    for index in range(len(rules)) if order is None else order:
        rule = rules[index]
        try:
            made.append((index, rule, export_rule(rule)))
        except Refusal as refusal:
            unsupported.append(Unsupported(index, dict(rule), str(refusal)))
    unsupported.sort(key=lambda item: item.index)
    return made, unsupported
