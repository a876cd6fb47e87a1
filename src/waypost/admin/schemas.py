"""The admin API's request and response bodies, as pydantic models (they make the OpenAPI
document, and FastAPI checks every request and response against them).

A rule travels as the mapping a person writes in a rules file (``{"from": "/old", "to": "/new"}``);
it is checked by the store with the rules loader, so its problems come back in the loader's words
with the path of the field (``rule.to``), not as a schema error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BulkBody",
    "Change",
    "DecisionOut",
    "ErrorOut",
    "ExportOut",
    "ImportBody",
    "ImportOut",
    "ImportOutcomeOut",
    "KeyCreateBody",
    "KeyCreatedOut",
    "KeyOut",
    "NotFoundOut",
    "NotFoundPageOut",
    "NotFoundRuleBody",
    "NotFoundRuleOut",
    "NotFoundSourceOut",
    "Problem",
    "ResolveBody",
    "RevisionDiffOut",
    "RevisionOut",
    "RollbackBody",
    "RuleBody",
    "RuleHourOut",
    "RuleOut",
    "RulePageOut",
    "RulePatchBody",
    "RuleQuery",
    "RuleSeriesOut",
    "RuleStatsOut",
    "RuleStatsPageOut",
    "SessionOut",
    "SessionsEndedOut",
    "SettingsBody",
    "SettingsOut",
    "TraceOut",
    "UnusedRuleOut",
    "UnusedRulePageOut",
    "ValidateBody",
    "ValidateOut",
    "WriteOut",
]

#: The largest version, revision or position the API takes (JavaScript's safe integers).
MAX_NUMBER = 2**53
Message = str

_CLOSED = ConfigDict(extra="forbid")


def _version(description: str) -> Any:
    return Field(None, ge=0, le=MAX_NUMBER, description=description)


# -- errors ---------------------------------------------------------------------------------


class Problem(BaseModel):
    """One problem: ``path`` locates the field in the request (``rule.to``,
    ``changes[2].rule.when.methods``); ``message`` is the rules loader's own."""

    path: str
    message: str


class ErrorOut(BaseModel):
    """Every error: ``error`` is a code for programs, ``message`` a sentence for people."""

    error: str
    message: str
    reason: str | None = None
    problems: list[Problem] | None = None
    current: dict[str, object] | None = None
    expected: int | None = None


# -- rules ----------------------------------------------------------------------------------


class RuleOut(BaseModel):
    """A stored rule: its ``version`` is also sent as the ETag."""

    id: str
    position: int
    version: int
    created_revision: int
    rule: dict[str, object]


class RulePageOut(BaseModel):
    """A page of rules in priority order; pass ``next_cursor`` as ``cursor`` for the next."""

    rules: list[RuleOut]
    next_cursor: str | None = None


class RuleQuery(BaseModel):
    """The filters of a rules listing (query parameters), as :meth:`Store.list_rules` takes
    them."""

    from_prefix: str | None = Field(None, max_length=2000)
    name: str | None = Field(None, max_length=200)
    action: str | None = Field(None, max_length=20)
    search: str | None = Field(None, max_length=200)
    status: int | None = Field(
        None, ge=100, le=599, description="The status it answers with (a redirect's, a respond's)"
    )
    limit: int = Field(100, ge=1, le=1000)
    cursor: str | None = Field(None, max_length=200)


class RuleBody(BaseModel):
    """A rule to create or to put in place of one (``PUT``)."""

    model_config = _CLOSED

    rule: dict[str, object] = Field(
        description="The rule as in a rules file, e.g. {'from': '/old', 'to': '/new'}"
    )
    position: int | None = Field(
        None, ge=0, le=MAX_NUMBER, description="0-based place (priority); default: last / stay"
    )
    version: int | None = _version("The version you read (like If-Match)")
    message: Message = Field("", max_length=2000, description="Why: kept with the revision")


class RulePatchBody(BaseModel):
    """A partial change: ``rule`` is merged into the stored rule (a key set to null is
    removed, a nested mapping is merged in turn, as in a JSON merge patch)."""

    model_config = _CLOSED

    rule: dict[str, object] | None = None
    position: int | None = Field(None, ge=0, le=MAX_NUMBER)
    version: int | None = _version("The version you read (like If-Match)")
    message: Message = Field("", max_length=2000)


