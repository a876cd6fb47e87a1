"""No open redirect and no header injection, for every payload of the hostile-input corpus.

The corpus (``tests/data/corpus``; its README names the source of every group) gathers
open-redirect and header-injection payloads from peers' test suites. Each payload is fed to every
rule here that builds a URL from request values: as a raw path, as a percent-encoded path segment,
as a query value carried by ``query: keep``, as the whole request URL, and as header values read
by conditions.

Each decision must be a redirect whose Location stays on the site (a path not starting with ``//``
or ``/\\``, or an absolute URL on the rule's literal host or an allowed host), a refusal (respond
400), a rewrite to a path on this site, or a pass; and no Location, path or header may carry a
control character. "Stays on the site" is judged by the checker below, written independently of
Waypost: urllib.parse plus the leniency of browsers (WHATWG URL parsing strips leading C0 controls
and spaces, removes TAB/LF/CR anywhere, reads a backslash as a slash, and takes ``https:host`` or
``https:///host`` as ``https://host``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest

from waypost import Decision, Engine
from waypost.rules.request import normal_path
from waypost.server.https_redirect import https_location
from waypost.server.proxy import Forward, UpstreamProxy
from waypost.server.tunnel import tunnel_target

CORPUS = Path(__file__).parent / "data" / "corpus"
PAYLOADS_FILE = CORPUS / "open_redirect_payloads.txt"
DJANGO_FILE = CORPUS / "django_safe_url_cases.txt"

ALLOWED_HOSTS = ["*.example.org", "www.whitelisteddomain.tld"]
RULES = [
    {"from": "/go/<path:u>", "to": "/{u}"},
    {"from": "/r/<u>", "to": "/{u}"},
    {"from": "/x/<path:u>", "to": "https://example.com/{u}"},
    {"from": "/h/<h>", "to": "https://{h}.example.org/"},
    {"from": "/to/<host>", "to": "https://{host}/"},
    {"from": "/s/<path:u>", "to": "https://example.com/search?q={u}"},
    {"from": "/q/<path:u>", "to": "/search?q={u}&page=1"},
    {"from": "/f/<path:u>", "to": "/page#{u}"},
    {"from": "/rw/<path:u>", "rewrite": "/app/{u}", "set_headers": {"X-Rewritten": "1"}},
    {"from": "/next", "to": "/login"},
    {"from": "/hdr", "to": "/seen", "when": {"headers": {"X-Next": "*"}, "language": "de"}},
    {"from": "/hdr", "respond": {"status": 200, "body": "ok", "headers": {"X-Checked": "yes"}}},
    {"from": "/rt/<path:u>", "to": {"route": "page", "slug": "{u}"}},
    {"from": "/<path:p>", "to": "/moved/{p}"},
]
ENGINE = Engine(RULES, allowed_hosts=ALLOWED_HOSTS)
# A careless host-app router that neither encodes nor checks: the engine must still refuse.
ENGINE.bind_routes(lambda route, params: "/" + params["slug"])

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


@dataclass(frozen=True)
class Payload:
    text: str
    line: int
    source: str
    negative_control: bool = False

    @property
    def id(self) -> str:
        return f"{self.source}:{self.line}"


def _read_payloads() -> Iterator[Payload]:
    """Every payload of open_redirect_payloads.txt (raw and pyrepr groups)."""
    fmt = "raw"
    control = False
    for number, line in enumerate(PAYLOADS_FILE.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("#@format"):
            fmt = line.split()[1]
            control = False
            continue
        if line.startswith("#"):
            control = control or "NEGATIVE CONTROLS" in line
            continue
        if not line.strip():
            continue  # blank lines separate groups (an empty payload is written '' in pyrepr)
        text = ast.literal_eval(line) if fmt == "pyrepr" else line
        assert isinstance(text, str), line
        yield Payload(text, number, "redirects", control)


def _read_django() -> Iterator[Payload]:
    """Every URL of django_safe_url_cases.txt (one literal per line; a TAB adds the expected)."""
    for number, line in enumerate(DJANGO_FILE.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        for part in line.split("\t"):
            text = ast.literal_eval(part)
            assert isinstance(text, str), line
            yield Payload(text, number, "django")


def _corpus() -> list[Payload]:
    # The corpus is part of the repository: a missing file is a broken checkout, not a skip.
    return [*_read_payloads(), *_read_django()]


PAYLOADS = _corpus()
assert len(PAYLOADS) > 200, f"the hostile-input corpus in {CORPUS} is incomplete"
# Kept as a marker for the tests that run every payload (they used to skip without the corpus).
needs_corpus = pytest.mark.corpus


# -- the independent checker -----------------------------------------------------------------


def browser_destination(location: str) -> tuple[str | None, str | None]:
    """Where a browser goes for ``location``: ``(None, None)`` for a path on this site, else
    ``(scheme, host)`` (``("//", host)`` for protocol-relative, host None when there is none)."""
    text = location.strip("".join(map(chr, range(0x21))))
    text = re.sub("[\t\n\r]", "", text).replace("\\", "/")
    scheme = _SCHEME.match(text)
    if scheme is None:
        if text.startswith("//"):
            return "//", _host(text[2:])
        if text.startswith("/"):
            return None, None
        return "relative", None  # 'evil.com' is relative to the current path: not ours to send
    name = scheme.group(1).lower()
    if name not in ("http", "https"):
        return name, None
    # Special schemes: any run of slashes (or none) before the authority.
    return name, _host(text[scheme.end() :].lstrip("/"))


def _host(rest: str) -> str:
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    host = authority.rpartition("@")[2]
    if not host.startswith("["):
        host = host.partition(":")[0]
    return unquote(host).lower().rstrip(".")


def _host_allowed(host: str, literal_host: str | None) -> bool:
    if literal_host is not None and host == literal_host:
        return True
    for allowed in ALLOWED_HOSTS:
        if allowed.startswith("*."):
            if host.endswith(allowed[1:]) and host != allowed[2:]:
                return True
        elif host == allowed:
            return True
    return False


def _literal_host(target: str) -> str | None:
    """The host written in a rule's target, when it has no placeholder (urllib's reading)."""
    netloc = urlsplit(target).netloc
    return None if not netloc or "{" in netloc else netloc.lower()


def assert_safe(decision: Decision, request: str) -> None:
    """The decision keeps the client on the site and writes no control character anywhere."""
    where = f"{request!r} -> {decision!r}"
    for name, value in decision.headers:
        assert not _CONTROL.search(name), where
        assert not _CONTROL.search(value), where
    assert not any(_CONTROL.search(name) for name in decision.vary), where
    if decision.action == "redirect":
        location = decision.location
        assert location is not None, where
        assert not _CONTROL.search(location) and " " not in location, where
        if decision.rule is None:
            # The engine's own answer to a path with dot segments or repeated slashes: a 308 to
            # its normal form, a same-site path (checked below) that is itself normal.
            assert decision.status == 308, where
            assert normal_path(unquote(location.partition("?")[0])) is None, where
        scheme, host = browser_destination(location)
        if scheme is None:
            assert location.startswith("/") and not location.startswith(("//", "/\\")), where
        else:
            assert scheme in ("http", "https") and decision.rule is not None, where
            target = decision.rule.to_mapping()["to"]
            literal = _literal_host(target) if isinstance(target, str) else None
            assert host is not None and _host_allowed(host, literal), where
    elif decision.action == "respond":
        if decision.rule is not None and decision.rule.path == "/hdr":
            assert decision.status == 200, where
        else:
            assert decision.status == 400, where
    elif decision.action == "rewrite":
        path = decision.path or ""
        assert path.startswith("/app/"), where
        assert not _CONTROL.search(path + (decision.query or "")), where
    else:
        assert decision.action == "pass", where


def requests_for(payload: str) -> Iterator[tuple[str, dict[str, str] | None, str | None]]:
    """``(url, headers, client_ip)`` feeding ``payload`` to every rule above."""
    encoded = quote(payload, safe="", errors="surrogateescape")
    for prefix in ("/go/", "/r/", "/x/", "/h/", "/to/", "/s/", "/q/", "/f/", "/rw/", "/rt/"):
        yield prefix + payload, None, None
        yield prefix + encoded, None, None
    yield "/next?next=" + encoded, None, None
    yield "/next?next=" + payload, None, None
    yield "/next?" + payload, None, None
    yield payload, None, None
    yield "/" + encoded, None, None
    yield "https://example.com/go/" + encoded, None, None
    headers = {
        "X-Next": payload,
        "Accept-Language": payload,
        "Accept": payload,
        "Cookie": payload,
        "Host": payload,
    }
    yield "/hdr", headers, payload
    yield "/hdr", {"X-Next": "1", "Accept-Language": "de", "Referer": payload}, None


# -- the tests -------------------------------------------------------------------------------


@needs_corpus
@pytest.mark.parametrize("payload", PAYLOADS, ids=[p.id for p in PAYLOADS])
def test_no_payload_leaves_the_site_or_injects_a_header(payload: Payload) -> None:
    for url, headers, client_ip in requests_for(payload.text):
        decision = ENGINE.resolve("GET", url, headers, client_ip)
        assert_safe(decision, url)
        assert ENGINE.explain("GET", url, headers, client_ip).decision == decision


NEGATIVE_CONTROLS = [p for p in PAYLOADS if p.negative_control]


@needs_corpus
@pytest.mark.parametrize("payload", NEGATIVE_CONTROLS, ids=[p.id for p in NEGATIVE_CONTROLS])
def test_plain_local_paths_are_not_refused(payload: Payload) -> None:
    url = "/go/" + payload.text.lstrip("/")
    decision = ENGINE.resolve("GET", url)
    if payload.text.strip("/"):
        assert decision.action == "redirect", decision
        assert decision.location == "/" + quote(payload.text.strip("/"), safe="/~")


@pytest.mark.parametrize(
    ("location", "destination"),
    [
        ("/a/b", (None, None)),
        ("//evil.com/x", ("//", "evil.com")),
        ("/\\evil.com", ("//", "evil.com")),
        ("\t//evil.com", ("//", "evil.com")),
        ("/\t/evil.com", ("//", "evil.com")),
        ("https:evil.com", ("https", "evil.com")),
        ("https:///evil.com", ("https", "evil.com")),
        ("HTTPS://EVIL.COM.", ("https", "evil.com")),
        ("https://good.com@evil.com/", ("https", "evil.com")),
        ("https://evil.com%2F@good.com/", ("https", "good.com")),
        ("https://evil.com:443/", ("https", "evil.com")),
        ("javascript:alert(1)", ("javascript", None)),
        ("evil.com", ("relative", None)),
    ],
    ids=[
        "path",
        "protocol-relative",
        "slash-backslash",
        "leading-tab",
        "tab-inside",
        "no-slashes",
        "three-slashes",
        "case-and-dot",
        "userinfo",
        "encoded-slash-in-userinfo",
        "port",
        "script",
        "path-relative",
    ],
)
def test_the_checker_reads_urls_as_a_browser_does(
    location: str, destination: tuple[str | None, str | None]
) -> None:
    assert browser_destination(location) == destination


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/go/%2F%2Fevil.com", None),
        ("/go//evil.com", None),
        ("/go/%5Cevil.com", None),
        ("/go/%09/evil.com", None),
        ("/r/%2F%2Fevil.com", None),
        ("/h/evil.com%23", None),
        ("/h/evil.com%2F", None),
        ("/to/evil.com", None),
        ("/to/www.whitelisteddomain.tld%40evil.com", None),
        ("/x/%2F%2Fevil.com", None),
        ("/next?next=%0d%0aSet-Cookie:x", None),
        ("/next?next=\r\nSet-Cookie: x", None),
        ("/go/a%0d%0aSet-Cookie:x", None),
        ("/v1/see%20below%0d%0ax-crlf-header:injected.json", None),
        ("/hdr", {"X-Next": "a\r\nb", "Accept-Language": "de"}),
        ("/rt/%5Cevil.com", None),
        ("/rt/a%0d%0aSet-Cookie:x", None),
    ],
    ids=[
        "encoded-double-slash",
        "double-slash",
        "encoded-backslash",
        "encoded-tab",
        "string-encoded-slashes",
        "host-with-fragment",
        "host-with-slash",
        "host-not-allowed",
        "host-with-userinfo",
        "literal-host-keeps",
        "encoded-crlf-in-query",
        "raw-crlf-in-query",
        "encoded-crlf-in-path",
        "gixy-crlf",
        "crlf-in-request-header",
        "route-target-backslash",
        "route-target-crlf",
    ],
)
def test_known_attacks_by_name(url: str, headers: dict[str, str] | None) -> None:
    assert_safe(ENGINE.resolve("GET", url, headers), url)


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("/h/docs", "https://docs.example.org/"),
        ("/to/www.whitelisteddomain.tld", "https://www.whitelisteddomain.tld/"),
        ("/to/shop.example.org", "https://shop.example.org/"),
        ("/x/a/b", "https://example.com/a/b"),
        ("/go/a/b", "/a/b"),
        ("/rt/a/b", "/a/b"),
    ],
    ids=[
        "allowed-wildcard-host",
        "allowed-host",
        "allowed-subdomain",
        "literal-host",
        "path",
        "route-target",
    ],
)
def test_allowed_destinations_still_redirect(url: str, location: str) -> None:
    decision = ENGINE.resolve("GET", url)
    assert (decision.action, decision.location) == ("redirect", location)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("/to/evil.com", "not in allowed_hosts"),
        ("/to/example.org", "not in allowed_hosts"),
        ("/h/a.b%40evil", "could not be built"),
        ("/rt/%5Cevil.com", "backslash in the filled-in target"),
    ],
    ids=["other-host", "apex-of-wildcard", "userinfo-in-host", "careless-route-builder"],
)
def test_a_refusal_is_a_400_that_explain_accounts_for(url: str, reason: str) -> None:
    trace = ENGINE.explain("GET", url)
    assert (trace.decision.action, trace.decision.status) == ("respond", 400)
    assert trace.steps[-1].outcome == "refused"
    assert reason in trace.steps[-1].reason


_UPSTREAM = UpstreamProxy("http://127.0.0.1:9000/base")


def _tunnel_head(payload: str) -> bytes | None:
    """The head a WebSocket tunnel would send upstream for a request carrying ``payload``, or None
    when it refuses to build one."""
    forward = _UPSTREAM.forward(
        "GET",
        "/ws/" + payload,
        payload,
        [("Host", payload), ("X-Next", payload), ("Cookie", payload), ("Sec-WebSocket-Key", "k")],
        client_ip="10.0.0.1",
        scheme="https",
        set_headers=(("X-Rewritten", "1"),),
    )
    texts = [forward.url, *(part for field in forward.headers for part in field)]
    try:
        return tunnel_target(forward, "websocket").head
    except ValueError:
        # Refused for a control character, or for text that is not latin-1 (the server decodes
        # what it reads as latin-1, so that never reaches this far).
        assert any(_CONTROL.search(text) or not text.isascii() for text in texts)
        return None


@needs_corpus
@pytest.mark.parametrize("payload", PAYLOADS, ids=[p.id for p in PAYLOADS])
def test_no_payload_splits_a_websocket_head_sent_upstream(payload: Payload) -> None:
    for text in (payload.text, quote(payload.text, safe="", errors="surrogateescape")):
        head = _tunnel_head(text)
        if head is None:
            continue
        assert head.endswith(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        request_line, *fields = lines
        assert request_line.startswith(b"GET /base/ws/") and request_line.endswith(b" HTTP/1.1")
        assert b"\x00" not in head and b"\n" not in head.replace(b"\r\n", b"")
        names = [field.split(b":", 1)[0] for field in fields]
        assert names.count(b"host") == 1 and names[0] == b"host"
        assert names[-2:] == [b"connection", b"upgrade"]
        assert not any(n.startswith(b"x-injected") for n in names)


def test_a_header_with_a_line_break_is_refused_not_sent_upstream() -> None:
    def head(value: str) -> bytes | None:
        forward = Forward("GET", "http://127.0.0.1:9000/ws", (("x-next", value),), False)
        try:
            return tunnel_target(forward, "websocket").head
        except ValueError:
            return None

    assert head("x\r\nX-Injected: 1") is None
    assert head("x\nX-Injected: 1") is None
    assert head("x\x00") is None
    assert head("a tab\tis fine") is not None
    assert _tunnel_head("x\r\nX-Injected: 1") is None  # in the path, the query and headers


@needs_corpus
@pytest.mark.parametrize("payload", PAYLOADS, ids=[p.id for p in PAYLOADS])
def test_no_payload_leads_the_https_redirect_off_the_requested_host(payload: Payload) -> None:
    texts = (payload.text, quote(payload.text, safe="", errors="surrogateescape"))
    for text in texts:
        # As the Host header: refused unless it is a plain host name or address.
        location = https_location(text, "/x", 8443)
        if location is not None:
            scheme, host = browser_destination(location)
            assert (scheme, host) == ("https", text.strip().split(":")[0].lower().rstrip("."))
            assert not _CONTROL.search(location)
        # As the path: it stays on the requested host.
        for target in ("/" + text, "/x?next=" + text):
            location = https_location("example.com", target, 443)
            if location is None:
                continue
            assert browser_destination(location) == ("https", "example.com")
            assert not _CONTROL.search(location) and " " not in location


@needs_corpus
@pytest.mark.parametrize("payload", PAYLOADS, ids=[p.id for p in PAYLOADS])
def test_with_https_redirect_hosts_no_payload_names_another_host(payload: Payload) -> None:
    """--https-redirect-hosts: the plain-HTTP listener redirects only the site's own hosts."""
    allowed = ("example.com", "*.example.org")
    for text in (payload.text, quote(payload.text, safe="", errors="surrogateescape")):
        location = https_location(text, "/x", 8443, allowed)
        if location is not None:
            scheme, host = browser_destination(location)
            assert scheme == "https" and host is not None
            assert host == "example.com" or host.endswith(".example.org"), location
