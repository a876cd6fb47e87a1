"""Turning the simple regexes of nginx, Apache and WordPress rules into Waypost patterns.

Only regexes with a faithful Waypost equivalent are converted: anchored with ``^``, literal text
and ``/``, and capture groups Waypost has a converter for::

    (.+)  (.*)        -> <path:p1>   (only at the end, right after a '/'; '.*' also matches
                                      nothing, so it adds a second rule without the variable)
    (.+?)/?$          -> <path:p1> with trailing_slash: ignore (the lazy group leaves the
                                      slash out, as Waypost does when it ignores the slash)
    ([^/]+)           -> <p1>
    (\\d+) ([0-9]+)    -> <int:p1>
    (a|b|c)           -> <any(a,b,c):p1>
    (?<year>\\d+)      -> <int:year>     (named groups keep their names)
    /?$               -> trailing_slash: ignore
    (?i)              -> case: insensitive

Anything else raises :class:`RegexNotSupported` whose message quotes the regex; callers skip the
rule with that message rather than import one that behaves differently. One liberty is taken and
reported as a note: an unescaped ``.`` between literal characters (``^/about.html$``) is read as
the literal dot its author meant, which matches a subset of what the regex matches.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._canon import Variable, escape_target, parse_pattern_pieces
from ._common import Refusal
from ._safety import (
    CONTROLS,
    LABELS,
    LEAD_GUARD,
    HostSlot,
    allowed_words,
    exposure,
    host_regex,
)

__all__ = [
    "CONVERTER_REGEX",
    "Guard",
    "Ref",
    "RegexNotSupported",
    "RegexPattern",
    "convert_regex",
    "parse_dollar_refs",
    "pattern_regex",
    "render_ref_target",
    "target_guards",
]

UUID_REGEX = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
#: The regex each converter matches, for exporters that write regexes.
CONVERTER_REGEX = {
    "string": "[^/]+",
    "int": r"\d+",
    "float": r"\d+\.\d+",
    "uuid": UUID_REGEX,
    "path": ".+",
}
_LITERAL_ESCAPES = set("./-_~!%&,;=:@+*?()[]{}$^|# \\")
_WORD_ALTERNATIVE = re.compile(r"[A-Za-z0-9_~%-]+(?:\\?\.[A-Za-z0-9_~%-]+)*")
_NAME = re.compile(r"[A-Za-z_]\w*")


class RegexNotSupported(ValueError):
    """The regex has no faithful Waypost pattern; the message says why and quotes it."""


@dataclass(frozen=True, slots=True)
class Guard:
    """What the group of a variable filled into a target may match, narrowed so that no value
    leads off-site (see ``_safety``). ``body`` (a host's) replaces any converter's regex;
    ``lead`` and ``controls`` apply to ``string`` and ``path`` variables only, since the other
    converters match digits, hex and fixed words."""

    #: The regex the value must match instead of the converter's (a host's, from host_regex).
    body: str | None = None
    #: The value must not start with '/' or '\\' (it starts the target's path).
    lead: bool = False
    #: The value may not hold a control character (the server writes it decoded).
    controls: bool = False
    #: The only characters the value may hold (a regex class body), when the server writes the
    #: value decoded and Waypost would percent-encode any other (see the nginx export).
    chars: str | None = None

    def group_body(self, converter: str, lazy: bool) -> str:
        """The group's regex for a ``string`` or ``path`` variable."""
        if self.body is not None:
            return self.body
        if self.chars is not None:
            body = f"[{self.chars}]" + ("+?" if lazy else "+")
            return (LEAD_GUARD if self.lead else "") + body
        excluded = ("/" if converter == "string" else "") + (CONTROLS if self.controls else "")
        body = (f"[^{excluded}]" if excluded else ".") + ("+?" if lazy else "+")
        return (LEAD_GUARD if self.lead else "") + body


@dataclass(frozen=True, slots=True)
class _Var:
    name: str
    converter: str
    args: str = ""
    optional: bool = False

    def render(self) -> str:
        return Variable(self.name, self.converter, self.args).render()


@dataclass(frozen=True, slots=True)
class RegexPattern:
    """A converted regex: pattern pieces, the back-references that name its variables, flags."""

    pieces: tuple[str | _Var, ...]
    refs: Mapping[str, str]
    optional_slash: bool
    case_insensitive: bool
    notes: tuple[str, ...]

    def variants(self) -> list[tuple[str, frozenset[str]]]:
        """``(pattern, empty_names)`` pairs: one, or two when a ``(.*)`` may also match nothing."""
        text = "".join(p if isinstance(p, str) else p.render() for p in self.pieces)
        out = [(text, frozenset[str]())]
        for piece in self.pieces:
            if isinstance(piece, _Var) and piece.optional:
                bare = "".join(
                    p if isinstance(p, str) else p.render() for p in self.pieces if p != piece
                )
                out.append((bare, frozenset({piece.name})))
        return out


@dataclass(frozen=True, slots=True)
class Ref:
    """A back-reference in a target: ``$1`` has key ``"1"``, ``$name`` key ``"name"``."""

    key: str
    text: str


_KEPT_CLASS = re.compile(r"\[((?:\\x[0-9a-f]{2}|[A-Za-z0-9])+)\]\+")
_KEPT_CHARS = frozenset(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/?")


def _kept_class(plain: str) -> str | None:
    """``[^/]+`` or ``.+`` for the class of the characters Waypost writes unencoded that the
    nginx export narrows a value to (see Guard.chars), else None. It reads back as the plain
    converter: the export notes what nginx does differently."""
    match = _KEPT_CLASS.fullmatch(plain)
    if match is None:
        return None
    chars = set(re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), match.group(1)))
    if not chars <= _KEPT_CHARS or not set(string.ascii_letters + string.digits) <= chars:
        return None
    return ".+" if "/" in chars else "[^/]+"


