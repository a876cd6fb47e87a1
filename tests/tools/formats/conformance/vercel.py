"""Vercel's cases: routing-utils' own tests of ``convertRedirects``/``convertRewrites``
(``superstatic.spec.ts``) and of ``getTransformedRoutes`` (``index.spec.ts``).

Each redirect or rewrite entry of the spec is a case: a ``vercel.json`` holding that one entry,
asked the spec's ``mustMatch`` and ``mustNotMatch`` paths. The expected answer of a request is
the peer's own route applied to it (the README of the data says how): the route's ``src`` (a
JavaScript regex, read by Python's ``re`` once ``(?<name>`` is ``(?P<name>``) matched against the
path, case-insensitively as Vercel's router does, its ``has``/``missing`` items checked, ``$1`` and
``$name`` replaced by the groups (an unmatched group gives ``''``). Rewrites come after
``{handle: filesystem}``: a file at the path answers first, so every request is asked with and
without a file there (:attr:`Ask.exists`).

Where an entry's ``has`` items hold regexes, the request gets a header, cookie, query parameter or
host that satisfies them (a sample built from the regex and checked against it), so the peer
applies the entry; Waypost cannot express such a condition and must report the line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ._harness import DATA, Ask, Case

__all__ = ["superstatic_cases", "transformed_cases"]

SUITE = "vercel"


# -- where the entries are in the vercel.json text -------------------------------------------


def config_text(config: Mapping[str, Any]) -> str:
    """The ``vercel.json`` a case imports: the config as ``JSON.stringify(config, null, 2)``."""
    return json.dumps(config, indent=2) + "\n"


def config_lines(text: str) -> tuple[dict[str, int], dict[tuple[str, int], int]]:
    """The line of each top-level key, and of each element of a top-level array, in ``text``
    as :func:`config_text` writes it (keys indented by two spaces, elements by four)."""
    keys: dict[str, int] = {}
    elements: dict[tuple[str, int], int] = {}
    current: str | None = None
    for number, line in enumerate(text.split("\n"), start=1):
        key = re.match(r'^  "([^"]+)": ', line)
        if key:
            current = key.group(1)
            keys[current] = number
        elif current is not None and re.match(r"^    [^ \]}]", line):
            elements[(current, sum(1 for k, _ in elements if k == current))] = number
    return keys, elements


# -- the peer's routes applied to a request --------------------------------------------------


def python_regex(source: str) -> str:
    """A JavaScript regex as Python's ``re`` reads it: ``(?<name>`` is ``(?P<name>``."""
    return re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", source)


