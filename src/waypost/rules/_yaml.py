"""YAML text -> plain values, with the place in the file of each value (for ``file:line:col``).

The document is read from the parser's events, one at a time, with libyaml's C parser when PyYAML
was built with it (as the ``yaml.CSafeLoader`` reads): no tree of nodes is held, which for a
million rules would be several gigabytes. Values are what ``yaml.safe_load`` gives, aliases
included (an alias is the anchored value itself, as there), and the positions are those of the
nodes ``yaml.compose`` makes.

Positions cost memory: a ``_Pos`` for every value of a million rules is a gigabyte. So the items of
the top-level ``rules:`` list keep only where each rule starts (:class:`RuleLines`); when a rule
turns out to have a mistake, the text is read again with every position of that rule kept
(:meth:`RuleLines.refine`), and the error points at the offending text as before.

Aliases share a value, so what they can cost is the values a reader of the result walks: those are
counted, and a document whose aliases add more than :data:`MAX_ALIAS_VALUES` values (the "billion
laughs") is refused. A large document without aliases is never refused for its size.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Collection, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import SafeConstructor
from yaml.error import Mark
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

__all__ = [
    "MAX_ALIAS_VALUES",
    "AliasesTooLarge",
    "KeyProblem",
    "Pos",
    "RecursiveAlias",
    "RuleLines",
    "locate_in",
    "read_yaml_values",
]

#: How many values the aliases of one document may add once expanded.
MAX_ALIAS_VALUES = 1_000_000

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_NOTHING: Mapping[Any, Pos] = MappingProxyType({})
# libyaml, when PyYAML was built with it: its events (with the same marks) come about ten times
# faster than the pure-Python parser's.
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", None)


class Pos:
    """Where a value sits in the file (1-based) and, for containers, where its children sit."""

    __slots__ = ("children", "col", "keys", "line", "quoted")

    def __init__(
        self,
        line: int,
        col: int,
        quoted: bool = False,
        children: Mapping[Any, Pos] = _NOTHING,
        keys: Mapping[Any, Pos] = _NOTHING,
    ) -> None:
        self.line = line
        self.col = col
        self.quoted = quoted
        self.children = children
        self.keys = keys


class RuleLines(Mapping[int, Pos]):
    """The positions of the items of a long list: where each starts, and every position of the
    items :meth:`refine` was asked about."""

    def __init__(self, refine: Callable[[Collection[int]], Mapping[int, Pos]]) -> None:
        self.lines = array("l")
        self.cols = array("l")
        self.detailed: dict[int, Pos] = {}
        self._refine = refine

    def refine(self, indices: Collection[int]) -> None:
        """Read every position of the items at ``indices`` (the file is read again)."""
        wanted = [i for i in indices if i not in self.detailed]
        if wanted:
            self.detailed.update(self._refine(wanted))

    def __getitem__(self, index: int) -> Pos:
        found = self.detailed.get(index)
        if found is not None:
            return found
        if not isinstance(index, int) or not 0 <= index < len(self.lines):
            raise KeyError(index)
        return Pos(self.lines[index], self.cols[index])

    def __len__(self) -> int:
        return len(self.lines)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.lines)))


def locate_in(
    root: Pos | None, offset_path: tuple[Any, ...], inner: int | None, at_key: bool = False
) -> tuple[int | None, int | None]:
    """The line and column of the value at ``offset_path`` under ``root`` (``inner``: an offset
    into its text), or of its nearest located parent."""
    if root is None:
        return None, None
    pos = root
    exact = True
    for number, key in enumerate(offset_path):
        last = number == len(offset_path) - 1
        try:
            child = pos.keys.get(key) if at_key and last else pos.children.get(key)
        except TypeError:  # an unhashable key: no value sits there
            child = None
        if child is None:
            exact = False
            break
        pos = child
    col = pos.col
    if exact and inner is not None:
        col += inner + (1 if pos.quoted else 0)
    return pos.line, col


class AliasesTooLarge(Exception):
    """The document's aliases add more than :data:`MAX_ALIAS_VALUES` values."""


class RecursiveAlias(Exception):
    """An alias inside the value it names; ``line``/``col`` are those of the anchored value."""

    def __init__(self, line: int, col: int) -> None:
        super().__init__(line, col)
        self.line = line
        self.col = col


class KeyProblem:
    """A problem with a mapping key (a duplicate, a list), at ``line``/``col``: the document is
    still read, and the loader reports it with the others."""

    __slots__ = ("col", "line", "message")

    def __init__(self, message: str, line: int, col: int) -> None:
        self.message = message
        self.line = line
        self.col = col


def _events(text: str, fast: bool) -> tuple[Callable[[], Any], Callable[[], None]]:
    loader = _FAST_LOADER(text) if fast and _FAST_LOADER is not None else yaml.SafeLoader(text)
    return loader.get_event, loader.dispose


