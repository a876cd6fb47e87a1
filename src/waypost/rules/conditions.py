"""Conditions under ``when:``: every one listed must hold for a rule to apply.

``methods`` (GET implies HEAD), ``host`` (``*.example.com`` matches any subdomain, not the apex),
``scheme`` (``http`` or ``https``, or a list: the scheme the client used, behind trusted proxies
what they forwarded in X-Forwarded-Proto),
``query`` / ``headers`` / ``cookies`` (``{key: value}``: exact value, a list of values, ``"*"`` for
present, ``null`` for absent, ``{glob: "*Firefox*"}`` or ``{regex: "(?i)bot"}`` for a value that
matches a pattern: a glob matches the whole value, a regex anywhere in it, on google-re2),
``accept`` (``json`` or ``html``), ``language`` (the client's most
preferred language; ``de`` matches ``de-AT``), ``ip`` (CIDR list), ``after`` / ``before`` (ISO 8601;
a time without a zone is UTC) and ``not`` (a mapping of any of these; the rule applies only when
*none* of them holds).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from waypost.rules._errors import FieldError
from waypost.rules.converters import compile_re2
from waypost.rules.request import Request
from waypost.rules.safety import header_name_problem, host_allowed

__all__ = ["CONDITION_KEYS", "Conditions", "ValuePattern", "parse_conditions"]


@dataclass(frozen=True, slots=True)
class ValuePattern:
    """A value test that matches a pattern: ``{glob: "*Firefox*"}`` (``*`` any text, ``?`` one
    character; the whole value, case as written) or ``{regex: "(?i)googlebot"}`` (anywhere in
    the value, on google-re2: linear time whatever the regex and the value)."""

    kind: Literal["glob", "regex"]
    text: str
    compiled: Any = field(compare=False, repr=False, hash=False)

    def matches(self, value: str) -> bool:
        """True when ``value`` matches."""
        if self.kind == "glob":
            return self.compiled.fullmatch(value) is not None
        return self.compiled.search(value) is not None

    def sample(self) -> str | None:
        """A value that matches, for ``waypost check``'s sample requests (None: unknown)."""
        if self.kind == "glob":
            return self.text.replace("*", "x").replace("?", "x")
        return None

    def to_mapping(self) -> dict[str, str]:
        """``{glob: text}`` or ``{regex: text}``, as written."""
        return {self.kind: self.text}


ValueTest = tuple[str, ...] | Literal["*"] | ValuePattern | None
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

CONDITION_KEYS = (
    "methods",
    "host",
    "scheme",
    "query",
    "headers",
    "cookies",
    "accept",
    "language",
    "ip",
    "after",
    "before",
    "not",
)
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
_SCHEMES = ("http", "https")
# A WebSocket handshake's ASGI scope says 'ws'/'wss': the same transport as http/https.
_SCHEME_OF = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


