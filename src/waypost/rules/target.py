"""Targets: ``'/articles/{title}?year={year}'`` parsed once, and filled in safely per request.

A target is a path on the same site (``/new``) or an absolute http/https URL
(``https://docs.example.com/{rest}``). ``{name}`` refers to a variable of the rule's pattern;
``{{`` and ``}}`` stand for literal braces. Each placeholder knows which part of the URL it sits in
(authority, path, query or fragment), which decides how its value is percent-encoded.

Whether a filled-in target is safe to send (same site, no control characters) is decided by
:mod:`waypost.rules.safety`; this module only parses and builds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import Any, Literal, NamedTuple
from urllib.parse import quote

from waypost.exceptions import RuleSyntaxError
from waypost.rules.converters import (
    AnyConverter,
    BaseConverter,
    IntConverter,
    PathConverter,
    StringConverter,
)

__all__ = [
    "IndexedPlan",
    "Placeholder",
    "RouteTarget",
    "Target",
    "fill_indexed",
    "parse_target",
    "parse_template",
]

Part = Literal["authority", "path", "query", "fragment"]

# Literal text is normalised by encoding only what may not appear in a URL (spaces, non-ASCII),
# leaving reserved characters and existing %XX escapes alone.
_LITERAL_SAFE = "/:?#[]@!$&'()*+,;=%-._~"
_SAFE_BY_PART: dict[str, str] = {
    "path": "!$&'()*+,;=:@-._~",
    "query": "/:@!$'()*,;-._~",
    "fragment": "/:@!$&'()*+,;=?-._~",
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_HOST_LABELS = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\Z"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BRACE = re.compile(r"[{}]")
# A path's leading static segments of plain text, then a segment holding a placeholder (not an
# escaped brace): see parse_target().
_PLAIN_HEAD = re.compile(r"((?:/[A-Za-z0-9_~-]+)+)/[^/{}?#]*\{(?!\{)")
_NOT_SLASH = re.compile(r"[^/]")
# Parsed shapes of path targets by (shape text, what).
_SHAPES: dict[tuple[str, str], Target] = {}
_ABSOLUTE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_STRING = StringConverter()
_TEXT_CONVERTERS = (StringConverter, PathConverter, AnyConverter)
# Text that every URL part accepts as it is (no quoting, and never a host name change).
_PLAIN_TEXT = re.compile(r"[A-Za-z0-9._~-]+")
_PLAIN_PATH_TEXT = re.compile(r"[A-Za-z0-9._~-][A-Za-z0-9._~/-]*")
_plain_text = _PLAIN_TEXT.fullmatch
_plain_path_text = _PLAIN_PATH_TEXT.fullmatch
_LITERAL, _INT, _TEXT, _PATH, _GENERAL = range(5)


@dataclass(frozen=True, slots=True)
class Placeholder:
    """``{name}`` inside a target, and the URL part it sits in."""

    name: str
    part: Part
    offset: int


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed target. ``literal`` is the finished URL when there are no placeholders.

    ``scheme`` and ``host`` are the literal scheme and host (lower-cased) of an absolute target,
    ``host`` is None when a placeholder sits in the host.
    """

    text: str
    pieces: tuple[str | Placeholder, ...]
    absolute: bool
    scheme: str | None
    host: str | None
    literal: str | None
    #: True when literal text fixes the origin before the first placeholder ('/a/{x}',
    #: 'https://example.com/{x}'): filled-in values are percent-encoded, so the result cannot
    #: leave the site and needs no per-request safety check. False for '/{x}' or a host variable.
    fixed_origin: bool = False
    #: [converters, steps]: the fill plan for the converters it was made for.
    _plan: list[Any] = field(default_factory=list, compare=False, repr=False)

    @property
    def names(self) -> tuple[str, ...]:
        """The placeholder names, in order."""
        return tuple(p.name for p in self.pieces if isinstance(p, Placeholder))

    def build(self, values: Mapping[str, Any], converters: Mapping[str, BaseConverter]) -> str:
        """Fill in the placeholders; raises ValueError/TypeError when a value cannot be written.

        ``converters`` are the pattern's; the plan made from them is kept while they stay the
        same mapping (a target belongs to one rule, whose pattern's mapping never changes).
        """
        if self.literal is not None:
            return self.literal
        cache = self._plan
        if not cache or cache[0] is not converters:
            cache[:] = [converters, self._make_plan(converters)]
        out: list[str] = []
        for kind, text, piece, converter in cache[1]:
            if kind == _LITERAL:
                out.append(text)
                continue
            value = values[text]
            # Values the matcher produced for built-in converters need no to_url() round trip,
            # and plain text needs no quoting: the two costliest steps of a pattern hit.
            if kind == _INT and type(value) is int and value >= 0:
                out.append(str(value))
            elif (kind == _TEXT and type(value) is str and _PLAIN_TEXT.fullmatch(value)) or (
                kind == _PATH and type(value) is str and _PLAIN_PATH_TEXT.fullmatch(value)
            ):
                out.append(value)
            else:
                out.append(_encode(piece, converter, value))
        return "".join(out)

    def _make_plan(
        self, converters: Mapping[str, BaseConverter]
    ) -> list[tuple[int, str, Placeholder | None, BaseConverter]]:
        plan: list[tuple[int, str, Placeholder | None, BaseConverter]] = []
        for piece in self.pieces:
            if isinstance(piece, str):
                plan.append((_LITERAL, piece, None, _STRING))
                continue
            converter = converters.get(piece.name, _STRING)
            kind = type(converter)
            fast = _GENERAL
            if piece.part != "authority":
                if kind is IntConverter and not converter.fixed_digits:  # type: ignore[attr-defined]
                    # (fixed_digits: written zero-padded, by to_url())
                    fast = _INT
                elif kind is PathConverter and piece.part == "path":
                    fast = _PATH
                elif kind in _TEXT_CONVERTERS:
                    fast = _TEXT
            plan.append((fast, piece.name, piece, converter))
        return plan

    def indexed_plan(
        self, names: Sequence[str], converters: Mapping[str, BaseConverter]
    ) -> IndexedPlan | None:
        """A plan for :func:`fill_indexed`: this target filled from values in ``names`` order.

        ``converters`` are the pattern's, ``names`` its variables in order. None when a
        placeholder always needs the general :meth:`build` (a host, a custom converter) or names
        no variable of the pattern.
        """
        text: list[str] = []
        order: list[int] = []
        plain: list[int] = []
        plain_paths: list[int] = []
        for kind, name, _, _ in self._make_plan(converters):
            if kind == _LITERAL:
                text.append(name.replace("%", "%%"))
                continue
            if kind == _GENERAL or name not in names:
                return None
            text.append("%s")
            index = names.index(name)
            order.append(index)
            if kind == _TEXT:
                plain.append(index)
            elif kind == _PATH:
                plain_paths.append(index)
        if not order:
            return None
        return IndexedPlan("".join(text), _picker(tuple(order)), _share(plain), _share(plain_paths))

    def __repr__(self) -> str:
        return f"parse_target({self.text!r})"


