"""Following redirects hop by hop, as a browser does: ``waypost trace`` and the chain checks.

:func:`follow` starts from one request and asks the engine what happens; while the answer is a
redirect it resolves the ``Location`` against the current URL and asks again, with the method a
browser would use for the next request (Fetch standard, "HTTP-redirect fetch": a 301 or 302
turns a POST into a GET, a 303 turns anything but GET/HEAD into a GET, 307 and 308 keep the
method). An absolute ``Location`` on one of the site's own hosts stays on the site; any other
host ends the walk there. A proxy decision (a rewrite to another origin) ends it too: what that
origin answers is not known here, so a loop through a proxy is not followed. Browsers give up
after 20 redirects; so does :func:`follow`.

Pure: no network, no files. The engine answers every hop.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

from waypost.engine import Decision, Engine
from waypost.rules.model import Rule
from waypost.rules.request import HeaderInput, Request, parse_url
from waypost.rules.safety import host_allowed

__all__ = ["MAX_REDIRECTS", "Hop", "Outcome", "RedirectChain", "follow", "next_method"]

#: Chrome and Firefox stop after 20 redirects (Fetch: "If request's redirect count is 20, return
#: a network error"), so a chain longer than that is broken for every visitor.
MAX_REDIRECTS = 20

Outcome = Literal["final", "loop", "too-many", "offsite"]
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def next_method(method: str, status: int) -> str:
    """The method a browser uses after a redirect with ``status`` (Fetch, HTTP-redirect fetch)."""
    if status in (301, 302) and method == "POST":
        return "GET"
    if status == 303 and method not in ("GET", "HEAD"):
        return "GET"
    return method


@dataclass(frozen=True, slots=True)
class Hop:
    """One request of the walk: the method, the URL asked for and the engine's decision."""

    method: str
    url: str
    decision: Decision

    @property
    def rule(self) -> Rule | None:
        """The rule that decided this hop (None when no rule applied)."""
        return self.decision.rule


@dataclass(frozen=True, slots=True)
class RedirectChain:
    """Where a browser ends up: every hop, how the walk ended, and the final URL.

    ``outcome`` is ``"final"`` (a hop answered without redirecting), ``"offsite"`` (the last
    redirect leaves the site; nothing more is known), ``"loop"`` (a URL came back: ``loop_at`` is
    the index of the hop it repeats) or ``"too-many"`` (more than :data:`MAX_REDIRECTS`).
    ``final_url`` is the URL of the last request (or the off-site URL, or the repeated one).
    """

    hops: tuple[Hop, ...]
    outcome: Outcome
    final_url: str
    loop_at: int | None = None
    limit: int = MAX_REDIRECTS
    redirect_statuses: tuple[int, ...] = field(default=())

    @property
    def redirects(self) -> tuple[Hop, ...]:
        """The hops that answered with a redirect, in order."""
        return tuple(h for h in self.hops if h.decision.action == "redirect")

    @property
    def final(self) -> Decision | None:
        """The last decision when the walk ended on the site without a redirect, else None."""
        if self.outcome != "final":
            return None
        return self.hops[-1].decision

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules that redirected, in order (a rule appears again when the walk loops)."""
        return tuple(h.decision.rule for h in self.redirects if h.decision.rule is not None)

    @property
    def loop_rules(self) -> tuple[Rule, ...]:
        """The rules on the loop itself (empty unless ``outcome == "loop"``)."""
        if self.loop_at is None:
            return ()
        return tuple(h.decision.rule for h in self.hops[self.loop_at :] if h.decision.rule)

    def path_text(self) -> str:
        """The URLs visited, ``/a -> /b -> /c`` (ending on the repeated URL for a loop)."""
        urls = [hop.url for hop in self.hops]
        if self.outcome in ("loop", "offsite"):
            urls.append(self.final_url)
        return " -> ".join(urls)

    def summary(self) -> str:
        """One line: how the walk ended."""
        count = len(self.redirects)
        hops = f"{count} redirect{'s' if count != 1 else ''}"
        if self.outcome == "loop":
            return (
                f"redirect loop: {self.final_url} comes back (first asked at hop "
                f"{(self.loop_at or 0) + 1}); a browser stops with ERR_TOO_MANY_REDIRECTS"
            )
        if self.outcome == "too-many":
            return f"more than {self.limit} redirects: a browser gives up (ERR_TOO_MANY_REDIRECTS)"
        if self.outcome == "offsite":
            return f"final: {self.final_url} after {hops} (another site; not followed)"
        decision = self.hops[-1].decision
        if decision.action == "respond":
            there = f"it answers {decision.status}"
        elif decision.action == "rewrite":
            query = f"?{decision.query}" if decision.query else ""
            there = f"rewritten to {decision.path}{query} for the app"
        elif decision.action == "proxy":
            there = f"proxied to {decision.location} (another origin; not followed)"
        elif decision.action == "auth":
            auth = decision.auth
            guard = f"guard {auth.guard!r} " if auth is not None else ""
            there = f"{guard}asks the auth service {decision.location} first (not asked here)"
        elif decision.action == "redirect":  # pragma: no cover - a redirect is followed
            there = f"{decision.status} -> {decision.location}"
        elif decision.rule is not None:
            there = "a pass rule leaves it to the app"
        else:
            there = "no rule applies (the app answers)"
        return f"final: {self.final_url} after {hops}; {there}"

    def render(self) -> str:
        """Every hop on its own line, then the summary; for people."""
        lines: list[str] = []
        for number, hop in enumerate(self.hops, start=1):
            rule = hop.rule
            where = ""
            if rule is not None:
                where = f"  [{rule.source}{' ' + rule.name if rule.name else ''}]"
            lines.append(f"{number:>2}. {hop.method} {hop.url}")
            lines.append(f"    {hop.decision.describe(detail=False)}{where}")
        lines.append(self.summary())
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``hops`` (method, url, decision), ``outcome``, ``final_url``..."""
        return {
            "outcome": self.outcome,
            "final_url": self.final_url,
            "final_status": self.final.status if self.final is not None else None,
            "final_action": self.final.action if self.final is not None else None,
            "redirects": len(self.redirects),
            "loop_at": self.loop_at,
            "hops": [
                {"method": h.method, "url": h.url, "decision": h.decision.to_dict()}
                for h in self.hops
            ],
        }