class _EventReader:
    """One pass over a document's events; ``detail``: the rules whose every position is kept."""

    def __init__(self, next_event: Callable[[], Any], detail: Collection[int] | None) -> None:
        self.next_event = next_event
        self.detail = detail
        self.constructor = SafeConstructor()
        # The implicit types of plain scalars by first character, as Resolver.resolve finds
        # them (PyYAML's safe resolvers have no catch-all, key None, and no path resolvers).
        self.implicit: dict[str | None, list[tuple[str, Any]]] = dict(
            Resolver.yaml_implicit_resolvers
        )
        self.scalars: dict[tuple[str, str], Any] = {}
        self.anchors: dict[str, tuple[Any, Pos | None, int] | None] = {}
        self.anchor_marks: dict[str, Mark] = {}
        self.count = 0
        self.expanded = 0
        self.problems: list[KeyProblem] = []
        self.rule_lines: RuleLines | None = None

    def document(self, refine: Callable[[Collection[int]], Mapping[int, Pos]]) -> tuple[Any, Pos]:
        get = self.next_event
        get()  # the stream's start
        event = get()
        if type(event) is StreamEndEvent:
            return None, Pos(1, 1)
        first = get()
        value, pos = self.read(first, True, refine)
        get()  # the document's end
        event = get()
        if type(event) is not StreamEndEvent:
            raise ComposerError(
                "expected a single document in the stream",
                first.start_mark,
                "but found another document",
                event.start_mark,
            )
        return value, pos if pos is not None else Pos(1, 1)

    def tag_of(self, event: Any) -> str:
        tag: str | None = event.tag
        if tag is not None and tag != "!":
            return tag
        if not event.implicit[0]:
            return _STR_TAG
        value: str = event.value
        for found, regexp in self.implicit.get(value[:1], ()):
            if regexp.match(value):
                return found
        return _STR_TAG

    def scalar(self, event: Any, tag: str) -> Any:
        if tag == _STR_TAG:  # most scalars: what SafeConstructor would return, directly
            return event.value
        key = (tag, event.value)
        try:
            return self.scalars[key]
        except KeyError:
            pass
        node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        value = self.constructor.construct_object(node, deep=True)
        self.constructor.constructed_objects.clear()
        if len(self.scalars) < 10_000 and isinstance(value, int | float | str | type(None)):
            self.scalars[key] = value
        return value

    def read(
        self,
        event: Any,
        keep: bool,
        refine: Callable[[Collection[int]], Mapping[int, Pos]] | None = None,
    ) -> tuple[Any, Pos | None]:
        """The value that starts with ``event``; its position when ``keep``. ``refine`` is given
        for the document's root, whose ``rules`` keep only where each rule starts."""
        self.count += 1
        kind = type(event)
        if kind is ScalarEvent:
            value = self.scalar(event, self.tag_of(event))
            pos = None
            if keep:
                mark = event.start_mark
                pos = Pos(mark.line + 1, mark.column + 1, event.style in ("'", '"'))
            if event.anchor is not None:
                self.anchor(event)
                self.anchors[event.anchor] = (value, pos, 1)
            return value, pos
        if kind is AliasEvent:
            return self.alias(event, keep)
        anchor = event.anchor
        if anchor is not None:
            self.anchor(event)
            self.anchors[anchor] = None
        before = self.count
        if kind is SequenceStartEvent:
            value, pos = self.sequence(event, keep, refine)
        elif kind is MappingStartEvent:
            value, pos = self.mapping(event, keep, refine)
        else:  # pragma: no cover - a node starts with one of the four
            raise ComposerError(None, None, f"unexpected {event}", event.start_mark)
        if anchor is not None:
            self.anchors[anchor] = (value, pos, self.count - before + 1)
        return value, pos

    def anchor(self, event: Any) -> None:
        first = self.anchor_marks.get(event.anchor)
        if first is not None:
            raise ComposerError(
                f"found duplicate anchor {event.anchor!r}; first occurrence",
                first,
                "second occurrence",
                event.start_mark,
            )
        self.anchor_marks[event.anchor] = event.start_mark

    def alias(self, event: Any, keep: bool) -> tuple[Any, Pos | None]:
        if event.anchor not in self.anchors:
            raise ComposerError(
                None, None, f"found undefined alias {event.anchor!r}", event.start_mark
            )
        found = self.anchors[event.anchor]
        mark = self.anchor_marks[event.anchor]
        if found is None:
            raise RecursiveAlias(mark.line + 1, mark.column + 1)
        value, pos, size = found
        self.count += size - 1
        self.expanded += size
        if self.expanded > MAX_ALIAS_VALUES:
            raise AliasesTooLarge
        if keep and pos is None:
            pos = Pos(mark.line + 1, mark.column + 1)
        return value, pos

    def sequence(
        self,
        start: Any,
        keep: bool,
        rules: Callable[[Collection[int]], Mapping[int, Pos]] | None,
    ) -> tuple[list[Any], Pos | None]:
        get = self.next_event
        items: list[Any] = []
        append = items.append
        children: dict[Any, Pos] | RuleLines | None = None
        if rules is not None:  # the list of rules: where each starts, and little else
            lines = RuleLines(rules)
            self.rule_lines = lines
            detail = self.detail or ()
            line_append, col_append = lines.lines.append, lines.cols.append
            event = get()
            index = 0
            while type(event) is not SequenceEndEvent:
                mark = event.start_mark
                line_append(mark.line + 1)
                col_append(mark.column + 1)
                if index in detail:
                    value, child_pos = self.read(event, True)
                    if child_pos is not None:
                        lines.detailed[index] = child_pos
                else:
                    value, _ = self.read(event, False)
                append(value)
                index += 1
                event = get()
            children = lines
        elif keep:
            children = {}
            event = get()
            index = 0
            while type(event) is not SequenceEndEvent:
                value, child_pos = self.read(event, True)
                append(value)
                if child_pos is not None:
                    children[index] = child_pos
                index += 1
                event = get()
        else:
            event = get()
            while type(event) is not SequenceEndEvent:
                append(self.read(event, False)[0])
                event = get()
        if not keep and rules is None:
            return items, None
        mark = start.start_mark
        return items, Pos(mark.line + 1, mark.column + 1, children=children or {})

    def mapping(
        self,
        start: Any,
        keep: bool,
        refine: Callable[[Collection[int]], Mapping[int, Pos]] | None,
    ) -> tuple[dict[Any, Any], Pos | None]:
        get = self.next_event
        result: dict[Any, Any] = {}
        children: dict[Any, Pos] = {}
        keys: dict[Any, Pos] = {}
        written: set[Any] = set()
        event = get()
        while type(event) is not MappingEndEvent:
            if (
                type(event) is ScalarEvent
                and event.value == "<<"
                and self.tag_of(event) == _MERGE_TAG
            ):
                self.count += 1
                merged, _ = self.read(get(), False)
                for source in merged if isinstance(merged, list) else [merged]:
                    if isinstance(source, dict):
                        for k, v in source.items():
                            result.setdefault(k, v)
                event = get()
                continue
            key_mark = event.start_mark
            key, key_pos = self.read(event, keep)
            if isinstance(key, list | dict):
                self.problems.append(
                    KeyProblem(
                        "a mapping key must be a plain value",
                        key_mark.line + 1,
                        key_mark.column + 1,
                    )
                )
                self.read(get(), False)  # its value, passed over
                event = get()
                continue
            # Only keys written here count: one merged in with '<<' may be overridden (YAML spec).
            if key in written:
                self.problems.append(
                    KeyProblem(
                        f"duplicate key {key!r}; a key may appear once in a mapping (the later "
                        "one would silently win)",
                        key_mark.line + 1,
                        key_mark.column + 1,
                    )
                )
            written.add(key)
            value_event = get()
            if refine is not None and key == "rules" and type(value_event) is SequenceStartEvent:
                value, value_pos = self.read(value_event, True, refine)
            else:
                value, value_pos = self.read(value_event, keep)
            result[key] = value
            if keep and value_pos is not None and key_pos is not None:
                children[key] = value_pos
                keys[key] = key_pos
            event = get()
        if not keep:
            return result, None
        mark = start.start_mark
        return result, Pos(mark.line + 1, mark.column + 1, children=children, keys=keys)


def read_yaml_values(
    text: str, *, fast: bool = True, detail: Collection[int] | None = None
) -> tuple[Any, Pos, list[KeyProblem]]:
    """The document in ``text``, the position of its parts, and the problems of its keys.

    Raises what PyYAML raises for text that is not YAML (``yaml.MarkedYAMLError``),
    :class:`RecursiveAlias`, :class:`AliasesTooLarge`, and ``RecursionError`` for a document
    nested too deeply. ``fast``: with libyaml when PyYAML has it. ``detail``: the indices of the
    rules to keep every position of (the others keep where they start).
    """

    def refine(indices: Collection[int]) -> Mapping[int, Pos]:
        again = _EventReader(_events(text, fast)[0], frozenset(indices))
        again.document(refine)
        return again.rule_lines.detailed if again.rule_lines is not None else {}

    next_event, dispose = _events(text, fast)
    try:
        reader = _EventReader(next_event, detail)
        value, pos = reader.document(refine)
    finally:
        dispose()
    return value, pos, reader.problems
