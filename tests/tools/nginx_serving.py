"""A private nginx for the tests that serve a configuration with a real one: loopback only, a
temporary prefix, bounded waits; the test is skipped when nginx is not installed."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._servers import free_port, running

#: Where the nginx export (and the test configurations) split into http {} and server {} parts.
SERVER_MARKER = "# -- in the server {} block --"


def nginx_binary() -> str | None:
    """The nginx executable (on the PATH or in the usual sbin folders), or None."""
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


NGINX_TEMPLATE = """\
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 100000;
{http}
    server {{
        listen 127.0.0.1:{port};
        server_name _;
        # Waypost sends the Location as written (a path stays a path).
        absolute_redirect off;
{directives}
{server}
        # Anything no rule takes: "the app" answers.
        location / {{ return 200 "app"; }}
    }}
}}
"""


@contextlib.contextmanager
def serving_nginx(tmp: Path, http: str, server: str, directives: str = "") -> Iterator[str]:
    """A private nginx on loopback with ``http`` and ``server`` in the template, and
    ``directives`` for its server block (``merge_slashes off;``); yields its URL."""
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install -y nginx-light); differential skipped")
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_TEMPLATE.format(tmp=tmp, port=port, http=http, server=server, directives=directives),
        encoding="utf-8",
    )
    test = subprocess.run(
        [binary, "-t", "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert test.returncode == 0, test.stderr + "\n" + conf.read_text(encoding="utf-8")
    process = subprocess.Popen(
        [binary, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = tmp / "error.log"
    with running(process, port, name="nginx", log=lambda: _read(log), timeout=5):
        yield f"http://127.0.0.1:{port}"


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