def _classify(body: str, regex: str) -> tuple[str, str, bool]:
    """The converter, its arguments and whether it may be empty, for a group body."""
    plain = body[:-1] if body.endswith(("*?", "+?")) else body
    # The guards an export writes (see Guard): a value that leads off-site never matches, which
    # the engine refuses (400) anyway, so they read back as the plain converter.
    plain = plain.removeprefix(LEAD_GUARD)
    plain = {f"[^{CONTROLS}]+": ".+", f"[^/{CONTROLS}]+": "[^/]+"}.get(plain, plain)
    plain = _kept_class(plain) or plain
    if plain == ".*":
        return "path", "", True
    if plain == ".+":
        return "path", "", False
    if plain in ("[^/]+", "[^/]+?"):
        return "string", "", False
    if plain in (r"\d+", "[0-9]+"):
        return "int", "", False
    if plain == r"\d+\.\d+":
        return "float", "", False
    if plain == UUID_REGEX:
        return "uuid", "", False
    words = body.split("|")
    if len(words) > 1 and all(_WORD_ALTERNATIVE.fullmatch(word) for word in words):
        return "any", ",".join(word.replace("\\.", ".") for word in words), False
    raise RegexNotSupported(
        f"the group ({body}) in regex {regex!r} has no Waypost converter "
        "(supported: (.*), (.+), ([^/]+), (\\d+) and (a|b|c))"
    )


