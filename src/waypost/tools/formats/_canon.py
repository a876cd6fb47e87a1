"""Helpers over Waypost's canonical rule mappings: defaults, patterns, targets, comparison.

This package works on the plain mappings of the YAML rules file, not on compiled rules, so that an
import can be reviewed and an export written without loading anything. The small parsers here
understand only what exporters need: the pieces of a ``from`` pattern and of a target.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ACTIONS",
    "BUILTIN_DEFAULTS",
    "Placeholder",
    "Variable",
    "action_of",
    "effective_rule",
    "ends_with_path_variable",
    "escape_target",
    "normalise_rule",
    "parse_pattern_pieces",
    "parse_target_pieces",
    "render_target",
    "uses_last_variable",
]

#: The values a rule gets when neither it nor the file's ``defaults`` set them.
BUILTIN_DEFAULTS: Mapping[str, Any] = {
    "status": 301,
    "query": "keep",
    "trailing_slash": "ignore",
    "case": "sensitive",
    "only_if_missing": False,
}

ACTIONS = ("to", "rewrite", "respond", "pass")

_VARIABLE = re.compile(
    r"<(?:(?P<conv>[A-Za-z_]\w*)(?:\((?P<args>[^)]*)\))?:)?(?P<name>[A-Za-z_]\w*)>"
)
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{(?P<name>[A-Za-z_]\w*)\}")


@dataclass(frozen=True, slots=True)
class Variable:
    """A ``<converter(args):name>`` in a pattern; ``converter`` is ``"string"`` when omitted."""

    name: str
    converter: str = "string"
    args: str = ""

    def render(self) -> str:
        """The variable written back in pattern syntax (the converter omitted for strings)."""
        if self.converter == "string" and not self.args:
            return f"<{self.name}>"
        args = f"({self.args})" if self.args else ""
        return f"<{self.converter}{args}:{self.name}>"


@dataclass(frozen=True, slots=True)
class Placeholder:
    """A ``{name}`` in a target."""

    name: str


def parse_pattern_pieces(pattern: str) -> list[str | Variable]:
    """Split a ``from`` pattern into literal text and :class:`Variable` pieces."""
    pieces: list[str | Variable] = []
    pos = 0
    for match in _VARIABLE.finditer(pattern):
        if match.start() > pos:
            pieces.append(pattern[pos : match.start()])
        pieces.append(
            Variable(
                match.group("name"), match.group("conv") or "string", match.group("args") or ""
            )
        )
        pos = match.end()
    if pos < len(pattern):
        pieces.append(pattern[pos:])
    return pieces


def parse_target_pieces(target: str) -> list[str | Placeholder]:
    """Split a target into literal text (``{{``/``}}`` unescaped) and placeholders."""
    pieces: list[str | Placeholder] = []
    literal: list[str] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(target):
        literal.append(target[pos : match.start()])
        token = match.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
        else:
            if "".join(literal):
                pieces.append("".join(literal))
            literal = []
            pieces.append(Placeholder(match.group("name")))
        pos = match.end()
    literal.append(target[pos:])
    if "".join(literal):
        pieces.append("".join(literal))
    return pieces


def escape_target(text: str) -> str:
    """Literal text made safe for a target: ``{`` and ``}`` doubled."""
    return text.replace("{", "{{").replace("}", "}}")


def render_target(pieces: Sequence[str | Placeholder]) -> str:
    """The inverse of :func:`parse_target_pieces`."""
    return "".join(
        f"{{{piece.name}}}" if isinstance(piece, Placeholder) else escape_target(piece)
        for piece in pieces
    )


def ends_with_path_variable(pattern: str) -> bool:
    """True when the pattern's last piece is a ``<path:...>`` variable."""
    pieces = parse_pattern_pieces(pattern)
    return bool(pieces) and isinstance(pieces[-1], Variable) and pieces[-1].converter == "path"


def action_of(rule: Mapping[str, Any]) -> str | None:
    """The action key of the rule (``to``, ``rewrite``, ``respond``, ``pass``), if exactly one."""
    present = [key for key in ACTIONS if key in rule]
    return present[0] if len(present) == 1 else None


def effective_rule(
    rule: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``rule`` with every applicable default filled in: the file's ``defaults``, then built-ins.

    ``status`` applies to ``to`` rules and ``query`` to ``to`` and ``rewrite`` rules;
    ``trailing_slash``, ``case`` and ``only_if_missing`` apply to every rule.
    """
    merged = {**BUILTIN_DEFAULTS, **(defaults or {})}
    out = dict(rule)
    action = action_of(rule)
    applicable = ["trailing_slash", "case", "only_if_missing"]
    if action == "to":
        applicable[:0] = ["status", "query"]
    elif action == "rewrite":
        applicable.insert(0, "query")
    for key in applicable:
        if key not in out and key in merged:
            out[key] = merged[key]
    return out


def normalise_rule(
    rule: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A form for comparing rules: defaults filled in, empty ``when`` parts and ``name`` removed.

    A ``respond`` mapping with only ``status`` becomes the bare status; single hosts and language
    lists become one-element lists; an ignored trailing slash is taken off a pattern. A pattern
    ending in a path variable matches with or without the slash either way, but the slash is part
    of the variable's value only when it is strict ('/a/<path:p>' on '/a/b/' gives 'b/', ignoring
    it gives 'b'): it counts as ``trailing_slash: ignore`` only when no target uses that value.
    Two rules that behave the same normalise to equal dicts.
    """
    out = effective_rule(rule, defaults)
    out.pop("name", None)
    if action_of(out) in ("respond", "pass"):
        out.pop("query", None)  # the query option only concerns targets
    pattern = str(out.get("from", ""))
    if pattern == "/" or (
        ends_with_path_variable(pattern) and not uses_last_variable(out, pattern)
    ):
        out["trailing_slash"] = "ignore"
    elif out.get("trailing_slash") == "ignore" and len(pattern) > 1:
        out["from"] = pattern.rstrip("/") or "/"
    respond = out.get("respond")
    if isinstance(respond, Mapping) and set(respond) <= {"status"}:
        out["respond"] = respond.get("status")
    when = out.get("when")
    if isinstance(when, Mapping):
        when = _normalise_when(when)
        if when:
            out["when"] = when
        else:
            del out["when"]
    return out


def uses_last_variable(rule: Mapping[str, Any], pattern: str) -> bool:
    """True when a target of ``rule`` uses the last variable of ``pattern``."""
    variables = parse_pattern_pieces(pattern)
    last = variables[-1] if variables else None
    if not isinstance(last, Variable):
        return False
    for key in ("to", "rewrite"):
        if key in rule:
            pieces = parse_target_pieces(str(rule[key]))
            if any(isinstance(p, Placeholder) and p.name == last.name for p in pieces):
                return True
    return False


def _normalise_when(when: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in when.items():
        if key == "not" and isinstance(value, Mapping):
            value = _normalise_when(value)
        elif key in ("query", "headers", "cookies") and isinstance(value, Mapping):
            value = {
                name: item[0] if isinstance(item, list) and len(item) == 1 else item
                for name, item in value.items()
            }
        elif key in ("host", "scheme", "language", "methods", "ip") and isinstance(value, str):
            value = [value]
        if key in ("host", "scheme", "language") and isinstance(value, list):
            value = sorted(str(item).lower() for item in value)
        if value in ({}, [], None) and key != "not":
            continue
        if key == "not" and not value:
            continue
        out[key] = value
    return out