@dataclass(frozen=True, slots=True)
class Conditions:
    """The parsed ``when:`` of a rule. An empty Conditions always holds."""

    methods: frozenset[str] | None = None
    hosts: tuple[str, ...] | None = None
    schemes: tuple[str, ...] | None = None
    query: tuple[tuple[str, ValueTest], ...] = ()
    headers: tuple[tuple[str, ValueTest], ...] = ()
    cookies: tuple[tuple[str, ValueTest], ...] = ()
    accept: Literal["json", "html"] | None = None
    languages: tuple[str, ...] | None = None
    networks: tuple[Network, ...] | None = None
    after: datetime | None = None
    before: datetime | None = None
    negated: Conditions | None = field(default=None)

    @property
    def empty(self) -> bool:
        """True when there is nothing to check."""
        # Identity first: almost every rule shares EMPTY_CONDITIONS, and this runs per request.
        return self is _EMPTY or self == _EMPTY

    def reads(self) -> tuple[str, ...]:
        """The request headers these conditions read, for a ``Vary`` header."""
        names: list[str] = []
        if self.hosts is not None:
            names.append("Host")
        if self.schemes is not None:
            # The scheme is part of the URL a cache keys on, but behind a proxy that ends TLS
            # Waypost reads it from X-Forwarded-Proto: a cache between that proxy and Waypost
            # must not give an https client the answer for http (the classic redirect loop).
            names.append("X-Forwarded-Proto")
        if self.accept is not None:
            names.append("Accept")
        if self.languages is not None:
            names.append("Accept-Language")
        if self.cookies:
            names.append("Cookie")
        names.extend(name.title() for name, _ in self.headers)
        if self.negated is not None:
            names.extend(n for n in self.negated.reads() if n not in names)
        return tuple(names)

    def _tests(self) -> list[tuple[str, Any]]:
        tests: list[tuple[str, Any]] = []
        if self.methods is not None:
            tests.append(("methods", lambda r: r.method in self.methods))
        if self.hosts is not None:
            tests.append(("host", lambda r: host_allowed(r.host, self.hosts)))
        if self.schemes is not None:
            tests.append(("scheme", lambda r: _scheme_of(r.scheme) in self.schemes))
        for key, want in self.query:
            tests.append((f"query {key!r}", _value_test(lambda r, k=key: r.query.get(k), want)))
        for key, want in self.headers:
            tests.append(
                (f"header {key!r}", _value_test(lambda r, k=key: _one(r.headers, k), want))
            )
        for key, want in self.cookies:
            tests.append(
                (f"cookie {key!r}", _value_test(lambda r, k=key: _one(r.cookies, k), want))
            )
        if self.accept is not None:
            tests.append(("accept", lambda r: r.accept == self.accept))
        if self.languages is not None:
            tests.append(("language", lambda r: _language_matches(r.language, self.languages)))
        if self.networks is not None:
            tests.append(("ip", lambda r: _ip_in(r.client_ip, self.networks)))
        if self.after is not None:
            tests.append(("after", lambda r: r.current_time() >= self.after))
        if self.before is not None:
            tests.append(("before", lambda r: r.current_time() < self.before))
        return tests

    def failure(self, request: Request) -> str | None:
        """Why these conditions do not hold for ``request``, or None when they all hold."""
        for label, test in self._tests():
            if not test(request):
                return f"{label}: {_describe(label, request)}"
        if self.negated is not None:
            for label, test in self.negated._tests():
                if test(request):
                    return f"not {label}: it holds ({_describe(label, request)})"
        return None

    def holds(self, request: Request) -> bool:
        """True when every condition holds for ``request``."""
        return self.failure(request) is None


_EMPTY = Conditions()
EMPTY_CONDITIONS = _EMPTY


def _one(mapping: Mapping[str, str], key: str) -> list[str] | None:
    value = mapping.get(key)
    return None if value is None else [value]


def _value_test(get: Any, want: ValueTest) -> Any:
    def test(request: Request) -> bool:
        values = get(request)
        if want is None:
            return values is None
        if values is None:
            return False
        if want == "*":
            return True
        if isinstance(want, ValuePattern):
            return any(want.matches(v) for v in values)
        return any(v in want for v in values)

    return test


def _scheme_of(scheme: str) -> str:
    lowered = scheme.lower()
    return _SCHEME_OF.get(lowered, lowered)


def _language_matches(language: str, wanted: tuple[str, ...] | None) -> bool:
    if not language or not wanted:
        return False
    return any(language == w or language.startswith(w + "-") for w in wanted)


def _ip_in(client_ip: str | None, networks: tuple[Network, ...] | None) -> bool:
    if not client_ip or not networks:
        return False
    try:
        address = ipaddress.ip_address(client_ip.strip("[]"))
    except ValueError:
        return False
    # A dual-stack server reports IPv4 clients as '::ffff:10.0.0.1': match them as IPv4.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in networks if net.version == address.version)