def convert_regex(
    regex: str, *, relative: bool = False, case_insensitive: bool = False
) -> RegexPattern:
    """Convert a path regex into pattern pieces, or raise :class:`RegexNotSupported`.

    ``relative`` is for Apache per-directory context (``.htaccess``), where the path the regex
    sees has no leading slash.
    """
    source = regex
    notes: list[str] = []
    if regex.startswith("(?i)"):
        case_insensitive = True
        regex = regex[4:]
    if not regex.startswith("^"):
        raise RegexNotSupported(
            f"regex {source!r} is not anchored with '^', so it also matches in the middle of a path"
        )
    pos = 1
    if regex.startswith("/?", pos):
        pos += 2
        literal = ["/"]
    elif regex.startswith("/", pos):
        literal = []
    elif relative:
        literal = ["/"]
    else:
        raise RegexNotSupported(f"regex {source!r} never matches: request paths begin with '/'")
    pieces: list[str | _Var] = []
    refs: dict[str, str] = {}
    group_number = 0
    anchored_end = False
    optional_slash = False
    lazy_path = False

    def flush() -> None:
        if literal:
            pieces.append("".join(literal))
            literal.clear()

    def last_char() -> str:
        if literal:
            return literal[-1][-1:]
        if pieces and isinstance(pieces[-1], str):
            return pieces[-1][-1:]
        return ""

    end = len(regex)
    while pos < end:
        char = regex[pos]
        after_path = (
            bool(pieces) and isinstance(pieces[-1], _Var) and pieces[-1].converter == "path"
        )
        if after_path and regex[pos:] == "/?$" and lazy_path:
            optional_slash = anchored_end = True
            break
        if after_path and regex[pos:] != "$":
            raise RegexNotSupported(
                f"regex {source!r} has text after a (.*) group; Waypost's path variable "
                "must end the pattern"
            )
        if char == "\\":
            if pos + 1 >= end or regex[pos + 1] not in _LITERAL_ESCAPES:
                escape = regex[pos : pos + 2]
                raise RegexNotSupported(
                    f"regex {source!r} uses {escape!r} outside a group; "
                    "Waypost patterns match literal text"
                )
            literal.append(regex[pos + 1])
            pos += 2
        elif char == "(":
            close = regex.find(")", pos)
            guard_at = regex.find(LEAD_GUARD, pos, close + 1)
            if guard_at > pos and "(" not in regex[pos + 1 : guard_at]:
                close = regex.find(")", guard_at + len(LEAD_GUARD))  # '(?<to>(?![/\x5c])...)'
            inner = regex[pos + 1 : close].replace(LEAD_GUARD, "")
            if close < 0 or "(" in inner.replace("\\(", ""):
                raise RegexNotSupported(f"regex {source!r} has nested or unbalanced groups")
            body = regex[pos + 1 : close]
            name: str | None = None
            capturing = True
            if body.startswith("?:"):
                body, capturing = body[2:], False
            elif body.startswith(("?<", "?P<")):
                head = body.index("<") + 1
                stop = body.find(">", head)
                name = body[head:stop] if stop > 0 else None
                if name is None or not _NAME.fullmatch(name):
                    raise RegexNotSupported(f"regex {source!r} has an unreadable group name")
                body = body[stop + 1 :]
            elif body.startswith("?"):
                raise RegexNotSupported(f"regex {source!r} uses the group syntax ({body})")
            pos = close + 1
            if pos < end and regex[pos] in "?*+{":
                raise RegexNotSupported(
                    f"regex {source!r} repeats or makes optional a group ('{regex[pos]}')"
                )
            converter, args, optional = _classify(body, source)
            if capturing:
                group_number += 1
            var_name = name or (f"p{group_number}" if capturing else f"x{len(pieces) + 1}")
            if converter == "path" and last_char() != "/":
                raise RegexNotSupported(
                    f"regex {source!r} captures ({body}) in the middle of a path segment; "
                    "Waypost's path variable must start a segment"
                )
            flush()
            pieces.append(_Var(var_name, converter, args, optional))
            lazy_path = converter == "path" and body.endswith("?")
            if lazy_path and regex[pos:] not in ("$", "/?$"):
                # Unanchored, a lazy group takes one character and the rest goes unmatched.
                raise RegexNotSupported(
                    f"regex {source!r} has a lazy ({body}) group not followed by '$' or '/?$'"
                )
            if capturing:
                refs[str(group_number)] = var_name
                if name:
                    refs[name] = var_name
        elif char == "." and regex[pos + 1 : pos + 2] in ("*", "+"):
            if regex[pos + 2 :] not in ("", "$") or last_char() != "/":
                raise RegexNotSupported(
                    f"regex {source!r} uses '{regex[pos : pos + 2]}' other than as the end of "
                    "the path after a '/'"
                )
            flush()
            pieces.append(_Var("rest", "path", "", regex[pos + 1] == "*"))
            pos += 2
        elif char == ".":
            notes.append(f"the unescaped '.' in regex {source!r} was read as a literal dot")
            literal.append(".")
            pos += 1
        elif char == "/" and regex[pos + 1 :] in ("?", "?$"):
            optional_slash = True
            anchored_end = regex.endswith("$")
            pos = end
        elif char == "$":
            if pos != end - 1:
                raise RegexNotSupported(f"regex {source!r} has '$' before its end")
            anchored_end = True
            pos += 1
        elif char in "*+?{}[]|^":
            raise RegexNotSupported(
                f"regex {source!r} uses {char!r} outside a supported group; "
                "Waypost patterns match literal text"
            )
        elif char in "<>":
            raise RegexNotSupported(f"regex {source!r} contains {char!r}, which patterns cannot")
        else:
            literal.append(char)
            pos += 1
    flush()
    ends_with_path = (
        bool(pieces) and isinstance(pieces[-1], _Var) and pieces[-1].converter == "path"
    )
    if not anchored_end and not ends_with_path:
        raise RegexNotSupported(
            f"regex {source!r} is not anchored with '$', so it matches every path that begins "
            "the same way; end it with '$' or '(.*)$'"
        )
    if not pieces:
        pieces.append("/")
    return RegexPattern(tuple(pieces), refs, optional_slash, case_insensitive, tuple(notes))


