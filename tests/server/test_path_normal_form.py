"""A rule over an area of the site cannot be walked around with path tricks.

Every path of the bypass corpus (tests/data/corpus/guard_bypass_paths.txt: the path-normalization
advisories of Spring Security, Tomcat, Envoy, nginx, overlong UTF-8...) is sent, as written, to a
real `waypost serve` whose rules deny /admin with a 403, in front of an echo upstream. Each one
must be refused (400), denied (403), sent to its normal form (a 308 whose path is normal, then
denied if it is under /admin), or reach the upstream at a path that, normalized as servers and
frameworks normalize paths (percent-decoding, dot segments, repeated slashes), is not under
/admin. What the upstream receives is what the rules matched.
"""

from __future__ import annotations

import json
import posixpath
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.server.serving import Served, Upstream, start_server
from waypost.rules.request import normal_path

CORPUS = Path(__file__).parents[1] / "data" / "corpus" / "guard_bypass_paths.txt"
PATHS = [
    line.rstrip("\n")
    for line in CORPUS.read_text(encoding="utf-8").splitlines()
    if line and not line.startswith("#")
]

RULES = """\
rules:
  - from: /admin
    respond: 403
  - from: /admin/<path:rest>
    respond: 403
"""

#: Tricks that only some upstreams fall for and the rules cannot see: ';' path parameters
#: (Java servlet containers strip them), backslashes (Windows servers), other case (a
#: case-insensitive upstream). Documented in the README; still sent, and still not allowed to
#: crash anything.
OUT_OF_SCOPE = (";", "\\", "%5C", "%5c", "ADMIN", "Admin", "aDmIn", "%41dmin")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Upstream]]:
    tmp = tmp_path_factory.mktemp("normal-form")
    rules = tmp / "deny.yaml"
    rules.write_text(RULES, encoding="utf-8")
    with Upstream() as upstream:
        served = start_server(rules, "--upstream", upstream.url, "--no-access-log", tmp=tmp)
        yield served, upstream
        served.stop()


def _get(port: int, target: str) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n".encode(
                "latin-1"
            )
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def _as_servers_see_it(raw: str) -> str:
    """The path a server or framework would route: decoded, dot segments and runs of slashes
    resolved."""
    decoded = unquote(raw, errors="replace")
    return posixpath.normpath("/" + decoded.lstrip("/")).replace("//", "/")


def _under_admin(path: str) -> bool:
    return path == "/admin" or path.startswith("/admin/")


def test_the_corpus_is_read() -> None:
    assert len(PATHS) > 50


@pytest.mark.parametrize("target", PATHS)
def test_no_path_trick_reaches_the_denied_area(
    served: tuple[Served, Upstream], target: str
) -> None:
    server, _ = served
    status, headers, body = _get(server.port, target if target.startswith("/") else "/" + target)
    assert status in (200, 308, 400, 403, 404), (target, status, body[:200])
    if status == 308:
        location = headers["location"]
        assert location.startswith("/") and not location.startswith(("//", "/\\")), location
        assert normal_path(unquote(location.partition("?")[0])) is None, location
        status, headers, body = _get(server.port, location)
        assert status in (200, 400, 403), (target, location, status)
    if status != 200:
        return
    received = json.loads(body)["path"]
    if any(mark in target for mark in OUT_OF_SCOPE):
        return
    assert not _under_admin(_as_servers_see_it(received)), (target, received)
