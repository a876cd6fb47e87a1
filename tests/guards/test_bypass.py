"""The bypass corpus against real guards: no path trick reaches a guarded area.

Every path of tests/data/corpus/guard_bypass_paths.txt (the path-normalization advisories of
Spring Security, Tomcat, Envoy, nginx, overlong UTF-8...) is sent as written to a real
`waypost serve` whose /admin area requires a `basic` guard, in front of an echo upstream. Each
must be refused (400), answered by the guard (401), sent to its normal form (a 308, then
answered so), or reach the upstream at a path that, normalized as servers and frameworks do, is
not under /admin. Unlike a deny rule, the guard layer also reads ';' parameters and backslashes
(see waypost.engine._guards.canonical_path), so only other case is out of scope here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.guards.conftest import htpasswd_line
from tests.server.serving import Served, Upstream, start_server
from tests.server.test_path_normal_form import PATHS, _as_servers_see_it, _get, _under_admin

RULES = """\
guards:
  staff: {basic: {htpasswd: staff.htpasswd, realm: Staff}}
rules:
  - from: /admin
    require: staff
  - from: /admin/<path:rest>
    require: staff
"""

#: A guard whose rules are case-sensitive does not guard /ADMIN (a case-insensitive upstream
#: would serve it): write 'case: insensitive' on the guard rules for such an upstream.
OTHER_CASE = ("ADMIN", "Admin", "aDmIn", "%41dmin")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("bypass")
    (tmp / "staff.htpasswd").write_text(htpasswd_line("ann", "s3cret") + "\n")
    rules = tmp / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    with Upstream() as upstream:
        server = start_server(rules, "--upstream", upstream.url, "--no-access-log", tmp=tmp)
        yield server
        server.stop()


@pytest.mark.parametrize("target", PATHS)
def test_no_path_trick_reaches_the_guarded_area(served: Served, target: str) -> None:
    status, headers, body = _get(served.port, target if target.startswith("/") else "/" + target)
    assert status in (200, 308, 400, 401, 404), (target, status, body[:200])
    if status == 308:
        location = headers["location"]
        assert location.startswith("/") and not location.startswith(("//", "/\\")), location
        status, headers, body = _get(served.port, location)
        assert status in (200, 400, 401, 404), (target, location, status)
    if status != 200:
        return
    received = json.loads(body)["path"]
    if any(mark in target for mark in OTHER_CASE):
        return
    seen = _as_servers_see_it(received.replace("\\", "/"))
    # As a servlet container reads it too: ';' parameters dropped from each segment.
    without_params = "/".join(s.partition(";")[0] for s in seen.split("/"))
    assert not _under_admin(seen), (target, received)
    assert not _under_admin(without_params), (target, received)