class Change(BaseModel):
    """One operation of a bulk change: ``upsert`` creates (no ``id``) or replaces/moves
    (``id``); ``delete`` removes ``id``. ``version`` makes it fail on a stale rule."""

    model_config = _CLOSED

    op: Literal["upsert", "delete"]
    id: str | None = Field(None, max_length=200)
    rule: dict[str, object] | None = None
    position: int | None = Field(None, ge=0, le=MAX_NUMBER)
    version: int | None = _version("The version you read")


class BulkBody(BaseModel):
    """Several changes as one revision, all or nothing."""

    model_config = _CLOSED

    changes: list[Change] = Field(max_length=10_000)
    message: Message = Field("", max_length=2000)


class RuleChangeOut(BaseModel):
    """What a revision did to one rule (``before``/``after`` are the rule mappings)."""

    op: str
    rule_id: str | None
    before: dict[str, object] | None
    after: dict[str, object] | None


class RevisionOut(BaseModel):
    """A committed change set: who (``key_id``), when, why, and how many rules it touched."""

    number: int
    created_at: datetime
    key_id: str | None
    message: str
    counts: dict[str, int]
    rollback_of: int | None
    changes: list[RuleChangeOut]


class WriteOut(BaseModel):
    """The revision a write made (None when it changed nothing)."""

    revision: RevisionOut | None


class RuleDiffOut(BaseModel):
    """How one rule differs between two revisions."""

    kind: str
    rule_id: str
    before: dict[str, object] | None
    after: dict[str, object] | None
    before_position: int | None
    after_position: int | None


class RevisionDiffOut(BaseModel):
    """The rule set at ``to_revision`` compared with ``from_revision``."""

    from_revision: int
    to_revision: int
    rules: list[RuleDiffOut]
    settings: dict[str, object] | None


class RollbackBody(BaseModel):
    """Why the rollback is made (kept with the new revision)."""

    model_config = _CLOSED

    message: Message = Field("", max_length=2000)


_GUARDS = (
    "The guards rules may require: a name maps to one kind with its options, and optionally "
    "a login_url, as under a rules file's 'guards:' (see docs/guards.md). They name their "
    "secrets (an htpasswd file by its absolute path, an environment variable), never hold them"
)


class SettingsOut(BaseModel):
    """The rule set's defaults, allowed hosts, proxy hosts and guards; ``version`` is also the
    ETag."""

    defaults: dict[str, object]
    allowed_hosts: list[str] = Field(
        description="The hosts a redirect may send clients to, besides the request's own"
    )
    proxy_hosts: list[str] = Field(
        description="The hosts a rewrite to an absolute http(s) URL may proxy the request to "
        "('*.example.org' allows its subdomains); see docs/proxying.md"
    )
    guards: dict[str, dict[str, object]] = Field(description=_GUARDS)
    version: int


class SettingsBody(BaseModel):
    """New defaults, allowed hosts, proxy hosts and/or guards (a field left out stays as it
    is)."""

    model_config = _CLOSED

    defaults: dict[str, object] | None = None
    allowed_hosts: list[str] | None = Field(None, max_length=10_000)
    proxy_hosts: list[str] | None = Field(
        None,
        max_length=10_000,
        description="The hosts a rewrite to an absolute http(s) URL may proxy to; every rule "
        "is checked again, so a host a rule proxies to cannot be taken out",
    )
    guards: dict[str, dict[str, object]] | None = Field(
        None,
        max_length=1000,
        description=_GUARDS
        + "; the whole mapping ({} for none). Every rule is checked again, so a guard a rule "
        "requires cannot be taken out",
    )
    version: int | None = _version("The version you read (like If-Match)")
    message: Message = Field("", max_length=2000)


# -- validate, resolve, explain -------------------------------------------------------------


class ValidateBody(BaseModel):
    """What to check, one of: ``rule`` (a rule, against the stored ones; with ``id`` it stands
    in for that rule), ``changes`` (a bulk change, against the stored rules) or ``rules`` (a whole
    rule set on its own, with ``defaults``, ``allowed_hosts``, ``proxy_hosts`` and
    ``guards``)."""

    model_config = _CLOSED

    rule: dict[str, object] | None = None
    id: str | None = Field(None, max_length=200)
    changes: list[Change] | None = Field(None, max_length=10_000)
    rules: list[dict[str, object]] | None = Field(None, max_length=100_000)
    defaults: dict[str, object] | None = None
    allowed_hosts: list[str] | None = Field(None, max_length=10_000)
    proxy_hosts: list[str] | None = Field(None, max_length=10_000)
    guards: dict[str, dict[str, object]] | None = Field(None, max_length=1000)


class ValidateOut(BaseModel):
    """``valid`` and every problem found (nothing is written)."""

    valid: bool
    problems: list[Problem]


