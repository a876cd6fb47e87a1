"""A private Apache for the tests that serve a configuration with a real one: loopback only, one
virtual host per site, bounded waits; the test is skipped when Apache is not installed."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._servers import free_port, running

MODULES = Path("/usr/lib/apache2/modules")
BINARY = Path("/usr/sbin/apache2")
_CONF = """\
ServerRoot {root}
Listen 127.0.0.1:{port}
LoadModule mpm_prefork_module {modules}/mod_mpm_prefork.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule alias_module {modules}/mod_alias.so
LoadModule rewrite_module {modules}/mod_rewrite.so
User nobody
Group nogroup
PidFile {root}/httpd.pid
ErrorLog {root}/error.log
ServerName localhost
# One client may keep its connection for a whole test module.
MaxKeepAliveRequests 0
KeepAliveTimeout 30
{hosts}
"""
_HOST = """\
<VirtualHost 127.0.0.1:{port}>
    ServerName {name}
    DocumentRoot {docroot}
    <Directory {docroot}>
        AllowOverride All
        Require all granted
    </Directory>
{body}
</VirtualHost>
"""


@contextlib.contextmanager
def serving_apache(root: Path, sites: dict[str, tuple[str, str | None]]) -> Iterator[int]:
    """A private Apache on loopback with one virtual host per site: ``name -> (server config,
    .htaccess or None)``; yields its port. ``root`` must be readable by 'nobody'."""
    if not BINARY.exists() or not (MODULES / "mod_alias.so").exists():
        pytest.skip(
            "Apache is not installed (apt-get install -y apache2-bin); differential skipped"
        )
    port = free_port()
    hosts = []
    for name, (body, htaccess) in sites.items():
        docroot = root / name
        docroot.mkdir()
        if htaccess is not None:
            (docroot / ".htaccess").write_text(htaccess, encoding="utf-8")
        hosts.append(_HOST.format(port=port, name=name, docroot=docroot, body=body))
    # Started as root, Apache serves as 'nobody', who must read the document roots.
    for path in (root, *root.rglob("*")):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    conf = root / "httpd.conf"
    conf.write_text(
        _CONF.format(root=root, port=port, modules=MODULES, hosts="\n".join(hosts)),
        encoding="utf-8",
    )
    check = subprocess.run(
        [BINARY, "-t", "-f", str(conf)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr + conf.read_text(encoding="utf-8")
    process = subprocess.Popen(
        [BINARY, "-X", "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log = root / "error.log"

    def read_log() -> str:
        return log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""

    with running(process, port, name="Apache", log=read_log):
        yield port
