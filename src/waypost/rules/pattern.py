"""Path patterns: ``'/blog/<int:year>/<slug>'`` parsed once into segments, and URL building.

A pattern is split on ``/`` into segments. A segment is either static text, or a *dynamic* segment
made of text and variables (``item-<int:id>.html``), matched by one compiled regex. From the first
segment holding a converter that spans slashes (``<path:rest>``) to the end, the pattern is one
*tail* regex matched against the rest of the request path.

Patterns are matched against the percent-decoded request path (``/café`` matches ``/caf%C3%A9``).

No request may make matching slow, so a few ambiguous shapes are refused or pinned down: two
variables may not touch when the first has no set end (``<a><b>``, ``<int:a><int:b>``: put text
between them); a pattern holds at most one variable that spans slashes; and a string variable
followed by another variable in its segment stops at the first occurrence of the text after it
(``<a>-<b>`` reads ``x-y-z`` as a='x', b='y-z').
Errors are :class:`~waypost.exceptions.RuleSyntaxError` whose ``col`` is the 0-based offset of the
offending text inside the pattern; the loader turns it into a file column.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from waypost.exceptions import ConverterError, RuleSyntaxError
from waypost.rules.converters import (
    DEFAULT_CONVERTERS,
    BaseConverter,
    check_converter_regex,
    compile_re2,
)

__all__ = ["Pattern", "Segment", "Variable", "parse_pattern", "quote_path"]

# Characters left as they are in a path when building a URL (RFC 3986 pchar minus '%').
_PATH_SAFE = "/!$&'()*+,;=:@-._~"
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"

_VARIABLE = re.compile(
    r"<(?:(?P<conv>[^:<>()]*)(?:\((?P<args>[^<>]*)\))?:)?(?P<name>[^<>]*)>",
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_IGNORECASE = int(re.IGNORECASE)
_DOTALL = int(re.DOTALL)
# A control character (C0 or DEL): refused in a pattern.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Segment and converter regexes by source and flags (see _compiled()).
_COMPILED: dict[tuple[str, int], re.Pattern[str]] = {}
# Leading static segments of plain characters (which no check of the parse looks at, and which
# only static parts hold), then a segment holding a variable: see parse_pattern().
_PLAIN_HEAD = re.compile(r"((?:/[A-Za-z0-9_~-]+)+)/[^/<>]*<")
# Parsed shapes by (shape text, case_insensitive, strict_slashes): (converters, pattern).
_SHAPES: dict[tuple[str, bool, bool], tuple[Mapping[str, Any], Pattern]] = {}
_NOT_SLASH = re.compile(r"[^/]")
# The built-in converters: they keep no state, so rules of one shape may share them.
_BUILTIN = frozenset(DEFAULT_CONVERTERS.values())
_ARG = re.compile(
    r"\s*(?:(?P<key>[A-Za-z_]\w*)\s*=\s*)?(?P<value>'[^']*'|\"[^\"]*\"|[^,]*?)\s*(?:,|\Z)"
)


def quote_path(text: str, *, keep_slashes: bool = True) -> str:
    """Percent-encode ``text`` for a URL path (UTF-8), leaving RFC 3986 path characters."""
    # surrogateescape: a path decoded from invalid UTF-8 ('%FF' -> '\udcff') is encoded back to
    # the same bytes, so such a value round-trips instead of failing.
    if _UNRESERVED.fullmatch(text) or (keep_slashes and _UNRESERVED_PATH.fullmatch(text)):
        return text  # what quote() gives, at a fraction of its cost (a checker calls it often)
    return quote(text, safe=_PATH_SAFE if keep_slashes else _SEGMENT_SAFE, errors="surrogateescape")


_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")
_UNRESERVED_PATH = re.compile(r"[A-Za-z0-9._~/-]*")


@dataclass(frozen=True, slots=True)
class Variable:
    """A variable in a pattern: ``<int:year>`` is ``Variable('year', IntConverter(), 'int')``."""

    name: str
    converter: BaseConverter
    spec: str
    offset: int


@dataclass(frozen=True, slots=True)
class Segment:
    """A dynamic segment (or the tail): a full-match regex whose groups are ``variables``, in order.

    ``signature`` identifies the segment's shape regardless of variable names, so that
    ``/<int:a>`` and ``/<int:b>`` share one branch of the matcher.
    """

    #: A compiled regex: re's, or RE2's for a segment with a regex converter (fullmatch, pattern).
    regex: re.Pattern[str]
    variables: tuple[Variable, ...]
    signature: str
    weight: int
    static_chars: int
    #: Each variable's ``to_python``, looked up once (the matcher calls them per request).
    parsers: tuple[Callable[[str], Any], ...] = ()
    #: True when the segment matches in any case (its regex may be RE2's, which has no flags).
    case_insensitive: bool = False


@dataclass(frozen=True, slots=True)
class Pattern:
    """A parsed pattern. Build one with :func:`parse_pattern`.

    ``parts`` are the segments before the tail: a ``str`` for static text (lower-cased when the
    pattern is case-insensitive) or a :class:`Segment`. ``tail`` matches the rest of the path,
    slashes included, when the pattern has a ``path``-like variable.
    """

    text: str
    parts: tuple[str | Segment, ...]
    tail: Segment | None
    variables: tuple[Variable, ...]
    case_insensitive: bool
    strict_slashes: bool
    key: tuple[tuple[int, int], ...]
    signature: str
    #: The pattern's pieces in order for URL building: str (static) or Variable.
    pieces: tuple[str | Variable, ...]
    #: Each variable's converter by name (built once: targets are filled per request).
    converters: Mapping[str, BaseConverter] = field(default_factory=dict)

    @property
    def is_static(self) -> bool:
        """True when the pattern has no variables (it is matched by exact lookup)."""
        return not self.variables

    @property
    def variable_names(self) -> tuple[str, ...]:
        """The names of the pattern's variables, in order."""
        return tuple(v.name for v in self.variables)

    def build(self, values: Mapping[str, Any]) -> str:
        """The percent-encoded path for ``values``; raises KeyError, ValueError or TypeError.

        Each value's URL text must match its converter again (regex and ``to_python``), so a
        built URL always routes back to this pattern: ``<path:p>`` refuses ``'/x'`` (it would
        build ``'//x'``) and a custom converter's ``to_url`` cannot produce text it would reject.
        """
        out: list[str] = []
        flags = _IGNORECASE if self.case_insensitive else 0
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(quote_path(piece))
            else:
                converter = piece.converter
                text = converter.to_url(values[piece.name])
                if not isinstance(text, str) or not _compiled(converter.regex, flags).fullmatch(
                    text
                ):
                    raise ValueError(f"{text!r} is not a valid <{piece.spec}> value")
                if not converter.spans_slashes and "/" in text:
                    raise ValueError(f"{text!r} is one path segment and cannot contain '/'")
                converter.to_python(text)
                out.append(quote_path(text, keep_slashes=converter.spans_slashes))
        return "".join(out)

    def __repr__(self) -> str:
        return f"parse_pattern({self.text!r})"