class ResolveBody(BaseModel):
    """A request to try against the stored rules."""

    model_config = _CLOSED

    url: str = Field(
        min_length=1,
        max_length=8192,
        description="A path with query ('/old?x=1') or an absolute URL",
    )
    method: str = Field("GET", min_length=1, max_length=32, pattern=r"^[A-Za-z]+$")
    headers: dict[str, str] = Field(default_factory=dict, max_length=200)
    client_ip: str | None = Field(None, max_length=64)
    at: datetime | None = Field(None, description="The time to decide at (default: now)")


class RuleRef(BaseModel):
    """The rule that decided: its store id, name and source."""

    id: str | None
    name: str | None
    source: str


class DecisionOut(BaseModel):
    """What would happen (see ``waypost.Decision``), at the store's ``revision``."""

    action: str
    status: int | None
    location: str | None
    path: str | None
    query: str | None
    headers: dict[str, str]
    body: str | None
    rule: RuleRef | None
    vary: list[str]
    revision: int


class StepOut(BaseModel):
    """One candidate rule tried, and why it did or did not apply."""

    rule: RuleRef
    pattern: str
    values: dict[str, str]
    outcome: str
    reason: str


class TraceOut(BaseModel):
    """The decision and every candidate rule tried, in order."""

    method: str
    path: str
    decision: DecisionOut
    rule_count: int
    steps: list[StepOut]
    revision: int


# -- import and export ----------------------------------------------------------------------


class ImportBody(BaseModel):
    """A file's text to import: Waypost's own ``yaml``/``json``, or another format
    (``netlify``, ``nginx``, ...; ``auto`` guesses from ``filename`` and the text)."""

    model_config = _CLOSED

    format: str = Field("auto", max_length=40)
    content: str = Field(max_length=20_000_000)
    filename: str | None = Field(None, max_length=500)
    mode: Literal["merge", "append", "replace"] = Field(
        "merge",
        description=(
            "merge: the file's rules go into the stored ones (a rule with the same name, or the "
            "same from and conditions, is replaced in place; nothing is deleted); append: add "
            "its rules at the end; replace: the rule set becomes the file (a replace that "
            "deletes more rules than it keeps needs confirm_deletes)"
        ),
    )
    dry_run: bool = Field(
        False, description="Check and report what would change (outcome); write nothing"
    )
    confirm_deletes: int | None = Field(
        None,
        ge=0,
        description=(
            "replace: allow deleting up to this many stored rules (the outcome.deleted of a dry "
            "run); without it a replace that deletes more rules than it keeps is refused (409)"
        ),
    )
    message: Message = Field("", max_length=2000)


class SkippedOut(BaseModel):
    """A line of the file that was not imported, and why."""

    line: int
    text: str
    reason: str


class NoteOut(BaseModel):
    """A line imported with an assumption worth checking."""

    line: int
    text: str
    message: str


class ImportOutcomeOut(BaseModel):
    """What an import did (or, for a dry run, would do) to the stored rules: rules ``created``,
    ``updated``, ``unchanged``, ``deleted`` (replace only) and ``kept``; ``previous_revision``
    is the revision before it; the guards whose declarations it adds, changes and removes."""

    mode: str
    previous_revision: int
    created: int
    updated: int
    unchanged: int
    deleted: int
    kept: int
    moved: int
    settings_changed: bool
    dry_run: bool
    guards_added: list[str]
    guards_changed: list[str]
    guards_removed: list[str]


class ImportOut(BaseModel):
    """What an import did: ``imported`` rules, every ``skipped`` line (as the CLI reports), what
    it did to the stored rules (``outcome``), the ``revision`` it made and ``rollback_to``, the
    revision to roll back to (``POST /api/revisions/{rollback_to}/rollback``) to undo it."""

    format: str
    imported: int
    guards: list[str] = Field(description="The names of the guards the file declares")
    skipped: list[SkippedOut]
    notes: list[NoteOut]
    summary: str
    dry_run: bool
    mode: str | None
    outcome: ImportOutcomeOut | None
    revision: RevisionOut | None
    rollback_to: int | None


class UnsupportedOut(BaseModel):
    """A rule the export format cannot express."""

    index: int
    rule_id: str | None
    reason: str


class ExportNoteOut(BaseModel):
    """A rule that was exported but answers differently in some case, and how."""

    index: int
    rule_id: str | None
    note: str