_DOLLAR = re.compile(r"\$(?:\{(?P<braced>\w+)\}|(?P<digit>\d)|(?P<name>[A-Za-z_]\w*))")


def parse_dollar_refs(target: str, *, named: bool) -> list[str | Ref]:
    """Split a target into literal text and ``$1``/``${1}`` references (and ``$name`` if named)."""
    pieces: list[str | Ref] = []
    pos = 0
    for match in _DOLLAR.finditer(target):
        key = match.group("braced") or match.group("digit") or match.group("name")
        if match.group("name") and not named:
            continue
        if match.start() > pos:
            pieces.append(target[pos : match.start()])
        pieces.append(Ref(key, match.group(0)))
        pos = match.end()
    if pos < len(target):
        pieces.append(target[pos:])
    return pieces


def render_ref_target(
    pieces: Sequence[str | Ref], refs: Mapping[str, str], empty: frozenset[str]
) -> str:
    """The Waypost target for ``pieces``: references become ``{name}`` (or nothing when empty)."""
    out: list[str] = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append(escape_target(piece))
            continue
        name = refs.get(piece.key)
        if name is None:
            raise RegexNotSupported(
                f"the target refers to {piece.text}, which is not a group of the pattern"
            )
        if name not in empty:
            out.append(f"{{{name}}}")
    return "".join(out)