def _compiled(source: str, flags: int) -> re.Pattern[str]:
    """``source`` compiled with ``flags`` and DOTALL, kept: a large rule set repeats a handful
    of segment and converter regexes."""
    compiled = _COMPILED.get((source, flags))
    if compiled is None:
        if len(_COMPILED) >= 4096:  # a bound: any number of distinct regexes is fine
            _COMPILED.clear()
        compiled = _COMPILED[source, flags] = re.compile(source, flags | _DOTALL)
    return compiled


def normalize_path(path: str, *, strict_slashes: bool, case_insensitive: bool) -> str:
    """The form of a request path (or a static pattern) used as a lookup key."""
    if not strict_slashes and len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path.lower() if case_insensitive else path


def _parse_args(text: str, offset: int) -> tuple[list[Any], dict[str, Any]]:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    pos = 0
    while pos < len(text):
        match = _ARG.match(text, pos)
        if match is None or match.end() == pos:
            raise RuleSyntaxError(f"cannot read converter arguments {text!r}", col=offset)
        pos = match.end()
        raw = match.group("value")
        value: Any
        if raw[:1] in "'\"" and len(raw) >= 2:
            value = raw[1:-1]
        elif re.fullmatch(r"-?\d+", raw):
            value = int(raw)
        elif re.fullmatch(r"-?\d+\.\d*", raw):
            value = float(raw)
        elif raw in ("True", "False"):
            value = raw == "True"
        elif raw == "None":
            value = None
        else:
            value = raw
        if raw == "" and match.group("key") is None:
            raise RuleSyntaxError(f"empty argument in {text!r}", col=offset)
        if match.group("key"):
            kwargs[match.group("key")] = value
        else:
            if kwargs:
                raise RuleSyntaxError(
                    f"positional argument {raw!r} after a keyword argument in {text!r}", col=offset
                )
            args.append(value)
    return args, kwargs