class IndexedPlan(NamedTuple):
    """A target as :meth:`Target.indexed_plan` prepares it for :func:`fill_indexed`."""

    #: The target with '%s' for each placeholder (and '%%' for '%').
    format: str
    #: The values the placeholders take, in order, from the values in the names' order.
    pick: Callable[[Sequence[Any]], Any]
    #: Where the values of text placeholders are (written as they are only when plain text).
    texts: tuple[int, ...]
    #: Where the values of path placeholders are (``<path:...>`` in the path part).
    paths: tuple[int, ...]


# Plans of targets alike share these small objects, so a request touches fewer cold ones.
_PICKERS: dict[tuple[int, ...], Callable[[Sequence[Any]], Any]] = {}
_SHARED: dict[tuple[int, ...], tuple[int, ...]] = {}


def _picker(order: tuple[int, ...]) -> Callable[[Sequence[Any]], Any]:
    found = _PICKERS.get(order)
    if found is None:
        found = _PICKERS.setdefault(order, itemgetter(*order))
    return found


def _share(indexes: list[int]) -> tuple[int, ...]:
    return _SHARED.setdefault(tuple(indexes), tuple(indexes))


def fill_indexed(
    text_format: str,
    pick: Callable[[Sequence[Any]], Any],
    texts: tuple[int, ...],
    paths: tuple[int, ...],
    values: Sequence[Any],
) -> str | None:
    """The target of an :class:`IndexedPlan` (its four fields) filled in from ``values``.

    ``values`` are what the pattern's converters made. The result is what :meth:`Target.build`
    gives for them, or None for a value that needs its general way (quoting): call
    :meth:`Target.build` then. An int placeholder needs no check: the built-in int converter
    makes only non-negative ints, which '%s' writes as ``build()`` does.
    """
    for at in texts:
        if not _plain_text(values[at]):
            return None
    for at in paths:
        if not _plain_path_text(values[at]):
            return None
    return text_format % pick(values)  # type: ignore[no-any-return]