def _describe(label: str, request: Request) -> str:
    if label == "methods":
        return f"method is {request.method}"
    if label == "host":
        return f"host is {request.host!r}"
    if label == "scheme":
        return f"scheme is {_scheme_of(request.scheme)!r}"
    if label == "accept":
        return f"client accepts {request.accept}"
    if label == "language":
        return f"preferred language is {request.language or 'none'!r}"
    if label == "ip":
        return f"client address is {request.client_ip!r}"
    if label in ("after", "before"):
        return f"time is {request.current_time().isoformat()}"
    return "value does not match"


# ---------------------------------------------------------------------------------------------
# Parsing a `when:` mapping (errors are FieldErrors located by key path)


def _strings(value: Any, keys: tuple[str | int, ...], what: str) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    out: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            where = keys + ((index,) if isinstance(value, list | tuple) else ())
            raise FieldError(f"{what} must be a non-empty string, got {item!r}", where)
        out.append(item.strip())
    if not out:
        raise FieldError(f"{what} must not be an empty list", keys)
    return tuple(out)


def parse_methods(value: Any, keys: tuple[str | int, ...]) -> frozenset[str]:
    """``[get, POST]`` -> ``{'GET', 'POST', 'HEAD'?}``; GET implies HEAD."""
    methods = {m.upper() for m in _strings(value, keys, "a method")}
    for method in methods:
        if method not in _METHODS:
            close = difflib.get_close_matches(method, sorted(_METHODS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise FieldError(f"unknown HTTP method {method!r}{hint}", keys)
    if "GET" in methods:
        methods.add("HEAD")
    return frozenset(methods)


def parse_schemes(value: Any, keys: tuple[str | int, ...]) -> tuple[str, ...]:
    """``https`` or ``[http, https]`` -> ``('https',)``; any other scheme is an error."""
    schemes: list[str] = []
    for index, text in enumerate(_strings(value, keys, "a scheme")):
        scheme = text.lower()
        if scheme not in _SCHEMES:
            bare = scheme.partition(":")[0]
            close = [bare] if bare in _SCHEMES else difflib.get_close_matches(scheme, _SCHEMES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise FieldError(
                f"scheme must be 'http' or 'https' (or a list of them), got {text!r}{hint}",
                (*keys, index) if isinstance(value, list | tuple) else keys,
            )
        if scheme not in schemes:
            schemes.append(scheme)
    return tuple(schemes)


def _value_tests(
    value: Any, keys: tuple[str | int, ...], what: str, *, lower_names: bool = False
) -> tuple[tuple[str, ValueTest], ...]:
    if not isinstance(value, Mapping) or not value:
        raise FieldError(
            f"{what} must be a mapping like {{name: value}} ('*' for present, null for absent), "
            f"got {value!r}",
            keys,
        )
    tests: list[tuple[str, ValueTest]] = []
    for name, want in value.items():
        if not isinstance(name, str) or not name:
            raise FieldError(f"{what} name must be a non-empty string, got {name!r}", keys)
        test: ValueTest
        if want is None:
            test = None
        elif want == "*":
            test = "*"
        elif isinstance(want, str | int | float) and not isinstance(want, bool):
            test = (str(want),)
        elif isinstance(want, list) and want and all(isinstance(w, str | int) for w in want):
            test = tuple(str(w) for w in want)
        elif isinstance(want, Mapping):
            test = _value_pattern(want, (*keys, name), f"{what} {name!r}")
        else:
            raise FieldError(
                f"{what} {name!r} must be a string, a list of strings, '*', null, or a pattern "
                f"like {{glob: '*Firefox*'}} or {{regex: '(?i)bot'}}; got {want!r}",
                (*keys, name),
            )
        tests.append((name.lower() if lower_names else name, test))
    return tuple(tests)


def _value_pattern(want: Mapping[Any, Any], keys: tuple[str | int, ...], what: str) -> ValuePattern:
    """``{glob: ...}`` or ``{regex: ...}`` as a :class:`ValuePattern`; FieldError otherwise."""
    if len(want) != 1 or next(iter(want)) not in ("glob", "regex"):
        raise FieldError(
            f"{what} pattern must be {{glob: '...'}} or {{regex: '...'}}, got {dict(want)!r}",
            keys,
        )
    kind, text = next(iter(want.items()))
    if not isinstance(text, str) or not text:
        raise FieldError(f"{what} {kind} must be non-empty text, got {text!r}", (*keys, kind))
    if kind == "glob":
        source = "".join(
            ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in text
        )
        return ValuePattern("glob", text, re.compile(source, re.DOTALL))
    try:
        compiled = compile_re2(text)
    except ImportError:
        raise FieldError(
            f"{what} regex needs google-re2, which matches in linear time: pip install "
            "'waypost[re2]' (or use a glob)",
            (*keys, kind),
        ) from None
    except ValueError as detail:
        raise FieldError(
            f"{what} regex {text!r} cannot run on RE2 ({detail}); it has no backreferences or "
            "lookaround, which keeps it linear",
            (*keys, kind),
        ) from None
    return ValuePattern("regex", text, compiled)


def _time(value: Any, keys: tuple[str | int, ...]) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise FieldError(
                f"{value!r} is not an ISO 8601 time; write it like '2026-12-01T09:00:00Z'", keys
            ) from None
    else:
        raise FieldError(
            f"expected an ISO 8601 time like '2026-12-01T09:00:00Z', got {value!r}", keys
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_conditions(
    value: Any, keys: tuple[str | int, ...] = ("when",), *, nested: bool = False
) -> Conditions:
    """Parse a ``when:`` mapping; raises FieldError."""
    if not isinstance(value, Mapping):
        raise FieldError(f"'when' must be a mapping of conditions, got {value!r}", keys)
    fields: dict[str, Any] = {}
    for key, item in value.items():
        where = (*keys, key)
        if key == "methods":
            fields["methods"] = parse_methods(item, where)
        elif key == "host":
            fields["hosts"] = tuple(h.lower() for h in _strings(item, where, "a host"))
        elif key == "scheme":
            fields["schemes"] = parse_schemes(item, where)
        elif key == "query":
            fields["query"] = _value_tests(item, where, "query parameter")
        elif key == "headers":
            fields["headers"] = _value_tests(item, where, "header", lower_names=True)
            for name, _ in fields["headers"]:
                # The names go out again in the decision's Vary header: no CR/LF smuggled in.
                problem = header_name_problem(name)
                if problem:
                    raise FieldError(problem, (*where, name), at_key=True)
        elif key == "cookies":
            fields["cookies"] = _value_tests(item, where, "cookie")
        elif key == "accept":
            if item not in ("json", "html"):
                raise FieldError(f"accept must be 'json' or 'html', got {item!r}", where)
            fields["accept"] = item
        elif key == "language":
            fields["languages"] = tuple(t.lower() for t in _strings(item, where, "a language tag"))
        elif key == "ip":
            networks: list[Network] = []
            for index, text in enumerate(_strings(item, where, "a CIDR block")):
                try:
                    networks.append(ipaddress.ip_network(text, strict=False))
                except ValueError:
                    raise FieldError(
                        f"{text!r} is not an IP address or CIDR block like '10.0.0.0/8'",
                        (*where, index) if isinstance(item, list) else where,
                    ) from None
            fields["networks"] = tuple(networks)
        elif key in ("after", "before"):
            fields[key] = _time(item, where)
        elif key == "not" and not nested:
            fields["negated"] = parse_conditions(item, where, nested=True)
        else:
            allowed = [k for k in CONDITION_KEYS if not (nested and k == "not")]
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"known conditions: {', '.join(allowed)}"
            )
            raise FieldError(f"unknown condition {key!r}; {hint}", where, at_key=True)
    after, before = fields.get("after"), fields.get("before")
    if after is not None and before is not None and after >= before:
        raise FieldError(f"'after' ({after.isoformat()}) must be earlier than 'before'", keys)
    return Conditions(**fields)