def _parse_variable(
    match: re.Match[str],
    pattern: str,
    converters: Mapping[str, type[BaseConverter]],
) -> Variable:
    name = match.group("name")
    conv_name = match.group("conv")
    start = match.start()
    if conv_name is None:
        conv_name = "default"
        spec = "string"
    else:
        conv_name = conv_name.strip()
        spec = conv_name
    if not _IDENTIFIER.match(name):
        what = "is empty" if not name else f"{name!r} is not a valid name"
        raise RuleSyntaxError(
            f"variable name {what} in {pattern!r}; use letters, digits and '_', like <slug>",
            col=match.start("name"),
        )
    cls = converters.get(conv_name)
    if cls is None:
        known = sorted(k for k in converters if k != "default")
        close = difflib.get_close_matches(conv_name, known, n=1)
        hint = (
            f"; did you mean {close[0]!r}?" if close else f"; known converters: {', '.join(known)}"
        )
        raise RuleSyntaxError(
            f"unknown converter {conv_name!r} in {pattern!r}{hint}", col=start + 1
        )
    raw_args = match.group("args")
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    if raw_args is not None:
        args, kwargs = _parse_args(raw_args, match.start("args"))
        spec = f"{conv_name}({raw_args})"
    try:
        converter = cls(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise RuleSyntaxError(
            f"bad arguments for converter {conv_name!r} in {pattern!r}: {exc}", col=start + 1
        ) from None
    try:
        check_converter_regex(converter)
    except ConverterError as exc:
        raise RuleSyntaxError(f"{exc} (in {pattern!r})", col=start + 1) from None
    return Variable(name=name, converter=converter, spec=spec, offset=start)


def _check_static(text: str, pattern: str, offset: int) -> None:
    bad = text.find(">")
    if bad >= 0:
        raise RuleSyntaxError(
            f"unbalanced '>' in {pattern!r}; a variable is written <name> or <int:name>",
            col=offset + bad,
        )
    bad = text.find("<")
    if bad >= 0:
        raise RuleSyntaxError(
            f"unbalanced '<' in {pattern!r}; close the variable with '>', like <slug>",
            col=offset + bad,
        )


def _split_pieces(
    pattern: str, converters: Mapping[str, type[BaseConverter]]
) -> list[str | Variable]:
    pieces: list[str | Variable] = []
    pos = 0
    names: set[str] = set()
    for match in _VARIABLE.finditer(pattern):
        text = pattern[pos : match.start()]
        _check_static(text, pattern, pos)
        if text:
            pieces.append(text)
        variable = _parse_variable(match, pattern, converters)
        if variable.name in names:
            raise RuleSyntaxError(
                f"variable {variable.name!r} appears twice in {pattern!r}; give each a new name",
                col=match.start(),
            )
        if "/" in (match.group("conv") or ""):
            raise RuleSyntaxError(f"'/' inside a variable in {pattern!r}", col=match.start())
        # Guards against patterns whose regex could backtrack for ever on a hostile path.
        spanning = [p for p in pieces if isinstance(p, Variable) and p.converter.spans_slashes]
        if variable.converter.spans_slashes and spanning:
            raise RuleSyntaxError(
                f"{pattern!r} has two variables that span slashes (<{spanning[0].spec}:"
                f"{spanning[0].name}> and <{variable.spec}:{variable.name}>); a pattern may hold "
                "one, as no one could tell where the first ends",
                col=match.start(),
            )
        before = pieces[-1] if pieces and not text else None
        if isinstance(before, Variable) and (
            before.converter.open_ended or before.converter.spans_slashes
        ):
            raise RuleSyntaxError(
                f"variables <{before.name}> and <{variable.name}> touch in {pattern!r}, so no one "
                f"could tell where one ends; put text between them, like <{before.name}>-"
                f"<{variable.name}>",
                col=match.start(),
            )
        names.add(variable.name)
        pieces.append(variable)
        pos = match.end()
    text = pattern[pos:]
    _check_static(text, pattern, pos)
    if text:
        pieces.append(text)
    return pieces


def _segment(pieces: list[str | Variable], flags: int, weight_of: Any) -> Segment:
    regex: list[str] = []
    signature: list[str] = []
    variables: list[Variable] = []
    static_chars = 0
    weights: list[int] = []
    last_variable = max(i for i, p in enumerate(pieces) if isinstance(p, Variable))
    for index, piece in enumerate(pieces):
        if isinstance(piece, str):
            regex.append(re.escape(piece))
            signature.append(piece.replace("<", "<<"))
            static_chars += len(piece)
        elif (
            index < last_variable
            and piece.converter.regex == "[^/]+"
            and isinstance(pieces[index + 1], str)
        ):
            # A string variable with another variable after it stops at the next literal text:
            # '<a>-<b>' is '([^/-]+)-([^/]+)'. With '([^/]+)' a hostile segment of many '-'
            # costs O(n^k) backtracking for k variables; this way it is linear. So 'x-y-z' gives
            # a='x', b='y-z' (the first variable never holds the text that ends it).
            stop = pieces[index + 1][0]  # type: ignore[index]
            stop = "\\" + stop if stop in "\\]^-[" else stop
            regex.append(f"([^/{stop}]+)")
            signature.append(f"<{piece.spec}>")
            variables.append(piece)
            weights.append(int(piece.converter.weight))
        else:
            regex.append(f"({piece.converter.regex})")
            signature.append(f"<{piece.spec}>")
            variables.append(piece)
            weights.append(int(piece.converter.weight))
    weight = weight_of(weights, static_chars)
    source = "".join(regex)
    compiled: Any
    if any(getattr(v.converter, "linear", False) for v in variables):
        # A regex converter's text runs on RE2 (linear time on any path), and so does the
        # segment holding it.
        prefix = "(?is)" if flags & _IGNORECASE else "(?s)"
        compiled = compile_re2(prefix + source)
    else:
        compiled = _compiled(source, flags)
    return Segment(
        regex=compiled,
        variables=tuple(variables),
        signature="".join(signature) + ("/i" if flags & _IGNORECASE else ""),
        weight=weight,
        static_chars=static_chars,
        parsers=tuple(v.converter.to_python for v in variables),
        case_insensitive=bool(flags & _IGNORECASE),
    )


def _segment_weight(weights: list[int], static_chars: int) -> int:
    top = max(weights)
    return top - 5 if static_chars else top


def parse_pattern(
    text: str,
    *,
    converters: Mapping[str, type[BaseConverter]] = DEFAULT_CONVERTERS,
    case_insensitive: bool = False,
    strict_slashes: bool = False,
) -> Pattern:
    """Parse a pattern like ``'/blog/<int:year>/<slug>'``; raises RuleSyntaxError.

    A large table repeats a few shapes with other leading text (``/section1/<path:rest>``,
    ``/section2/<path:rest>``, ...): such a pattern is its shape's (its leading static segments
    written with 'a's: ``/aaaaaaaa/<path:rest>``), parsed once, with its own leading segments.
    """
    head = _PLAIN_HEAD.match(text) if type(text) is str else None
    if head is None:
        return _parse(text, converters, case_insensitive, strict_slashes)
    prefix = head[1]
    key = (_NOT_SLASH.sub("a", prefix) + text[len(prefix) :], case_insensitive, strict_slashes)
    known = _SHAPES.get(key)
    if known is None or known[0] is not converters:
        try:
            shape = _parse(key[0], converters, case_insensitive, strict_slashes)
        except RuleSyntaxError:
            # Said of the shape's text: parsed again, to say it of the pattern's own.
            return _parse(text, converters, case_insensitive, strict_slashes)
        if not all(type(v.converter) in _BUILTIN for v in shape.variables):
            # A converter of the application's own may keep state: each rule gets its own.
            return _parse(text, converters, case_insensitive, strict_slashes)
        if len(_SHAPES) >= 4096:  # a bound: any number of shapes is fine
            _SHAPES.clear()
        known = _SHAPES[key] = (converters, shape)
    made = _with_prefix(known[1], text, prefix)
    return made if made is not None else _parse(text, converters, case_insensitive, strict_slashes)


def _with_prefix(shape: Pattern, text: str, prefix: str) -> Pattern | None:
    """``shape`` (a pattern whose leading static segments are 'a's) for ``text``, whose own
    leading static segments, ``prefix``, are as long: only the static parts, the first piece,
    the text and the signature hold them; the variables' offsets and the dynamic segments are
    the same."""
    size = len(prefix)
    static = prefix.lower() if shape.case_insensitive else prefix
    count = prefix.count("/")
    parts = (*static[1:].split("/"), *shape.parts[count:])
    first = shape.pieces[0]
    if not isinstance(first, str):  # cannot be: the shape starts with its static segments
        return None
    return Pattern(
        text=text,
        parts=parts,
        tail=shape.tail,
        variables=shape.variables,
        case_insensitive=shape.case_insensitive,
        strict_slashes=shape.strict_slashes,
        key=shape.key,
        signature=static + shape.signature[size:],
        pieces=(prefix + first[size:], *shape.pieces[1:]),
        converters=dict(shape.converters),
    )


def _parse(
    text: str,
    converters: Mapping[str, type[BaseConverter]],
    case_insensitive: bool,
    strict_slashes: bool,
) -> Pattern:
    """:func:`parse_pattern`, every step of it."""
    if not isinstance(text, str):
        raise RuleSyntaxError(f"a pattern must be a string, got {text!r}")
    if not text.startswith("/"):
        raise RuleSyntaxError(
            f"a pattern must start with '/', got {text!r}; did you mean {'/' + text!r}?", col=0
        )
    control = _CONTROL.search(text)
    if control is not None:
        raise RuleSyntaxError(
            f"control character {control[0]!r} in pattern {text!r}", col=control.start()
        )
    if "?" in text or "#" in text:
        # A converter's arguments may hold '?' and '#' (<regex('a?b'):x>); the path text may not.
        outside = _VARIABLE.sub(lambda m: " " * len(m.group(0)), text)
        for stop in ("?", "#"):
            index = outside.find(stop)
            if index >= 0:
                raise RuleSyntaxError(
                    f"{stop!r} in pattern {text!r}: a pattern matches the path only; "
                    "match the query string with when: {query: {...}}",
                    col=index,
                )
    pieces = _split_pieces(text, converters)
    if not strict_slashes and len(text) > 1 and text.endswith("/") and isinstance(pieces[-1], str):
        stripped = pieces[-1].rstrip("/")
        pieces = pieces[:-1] + ([stripped] if stripped else [])
        if not pieces:
            pieces = ["/"]
    variables = tuple(p for p in pieces if isinstance(p, Variable))
    # Plain ints: a flag enum's every operation is a Python call.
    flags = _IGNORECASE if case_insensitive else 0

    # Split the pieces into '/'-separated segments (the pattern starts with '/': drop the first '').
    segments: list[list[str | Variable]] = [[]]
    for piece in pieces:
        if isinstance(piece, Variable):
            segments[-1].append(piece)
            continue
        chunks = piece.split("/")
        for number, chunk in enumerate(chunks):
            if number:
                segments.append([])
            if chunk:
                segments[-1].append(chunk)
    segments = segments[1:]

    parts: list[str | Segment] = []
    key: list[tuple[int, int]] = []
    tail: Segment | None = None
    for number, seg in enumerate(segments):
        if any(isinstance(p, Variable) and p.converter.spans_slashes for p in seg):
            rest: list[str | Variable] = []
            for later in segments[number:]:
                if rest:
                    rest.append("/")
                rest.extend(later)
            tail = _segment(rest, flags, _segment_weight)
            key.append((tail.weight, -tail.static_chars))
            break
        if all(isinstance(p, str) for p in seg):
            static = "".join(p for p in seg if isinstance(p, str))
            parts.append(static.lower() if case_insensitive else static)
            key.append((0, -len(static)))
        else:
            segment = _segment(seg, flags, _segment_weight)
            parts.append(segment)
            key.append((segment.weight, -segment.static_chars))

    shape = "".join(p.replace("<", "<<") if isinstance(p, str) else f"<{p.spec}>" for p in pieces)
    if case_insensitive:
        shape = shape.lower()
    modes = f"{'i' if case_insensitive else 's'}|{'strict' if strict_slashes else ''}"
    return Pattern(
        text=text,
        parts=tuple(parts),
        tail=tail,
        variables=variables,
        case_insensitive=case_insensitive,
        strict_slashes=strict_slashes,
        key=tuple(key),
        signature=f"{shape}|{modes}",
        pieces=tuple(pieces),
        converters={v.name: v.converter for v in variables},
    )