def _encode(piece: Placeholder | None, converter: BaseConverter, value: Any) -> str:
    """One value written into its part of the URL, the general way."""
    assert piece is not None  # literal steps never get here
    text = converter.to_url(value)
    if piece.part == "authority":
        if not _HOST_LABELS.match(text):
            raise ValueError(f"{text!r} is not a host name")
        return text.lower()
    if piece.part == "path" and converter.spans_slashes:
        return quote(text, safe="/" + _SAFE_BY_PART["path"], errors="surrogateescape")
    # surrogateescape: '%FF' decoded from the request ('\udcff') goes back as '%FF'.
    return quote(text, safe=_SAFE_BY_PART[piece.part], errors="surrogateescape")


def _part_at(text: str, index: int, authority_end: int | None) -> Part:
    head = text[:index]
    if "#" in head:
        return "fragment"
    if "?" in head:
        return "query"
    if authority_end is not None and index < authority_end:
        return "authority"
    return "path"


def parse_target(text: str, *, what: str = "target") -> Target:
    """Parse a redirect or rewrite target; raises RuleSyntaxError (``col`` is 0-based in text).

    As for patterns (see :func:`~waypost.rules.pattern.parse_pattern`), a path target whose
    leading static segments are plain text is its shape's (those segments written with 'a's),
    parsed once, with its own leading segments.
    """
    head = _PLAIN_HEAD.match(text) if type(text) is str else None
    if head is None:
        return _parse(text, what)
    prefix = head[1]
    key = (_NOT_SLASH.sub("a", prefix) + text[len(prefix) :], what)
    shape = _SHAPES.get(key)
    if shape is None:
        try:
            shape = _parse(key[0], what)
        except RuleSyntaxError:
            # Said of the shape's text: parsed again, to say it of the target's own.
            return _parse(text, what)
        if len(_SHAPES) >= 4096:  # a bound: any number of shapes is fine
            _SHAPES.clear()
        _SHAPES[key] = shape
    # Only the text and the first piece hold the leading segments (plain text: quoting keeps
    # it); the placeholders' offsets and parts are the same, the origin is fixed in both.
    first = shape.pieces[0]
    if not isinstance(first, str):  # cannot be: the shape starts with its literal segments
        return _parse(text, what)
    return Target(
        text=text,
        pieces=(prefix + first[len(prefix) :], *shape.pieces[1:]),
        absolute=False,
        scheme=None,
        host=None,
        literal=None,
        fixed_origin=shape.fixed_origin,
    )


def _parse(text: str, what: str) -> Target:
    """:func:`parse_target`, every step of it."""
    if not isinstance(text, str):
        raise RuleSyntaxError(f"a {what} must be a string, got {text!r}")
    control = _CONTROL.search(text)
    if control is not None:
        raise RuleSyntaxError(
            f"control character {control[0]!r} in {what} {text!r}; it could split the response "
            "headers",
            col=control.start(),
        )
    scheme: str | None = None
    host: str | None = None
    authority_end: int | None = None
    absolute = False
    match = _ABSOLUTE.match(text)
    if text.startswith(("//", "/\\", "\\")):
        raise RuleSyntaxError(
            f"{what} {text!r} is protocol-relative (a browser reads it as another host); "
            "write the full URL, like 'https://example.com/path'",
            col=0,
        )
    if match and not text.startswith("/"):
        scheme = match.group(1).lower()
        if scheme not in ("http", "https"):
            raise RuleSyntaxError(
                f"{what} {text!r} has scheme {scheme!r}; only http and https targets are allowed",
                col=0,
            )
        if not text[match.end() :].startswith("//"):
            raise RuleSyntaxError(
                f"{what} {text!r} has no host; write it like '{scheme}://example.com/path'", col=0
            )
        absolute = True
        start = match.end() + 2
        authority_end = len(text)
        for stop in "/?#":
            found = text.find(stop, start)
            if found >= 0:
                authority_end = min(authority_end, found)
        authority = text[start:authority_end]
        if not authority:
            raise RuleSyntaxError(f"{what} {text!r} has an empty host", col=start)
        if "@" in authority or "\\" in authority:
            raise RuleSyntaxError(
                f"{what} {text!r} has user info or a backslash in its host; write only the host",
                col=start,
            )
        if "{" not in authority:
            host = authority.lower()
    elif not text.startswith("/"):
        raise RuleSyntaxError(
            f"{what} {text!r} must be a path starting with '/' or an http(s) URL; "
            f"did you mean {'/' + text!r}?",
            col=0,
        )

    pieces = [
        piece
        if isinstance(piece, str)
        else replace(piece, part=_part_at(text, piece.offset, authority_end))
        for piece in _split_placeholders(text, what)
    ]
    pieces = [quote(p, safe=_LITERAL_SAFE) if isinstance(p, str) else p for p in pieces]
    finished = None
    if all(isinstance(p, str) for p in pieces):
        finished = "".join(p for p in pieces if isinstance(p, str))
    first = next((p.offset for p in pieces if isinstance(p, Placeholder)), len(text))
    if absolute:
        fixed = host is not None and authority_end is not None and first > authority_end
    else:
        fixed = first >= 2 and text[1] not in "/\\"
    return Target(
        text=text,
        pieces=tuple(pieces),
        absolute=absolute,
        scheme=scheme,
        host=host,
        literal=finished,
        fixed_origin=fixed,
    )


