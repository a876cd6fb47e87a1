"""Reading nginx configuration text into a tree of directives (no I/O, no judgement)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Node", "parse_config"]


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
