"""Reading nginx configuration text into a tree of directives, and quoting words to write it
(no I/O, no judgement)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "DOLLAR",
    "DOLLAR_BLOCK",
    "Node",
    "parse_config",
    "quote_text",
    "quote_word",
    "unquote_dollars",
]

#: nginx has no escape for '$' in a value that may hold variables (map values, ``return`` text,
#: ``add_header``, ``if`` operands); this ``geo`` variable, whose value is '$', stands for it.
DOLLAR = "${waypost_dollar}"
DOLLAR_BLOCK = 'geo $waypost_dollar { default "$"; }'


def quote_word(value: str) -> str:
    """``value`` as one nginx word that holds no variables: bare when it can be, else quoted."""
    # nginx reads '\\' as one backslash even in a bare word; inside quotes it is written doubled.
    if re.search(r"[\s;{}'\"#]", value) or "\\\\" in value or not value:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def quote_text(value: str) -> str:
    """``value`` as a quoted nginx string read for variables, its '$' written as :data:`DOLLAR`.

    Always quoted and every backslash doubled: nginx reads ``\\n`` as a line break even in a bare
    word.
    """
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", DOLLAR)
    return f'"{escaped}"'


def unquote_dollars(value: str) -> str:
    """Undo :func:`quote_text`'s '$' (the quotes and backslashes are the reader's)."""
    return value.replace(DOLLAR, "$")


@dataclass(slots=True)
class Node:
    """One directive: its name, arguments (and which were quoted), line, and block if any."""

    name: str
    args: list[str]
    line: int
    children: list[Node] | None = None
    quoted: list[bool] = field(default_factory=list)


def _tokenize(text: str) -> list[tuple[str, int, bool]]:
    tokens: list[tuple[str, int, bool]] = []
    pos, line, end = 0, 1, len(text)
    while pos < end:
        char = text[pos]
        if char == "\n":
            line += 1
            pos += 1
        elif char.isspace():
            pos += 1
        elif char == "#":
            while pos < end and text[pos] != "\n":
                pos += 1
        elif char in "{};":
            tokens.append((char, line, False))
            pos += 1
        elif char in "\"'":
            start_line, out = line, []
            pos += 1
            while pos < end and text[pos] != char:
                if text[pos] == "\\" and pos + 1 < end:
                    pos += 1
                if text[pos] == "\n":
                    line += 1
                out.append(text[pos])
                pos += 1
            pos += 1
            tokens.append(("".join(out), start_line, True))
        else:
            start = pos
            while pos < end and not text[pos].isspace() and text[pos] not in ";{}\"'":
                if text[pos] == "$" and text.startswith("${", pos):
                    pos = text.find("}", pos) + 1 or end
                    continue
                pos += 1
            tokens.append((text[start:pos], line, False))
    return tokens


def _parse(tokens: list[tuple[str, int, bool]], pos: int = 0) -> tuple[list[Node], int]:
    nodes: list[Node] = []
    while pos < len(tokens):
        token, line, quoted = tokens[pos]
        if token == "}" and not quoted:
            return nodes, pos + 1
        words: list[str] = []
        flags: list[bool] = []
        while pos < len(tokens) and (tokens[pos][2] or tokens[pos][0] not in "{};"):
            words.append(tokens[pos][0])
            flags.append(tokens[pos][2])
            pos += 1
        if not words:
            pos += 1
            continue
        node = Node(words[0], words[1:], line, None, flags[1:])
        if pos < len(tokens) and tokens[pos][0] == "{":
            node.children, pos = _parse(tokens, pos + 1)
        else:
            pos += 1
        nodes.append(node)
    return nodes, pos


def parse_config(text: str) -> list[Node]:
    """The directives of ``text``, blocks holding their children."""
    nodes, _ = _parse(_tokenize(text))
    return nodes