@dataclass(frozen=True, slots=True)
class RouteTarget:
    """A target named by the host app's route: ``to: {route: dashboard, user_id: "{id}"}``.

    ``params`` are templates (literal text and ``{name}`` placeholders); the host app's own
    reverse routing (Flask ``url_for``, Starlette ``url_path_for``) turns them into a path.
    """

    route: str
    params: tuple[tuple[str, tuple[str | Placeholder, ...]], ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The placeholder names used by the parameters."""
        return tuple(
            p.name for _, pieces in self.params for p in pieces if isinstance(p, Placeholder)
        )

    def fill(self, values: Mapping[str, Any]) -> dict[str, str]:
        """The parameters with the request's values filled in (not encoded: the app encodes)."""
        return {
            key: "".join(p if isinstance(p, str) else str(values[p.name]) for p in pieces)
            for key, pieces in self.params
        }

    @property
    def text(self) -> str:
        """A readable form, for messages."""
        args = ", ".join(
            f"{k}={''.join(p if isinstance(p, str) else '{' + p.name + '}' for p in v)!r}"
            for k, v in self.params
        )
        return f"route:{self.route}({args})"


def _split_placeholders(text: str, what: str) -> list[str | Placeholder]:
    """Literal text (braces unescaped) and placeholders, in order; raises RuleSyntaxError."""
    pieces: list[str | Placeholder] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            pieces.append("".join(literal))
            literal.clear()

    # Scanned left to right as str.format does, so '{{{x}}}' is '{', the variable x, '}'.
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char in "{}" and text.startswith(char * 2, pos):
            literal.append(char)
            pos += 2
            continue
        if char == "}":
            raise RuleSyntaxError(
                f"unbalanced '}}' in {what} {text!r}; write '}}}}' for a literal brace, "
                "or {name} for a variable",
                col=pos,
            )
        if char != "{":
            # The text up to the next brace at once.
            brace = _BRACE.search(text, pos + 1)
            end = brace.start() if brace is not None else len(text)
            literal.append(text[pos:end])
            pos = end
            continue
        close = text.find("}", pos + 1)
        opened = text.find("{", pos + 1)
        if close < 0 or 0 <= opened < close:
            raise RuleSyntaxError(
                f"unbalanced '{{' in {what} {text!r}; write '{{{{' for a literal brace, "
                "or {name} for a variable",
                col=pos,
            )
        slot = text[pos : close + 1]
        name = slot[1:-1].strip()
        if not _IDENTIFIER.match(name):
            raise RuleSyntaxError(
                f"placeholder {slot!r} in {what} {text!r} is not a variable name; "
                "use {name} for a variable, {{ and }} for literal braces",
                col=pos,
            )
        flush()
        pieces.append(Placeholder(name, "path", pos))
        pos = close + 1
    flush()
    return pieces


def parse_template(text: str, *, what: str = "value") -> tuple[str | Placeholder, ...]:
    """Split ``'user-{id}'`` into literal text and placeholders; ``{{``/``}}`` are braces."""
    return tuple(_split_placeholders(text, what))