class Request:
    """What a route looks at: the path, the query, the host, headers and cookies."""

    def __init__(self, url: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        parts = urlsplit(url)
        self.url = url
        self.path = parts.path or "/"
        self.query = parts.query
        self.host = parts.hostname or ""
        self.headers = {name.lower(): value for name, value in headers}
        self.headers.setdefault("host", self.host)
        cookie = SimpleCookie()
        cookie.load(self.headers.get("cookie", ""))
        self.cookies = {name: morsel.value for name, morsel in cookie.items()}
        self.params = dict(parse_qsl(self.query, keep_blank_values=True))

    def value(self, item: Mapping[str, Any]) -> str | None:
        """The value a ``has`` item looks at, or None when the request has none."""
        kind = item["type"]
        if kind == "host":
            return self.host
        key = str(item["key"])
        if kind == "header":
            return self.headers.get(key.lower())
        if kind == "cookie":
            return self.cookies.get(key)
        return self.params.get(key)


def item_groups(item: Mapping[str, Any], request: Request) -> dict[str, str] | None:
    """The named groups a ``has`` item captures from ``request``, or None when it does not hold
    (as Next.js's ``matchHas``: a value is an anchored regex; without one, presence is enough)."""
    value = request.value(item)
    if value is None:
        return None
    if "value" not in item:
        return {str(item["key"]): value}
    match = re.fullmatch(python_regex(str(item["value"])), value)
    if match is None:
        return None
    groups = {name: text or "" for name, text in match.groupdict().items()}
    if item["type"] == "host":
        groups["host"] = value
    return groups


def substitute(text: str, match: re.Match[str], named: Mapping[str, str]) -> str:
    """``$1`` and ``$name`` replaced as Vercel's ``resolveRouteParameters`` does (an unmatched
    group, or an unknown name, gives ``''``)."""

    def one(found: re.Match[str]) -> str:
        name = found.group(1)
        if name.isdigit():
            index = int(name)
            return (match.group(index) or "") if index <= (match.re.groups or 0) else ""
        return named.get(name, "")

    return re.sub(r"\$([1-9a-zA-Z_]+)", one, text)


def with_query(target: str, query: str) -> str:
    """``target`` with the request's query appended (Vercel merges it into a rewrite's query)."""
    if not query:
        return target
    return f"{target}{'&' if '?' in target else '?'}{query}"


def apply_routes(
    routes: Sequence[Mapping[str, Any]], request: Request, *, exists: bool
) -> tuple[str, int | None]:
    """The peer's answer, in :meth:`Decision.describe` words, and the index of the route that
    gives it (None when none does): the first route that applies."""
    for index, route in enumerate(routes):
        if route.get("handle") == "filesystem":
            if exists:
                return "pass", None  # the file answers
            continue
        flags = 0 if route.get("caseSensitive") else re.IGNORECASE
        match = re.search(python_regex(str(route["src"])), request.path, flags)
        if match is None:
            continue
        named: dict[str, str] = {}
        for item in route.get("has", ()):
            groups = item_groups(item, request)
            if groups is None:
                break
            named.update(groups)
        else:
            if any(item_groups(item, request) is not None for item in route.get("missing", ())):
                continue
            named.update({k: v or "" for k, v in match.groupdict().items()})
            return answer_of(route, match, named, request), index
    return "pass", None


def answer_of(
    route: Mapping[str, Any], match: re.Match[str], named: Mapping[str, str], request: Request
) -> str:
    """What a route that applies does to ``request``."""
    location = (route.get("headers") or {}).get("Location")
    if location is not None:
        return f"redirect {route['status']} {substitute(location, match, named)}"
    if "dest" not in route:
        return "pass"  # a route with neither: matching ends here, the app answers
    dest = substitute(str(route["dest"]), match, named)
    # The fragment is never sent (neither to the app nor to another origin); the request's
    # query joins the destination's.
    text = with_query(dest.partition("#")[0], request.query)
    if re.match(r"^[a-z][a-z0-9+.-]*://", dest, re.IGNORECASE):
        return f"proxy {text}"
    if "status" in route:
        return f"rewrite {text} answered with status {route['status']}"
    return f"rewrite {text}"


# -- requests that satisfy a route's 'has' ---------------------------------------------------

_SAMPLES = (
    (r"\(\?<([A-Za-z_]\w*)>\.\*\)", lambda m: m.group(1).lower()),
    (r"\(\?<[A-Za-z_]\w*>([\w-]+)(?:\|[\w-]+)*\)", lambda m: m.group(1)),
    (r"\(\?<[A-Za-z_]\w*>\\d\+\)", lambda m: "5"),
    (r"\(\?<[A-Za-z_]\w*>\[a-z\]\+\)", lambda m: "abc"),
    (r"\\(.)", lambda m: m.group(1)),
)


def sample(value: str) -> str:
    """A text the ``has`` regex ``value`` matches whole (checked), built by filling in its
    groups; raises when the regex is beyond this small generator."""
    text = value
    for pattern, fill in _SAMPLES:
        text = re.sub(pattern, fill, text)
    if re.fullmatch(python_regex(value), text) is None:
        raise ValueError(f"no sample for the 'has' regex {value!r}")
    return text


def satisfying(items: Iterable[Mapping[str, Any]]) -> tuple[str, list[tuple[str, str]], str]:
    """The host, headers and query of a request that every item of ``items`` holds for."""
    wanted: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for item in items:
        kind = item["type"]
        if kind == "header" and str(item["key"]).lower() == "host":
            kind = "host"
        key = "" if kind == "host" else str(item["key"])
        wanted.setdefault((kind, key), []).append(item)
    host, headers, query, cookies = "example.com", [], [], []
    for (kind, key), group in wanted.items():
        candidates = [sample(str(i["value"])) for i in group if "value" in i] or ["1"]
        value = next(
            (
                c
                for c in candidates
                if all(
                    "value" not in i or re.fullmatch(python_regex(str(i["value"])), c)
                    for i in group
                )
            ),
            candidates[0],
        )
        if kind == "host":
            host = value
        elif kind == "header":
            headers.append((key, value))
        elif kind == "cookie":
            cookies.append(f"{key}={value}")
        else:
            query.append(f"{key}={value}")
    if cookies:
        headers.append(("Cookie", "; ".join(cookies)))
    return host, headers, "&".join(query)


def asks_for(
    routes: Sequence[Mapping[str, Any]],
    requests: Iterable[tuple[str, Sequence[tuple[str, str]]]],
    line_of: Mapping[int, int],
) -> list[Ask]:
    """Each request asked with and without a file at its path, the peer's answer computed from
    ``routes``; ``line_of`` maps a route's index to the line of the entry it comes from."""
    asks = []
    for url, headers in requests:
        request = Request(url, headers)
        for exists in (False, True):
            expect, index = apply_routes(routes, request, exists=exists)
            also: tuple[str, ...] = ()
            why = ""
            if expect.startswith("redirect ") and request.query:
                # The peer's data leaves open whether the request's query joins a redirect's
                # Location (Vercel's dev router does not add it; Next.js's redirects do).
                also = (with_query(expect, request.query),)
                why = "with or without the request's query"
            asks.append(
                Ask(
                    url,
                    expect,
                    line=None if index is None else line_of.get(index),
                    also=also,
                    why=why,
                    headers=tuple(headers),
                    exists=exists,
                )
            )
    return asks


# -- superstatic.spec.ts ----------------------------------------------------------------------


def superstatic_cases() -> list[Case]:
    """One case per entry of ``convertRedirects``' and ``convertRewrites``' tests."""
    data = json.loads((DATA / "vercel" / "superstatic_spec.json").read_text(encoding="utf-8"))
    cases: list[Case] = []
    for test, kind in (("convertRedirects", "redirects"), ("convertRewrites", "rewrites")):
        spec = data[test]
        for index, entry in enumerate(spec["input"]):
            route = spec["expected"][index]
            text = config_text({kind: [entry]})
            _, elements = config_lines(text)
            routes = [{"handle": "filesystem"}, route] if kind == "rewrites" else [route]
            host, headers, query = satisfying(route.get("has", ()))
            paths = [*spec["mustMatch"][index], *spec["mustNotMatch"][index]]
            requests = [
                (f"http://{host}{path}{'?' + query if query else ''}", headers) for path in paths
            ]
            if route.get("missing"):
                # A bare request (a host without a dot, no header, cookie or query) that the
                # 'missing' items of the spec do not match, so that the peer applies the entry.
                requests += [(f"http://localhost{path}", []) for path in paths]
            cases.append(
                Case(
                    SUITE,
                    f"{test}[{index}] {entry['source']} -> {entry['destination']}",
                    "vercel.json",
                    text,
                    tuple(asks_for(routes, requests, {len(routes) - 1: elements[(kind, 0)]})),
                )
            )
    return cases


# -- index.spec.ts: getTransformedRoutes ------------------------------------------------------


def _route_lines(config: Mapping[str, Any], text: str) -> dict[int, int]:
    """Which entry of the config each of getTransformedRoutes' routes comes from, by line: the
    cleanUrls and trailingSlash routes first, then the redirects, the filesystem, the rewrites
    (or the legacy routes as they are)."""
    keys, elements = config_lines(text)
    lines: list[int | None] = []
    if "routes" in config:
        lines = [elements[("routes", i)] for i in range(len(config["routes"]))]
    else:
        if config.get("cleanUrls"):
            lines += [keys["cleanUrls"]] * 2
        if "trailingSlash" in config:
            lines += [keys["trailingSlash"]] * (3 if config["trailingSlash"] else 1)
        lines += [elements[("redirects", i)] for i in range(len(config.get("redirects", ())))]
        if config.get("rewrites"):
            lines.append(None)
            lines += [elements[("rewrites", i)] for i in range(len(config["rewrites"]))]
    return {index: line for index, line in enumerate(lines) if line is not None}


def transformed_cases() -> list[Case]:
    """Configs the peer rejects (refused here too), and configs with the routes they make."""
    data = json.loads((DATA / "vercel" / "transformed_routes.json").read_text(encoding="utf-8"))
    cases: list[Case] = []
    for entry in data["cases"]:
        config = entry["config"]
        text = config_text(config)
        _, elements = config_lines(text)
        if "reject" in entry:
            cases.append(
                Case(
                    SUITE,
                    entry["test"],
                    "vercel.json",
                    text,
                    invalid=tuple(elements.values()),
                    reject=entry["reject"],
                )
            )
            continue
        routes = entry.get("routes", [])
        requests = []
        for request in entry.get("requests", ()):
            if isinstance(request, str):
                requests.append((request, []))
            else:
                requests.append((request["url"], list(request.get("headers", {}).items())))
        cases.append(
            Case(
                SUITE,
                entry["test"],
                "vercel.json",
                text,
                tuple(asks_for(routes, requests, _route_lines(config, text))),
            )
        )
    return cases
