"""Reading a JSON export, and line numbers for its array elements (the json module has none)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ._common import Collector
from ._report import ImportResult
from ._text import clean_text

__all__ = ["array_lines", "element_lines", "import_json", "key_line", "line_of"]

_DECODER = json.JSONDecoder()
_SPACE = " \t\n\r"


def import_json(
    text: str, format: str, read: Callable[[str, Any, Collector], None]
) -> ImportResult:
    """Import a JSON export: ``read(text, value, collector)`` reads the value ``text`` holds (the
    text as :func:`clean_text` left it). Invalid JSON imports nothing; its parse error is then the
    one skip, at its line."""
    collector = Collector()
    text = clean_text(text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        collector.skip(error.lineno, "", f"invalid JSON, nothing imported: {error.msg}")
    else:
        read(text, data, collector)
    return collector.result(format)


def line_of(text: str, offset: int) -> int:
    """The 1-based line number of ``offset`` in ``text``."""
    return text.count("\n", 0, offset) + 1


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _SPACE:
        pos += 1
    return pos


def element_lines(text: str, key: str) -> list[int]:
    """The line on which each element of the top-level ``key`` array starts.

    ``text`` must already be valid JSON (parse it first); anything unexpected returns ``[]`` and
    callers fall back to line 1.
    """
    try:
        pos = _skip(text, 0)
        if text[pos] != "{":
            return []
        pos = _skip(text, pos + 1)
        while text[pos] != "}":
            name, pos = _DECODER.raw_decode(text, pos)
            pos = _skip(text, pos)
            pos = _skip(text, pos + 1)  # the ':'
            if name == key and text[pos] == "[":
                return _array_lines(text, pos)
            _, pos = _DECODER.raw_decode(text, pos)
            pos = _skip(text, pos)
            if text[pos] == ",":
                pos = _skip(text, pos + 1)
    except (IndexError, ValueError):
        return []
    return []


def array_lines(text: str) -> list[int]:
    """The line on which each element of the top-level array ``text`` starts (``dumpdata``'s
    shape).

    ``text`` must already be valid JSON (parse it first); anything unexpected returns ``[]`` and
    callers fall back to line 1.
    """
    try:
        pos = _skip(text, 0)
        return _array_lines(text, pos) if text[pos] == "[" else []
    except (IndexError, ValueError):
        return []


def _array_lines(text: str, pos: int) -> list[int]:
    """The line of each element of the array opening at ``pos``; IndexError or ValueError for
    text that is not one."""
    lines: list[int] = []
    pos = _skip(text, pos + 1)
    while text[pos] != "]":
        lines.append(line_of(text, pos))
        _, pos = _DECODER.raw_decode(text, pos)
        pos = _skip(text, pos)
        if text[pos] == ",":
            pos = _skip(text, pos + 1)
    return lines


def key_line(text: str, key: str) -> int | None:
    """The line on which the top-level ``key`` of the JSON object ``text`` is written, if any.

    ``text`` must already be valid JSON (parse it first); anything unexpected returns ``None``.
    """
    try:
        pos = _skip(text, 0)
        if text[pos] != "{":
            return None
        pos = _skip(text, pos + 1)
        while text[pos] != "}":
            start = pos
            name, pos = _DECODER.raw_decode(text, pos)
            if name == key:
                return line_of(text, start)
            pos = _skip(text, _skip(text, pos) + 1)  # the ':'
            _, pos = _DECODER.raw_decode(text, pos)
            pos = _skip(text, pos)
            if text[pos] == ",":
                pos = _skip(text, pos + 1)
    except (IndexError, ValueError):
        return None
    return None
