"""Netlify's cases: the ``test.each`` tables of netlify/build's redirect-parser tests
(``tests.json``) over their fixtures (``redirects_file/``, ``netlify_config/``).

The tables state what Netlify's parser makes of each file (the parsed redirects, or the error of
a rejected input), not answers to requests. The requests are made here from each parsed
redirect (a path its pattern matches, its host, its query parameters, its language), together
with the near misses that tell its conditions apart (another host, the query left out, no
language, a file at the path), and the peer's answer to each is worked out from the parsed
redirects with Netlify's documented rules (:class:`PeerRule`): the first matching line wins,
status 301 unless given, ``force: false`` rules wait for a missing file, ``/*`` binds
``:splat``, ``:name`` binds a segment, query parameters and conditions must all hold, 200 to a
path is a rewrite and to a URL a proxy.

Left out: the rows that merge with ``configRedirects`` given in code (``merge.test.ts`` other
than ``simple``), read a missing file or a directory (``non_existing``, ``invalid_dir``,
``undefined``). ``simple_multiple``'s file alone is asked too: the merge row shows the parser
keeps both of its ``/one`` lines, and the first one answers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

from ._harness import DATA, Ask, Case

__all__ = ["PeerRule", "netlify_cases"]

NETLIFY = DATA / "netlify"

#: Rows that need input this suite cannot give as a file (see the module's doc).
_LEFT_OUT = {"non_existing", "invalid_dir", "undefined", "only_config", "simple_merge"}

#: The lines each rejected fixture's parser errors are about: Netlify's parser rejects a bad
#: line (or ``[[redirects]]`` entry) and keeps the others, so these lines must be refused.
_INVALID_LINES: dict[str, dict[str, tuple[int, ...]]] = {
    "_redirects": {
        "invalid_url": (1,),
        "invalid_dot_netlify_url": (1,),
        "invalid_dot_netlify_path": (1,),
        "invalid_status": (1,),
        "invalid_no_to_no_status": (1,),
        "invalid_no_to_status": (1,),
        "invalid_no_to_query": (1,),
        "invalid_no_slash": (1, 2, 3),
        # '/backup/*' has no destination, and the indented header line is no redirect either.
        "invalid_mistaken_headers": (2, 3),
    },
    # An entry's line is the one naming its source, else its [[redirects]] header.
    "netlify.toml": {
        "invalid_toml": (1,),
        "invalid_type": (1,),  # [redirects], a table: the whole input is refused
        "invalid_object": (1,),
        "invalid_no_from": (1,),
        "invalid_no_to": (2,),
        "invalid_status_string": (2,),
        "invalid_status_empty": (2,),
        "invalid_forward_status": (2,),
        "invalid_url": (2,),
        "invalid_dot_netlify_url": (2,),
        "invalid_dot_netlify_path": (2,),
        "invalid_headers": (2,),
    },
}

_PLACEHOLDER = re.compile(r":([A-Za-z_]\w*)")


@dataclass(frozen=True)
class Request:
    """A request as Netlify's rules see it: what an :class:`Ask` sends, plus the visitor's
    country and role (which no request header carries: Netlify knows them from the visitor's
    IP and JWT)."""

    path: str
    host: str | None = None
    scheme: str = "https"
    query: tuple[tuple[str, str], ...] = ()
    language: str | None = None
    country: str | None = None
    role: str | None = None
    exists: bool = False

    def url(self) -> str:
        base = f"{self.scheme}://{self.host}{self.path}" if self.host else self.path
        return f"{base}?{urlencode(self.query, safe='/:')}" if self.query else base

    def why(self) -> str:
        said = [f"from country {self.country!r}"] if self.country else []
        said += [f"with role {self.role!r}"] if self.role else []
        said += ["a file exists at the path"] if self.exists else []
        return ", ".join(said)


@dataclass(frozen=True)
class PeerRule:
    """One redirect as Netlify's parser gives it, and the line it was read from."""

    line: int
    path: str
    to: str
    host: str | None = None
    scheme: str | None = None
    status: int = 301
    force: bool = False
    query: dict[str, str] = field(default_factory=dict)
    conditions: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parsed(cls, data: dict[str, Any], line: int) -> PeerRule:
        """The parser's object (``minimal`` objects have no ``path``: it is ``from``)."""
        return cls(
            line,
            data.get("path", data["from"]),
            data["to"],
            data.get("host"),
            data.get("scheme"),
            data.get("status", 301),
            bool(data.get("force", False)),
            dict(data.get("query") or {}),
            {k: list(v) for k, v in (data.get("conditions") or {}).items()},
        )

    def bindings(self, request: Request) -> dict[str, str] | None:
        """The placeholders' values when this rule applies to ``request``, else ``None``."""
        if self.host is not None and request.host != self.host:
            return None
        if not self.force and request.exists:
            return None  # shadowing: an unforced rule waits for a missing file
        found = _match_path(self.path, request.path)
        if found is None:
            return None
        given = dict(request.query)
        for key, want in self.query.items():
            if key not in given:
                return None
            if want.startswith(":"):
                found[want[1:]] = given[key]
            elif given[key] != want:
                return None
        for key, values in self.conditions.items():
            have = {"language": request.language, "country": request.country}.get(key.lower())
            if key.lower() == "role":
                have = request.role
            if have is None or have.lower() not in {v.lower() for v in values}:
                return None
        return found

    def answer(self, values: dict[str, str]) -> str:
        """The answer in :meth:`Decision.describe` words."""
        target = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), self.to)
        if self.status == 200:
            return f"proxy {target}" if urlsplit(target).scheme else f"rewrite {target}"
        if 400 <= self.status <= 599:
            return f"respond {self.status}"
        return f"redirect {self.status} {target}"

    def requests(self) -> list[Request]:
        """A request this rule answers (unless an earlier line does), and its near misses: a
        file at the path, another host, the query parameters or the language left out, a
        trailing slash. None for a path that is not one (Netlify gives it no meaning)."""
        if not self.path.startswith("/"):
            return []
        path = "/".join(_sample(segment) for segment in self.path.split("/"))
        query = tuple(
            (key, f"{want[1:]}-value" if want.startswith(":") else want)
            for key, want in self.query.items()
        )
        first = {key.lower(): values[0] for key, values in self.conditions.items()}
        hit = Request(
            path,
            self.host,
            self.scheme or "https",
            query,
            first.get("language"),
            first.get("country"),
            first.get("role"),
        )
        out = [hit, replace(hit, exists=True)]
        if self.host:
            out.append(replace(hit, host="elsewhere.example", scheme="https"))
        if self.query:
            out.append(replace(hit, query=()))
        if hit.language:
            out.append(replace(hit, language=None))
        if path != "/" and "*" not in self.path:
            out.append(replace(hit, path=path + "/"))
        return out


