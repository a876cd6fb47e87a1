"""No exported redirect leads off-site on the real server, for every payload of the hostile corpus.

Waypost refuses (400) a filled-in target that would leave the site, and percent-encodes every
value, so none carries a control character. nginx and Apache check nothing: the export itself
must keep such values from matching. Each module-scoped server serves the export of RULES (with
ALLOWED_HOSTS) in several configurations that change what the rules see (nginx with and without
``merge_slashes``; Apache with ``AllowEncodedSlashes`` Off, On and NoDecode, and
``MergeSlashes Off``), and every payload of ``tests/data/corpus`` goes through each rule, raw
(only the bytes a request line cannot carry percent-encoded) and percent-encoded, over one
keep-alive connection per server. Every answer must keep the browser on the site (a path, this
server's own host, the rule's literal host, or an allowed host, judged by test_security's
``browser_destination``, written independently of Waypost) and carry no control character and
no header the server did not write itself.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.test_security import PAYLOADS, browser_destination, needs_corpus
from tests.tools.apache_serving import serving_apache
from tests.tools.nginx_serving import SERVER_MARKER, serving_nginx
from waypost.tools.formats import export_apache, export_nginx

ALLOWED_HOSTS = ["*.example.org", "www.whitelisteddomain.tld"]
#: A rule per place a value can land: the first '/', the whole host, a host label, after a
#: literal origin. ``(prefix, suffix)`` makes the request: prefix + payload + suffix.
RULES: list[dict[str, Any]] = [
    {"from": "/go/<path:to>", "to": "/{to}"},
    {"from": "/r/<to>", "to": "/{to}"},
    {"from": "/out/<site>/<path:rest>", "to": "https://{site}/{rest}"},
    {"from": "/h/<h>/<path:rest>", "to": "https://{h}.example.org/{rest}", "status": 302},
    {"from": "/x/<path:rest>", "to": "https://example.com/{rest}"},
    {"from": "/p/<a>/<path:rest>", "to": "/moved/{a}/{rest}", "status": 308},
]
SHAPES = {
    "/go/": ("/go/", "", None),
    "/r/": ("/r/", "", None),
    "/out/": ("/out/", "/x", None),
    "/h/": ("/h/", "/x", None),
    "/x/": ("/x/", "", "example.com"),
    "/p/": ("/p/", "/x", None),
}
#: Every header nginx and Apache write for these answers; anything else was injected.
SERVER_HEADERS = {
    "server",
    "date",
    "content-type",
    "content-length",
    "connection",
    "keep-alive",
    "location",
}


def raw_form(payload: str) -> bytes:
    """``payload`` as it can stand in a request line: only controls, space and DEL encoded."""
    out = bytearray()
    for char in payload.encode("utf-8", "surrogateescape"):
        out += b"%%%02X" % char if char <= 0x20 or char == 0x7F else bytes([char])
    return bytes(out)


def encoded_form(payload: str) -> bytes:
    """``payload`` percent-encoded as one path segment."""
    return quote(payload, safe="", errors="surrogateescape").encode("ascii")


def host_allowed(host: str) -> bool:
    """``host`` is one of ALLOWED_HOSTS (written here again, not Waypost's code)."""
    return any(
        host.endswith(allowed[1:]) and host != allowed[2:]
        if allowed.startswith("*.")
        else host == allowed
        for allowed in ALLOWED_HOSTS
    )


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, bytes]]
    lines: list[bytes]

    @property
    def location(self) -> str | None:
        values = [value for name, value in self.headers if name == "location"]
        return values[0].decode("latin-1") if values else None