class ExportOut(BaseModel):
    """The rule set as a file in ``format``; ``unsupported`` lists what it could not carry and
    ``notes`` the rules it carries with a difference."""

    format: str
    revision: int
    content: str
    exported: int
    unsupported: list[UnsupportedOut]
    notes: list[ExportNoteOut]


# -- API keys -------------------------------------------------------------------------------


class KeyOut(BaseModel):
    """An API key's record (never its secret): ``scope`` in the admin API (null for an access
    key), ``audiences`` the api_key guards' audiences it opens."""

    id: str
    scope: str | None
    audiences: list[str] = Field(default_factory=list)
    note: str
    host: str | None
    status: str
    created_at: datetime | None
    created_by: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class KeyCreateBody(BaseModel):
    """A new key: its ``scope`` in the admin API and/or the ``audiences`` of api_key guards it
    opens (an access key: no scope), a ``note`` saying what it is for, the one ``host`` it is
    valid for (optional), and when it ``expires`` (``30d``, ``12h``, ``2w`` or an ISO 8601
    time)."""

    model_config = _CLOSED

    scope: Literal["read", "write", "admin"] | None = None
    audiences: list[str] = Field(default_factory=list, max_length=32)
    note: str = Field("", max_length=500)
    host: str | None = Field(None, min_length=1, max_length=253)
    expires: str | None = Field(None, max_length=64)


class KeyCreatedOut(BaseModel):
    """The new key's record and ``secret``, the whole key: shown this once, never again."""

    key: KeyOut
    secret: str


# -- sign-in sessions -----------------------------------------------------------------------


class SessionOut(BaseModel):
    """A sign-in session (never its token): ``id`` names it (to end it), ``key_id`` is the API
    key it signs in as, ``user_agent`` and ``client_address`` what signed in. ``current``: it is
    the session of the login cookie this request sent."""

    id: str
    key_id: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime | None
    user_agent: str | None = Field(
        description=(
            "The User-Agent the browser sent when it signed in (at most 512 characters; control "
            "characters shown as U+FFFD); null when it sent none, or signed in before Waypost "
            "recorded it"
        ),
    )
    client_address: str | None = Field(
        description=(
            "The client's address when it signed in: the connection's peer, or behind the "
            "trusted proxies of waypost serve the client they vouch for; null when unknown"
        ),
    )
    current: bool = False


class SessionsEndedOut(BaseModel):
    """The sign-in sessions of ``key_id`` that were ended (the key itself stays valid)."""

    key_id: str
    ended: list[SessionOut]


# -- analytics ------------------------------------------------------------------------------


def _doc(description: str) -> Any:
    return Field(description=description)


class RuleStatsOut(BaseModel):
    """One rule's hits over every instance (as far as the kept counts go)."""

    model_config = _CLOSED

    rule_key: str = _doc("The rule's id in the store, or its 'file:line' in a rules file")
    hits: int = _doc("Hits counted")
    first_at: datetime = _doc("The first hit counted (UTC)")
    last_at: datetime = _doc("The last hit counted (UTC)")
    name: str | None = _doc("The stored rule's name (null: a rules file's, or deleted since)")
    from_path: str | None = _doc("The stored rule's from (null: a rules file's, or deleted)")


class RuleStatsPageOut(BaseModel):
    """A page of rules with hits; pass ``next_cursor`` as ``cursor`` for the next."""

    model_config = _CLOSED

    rules: list[RuleStatsOut]
    next_cursor: str | None = _doc("The next page's cursor; null on the last page")


class VisitOut(BaseModel):
    """One redirect logged (``waypost serve --stats-visits``)."""

    model_config = _CLOSED

    id: str = _doc("The visit's id")
    at: datetime = _doc("When (UTC)")
    rule_key: str = _doc("The rule: its id in the store, or file:line")
    location: str | None = _doc("Where the visitor was sent")
    referrer: str | None = _doc("The Referer header, if any")
    user_agent: str | None = _doc("The User-Agent header, if any")
    country: str | None = _doc("The country's ISO code (with a GeoLite2 file), if known")
    client: str | None = _doc("The client address as kept: anonymized by default")