def pattern_regex(
    pattern: str,
    *,
    named: bool = True,
    relative: bool = False,
    optional_slash: bool = False,
    guards: Mapping[str, Guard] | None = None,
) -> tuple[str, list[str]]:
    """An anchored regex for a Waypost pattern and its variable names in group order.

    ``named`` writes ``(?<name>...)`` groups (nginx, PCRE); otherwise plain groups for ``$1``.
    ``relative`` leaves out the leading ``/`` (Apache ``.htaccess``). ``optional_slash`` is for
    ``trailing_slash: ignore``. ``guards`` narrow the groups of the named variables (the values
    a target fills in). Raises RegexNotSupported for converters with arguments other than
    ``any``.
    """
    out: list[str] = []
    names: list[str] = []
    pieces = parse_pattern_pieces(pattern)
    for index, piece in enumerate(pieces):
        if isinstance(piece, str):
            out.append(re.escape(piece))
            continue
        if piece.converter == "any":
            words = [word.strip().strip("'\"") for word in piece.args.split(",")]
            body = "|".join(re.escape(word) for word in words)
        elif piece.converter in CONVERTER_REGEX and not piece.args:
            body = CONVERTER_REGEX[piece.converter]
        else:
            raise RegexNotSupported(f"{piece.render()} has no regex equivalent here")
        lazy = piece.converter == "path" and optional_slash and index == len(pieces) - 1
        if lazy:
            # Waypost takes an ignored trailing slash off the path before matching, so a path
            # variable never ends with it ('/files/a/' gives rest='a'); a greedy '.+' would keep
            # it. Lazy, the group leaves the slash to the optional '/?' that follows.
            body = ".+?"
        guard = (guards or {}).get(piece.name)
        if guard is not None and (guard.body is not None or piece.converter in ("string", "path")):
            body = guard.group_body(piece.converter, lazy)
        out.append(f"(?<{piece.name}>{body})" if named else f"({body})")
        names.append(piece.name)
    text = "".join(out)
    if relative:
        text = text[1:] if text.startswith("/") else text
    if optional_slash and text.endswith("/") and len(text) > 1:
        text = text[:-1]
    return "^" + text + ("/?" if optional_slash and text not in ("", "/") else "") + "$", names


def target_guards(
    pattern: str,
    target: str,
    allowed_hosts: Sequence[str],
    platform: str,
    *,
    controls: bool,
) -> dict[str, Guard]:
    """The guards for the variables of ``pattern`` that ``target`` fills in, so that a regex
    format matches only values that keep the browser on the site (see ``_safety``): a host
    only where ``allowed_hosts`` allows it, a value starting the path never with '/' or '\\',
    and with ``controls`` (a server that writes values decoded) no control character in any
    ``string`` or ``path`` value. Raises :class:`Refusal` when no value could be allowed.
    """
    found = exposure(target)
    variables = {
        piece.name: piece for piece in parse_pattern_pieces(pattern) if isinstance(piece, Variable)
    }
    guards: dict[str, Guard] = {}
    for name in dict.fromkeys(found.names):
        variable = variables.get(name)
        if variable is None:
            continue  # not a variable of the pattern: the exporter refuses it by itself
        if found.host is not None and found.host.name == name:
            guards[name] = _host_guard(variable, found.host, allowed_hosts, platform)
        elif variable.converter in ("string", "path") and (controls or found.lead == name):
            guards[name] = Guard(lead=found.lead == name, controls=controls)
        elif found.lead == name and variable.converter == "any":
            words = [word.strip().strip("'\"") for word in variable.args.split(",")]
            if any(word.startswith(("/", "\\")) for word in words):
                raise Refusal(
                    f"{{{name}}} starts the target's path, and a word of "
                    f"{variable.render()} starts with '/' or '\\'"
                )
    return {name: guard for name, guard in guards.items() if guard != Guard()}


def _host_guard(
    variable: Variable, slot: HostSlot, allowed_hosts: Sequence[str], platform: str
) -> Guard:
    body = host_regex(slot, allowed_hosts, platform)
    if variable.converter in ("string", "path"):
        return Guard(body=body)
    if variable.converter == "any":
        words = [word.strip().strip("'\"") for word in variable.args.split(",")]
        allowed = allowed_words(slot, words, allowed_hosts)
        if not allowed:
            raise Refusal(
                f"{{{slot.name}}} fills in the target's host ({slot.template}), and no word of "
                f"{variable.render()} makes a host in allowed_hosts {list(allowed_hosts)!r}"
            )
        return Guard(body="|".join(re.escape(word) for word in allowed))
    if body == LABELS:
        return Guard()  # digits or hex: whole labels, under an allowed domain whatever they are
    raise Refusal(
        f"{{{slot.name}}} fills in the target's host ({slot.template}) with "
        f"{variable.render()}, whose values an export cannot narrow to allowed_hosts "
        f"{list(allowed_hosts)!r}"
    )