class KeepAliveClient:
    """HTTP/1.1 GETs with the request target sent byte for byte, over one connection that is
    opened again only when the server closes it (after a 400, say)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""

    def get(self, target: bytes, host: str) -> Answer:
        for attempt in (1, 2):
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            self.sock.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, host.encode()))
            try:
                return self._read()
            except ConnectionError:
                self.close()  # closed after the previous answer: ask again on a new one
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _recv(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buffer += chunk

    def _read(self) -> Answer:
        while b"\r\n\r\n" not in self.buffer:
            self._recv()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.split(b"\r\n")
        headers = []
        for line in lines:
            name, _, value = line.partition(b":")
            headers.append((name.decode("latin-1").strip().lower(), value.strip()))
        length = int(dict(headers).get("content-length", b"0"))
        while len(self.buffer) < length:
            self._recv()
        self.buffer = self.buffer[length:]
        if dict(headers).get("connection", b"").lower() == b"close":
            self.close()
        return Answer(int(status_line.split()[1]), headers, lines)


def problems(answer: Answer, literal_host: str | None, own_host: str) -> list[str]:
    """What is wrong with ``answer``: a control character or a header the server did not
    write (a split header), or a Location that takes the browser off the site."""
    found = []
    for line in answer.lines:
        if any(byte < 0x20 or byte == 0x7F for byte in line):
            found.append(f"control character in {line!r}")
    names = [name for name, _ in answer.headers]
    extra = sorted(set(names) - SERVER_HEADERS)
    if extra or len(names) != len(set(names)):
        found.append(f"headers split or repeated: {names}")
    location = answer.location
    if location is not None:
        scheme, host = browser_destination(location)
        if scheme is not None and not (
            scheme in ("http", "https")
            and host is not None
            and (host in (literal_host, own_host) or host_allowed(host))
        ):
            found.append(f"Location {location!r} leads to {scheme} {host}")
    return found


def run_corpus(client: KeepAliveClient, host: str, shape: str, form: str) -> None:
    """Send every payload through the rule of ``shape``; fail listing every unsafe answer."""
    prefix, suffix, literal = SHAPES[shape]
    spell = raw_form if form == "raw" else encoded_form
    failures = []
    for payload in PAYLOADS:
        target = prefix.encode() + spell(payload.text) + suffix.encode()
        answer = client.get(target, host)
        failures.extend(
            f"{target!r} [{payload.id}] -> {answer.status}: {problem}"
            for problem in problems(answer, literal, host)
        )
    assert not failures, f"{len(failures)} unsafe answers:\n" + "\n".join(failures[:20])


FORMS = ["raw", "encoded"]


# -- nginx ---------------------------------------------------------------------------------------

NGINX_CONFIGS = {"merged": "", "unmerged": "merge_slashes off;"}


@pytest.fixture(scope="module")
def nginx_clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, KeepAliveClient]]:
    """The export served by nginx in each of NGINX_CONFIGS, with a keep-alive client each."""
    exported = export_nginx(RULES, allowed_hosts=ALLOWED_HOSTS)
    assert exported.unsupported == []
    http, server = exported.text.split(SERVER_MARKER)
    with (
        serving_nginx(tmp_path_factory.mktemp("merged"), http, server) as merged,
        serving_nginx(
            tmp_path_factory.mktemp("unmerged"), http, server, NGINX_CONFIGS["unmerged"]
        ) as unmerged,
    ):
        clients = {
            "merged": KeepAliveClient(int(merged.rsplit(":", 1)[1])),
            "unmerged": KeepAliveClient(int(unmerged.rsplit(":", 1)[1])),
        }
        yield clients
        for client in clients.values():
            client.close()


@needs_corpus
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("config", sorted(NGINX_CONFIGS))
def test_nginx_never_redirects_a_payload_off_site(
    nginx_clients: dict[str, KeepAliveClient], config: str, shape: str, form: str
) -> None:
    run_corpus(nginx_clients[config], "127.0.0.1", shape, form)


@pytest.mark.parametrize("config", sorted(NGINX_CONFIGS))
def test_nginx_still_redirects_what_waypost_allows(
    nginx_clients: dict[str, KeepAliveClient], config: str
) -> None:
    for target, location in ALLOWED_ANSWERS:
        answer = nginx_clients[config].get(target.encode(), "127.0.0.1")
        assert (answer.status // 100, answer.location) == (3, location), target


#: Requests the guards must let through, and the Location Waypost sends for them.
ALLOWED_ANSWERS = [
    ("/go/docs/start", "/docs/start"),
    ("/go/www.example.com", "/www.example.com"),
    ("/r/page", "/page"),
    ("/out/docs.example.org/guide", "https://docs.example.org/guide"),
    ("/out/www.whitelisteddomain.tld/a/b", "https://www.whitelisteddomain.tld/a/b"),
    ("/h/shop/cart", "https://shop.example.org/cart"),
    ("/h/a.b/c", "https://a.b.example.org/c"),
    ("/x/a/b", "https://example.com/a/b"),
    ("/p/a/b", "/moved/a/b"),
]


# -- Apache --------------------------------------------------------------------------------------

APACHE_CONFIGS = {
    "default": "",
    "decoded-slashes": "    AllowEncodedSlashes On\n    MergeSlashes Off",
    "kept-slashes": "    AllowEncodedSlashes NoDecode",
}


@pytest.fixture(scope="module")
def apache_client() -> Iterator[KeepAliveClient]:
    """The export as .htaccess, one virtual host per APACHE_CONFIGS; one keep-alive client."""
    exported = export_apache(RULES, allowed_hosts=ALLOWED_HOSTS)
    assert exported.unsupported == []
    sites: dict[str, tuple[str, str | None]] = {
        f"{name}.test": (config, exported.text) for name, config in APACHE_CONFIGS.items()
    }
    # Not under pytest's temporary folder: its parents are closed to the user Apache serves as.
    with (
        tempfile.TemporaryDirectory(prefix="waypost-apache-") as root,
        serving_apache(Path(root), sites) as port,
    ):
        client = KeepAliveClient(port)
        yield client
        client.close()


@needs_corpus
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("config", sorted(APACHE_CONFIGS))
def test_apache_never_redirects_a_payload_off_site(
    apache_client: KeepAliveClient, config: str, shape: str, form: str
) -> None:
    run_corpus(apache_client, f"{config}.test", shape, form)


@pytest.mark.parametrize("config", sorted(APACHE_CONFIGS))
def test_apache_still_redirects_what_waypost_allows(
    apache_client: KeepAliveClient, config: str
) -> None:
    host = f"{config}.test"
    for target, location in ALLOWED_ANSWERS:
        answer = apache_client.get(target.encode(), host)
        # Apache makes a path into an absolute URL on the request's own host.
        got = answer.location or ""
        got = got.removeprefix(f"http://{host}") if got.startswith(f"http://{host}/") else got
        assert (answer.status // 100, got) == (3, location), target