class VisitPageOut(BaseModel):
    """A page of visits, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    model_config = _CLOSED

    visits: list[VisitOut]
    next_cursor: str | None = _doc("The next page's cursor; null on the last page")


class RuleHourOut(BaseModel):
    """The hits of a rule in one hour."""

    model_config = _CLOSED

    hour: datetime = _doc("The start of the hour (UTC)")
    hits: int = _doc("Hits in that hour")


class RuleSeriesOut(BaseModel):
    """One rule's totals, and its hits per hour (oldest first; hours without hits left out)."""

    model_config = _CLOSED

    rule_key: str = _doc("The rule's id in the store, or its 'file:line' in a rules file")
    hits: int = _doc("Hits counted, in every hour kept or not")
    first_at: datetime = _doc("The first hit counted (UTC)")
    last_at: datetime = _doc("The last hit counted (UTC)")
    name: str | None = _doc("The stored rule's name (null: a rules file's, or deleted since)")
    from_path: str | None = _doc("The stored rule's from (null: a rules file's, or deleted)")
    hours: list[RuleHourOut] = _doc("Hits per hour between 'since' and 'until', oldest first")


class UnusedRuleOut(BaseModel):
    """A rule in the store with no hit since the moment asked about."""

    model_config = _CLOSED

    rule_id: str = _doc("The rule's id in the store")
    name: str | None = _doc("The rule's name, if it has one")
    from_path: str = _doc("The rule's 'from' pattern")
    created_at: datetime | None = _doc("When the revision that created it was made (UTC)")
    last_hit_at: datetime | None = _doc("Its last hit (UTC); null: none kept")


class UnusedRulePageOut(BaseModel):
    """A page of unused rules in priority order; pass ``next_cursor`` as ``cursor``."""

    model_config = _CLOSED

    rules: list[UnusedRuleOut]
    next_cursor: str | None = _doc("The next page's cursor; null on the last page")


class NotFoundSourceOut(BaseModel):
    """A referrer or user agent of a path's 404s."""

    model_config = _CLOSED

    value: str = _doc("The Referer or User-Agent (cut at 512 characters)")
    hits: int = _doc("The 404s of the path it sent")


class NearMatchOut(BaseModel):
    """The rule that nearly answered a path, and why it did not (as ``explain`` says)."""

    model_config = _CLOSED

    rule: RuleRef
    reason: str = _doc(
        "What the rule does with the path (a rewrite to a missing page, a pass), or why it did "
        "not apply (a condition), or the near form of the path it answers (a trailing slash, "
        "lower case, without '.html')"
    )


class NotFoundOut(BaseModel):
    """A path answered 404, over every instance."""

    model_config = _CLOSED

    id: str = _doc("The row's id (derived from the path)")
    path: str = _doc("The path asked for")
    hits: int = _doc("Every 404 of the path, bots included")
    bot_hits: int = _doc("The 404s from bots")
    first_at: datetime = _doc("The first 404 (UTC)")
    last_at: datetime = _doc("The last 404 (UTC)")
    status: Literal["open", "dismissed", "resolved"] = _doc(
        "open; dismissed (it does not matter); resolved (a rule answers it now)"
    )
    resolved_rule_id: str | None = _doc("The rule that resolved it (status resolved)")
    status_at: datetime | None = _doc("When the status was last set (UTC)")
    referrers: list[NotFoundSourceOut] = _doc("The heaviest referrers, heaviest first")
    user_agents: list[NotFoundSourceOut] = _doc("The heaviest user agents, heaviest first")
    nearly: NearMatchOut | None = _doc(
        "The rule of the rules serving now that nearly answered the path; null when none did"
    )


class NotFoundPageOut(BaseModel):
    """A page of paths answered 404; pass ``next_cursor`` as ``cursor`` for the next."""

    model_config = _CLOSED

    not_found: list[NotFoundOut]
    next_cursor: str | None = _doc("The next page's cursor; null on the last page")
    other: int = _doc(
        "The 404s of paths too rare for the bounded log, in every hour kept (not in any row)"
    )


class NotFoundRuleBody(BaseModel):
    """A redirect for a path answered 404: the rule ``{"from": <the path>, "to": ...}``."""

    model_config = _CLOSED

    to: str = Field(min_length=1, max_length=8192, description="Where to send it: '/new-path'")
    status: int | None = Field(
        None, ge=100, le=999, description="301, 302, 303, 307 or 308 (default: the rule set's)"
    )
    name: str | None = Field(None, max_length=200, description="A name for the rule")
    query: Literal["keep", "drop"] | None = Field(None, description="The query string's fate")
    position: int | None = Field(
        None, ge=0, le=MAX_NUMBER, description="0-based place (priority); default: last"
    )
    message: Message = Field("", max_length=2000, description="Why: kept with the revision")


class NotFoundRuleOut(BaseModel):
    """The rule made for a path answered 404, and its row, now resolved by it."""

    model_config = _CLOSED

    rule: RuleOut
    not_found: NotFoundOut