def _host_of(url: str) -> str | None:
    if not _SCHEME.match(url):
        return None
    try:
        return (urlsplit(url).hostname or "").lower() or None
    except ValueError:
        return None


def _key(method: str, url: str, scheme: str) -> tuple[str, str, str | None, str]:
    """What makes two requests the same for loop detection: method, scheme, host and
    path-with-query. (``http://x/a`` and ``https://x/a`` differ: a rule may hold for one scheme
    only.) ``scheme`` is the walk's, for a path."""
    host = _host_of(url)
    if host is None:
        return method, scheme, None, url
    parts = urlsplit(url)
    rest = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return method, parts.scheme.lower(), host, rest


def _join(current: str, location: str, scheme: str = "https") -> str:
    """``location`` resolved against ``current`` (a path, or an absolute URL); ``scheme`` is
    the walk's, for a path."""
    if _SCHEME.match(location):
        return location
    if location.startswith("//"):
        scheme = urlsplit(current).scheme if _SCHEME.match(current) else scheme
        return f"{scheme or 'https'}:{location}"
    if (
        location[:1] == "/"
        and current[:1] == "/"
        and current[:2] != "//"
        and "/." not in location
        and "#" not in location
        and location[-1] != "?"
    ):
        return location  # what urljoin() gives a plain same-site path (no dot segments), faster
    return urljoin(current, location)


def follow(
    engine: Engine,
    method: str,
    url: str,
    headers: HeaderInput = None,
    client_ip: str | None = None,
    *,
    site_hosts: Iterable[str] = (),
    now: datetime | None = None,
    limit: int = MAX_REDIRECTS,
    first: Decision | None = None,
    scheme: str = "http",
) -> RedirectChain:
    """Follow ``method url`` through the engine's redirects, as a browser would.

    ``url`` is a path with query or an absolute URL. ``site_hosts`` are the hosts that are this
    site (``*.example.org`` allowed): a redirect to one of them continues here; the URL's own
    host always counts. ``first``, when given, is used as the decision of the first hop instead
    of asking the engine (the checks use it to start from one particular rule). ``scheme`` is
    the scheme of the requests to a path (an absolute URL says its own): the checks walk a rule
    that holds for https only from https.
    """
    hosts = [h.lower() for h in site_hosts]
    start_host = _host_of(url)
    if start_host is not None:
        hosts.append(start_host)
    method = method.upper()
    hops: list[Hop] = []
    seen: dict[tuple[str, str, str | None, str], int] = {}
    current = url
    statuses: list[int] = []
    while True:
        key = _key(method, current, scheme)
        if key in seen:
            return RedirectChain(tuple(hops), "loop", current, seen[key], limit, tuple(statuses))
        seen[key] = len(hops)
        if first is not None and not hops:
            decision = first
        else:
            parts = parse_url(current)
            if parts[1] is None:  # a path: the walk's scheme
                parts = (scheme, *parts[1:])
            decision = engine.resolve(Request.from_url(method, parts, headers, client_ip, now))
        hops.append(Hop(method, current, decision))
        if decision.action != "redirect" or decision.location is None:
            return RedirectChain(tuple(hops), "final", current, None, limit, tuple(statuses))
        status = decision.status or 302
        statuses.append(status)
        if len(statuses) > limit:
            return RedirectChain(
                tuple(hops), "too-many", decision.location, None, limit, tuple(statuses)
            )
        target = _join(current, decision.location, scheme)
        host = _host_of(target)
        if host is not None and not host_allowed(host, hosts):
            return RedirectChain(tuple(hops), "offsite", target, None, limit, tuple(statuses))
        method = next_method(method, status)
        current = target
