"""The conformance harness: a peer's case imported as ``waypost import`` would, asked its requests.

A :class:`Case` is one test of a peer's own suite: an input file (its conventional name decides
the format, as ``waypost import`` guesses it, unless the case names the format) and the
:class:`Ask`\\ s, concrete requests with the answer the peer gives. :func:`run_case` imports the
file, writes the rules as Waypost's YAML and loads them back (the path ``waypost import`` takes),
then resolves each request and says how the answer compares:

``agree``
    Waypost answers as the peer does (every request of the case).
``refused``
    The peer rejects the input (or some of its lines) and Waypost refuses the same lines, each
    with its line and reason, imports nothing from them, and answers the rest as the peer does.
``unsupported``
    A request the peer answers with a line Waypost skipped, with a reason naming what it cannot do
    (for example Netlify's ``Country=`` condition). Never silent: the reason is in the report.
``disagree``
    Anything else: a different answer, a broken line accepted, a skipped line without a reason,
    rules that do not load. The conformance test fails on it.

An answer is what :meth:`waypost.decision.Decision.describe` says without detail: ``redirect 301
/new``, ``rewrite /page.html``, ``proxy https://api.example.com/x``, ``respond 404``, ``pass``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from waypost.engine import Engine
from waypost.exceptions import RulesError
from waypost.rules.load import parse_rules
from waypost.rules.request import Request
from waypost.tools.formats import IMPORTERS, ImportResult, detect_format, export_yaml

__all__ = ["DATA", "Ask", "Case", "Outcome", "run_case"]

#: The peers' suites, copied into the repository from ../shared/peer-formats (its README names
#: each source and commit).
DATA = Path(__file__).parents[3] / "data" / "peer-formats"

VERDICTS = ("agree", "refused", "unsupported", "disagree")


@dataclass(frozen=True)
class Ask:
    """One request and the peer's answer to it.

    ``url`` is a path with its query, or an absolute URL (its host and scheme are the request's).
    ``expect`` is the peer's answer in :meth:`Decision.describe` words; ``also`` other answers
    that are as good (a refusal of an unsafe value, say). ``line`` is the input line (1-based)
    whose rule the peer applies, when one does: a request answered by a line Waypost skipped
    with a reason is ``unsupported``, not ``disagree``. ``exists``: a file exists at the path
    (rules that wait for a missing file do not apply), as for Netlify's unforced rules and
    Vercel's rewrites after the filesystem.
    """

    url: str
    expect: str
    line: int | None = None
    also: tuple[str, ...] = ()
    why: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    method: str = "GET"
    exists: bool = False


@dataclass(frozen=True)
class Case:
    """One test of a peer's suite.

    ``filename`` is the conventional name of the input (``_redirects``, ``netlify.toml``,
    ``vercel.json``, ``redirects.csv``); ``format`` names the importer when the name cannot.
    ``invalid`` are the lines the peer rejects (``reject`` says why, in the peer's words, when it
    rejects the whole input): Waypost must skip each with a reason and import nothing from it.
    ``rules`` is how many rules the peer makes of the input, when the test says so.
    """

    suite: str
    name: str
    filename: str
    text: str
    asks: tuple[Ask, ...] = ()
    format: str | None = None
    invalid: tuple[int, ...] = ()
    reject: str | None = None
    rules: int | None = None


@dataclass
class Outcome:
    """What became of one case: its verdict and, for anything but ``agree``, why."""

    case: Case
    verdict: str
    details: list[str] = field(default_factory=list)

    def render(self) -> str:
        """``suite: name: verdict`` and the reasons, one per line."""
        head = f"{self.case.suite}: {self.case.name}: {self.verdict}"
        return "\n".join([head, *(f"    {detail}" for detail in self.details)])


def import_case(case: Case) -> tuple[str | None, ImportResult | None, Engine | None, list[str]]:
    """The format, the import result and the engine of the imported rules, as ``waypost import``
    makes them (import, write YAML, load), and the problems on the way."""
    fmt = case.format or detect_format(case.filename, case.text)
    if fmt is None:
        return None, None, None, [f"the format of {case.filename!r} is not recognised"]
    if fmt not in IMPORTERS:
        return fmt, None, None, [f"Waypost has no importer for the format {fmt!r}"]
    result = IMPORTERS[fmt](case.text)
    exported = export_yaml(result.rules, result.defaults or None, proxy_hosts=result.proxy_hosts)
    problems = [f"not written: {item.render()}" for item in exported.unsupported]
    ruleset, errors = parse_rules(exported.text, format="yaml", file="imported.yaml")
    problems.extend(f"the imported rules do not load: {error}" for error in errors)
    if problems:
        return fmt, result, None, problems
    try:
        engine = Engine(ruleset)
    except RulesError as error:
        return fmt, result, None, [f"the imported rules do not load: {error}"]
    return fmt, result, engine, []


def answer(engine: Engine, ask: Ask) -> str:
    """Waypost's answer to ``ask``, in :meth:`Decision.describe` words."""
    request = Request.from_url(ask.method, ask.url, list(ask.headers))
    decision = engine.resolve(request, stage="before" if ask.exists else "all")
    if decision.action == "redirect" and decision.rule is None and decision.location:
        # Waypost's own 308 to the normal form of a path with '//' or dot segments (no rule
        # decided): the client follows it, and the rules answer the normal form.
        url = decision.location
        if request.host is not None:
            url = f"{request.scheme}://{request.host}{url}"
        request = Request.from_url(ask.method, url, list(ask.headers))
        decision = engine.resolve(request, stage="before" if ask.exists else "all")
    text = decision.describe(detail=False)
    return "pass" if text.startswith("pass") else text


def run_case(case: Case) -> Outcome:
    """Import ``case`` and ask its requests; see the module's doc for the verdicts."""
    _fmt, result, engine, problems = import_case(case)
    if result is None:
        return Outcome(case, "disagree", problems)
    skipped = {skip.line: skip for skip in result.skipped}
    details: list[str] = []
    verdict = "agree"
    for skip in result.skipped:
        if not skip.reason.strip():
            details.append(f"line {skip.line} skipped without a reason")
    expected_invalid = set(case.invalid)
    if case.reject is not None and not result.skipped:
        details.append(f"the peer rejects the input ({case.reject}); Waypost imported it")
    missing = sorted(expected_invalid - set(skipped))
    if missing:
        details.append(f"the peer rejects line(s) {missing}; Waypost did not refuse them")
    # One peer rule may take several Waypost rules (a Cloudflare splat that also matches the
    # empty text, a Bulk subpath): where the importer says which line each rule came from, the
    # peer's rules are compared with the lines imported.
    made = len(result.rules)
    if result.lines and len(result.lines) == len(result.rules):
        made = len(set(result.lines))
    if case.rules is not None and made > case.rules:
        details.append(
            f"the peer makes {case.rules} rule(s) of the input; Waypost made {made}"
            + (f" (from {made} lines)" if made != len(result.rules) else "")
        )
    if details:
        return Outcome(case, "disagree", [*details, *problems])
    if case.reject is not None or expected_invalid:
        verdict = "refused"
        # What Waypost said of the lines the peer rejects: the case's reason for not agreeing.
        # (A peer that rejects the whole input without naming lines rejects every skipped one.)
        expected_invalid = expected_invalid or set(skipped)
        details.extend(
            f"line {line} refused: {skipped[line].reason}" for line in sorted(expected_invalid)
        )
    if engine is None:
        # Rules that do not load are a disagreement whether or not the case asks anything.
        return Outcome(case, "disagree", problems)
    for ask in case.asks:
        got = answer(engine, ask)
        if got == ask.expect or got in ask.also:
            continue
        skip = skipped.get(ask.line) if ask.line is not None else None
        if skip is not None and skip.line not in expected_invalid:
            verdict = "unsupported" if verdict == "agree" else verdict
            details.append(f"{ask.url}: line {skip.line} skipped: {skip.reason}")
            continue
        why = f" ({ask.why})" if ask.why else ""
        details.append(f"{ask.url}: the peer answers {ask.expect!r}{why}; Waypost {got!r}")
        verdict = "disagree"
    if verdict in ("agree", "refused"):
        # Lines skipped where the peer accepts them are unsupported features, said per line.
        for line, skip in skipped.items():
            if line not in expected_invalid:
                verdict = "unsupported" if verdict == "agree" else verdict
                details.append(f"line {line} skipped: {skip.reason}")
    return Outcome(case, verdict, details)


def tally(outcomes: list[Outcome]) -> dict[str, dict[str, int]]:
    """Per suite, how many cases got each verdict."""
    table: dict[str, dict[str, int]] = {}
    for outcome in outcomes:
        row = table.setdefault(outcome.case.suite, dict.fromkeys(VERDICTS, 0))
        row[outcome.verdict] += 1
    return table


def ask_from(data: dict[str, Any]) -> Ask:
    """An :class:`Ask` from a case file's ``{"url", "expect", ...}`` entry."""
    return Ask(
        url=data["url"],
        expect=data["expect"],
        line=data.get("line"),
        also=tuple(data.get("also", ())),
        why=data.get("why", ""),
        headers=tuple((k, v) for k, v in (data.get("headers") or {}).items()),
        exists=bool(data.get("exists", False)),
    )


def render_table(outcomes: list[Outcome]) -> str:
    """The per-suite figures as docs/migrations.md's Markdown table."""
    table = tally(outcomes)
    lines = [
        "| suite | cases | " + " | ".join(VERDICTS) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in VERDICTS) + " |",
    ]
    for suite, row in table.items():
        cells = " | ".join(str(row[verdict]) for verdict in VERDICTS)
        lines.append(f"| {suite} | {sum(row.values())} | {cells} |")
    total = {verdict: sum(row[verdict] for row in table.values()) for verdict in VERDICTS}
    lines.append(f"| all | {sum(total.values())} | " + " | ".join(map(str, total.values())) + " |")
    return "\n".join(lines)
