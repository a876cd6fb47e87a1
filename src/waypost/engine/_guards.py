"""The guard layer: the guards every request must pass before any rule decides.

Guards are a layer, not a rule priority. A rule with ``require:`` is put into a matcher of its
own, and for each request every guard rule whose pattern (and conditions) match is found, and
each guard it requires is run; the first that fails answers the request. Only when all pass are
the rules that decide searched, so an exact redirect or a rewrite inside a guarded area is never
reached without the credential. A rewrite's new path is checked again (see
:meth:`GuardLayer.check`), so a rewrite cannot route around a guard either.

Path tricks: the guard rules are matched against the decoded path the matcher sees *and* its
canonical form (``//`` and ``/./`` collapsed, ``/../`` resolved, ``;params`` and backslashes
read as Tomcat, Spring and IIS read them; see :func:`canonical_path`): whichever form the app or
the upstream ends up routing, the guard has seen it.

A ``forward_auth`` guard cannot answer alone (the engine does no I/O): when every other guard
has passed, the layer answers an ``auth`` decision saying what to ask its auth service, and
:meth:`GuardLayer.answered` reads the answer the adapter got (see
``Engine.resolve_authorized``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any
from urllib.parse import quote

from waypost.decision import AuthRequest, Decision, Step
from waypost.exceptions import RuleError
from waypost.guards import (
    GUARD_HEADER,
    IDENTITY_KEYS,
    USER_HEADER,
    Allowed,
    Ask,
    Denied,
    ForwardAuthGuard,
    Guard,
    ServiceAnswer,
    without_identity_headers,
)
from waypost.matching import Matcher, compile_matcher
from waypost.rules.converters import PathConverter
from waypost.rules.model import Rule
from waypost.rules.pattern import normalize_path
from waypost.rules.request import Request

__all__ = ["GuardLayer", "canonical_path", "identity_headers", "identity_headers_of"]

_VARY = ("Accept", "Authorization", "Cookie")
# A NUL, or bytes that are not UTF-8 (kept as surrogates by the decoding: overlong forms such as
# %c0%ae for '.' among them). A server or app may read either as something else than the
# matcher does (a truncated path, a dot), so with guards loaded such a path is refused.
_UNREADABLE = re.compile("[\x00\udc80-\udcff]")
# What a hit of the quick search (see _tail_prefix()) is handed over with: its values are only
# for explain()'s trace, which takes the matcher's search instead.
_NO_VALUES: dict[str, Any] = {}


def canonical_path(path: str) -> str:
    """``path`` (decoded) as a server that normalizes paths reads it: empty and ``.`` segments
    dropped, ``..`` resolved (never above the root), ``;params`` removed from each segment and
    ``\\`` taken as ``/``; a trailing slash is kept."""
    segments: list[str] = []
    for segment in path.replace("\\", "/").split("/"):
        segment = segment.partition(";")[0]
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    out = "/" + "/".join(segments)
    if segments and path.endswith(("/", "\\")):
        out += "/"
    return out


def identity_headers_of(
    headers: Iterable[tuple[str, str]], names: Collection[str] = IDENTITY_KEYS
) -> tuple[tuple[str, str], ...]:
    """``headers`` without the identity headers ``names`` (a rule's ``set_headers`` cannot
    forge them)."""
    if not headers:
        return ()
    return tuple(without_identity_headers(headers, names))


def _safe_next(request: Request) -> str:
    """The ``next`` of a login redirect: only the path and query of the request, never a URL
    of another site (a path starting ``//`` or ``/\\`` would be one)."""
    path = "/" + request.raw_path.lstrip("/\\")
    if request.query_string:
        path += "?" + request.query_string
    return path


def _wants_json(request: Request) -> bool:
    """A JSON client: it sent JSON, or prefers JSON in Accept (see Request.accept)."""
    content_type = request.headers.get("content-type", "").lower()
    return request.accept == "json" or "json" in content_type


class GuardLayer:
    """The guard rules of one rule set and the guards they require; immutable once built."""

    __slots__ = (
        "_denial_vary",
        "_exact",
        "_fold",
        "_guards_of",
        "_heads",
        "_names",
        "_others",
        "_tails",
        "guards",
        "identity_names",
        "matcher",
        "rules",
        "vary",
    )

    def __init__(self, rules: tuple[Rule, ...], guards: Mapping[str, Guard]) -> None:
        self.rules = rules
        self.guards = dict(guards)
        # What a guarded answer depends on: the credential headers of every kind (an api_key
        # guard's X-API-Key too), so that a shared cache never hands one client's to another.
        extra = (h for guard in self.guards.values() for h in getattr(guard, "vary", ()))
        #: The Vary of a decision the guards let through.
        self.vary: tuple[str, ...] = tuple(dict.fromkeys((*_VARY[1:], *extra)))
        self._denial_vary = (_VARY[0], *self.vary)
        #: The request headers only the guards set (lower case): Waypost's own, and those the
        #: forward_auth guards copy from their auth service. A client's copies are removed.
        self.identity_names: frozenset[str] = IDENTITY_KEYS.union(
            *(getattr(guard, "identity_names", ()) for guard in self.guards.values())
        )
        self._heads, self._fold = _first_segments(rules)
        self._exact = any(rule.pattern is None for rule in rules)
        self._tails, others = _tail_prefixes(rules)
        #: The pattern rules of other shapes, which the quick search asks a matcher of their own.
        self._others: Matcher | None = (
            compile_matcher(others, first_match=True, guard_layer=True) if others else None
        )
        #: By id(rule): the guards it requires, and whether it has conditions (read per hit).
        self._names: dict[int, tuple[tuple[str, ...], bool]] = {}
        #: The same with each guard; None when a guard is unknown (problems() says so), and
        #: check() takes the general road, which fails on it.
        guards_of: dict[int, tuple[tuple[tuple[str, Guard], ...], bool]] | None = {}
        for rule in rules:
            requirement = rule.requirement
            assert requirement is not None  # the guard rules are the rules with one
            conditional = not rule.conditions.empty
            self._names[id(rule)] = (requirement.guards, conditional)
            if guards_of is not None and all(n in self.guards for n in requirement.guards):
                pairs = tuple((n, self.guards[n]) for n in requirement.guards)
                guards_of[id(rule)] = (pairs, conditional)
            else:
                guards_of = None
        if any(guard.kind == "forward_auth" for guard in self.guards.values()):
            # A guard that asks its service takes the general road (check() below): its
            # question waits until every other guard passed.
            guards_of = None
        self._guards_of = guards_of
        # File order: all matching guard rules are collected anyway; first_match keeps two
        # guard rules of one pattern (an area guarded twice) from being reported as duplicates.
        self.matcher: Matcher = compile_matcher(rules, first_match=True, guard_layer=True)

    def problems(self) -> list[RuleError]:
        """Load errors: a guard whose name is unknown, and a login URL inside the area of the
        guard that sends browsers to it (a login loop)."""
        errors: list[RuleError] = []
        for rule in self.rules:
            requirement = rule.requirement
            assert requirement is not None  # the guard rules are the rules with one
            for name in requirement.guards:
                if name not in self.guards:
                    errors.append(
                        RuleError(
                            f"unknown guard {name!r}; declare it under 'guards:' or give it "
                            "to the engine: Engine(..., guards={name: check})",
                            file=rule.file,
                            line=rule.line,
                        )
                    )
                    continue
                login_url = requirement.login_url or self.guards[name].login_url
                if login_url is None:
                    continue
                for other in self._requiring(login_url, name):
                    errors.append(
                        RuleError(
                            f"login_url {login_url!r} is inside the area guard {name!r} "
                            f"protects (the rule at {other.source}): a browser sent there to "
                            "log in would be sent there again; leave the login page out of "
                            "the guarded pattern",
                            file=rule.file,
                            line=rule.line,
                        )
                    )
                    break
        return errors

    def memories(self) -> tuple[Any, ...] | None:
        """What the compiled road's gate needs (``waypost/_gate.c``), or None when this layer
        leaves nothing to it: the guard rules of the quick road (see :meth:`check`) as
        ``(tails, exact, guards)``. ``tails``: each ``(prefix, guard ids)``; ``exact``: each
        table variant's ``(path -> guard ids, case_insensitive)``; ``guards``: by id,
        ``(kind, name, memory, ring, note directly)`` as the guard's ``memory()`` says (kind
        None: a guard the gate does not read). The gate only lets through what the guards
        remember letting through; anything else, a denial above all, is this layer's."""
        guards_of = self._guards_of
        if guards_of is None or self._others is not None:
            return None
        if any(conditional for _, conditional in guards_of.values()):
            return None
        names = list(self.guards)
        ids = {name: k for k, name in enumerate(names)}

        def ids_of(rule: Rule) -> tuple[int, ...]:
            return tuple(ids[name] for name, _ in guards_of[id(rule)][0])

        tails = tuple((prefix, ids_of(rule)) for prefix, _, _, rule in self._tails)
        exact: dict[tuple[bool, bool], dict[str, tuple[int, ...]]] = {}
        for rule in self.rules:
            if rule.pattern is not None:
                continue
            options = rule.options
            variant = (options.strict_slashes, options.case_insensitive)
            key = normalize_path(rule.path, strict_slashes=variant[0], case_insensitive=variant[1])
            table = exact.setdefault(variant, {})
            table[key] = tuple(dict.fromkeys((*table.get(key, ()), *ids_of(rule))))
        described: list[tuple[Any, ...]] = []
        for name in names:
            memory = getattr(self.guards[name], "memory", None)
            kind, remembered, ring, direct = (
                memory() if memory is not None else (None, None, None, False)
            )
            described.append((kind, name, remembered, ring, direct))
        return (
            tails,
            tuple((table, case) for (_, case), table in exact.items()),
            tuple(described),
        )

    def _requiring(self, url: str, name: str) -> Iterable[Rule]:
        path = url.partition("?")[0]
        for candidate in (path, canonical_path(path)):
            for rule, _ in self.matcher.candidates(candidate):
                requirement = rule.requirement
                if requirement is not None and name in requirement.guards:
                    yield rule

    def _candidates(self, path: str, steps: list[Step] | None) -> Iterable[tuple[Rule, Any]]:
        """The guard rules whose pattern matches the decoded ``path`` (one of its forms), in
        file order, with their values (for a trace: the quick search has none)."""
        if steps is None:
            # The quick search: what matcher.candidates() finds, its rules of the commonest
            # shape (static segments then a bare '<path:...>', see _tail_prefix()) found with
            # startswith(), the exact ones in its dict, and only the others by a matcher.
            found = (
                [(rule, _NO_VALUES) for rule in self.matcher.exact_candidates(path)]
                if self._exact
                else []
            )
            if self._others is not None:
                found += [(rule, _NO_VALUES) for rule, _ in self._others.candidates(path)]
            slashed = len(path) > 1 and path[-1] == "/"
            stripped = (path.rstrip("/") or "/") if slashed else path
            for prefix, end, strict, rule in self._tails:
                # As the trie reads it: trailing slashes stripped but for 'strict', the segments
                # after the first character (whatever it is), and a rest for '[^/].*' that is
                # not empty and does not start with '/'.
                text = stripped if not strict else path
                if text.startswith(prefix, 1) and len(text) > end and text[end] != "/":
                    found.append((rule, _NO_VALUES))
            if len(found) > 1:
                found.sort(key=_file_order)
            return found
        heads = self._heads
        if heads is not None:
            # A path whose first segment starts no guard rule needs no matcher search.
            head = path[1:].partition("/")[0]
            if head not in heads and not (self._fold and head.lower() in heads):
                return ()
        return self.matcher.candidates(path)

    def matches(self, path: str) -> bool:
        """False when no request with the decoded ``path`` has a guard to pass, whatever its
        headers: :meth:`check` would find none (and the path is readable)."""
        if not path.isascii() or "\x00" in path:
            return True  # check() refuses an unreadable path, or may
        heads = self._heads
        if (
            heads is not None
            and path[:1] == "/"
            and path[-1] != "/"
            and "/." not in path
            and "//" not in path
            and ";" not in path
            and "\\" not in path
        ):
            # The common case, without _forms(): the path is its only form (see there).
            head = path[1:].partition("/")[0]
            if head not in heads and not (self._fold and head.lower() in heads):
                return False
        for candidate in _forms(path):
            if heads is not None:
                head = candidate[1:].partition("/")[0]
                if head not in heads and not (self._fold and head.lower() in heads):
                    continue  # what _candidates() would find, only sooner
            for _ in self._candidates(candidate, None):
                return True
        return False

    def required(self, request: Request, steps: list[Step] | None) -> dict[str, Rule]:
        """The guards ``request`` must pass, each with the first rule requiring it."""
        required: dict[str, Rule] = {}
        names_of = self._names
        forms = _forms(request.path)
        # A rule matching several forms counts once (one form's candidates are distinct).
        seen: set[int] | None = set() if len(forms) > 1 else None
        for candidate in forms:
            for rule, values in self._candidates(candidate, steps):
                if seen is not None:
                    if id(rule) in seen:
                        continue
                    seen.add(id(rule))
                names, conditional = names_of[id(rule)]
                if conditional:
                    failure = rule.conditions.failure(request)
                    if failure is not None:
                        if steps is not None:
                            steps.append(
                                Step(rule, values, "skipped", f"guard condition failed: {failure}")
                            )
                        continue
                for name in names:
                    if name not in required:
                        required[name] = rule
        return required

    def check(
        self,
        request: Request,
        steps: list[Step] | None,
        done: Mapping[str, Allowed] | None = None,
    ) -> tuple[Decision | None, list[tuple[str, Allowed]]]:
        """Run every guard ``request`` must pass: the decision of the first that fails (and
        nothing else), or None and the guards that passed with what each found. A guard in
        ``done`` (passed by this client's request already) counts as passed with what it found.

        A guard that must ask its service (``forward_auth``) is asked only once every other
        guard has passed: the decision is then ``auth``, what to ask (the first such guard; the
        next is asked when its answer comes back)."""
        passed: list[tuple[str, Allowed]] = []
        path = request.path
        # An ASCII path without NUL is readable: the regex only runs for the others.
        if (not path.isascii() or "\x00" in path) and _UNREADABLE.search(path) is not None:
            return _refused(request), passed
        guards_of = self._guards_of
        if (
            guards_of is not None
            and steps is None
            and done is None
            and path[:1] == "/"
            and path[-1] != "/"
            and "/." not in path
            and "//" not in path
            and ";" not in path
            and "\\" not in path
        ):
            # The common case, inline (here a call costs as much as the search): a path that
            # is its only form (see _forms()), no trace, and the quick search (see
            # _candidates(); without a trailing slash, 'strict' reads the path as the others
            # do). Then as below: each guard runs once, for the first rule requiring it, in
            # the order required() gives. A plain path that has a prefix has a rest '[^/].*'
            # takes: the prefix ends with '/', and the path neither does nor holds '//'.
            hits = self.matcher.exact_candidates(path) if self._exact else []
            if self._others is not None:
                hits += [rule for rule, _ in self._others.candidates(path)]
            for prefix, _, _, rule in self._tails:
                if path.startswith(prefix, 1):
                    hits.append(rule)
            if len(hits) > 1:
                hits.sort(key=_index)
            for rule in hits:
                guards, conditional = guards_of[id(rule)]
                if conditional and rule.conditions.failure(request) is not None:
                    continue
                for name, guard in guards:
                    if passed and any(name == other for other, _ in passed):
                        continue
                    outcome = guard.check(request)
                    if isinstance(outcome, Allowed):
                        passed.append((name, outcome))
                        continue
                    if isinstance(outcome, Denied):
                        denial = self.denial(request, rule, guard, outcome, self._denial_vary)
                        return denial, passed
                    # A guard that asks takes the general road (see __init__): never let an
                    # unexpected outcome through.
                    raise TypeError(f"guard {name!r} answered {outcome!r} on the quick road")
            return None, passed
        asking: tuple[str, Rule, Ask] | None = None
        for name, rule in self.required(request, steps).items():
            guard = self.guards[name]
            earlier = done.get(name) if done else None
            outcome = guard.check(request) if earlier is None else earlier
            if isinstance(outcome, Ask):
                if steps is not None:
                    steps.append(
                        Step(
                            rule, {}, "asks", f"guard {name!r} ({guard.kind}) asks {outcome.reason}"
                        )
                    )
                if asking is None:
                    asking = (name, rule, outcome)
                continue
            if isinstance(outcome, Denied):
                if steps is not None:
                    steps.append(
                        Step(
                            rule,
                            {},
                            "denied",
                            f"guard {name!r} ({guard.kind}) failed: {outcome.reason}",
                        )
                    )
                return self.denial(request, rule, guard, outcome, self._denial_vary), passed
            if steps is not None:
                steps.append(
                    Step(
                        rule,
                        {},
                        "guarded",
                        f"guard {name!r} ({guard.kind}) passed: {outcome.reason or 'allowed'}",
                    )
                )
            passed.append((name, outcome))
        if asking is not None:
            name, rule, ask = asking
            # What this request's earlier answers were: the service's answer comes back with them.
            earlier_answers = tuple(done.items()) if done else ()
            auth = AuthRequest(
                name, ask.url, ask.headers, ask.timeout, "GET", earlier_answers, self
            )
            decision = Decision("auth", None, ask.url, rule=rule, vary=self._denial_vary, auth=auth)
            return decision, passed
        return None, passed

    def answered(
        self,
        request: Request,
        decision: Decision,
        status: int,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        steps: list[Step] | None = None,
    ) -> tuple[Decision | None, dict[str, Allowed]]:
        """The auth service's answer to ``decision`` (an ``auth`` decision of this layer): the
        decision for the client when it refused, or None and every guard this request passed
        through its service so far (the ``done`` of :meth:`check`)."""
        auth = decision.auth
        guard = self.guards.get(auth.guard) if auth is not None else None
        if auth is None or auth.origin is not self or not isinstance(guard, ForwardAuthGuard):
            raise ValueError("answered() takes an 'auth' decision of this guard layer")
        outcome = guard.answered(request, status, headers, body)
        rule = decision.rule
        if isinstance(outcome, ServiceAnswer):
            if steps is not None and rule is not None:
                steps.append(Step(rule, {}, "denied", f"guard {auth.guard!r}: {outcome.reason}"))
            return (
                Decision(
                    "respond",
                    outcome.status,
                    headers=outcome.headers,
                    body=outcome.body,
                    rule=rule,
                    vary=self._denial_vary,
                ),
                {},
            )
        return None, {**dict(auth.passed), auth.guard: outcome}

    @staticmethod
    def denial(
        request: Request,
        rule: Rule,
        guard: Guard,
        outcome: Denied,
        vary: tuple[str, ...] = _VARY,
    ) -> Decision:
        """What a client that failed ``guard`` gets.

        403 (known but not allowed) is always a 403: sending such a client to log in again
        would loop; 429 (too many wrong credentials) is always a 429 with ``Retry-After``. A 401
        sends a browser to the login URL (the rule's, else the guard's) with ``next``; a JSON
        client, or any client when there is no login URL, gets the 401 with the guard's
        challenge (a browser then prompts for Basic credentials).
        """
        requirement = rule.requirement
        login_url = (requirement.login_url if requirement else None) or guard.login_url
        wants_json = _wants_json(request)
        # A denial with its own message (a key sent in the URL) is told, not redirected: the
        # 'next' of a login redirect would carry the key on into the login page's logs.
        if (
            outcome.status == 401
            and login_url is not None
            and not wants_json
            and outcome.message is None
        ):
            separator = "&" if "?" in login_url else "?"
            next_path = _safe_next(request)
            # 'next' comes last: a middleware rewrites it under its mount (see under_mount()).
            location = f"{login_url}{separator}next={quote(next_path, safe='/')}"
            # 303 after a POST, so the browser GETs the login page (RFC 9110 15.4.4).
            status = 302 if request.method in ("GET", "HEAD") else 303
            return Decision(
                "redirect",
                status,
                location,
                path=next_path,
                headers=(("Cache-Control", "no-store"),),
                rule=rule,
                vary=vary,
            )
        if outcome.status == 403:
            error, message = "forbidden", "you are not allowed to see this page"
        elif outcome.status == 429:
            # Too many wrong credentials from this client: no login page (it would not be
            # reached either), but when to try again (RFC 6585 4).
            error, message = "too_many_requests", "too many failed attempts; try again later"
        else:
            error, message = "unauthorized", "this page needs you to log in"
        if outcome.message is not None:
            message = outcome.message
        headers: list[tuple[str, str]] = [("Cache-Control", "no-store")]
        if wants_json:
            body = json.dumps({"error": error, "message": message})
            headers.insert(0, ("Content-Type", "application/json"))
        else:
            body = f"{outcome.status} {error.capitalize().replace('_', ' ')}: {message}\n"
            headers.insert(0, ("Content-Type", "text/plain; charset=utf-8"))
        if outcome.status == 401 and outcome.challenge is not None:
            headers.append(("WWW-Authenticate", outcome.challenge))
        if outcome.retry_after is not None:
            headers.append(("Retry-After", str(outcome.retry_after)))
        return Decision(
            "respond", outcome.status, headers=tuple(headers), body=body, rule=rule, vary=vary
        )


def _forms(path: str) -> tuple[str, ...] | list[str]:
    """The forms of the decoded ``path`` the guard rules are matched against: the path, its
    canonical form (when it differs) and that without its trailing slash."""
    # Most paths are canonical already: only these characters make canonical_path() differ.
    if path[:1] != "/" or "/." in path or "//" in path or ";" in path or "\\" in path:
        canonical = canonical_path(path)
    elif path[-1] != "/":
        return (path,)  # the common case: the path is its only form
    else:
        canonical = path
    forms = [path]
    if canonical != path:
        forms.append(canonical)
    if len(canonical) > 1 and canonical.endswith("/"):
        # A guard rule with 'trailing_slash: strict' still guards the path with a slash: an
        # app may well serve both alike.
        forms.append(canonical.rstrip("/"))
    return forms


def _file_order(candidate: tuple[Rule, Any]) -> int:
    return candidate[0].index


def _index(rule: Rule) -> int:
    return rule.index


def _tail_prefix(rule: Rule) -> str | None:
    """``'a/b/'`` for a rule whose pattern is static segments (``/a/b``) then a bare built-in
    ``<path:...>``, matched case-sensitively. The trie matches such a rule to a path (trailing
    slashes stripped, but for ``strict``) exactly when the prefix follows the path's first
    character and a rest that is not empty and does not start with ``/`` follows: what the
    tail's regex ``[^/].*`` takes (and ``to_python`` takes any text). None for any other
    rule."""
    pattern = rule.pattern
    if pattern is None or rule.options.case_insensitive:
        return None
    tail = pattern.tail
    if tail is None or tail.static_chars or len(tail.variables) != 1:
        return None
    if any(not isinstance(part, str) or not part or "/" in part for part in pattern.parts):
        return None
    converter = tail.variables[0].converter
    if type(converter) is not PathConverter or tail.regex.pattern != "([^/].*)":
        return None
    return "".join(f"{part}/" for part in pattern.parts)


def _tail_prefixes(
    rules: Iterable[Rule],
) -> tuple[tuple[tuple[str, int, bool, Rule], ...], list[Rule]]:
    """``(prefix, where the rest starts, strict slashes, rule)`` of each pattern rule of the
    commonest shape (see _tail_prefix()), and the pattern rules of other shapes."""
    tails: list[tuple[str, int, bool, Rule]] = []
    others: list[Rule] = []
    for rule in rules:
        if rule.pattern is None:
            continue  # found by matcher.exact_candidates()
        prefix = _tail_prefix(rule)
        if prefix is None:
            others.append(rule)
        else:
            tails.append((prefix, len(prefix) + 1, rule.options.strict_slashes, rule))
    return tuple(tails), others


def _first_segments(rules: Iterable[Rule]) -> tuple[frozenset[str] | None, bool]:
    """The first segments of the guard rules' paths (lower-cased for a case-insensitive rule),
    and whether any rule is case-insensitive; None when a rule starts with a variable or its
    ``from`` is not a plain path, so that every request is searched."""
    heads: set[str] = set()
    fold = False
    for rule in rules:
        head = rule.path[1:].partition("/")[0]
        if not rule.path.startswith("/") or any(c in head for c in "<%\\;"):
            return None, False
        if rule.options.case_insensitive:
            fold = True
            head = head.lower()
        heads.add(head)
    return frozenset(heads), fold


def _refused(request: Request) -> Decision:
    """The answer to a path the guards cannot read as every server would (NUL, not UTF-8)."""
    message = "the path holds a NUL or bytes that are not UTF-8"
    if _wants_json(request):
        body = json.dumps({"error": "bad_request", "message": message})
        content_type = "application/json"
    else:
        body, content_type = f"400 Bad request: {message}\n", "text/plain; charset=utf-8"
    headers = (("Content-Type", content_type), ("Cache-Control", "no-store"))
    return Decision("respond", 400, headers=headers, body=body)


def identity_headers(passed: list[tuple[str, Allowed]]) -> tuple[tuple[str, str], ...]:
    """The request headers that carry the identity to the app or upstream."""
    if not passed:
        return ()
    if len(passed) == 1:  # the common case, without a generator
        name, allowed = passed[0]
        user = allowed.user
        own = ((USER_HEADER, user), (GUARD_HEADER, name)) if user else ((GUARD_HEADER, name),)
        return own + allowed.headers if allowed.headers else own
    user = next((allowed.user for _, allowed in passed if allowed.user), "")
    names = ", ".join(name for name, _ in passed)
    headers: tuple[tuple[str, str], ...] = (
        ((USER_HEADER, user), (GUARD_HEADER, names)) if user else ((GUARD_HEADER, names),)
    )
    for _, allowed in passed:
        if allowed.headers:
            seen = {name.lower() for name, _ in headers}
            headers += tuple(h for h in allowed.headers if h[0].lower() not in seen)
    return headers