def _sample(segment: str) -> str:
    """A value for one segment of a Netlify path: the splat two segments, a placeholder one."""
    if segment == "*":
        return "some/page"
    if segment.startswith(":"):
        return f"{segment[1:]}-value"
    return segment


def _match_path(pattern: str, path: str) -> dict[str, str] | None:
    """Netlify's path match: whole segments, ``:name`` one segment, a final ``*`` the rest (and
    the bare directory); a trailing slash does not count."""
    want = pattern.rstrip("/").split("/") if pattern != "/" else [""]
    have = path.rstrip("/").split("/") if path != "/" else [""]
    values: dict[str, str] = {}
    for index, segment in enumerate(want):
        if segment == "*" and index == len(want) - 1:
            values["splat"] = "/".join(have[index:])
            return values
        if index >= len(have):
            return None
        if segment.startswith(":") and have[index]:
            values[segment[1:]] = have[index]
        elif segment != have[index]:
            return None
    return values if len(have) == len(want) else None


def peer_answer(rules: list[PeerRule], request: Request) -> tuple[str, int | None]:
    """Netlify's answer to ``request`` and the line that gives it: the first rule that applies."""
    for rule in rules:
        values = rule.bindings(request)
        if values is not None:
            return rule.answer(values), rule.line
    return "pass", None


