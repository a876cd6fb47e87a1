"""nginx's own order, against real nginx: a configuration imported by Waypost answers every
request as nginx itself does (server rewrites in file order before any location; exact, then
``^~``, then regex, then prefix locations; a location that serves its paths keeps them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tools.nginx_serving import serving_nginx
from tests.tools.test_export_safety_servers import KeepAliveClient
from waypost.engine import Engine
from waypost.tools.formats import IMPORTERS

CONFIGS = {
    "server-rewrites-in-file-order": (
        "rewrite ^/splat/(.*)$ /a/$1 permanent;\nrewrite ^/splat/foo/(.*)$ /b/$1 permanent;\n",
        ["/splat/x", "/splat/foo/x", "/splat/foo/", "/other"],
    ),
    "server-rewrites-before-locations": (
        "location = /old/x { return 301 /y; }\n"
        "location /old/keep/ { return 302 /kept; }\n"
        "rewrite ^/old/(.*)$ /new/$1 permanent;\n",
        ["/old/x", "/old/5", "/old/keep/a", "/old/", "/old/y"],
    ),
    "regex-before-a-longer-plain-prefix": (
        "location /docs/special/ { return 301 /s/; }\n"
        "location ~ ^/docs/(.+)$ { return 301 /n/$1; }\n"
        "location /docs/ { return 302 /d/; }\n",
        ["/docs/special/x", "/docs/special/", "/docs/5", "/docs/x", "/docs/"],
    ),
    "caret-prefix-before-regex": (
        "location ^~ /static/ { root /nonexistent; }\n"
        "location ~ ^/static/(.+)$ { return 301 /r/$1; }\n"
        "location ~ ^/(.+)$ { return 301 /any/$1; }\n",
        ["/static/a", "/static/", "/stuff", "/static"],
    ),
    "a-longer-prefix-that-serves": (
        "location /a/ { return 301 /x; }\n"
        "location /a/b/ { root /nonexistent; }\n"
        "location = /a/b/c { return 308 /exact; }\n",
        ["/a/b/c", "/a/b/d", "/a/b/", "/a/c", "/a/"],
    ),
}


def _waypost(engine: Engine, url: str) -> tuple[int, str | None]:
    decision = engine.resolve("GET", url)
    if decision.action == "redirect":
        return decision.status or 0, decision.location
    if decision.action == "respond":
        return decision.status or 0, None
    return 200, None


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_an_imported_configuration_answers_as_nginx_does(name: str, tmp_path: Path) -> None:
    server, urls = CONFIGS[name]
    imported = IMPORTERS["nginx"](server)
    assert imported.skipped == []
    engine = Engine(imported.rules, defaults=imported.defaults)
    differences = []
    with serving_nginx(tmp_path, "", server) as base:
        client = KeepAliveClient(int(base.rsplit(":", 1)[1]))
        try:
            for url in urls:
                answer = client.get(url.encode("ascii"), "example.com")
                got = (answer.status, answer.location)
                if got == (404, None):  # the location serves files; none here: "the app"
                    got = (200, None)
                want = _waypost(engine, url)
                if got != want:
                    differences.append(f"GET {url}: nginx {got}, waypost {want}")
        finally:
            client.close()
    assert differences == []
