"""What an import or an export produced, and what it could not carry over.

An importer never drops a line silently: every line it does not turn into a rule is a
:class:`Skipped` with its line number and the reason. An exporter never drops a rule silently:
every rule the target format cannot express is an :class:`Unsupported` with its index, and a rule
it wrote with a difference the reader should know of carries an :class:`ExportNote`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ExportNote", "ExportResult", "ImportResult", "Note", "Skipped", "Unsupported"]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A source line that was not imported: ``line`` is 1-based, ``text`` the line as written."""

    line: int
    text: str
    reason: str

    def render(self, filename: str = "<input>") -> str:
        """The skip as ``file:line: reason: 'text'``, the form compilers and editors understand."""
        return f"{filename}:{self.line}: {self.reason}: {self.text!r}"


@dataclass(frozen=True, slots=True)
class Note:
    """A line that was imported with an assumption the reader should check."""

    line: int
    text: str
    message: str

    def render(self, filename: str = "<input>") -> str:
        """The note as ``file:line: note: message: 'text'``."""
        return f"{filename}:{self.line}: note: {self.message}: {self.text!r}"


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The rules read from a file in another format, in Waypost's canonical mapping form.

    ``rules`` are plain dicts shaped like the entries of a Waypost YAML ``rules:`` list;
    ``defaults`` is the file's own ``defaults:`` mapping when the format has one (YAML only).
    """

    rules: list[dict[str, Any]]
    skipped: list[Skipped]
    format: str
    notes: list[Note] = field(default_factory=list)
    defaults: dict[str, Any] = field(default_factory=dict)

    def summary(self, filename: str = "<input>") -> str:
        """A headline such as ``12 imported, 2 skipped``, then one line per skip and note."""
        head = f"{len(self.rules)} imported, {len(self.skipped)} skipped"
        if self.notes:
            head += f", {_plural(len(self.notes), 'note')}"
        entries: list[Skipped | Note] = [*self.skipped, *self.notes]
        entries.sort(key=lambda entry: entry.line)
        return "\n".join([head, *(entry.render(filename) for entry in entries)])


def _which_rule(index: int, rule: Any) -> str:
    """``rule N (from '/x')`` for ``rules[index]``; N is 1-based like a line number."""
    origin = rule.get("from") if isinstance(rule, dict) else None
    return f"rule {index + 1}" + (f" (from {origin!r})" if origin is not None else "")


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A rule (``rules[index]``) that the export format cannot express, and why."""

    index: int
    rule: dict[str, Any]
    reason: str

    def render(self) -> str:
        """The report as ``rule N (from '/x'): reason``; N is 1-based like a line number."""
        return f"{_which_rule(self.index, self.rule)}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ExportNote:
    """A rule (``rules[index]``) that was exported, but answers differently in some case."""

    index: int
    rule: dict[str, Any]
    message: str

    def render(self) -> str:
        """The note as ``rule N (from '/x'): note: message``; N is 1-based like a line number."""
        return f"{_which_rule(self.index, self.rule)}: note: {self.message}"


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
        if self.notes:
            head += f", {_plural(len(self.notes), 'note')}"
        entries: list[Unsupported | ExportNote] = [*self.unsupported, *self.notes]
        entries.sort(key=lambda entry: entry.index)
        return "\n".join([head, *(entry.render() for entry in entries)])