def asks_for(rules: list[PeerRule]) -> tuple[Ask, ...]:
    """Every rule's requests, each with the peer's answer (the first line that applies)."""
    asks: list[Ask] = []
    seen: set[Request] = set()
    for rule in rules:
        for request in rule.requests():
            if request in seen:
                continue
            seen.add(request)
            expect, line = peer_answer(rules, request)
            headers = (("Accept-Language", request.language),) if request.language else ()
            asks.append(
                Ask(
                    request.url(),
                    expect,
                    line,
                    why=request.why(),
                    headers=headers,
                    exists=request.exists,
                )
            )
    return tuple(asks)


def _redirects_lines(text: str) -> list[int]:
    """The numbers of the lines that hold a redirect (not blank, not a comment)."""
    return [
        number
        for number, line in enumerate(text.split("\n"), start=1)
        if line.strip() and not line.strip().startswith("#")
    ]


_TOML_TABLE = re.compile(r"^\s*\[\[\s*redirects\s*\]\]")
_TOML_SOURCE = re.compile(r"^\s*(from|origin)\s*=")


def _toml_lines(text: str) -> list[int]:
    """Per ``[[redirects]]`` entry, the line naming its source (``from``, or ``origin``)."""
    lines = text.split("\n")
    out: list[int] = []
    for number, line in enumerate(lines, start=1):
        if _TOML_TABLE.match(line):
            out.append(number)
        elif out and out[-1] < number and _TOML_SOURCE.match(line):
            header = out[-1]
            if _TOML_TABLE.match(lines[header - 1]):
                out[-1] = number
    return out


def _case(label: str, fixture: str, filename: str, text: str, expected: Any) -> Case:
    """A case from one row: ``expected`` is the parsed redirects or ``{"regex": error}``."""
    if isinstance(expected, dict):
        invalid = _INVALID_LINES[filename][fixture]
        return Case("netlify", label, filename, text, invalid=invalid, reject=expected["regex"])
    lines = _redirects_lines(text) if filename == "_redirects" else _toml_lines(text)
    rules = [PeerRule.parsed(row, lines[index]) for index, row in enumerate(expected)]
    return Case("netlify", label, filename, text, asks_for(rules), rules=len(rules))


def netlify_cases() -> list[Case]:
    """The parser tests of ``_redirects`` files and of ``netlify.toml``, as cases."""
    tables = json.loads((NETLIFY / "tests.json").read_text(encoding="utf-8"))
    cases: list[Case] = []
    for source, prefix in (("line-parser.test.ts", "_redirects"), ("merge.test.ts", "merge")):
        for table in tables[source]:
            for name, given, expected in table["rows"]:
                if name in _LEFT_OUT:
                    continue
                (fixture,) = given["redirectsFiles"]
                if name == "simple_multiple":
                    # The file alone; the merged list also holds the configRedirects.
                    expected = [{"from": "/one", "to": "/two"}, {"from": "/one", "to": "/four"}]
                text = (NETLIFY / "redirects_file" / fixture).read_text(encoding="utf-8")
                cases.append(_case(f"{prefix} {name}", fixture, "_redirects", text, expected))
    for table in tables["netlify-config-parser.test.ts"]:
        for name, given, expected in table["rows"]:
            if name in _LEFT_OUT:
                continue
            fixture = given["netlifyConfigPath"]
            text = (NETLIFY / "netlify_config" / f"{fixture}.toml").read_text(encoding="utf-8")
            cases.append(_case(f"netlify.toml {name}", fixture, "netlify.toml", text, expected))
    return cases
