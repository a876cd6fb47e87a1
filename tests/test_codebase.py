"""House rules the codebase keeps: the public API, the import layers, lint, documented settings."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import waypost
from waypost.server.config import SETTINGS, Settings

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent


def test_all_matches_the_public_imports() -> None:
    tree = ast.parse((ROOT / "src" / "waypost" / "__init__.py").read_text())
    imported = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module != "__future__"
        for alias in node.names
    }
    assert set(waypost.__all__) == imported | {"__version__"}
    assert list(waypost.__all__) == sorted(waypost.__all__)
    for name in waypost.__all__:
        assert getattr(waypost, name) is not None


def test_public_objects_have_docstrings() -> None:
    for name in waypost.__all__:
        obj = getattr(waypost, name)
        if callable(obj):
            assert obj.__doc__, f"waypost.{name} has no docstring"


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "docs" / "server.md").read_text()
    for setting in SETTINGS:
        assert setting.env in readme, f"{setting.env} is not in docs/server.md"
        assert f"--{setting.name.replace('_', '-')}" in readme
    assert {s.name for s in SETTINGS} == set(Settings.__dataclass_fields__)


def test_settings_come_from_environment_then_flags() -> None:
    settings = Settings.from_env(
        {"WAYPOST_PORT": "9000", "WAYPOST_ACCESS_LOG": "no"}, host="0.0.0.0"
    )
    assert (settings.port, settings.access_log, settings.host) == (9000, False, "0.0.0.0")


def _tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -r requirements/dev.txt)")
    return found


def test_import_layers_hold() -> None:
    proc = subprocess.run(
        [_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_is_clean() -> None:
    proc = subprocess.run(
        [_tool("ruff"), "check", "src", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_core_imports_nothing_outside_the_standard_library_but_yaml() -> None:
    allowed = set(sys.stdlib_module_names) | {"yaml", "waypost"}
    for path in [
        *(ROOT / "src" / "waypost" / "rules").glob("*.py"),
        *(ROOT / "src" / "waypost" / "matching").glob("*.py"),
        *(ROOT / "src" / "waypost" / "engine").glob("*.py"),
        ROOT / "src/waypost/decision.py",
    ]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_no_module_imports_uvicorn() -> None:
    """The server runs on public APIs (httptools, asyncio, uvloop), not on uvicorn's internals:
    any uvicorn may sit beside Waypost."""
    for path in (ROOT / "src" / "waypost").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] != "uvicorn", f"{path} imports {name}"


def test_mypy_strict_is_clean() -> None:
    proc = subprocess.run(
        [_tool("mypy"), "--no-error-summary"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# Modules with no test module of their own, and why. A reason that names a test file names one that
# exists (checked below); a new module needs its own test module or a line here.
WITHOUT_OWN_TESTS: dict[str, str] = {
    "__init__.py": "public re-exports; tests/test_codebase.py keeps __all__ in sync",
    "__main__.py": "one line; run as `python -m waypost` by tests/cli/test_cli.py",
    "asgi.py": "re-export of middleware/asgi.py; tests/middleware/test_documented_paths.py",
    "wsgi.py": "re-export of middleware/wsgi.py; tests/middleware/test_documented_paths.py",
    "exceptions.py": "the error tree; messages are tested where raised: tests/rules/test_errors.py",
    "rules/_jwt_options.py": "the jwt guard's option checks; tests/guards/test_jwt.py loads each",
    "stats/sink.py": "a protocol; its implementation is tested in tests/store/test_recorder.py "
    "and through the middlewares in tests/middleware/test_stats.py",
    # the admin API: tested over HTTP, route by route, against both stores
    "admin/__init__.py": "re-exports; tests/admin/test_mount.py mounts the app",
    "admin/_context.py": "request context of the admin app; tests/admin/test_auth.py",
    "admin/_ratelimit.py": "the failure limiter; tests/admin/test_http.py",
    "admin/app.py": "the app factory; tests/admin/test_http.py and tests/admin/test_mount.py",
    "admin/login.py": "sign-in; tests/admin/test_sessions_api.py, tests/admin/test_browser.py",
    "admin/routes_rules.py": "tests/admin/test_rules_api.py and tests/admin/test_import_modes.py",
    "admin/routes_stats.py": "tests/admin/test_stats_api.py",
    "admin/routes_tools.py": "tests/admin/test_tools_api.py",
    "admin/schemas.py": "request and answer models; tests/admin/test_openapi.py (schemathesis)",
    "admin/service.py": "tests/admin/test_rules_api.py and tests/admin/test_tools_api.py",
    "tools/stored.py": "the served rules as an engine; tests/admin/test_stats_api.py, "
    "tests/cli/test_stats.py and tests/admin/web/test_suggest.py",
    # the admin page: tested page by page in process and flow by flow in Chromium
    "admin/web/__init__.py": "assembles the pages; tests/admin/test_pages.py",
    "admin/web/_render.py": "templates, headers, form token; tests/admin/test_pages.py",
    "admin/web/access.py": "keys and sessions pages; tests/admin/test_pages.py, "
    "tests/admin/test_browser_pages.py",
    "admin/web/docs.py": "the offline API docs; tests/admin/test_pages.py, "
    "tests/admin/test_browser_pages.py",
    "admin/web/not_found.py": "the 404 page; tests/admin/test_pages.py, "
    "tests/admin/test_browser_pages.py",
    "admin/web/rules.py": "the rules pages; tests/admin/test_pages.py, "
    "tests/admin/test_browser_pages.py",
    "admin/web/transfer.py": "import and export; tests/admin/test_pages.py, "
    "tests/admin/test_browser_pages.py",
    # the command line
    "cli/_files.py": "output files; tests/cli/test_tools.py, tests/cli/test_store.py",
    "cli/_report.py": "error reporting and engine loading; tests/cli/test_cli.py",
    "cli/serve.py": "starts a server; tests/server/test_app.py runs `waypost serve` for real",
    # the Django app: tested in a real Django project under tests/contrib/django
    "contrib/__init__.py": "a docstring only",
    "contrib/django/__init__.py": "a docstring only",
    "contrib/django/_config.py": "settings.WAYPOST and reverse(); "
    "tests/contrib/django/test_middleware.py and tests/contrib/django/test_checks.py",
    "contrib/django/apps.py": "the AppConfig registering the check; call_command('check') in "
    "tests/contrib/django/test_checks.py",
    "contrib/django/management/__init__.py": "a package Django looks for; a docstring only",
    "contrib/django/management/commands/__init__.py": "a package Django looks for; a docstring "
    "only",
    # the guards
    "guards/base.py": "the outcome values and the Guard protocol; tests/guards/test_basic.py, "
    "tests/guards/test_session.py and tests/guards/test_python.py check what each kind answers",
    # the matcher's parts, judged through the Matcher
    "matching/_exact.py": "the exact-path table; tests/matching/test_matching.py, test_index.py",
    "matching/_trie.py": "the segment trie; tests/matching/test_index.py sets it beside the index",
    # the middleware
    "middleware/__init__.py": "re-exports; tests/middleware/test_documented_paths.py",
    "middleware/_types.py": "type aliases only",
    "middleware/_auth.py": "asking a forward_auth service; tests/guards/test_forward_auth.py",
    # the rule language
    "rules/__init__.py": "a docstring only",
    "rules/_forward_auth_options.py": "load errors in tests/guards/test_forward_auth.py",
    "rules/_guard_options.py": "the guards: section's load errors; tests/guards/test_guards.py",
    "rules/_build.py": "tests/rules/test_load.py and tests/rules/test_plain_rules.py",
    "rules/request.py": "the Request value; tests/middleware/test_request.py builds it from both "
    "middlewares, tests/rules/test_conditions.py reads it",
    "rules/safety.py": "location checks; tests/test_security.py runs the hostile corpus at it",
    # the standalone server: real servers on loopback, by behaviour rather than by module
    "server/__init__.py": "re-exports",
    "store/_background.py": "the worker threads; tests/follow/test_reloading.py and "
    "tests/store/test_recorder.py",
    "server/_keyed.py": "health and metrics for a read key; tests/server/test_internal.py",
    "server/_linger.py": "closing a refused connection; tests/server/test_hostile_requests.py",
    "server/access_log.py": "tests/server/test_parts.py",
    "server/config.py": "settings; tests/server/test_parts.py and tests/test_codebase.py",
    "server/core.py": "the request path; tests/server/test_app.py, tests/server/test_internal.py",
    "server/https_redirect.py": "tests/server/test_internal.py and tests/test_security.py",
    "server/metrics.py": "tests/server/test_parts.py",
    "server/pages.py": "the 404 page; tests/server/test_parts.py",
    "server/protocol.py": "HTTP/1.1 on a socket; tests/server/test_connection.py, "
    "tests/server/test_hostile_requests.py, tests/server/test_timeouts.py",
    "server/run.py": "process and workers; tests/server/test_workers.py",
    "server/worker.py": "a worker's loop, start and stop; tests/server/test_workers.py and "
    "tests/server/test_cycle.py",
    "server/lifespan.py": "the ASGI lifespan; tests/server/test_workers.py",
    "server/_state.py": "what connections share; tests/server/test_cycle.py",
    "server/_http1.py": "the parser's settings and request parts; "
    "tests/server/test_request_head.py, tests/server/test_upgrade.py",
    "follow/__init__.py": "re-exports; tests/follow/test_reloading.py, "
    "tests/middleware/test_following.py",
    "follow/store_sync.py": "following the store; tests/server/test_store_serving.py and "
    "tests/middleware/test_following.py",
    "server/tunnel.py": "WebSocket tunnels; tests/server/test_websocket.py",
    # the stores: one contract run against SQLite and PostgreSQL
    "store/__init__.py": "open_store and re-exports; tests/store/test_contract.py",
    "store/_cache.py": "tests/store/test_sessions.py and tests/store/test_keys.py",
    "store/_checker.py": "tests/store/test_keys.py and tests/store/test_sessions.py",
    "store/_import.py": "imports into the store; tests/store/test_transfer.py",
    "store/_sql.py": "the SQL store; tests/store/test_contract.py",
    "store/_sql_base.py": "tests/store/test_contract.py",
    "store/_sql_commit.py": "tests/store/test_contract.py and tests/server/test_durability.py",
    "store/_sql_keys.py": "tests/store/test_keys.py",
    "store/_sql_revisions.py": "tests/store/test_contract.py",
    "store/_sql_rules.py": "tests/store/test_contract.py",
    "store/_sql_sessions.py": "tests/store/test_sessions.py",
    "store/_sql_stats.py": "analytics in the store; tests/store/test_stats.py",
    "store/_sql_watch.py": "change notification; tests/store/test_contract.py",
    "store/_usage.py": "key usage bookkeeping; tests/store/test_keys.py",
    "store/_validate.py": "tests/store/test_state.py",
    "store/base.py": "Store, the name of SqlStore; tests/store/test_contract.py",
    "store/migrations.py": "tests/store/test_contract.py and tests/cli/test_store.py",
    "store/model.py": "stored values; tests/store/test_state.py",
    "store/postgres.py": "tests/store/test_contract.py (WAYPOST_TEST_POSTGRES_URL)",
    "store/sqlite.py": "tests/store/test_contract.py",
    # the migration tools
    "tools/__init__.py": "a docstring only",
    "tools/annotations.py": "findings as CI annotations; tests/cli/test_tools.py",
    "tools/fix.py": "check --fix; tests/cli/test_tools.py",
    "tools/formats/__init__.py": "the format registry; tests/tools/formats/test_formats_units.py",
    "tools/formats/_canon.py": "tests/tools/formats/test_formats_roundtrip.py",
    "tools/formats/_common.py": "tests/tools/formats/test_formats_units.py",
    "tools/formats/_json.py": "tests/tools/formats/test_formats_import.py",
    "tools/formats/_priority.py": "the order exporters write rules in; "
    "tests/tools/formats/test_formats_roundtrip.py and tests/tools/formats/test_formats_export.py",
    "tools/formats/cloudflare_pages.py": "beside Bulk in tests/tools/formats/test_cloudflare.py, "
    "and Cloudflare's own tests in tests/tools/formats/conformance/test_conformance.py",
    "tools/formats/_regex.py": "tests/tools/formats/test_formats_units.py",
    "tools/formats/_report.py": "tests/tools/formats/test_formats_units.py",
    "tools/formats/_text.py": "tests/tools/formats/test_formats_units.py",
    "tools/formats/apache/__init__.py": "re-exports",
    "tools/formats/apache/_export.py": "tests/tools/formats/test_apache_redirect.py",
    "tools/formats/apache/_import.py": "tests/tools/formats/test_formats_import.py and "
    "tests/tools/formats/apache/test_order.py",
    "tools/formats/nginx/__init__.py": "re-exports",
    "tools/formats/nginx/_export.py": "tests/tools/formats/test_formats_export.py",
    "tools/formats/nginx/_import.py": "tests/tools/formats/test_formats_import.py",
    "tools/formats/nginx/_syntax.py": "tests/tools/formats/test_formats_import.py",
    # one importer and exporter per format, tested side by side against the sample files
    **{
        f"tools/formats/{name}.py": "tests/tools/formats/test_formats_import.py, "
        "tests/tools/formats/test_formats_export.py, tests/tools/formats/test_formats_roundtrip.py"
        for name in (
            "generic_csv",
            "wagtail",
            "wordpress",
            "yaml_format",
        )
    },
}


def mirror(module: Path) -> Path:
    """The test module of ``module`` (relative to src/waypost).

    The rule: ``src/waypost/<dirs>/<name>.py`` is tested by ``tests/<dirs>/test_<name>.py``, one
    leading underscore dropped (``matching/_trie.py`` -> ``tests/matching/test_trie.py``); a
    package's ``__init__.py`` by ``tests/<dirs>/test_<package>.py`` (``engine/__init__.py`` ->
    ``tests/engine/test_engine.py``), the top package's by ``tests/test_waypost.py``. tests/ is a
    package, so test modules in different folders may share a name as their modules do.
    """
    name = module.stem
    if name == "__init__":
        name = module.parent.name or "waypost"
    return Path("tests", *module.parent.parts, f"test_{name.removeprefix('_')}.py")


def test_every_module_has_its_own_test_module_or_a_written_reason() -> None:
    src = ROOT / "src" / "waypost"
    modules = sorted(path.relative_to(src) for path in src.rglob("*.py"))
    mirrors = [mirror(module) for module in modules]
    assert len(set(mirrors)) == len(mirrors), "two modules mirror to one test module"
    missing = [
        f"{module} -> {test}"
        for module, test in zip(modules, mirrors, strict=True)
        if not (ROOT / test).exists() and module.as_posix() not in WITHOUT_OWN_TESTS
    ]
    assert not missing, "modules without a test module or a reason in WITHOUT_OWN_TESTS:\n" + (
        "\n".join(missing)
    )
    known = {module.as_posix() for module in modules}
    stale = [name for name in WITHOUT_OWN_TESTS if name not in known]
    assert not stale, f"WITHOUT_OWN_TESTS names modules that are gone: {stale}"
    tested = [
        name
        for name, test in zip(known, map(mirror, map(Path, known)), strict=True)
        if name in WITHOUT_OWN_TESTS and (ROOT / test).exists()
    ]
    assert not tested, f"these have their own test module now; drop their reason: {tested}"
    for name, reason in WITHOUT_OWN_TESTS.items():
        for named in re.findall(r"tests/[\w/]+\.py", reason):
            assert (ROOT / named).exists(), f"{name}: the reason names {named}, which is gone"


@pytest.mark.parametrize(
    ("module", "test"),
    [
        ("decision.py", "tests/test_decision.py"),
        ("matching/__init__.py", "tests/matching/test_matching.py"),
        ("matching/_trie.py", "tests/matching/test_trie.py"),
        ("tools/formats/nginx/_respond.py", "tests/tools/formats/nginx/test_respond.py"),
        ("__init__.py", "tests/test_waypost.py"),
    ],
    ids=["module", "package", "private-module", "nested", "top-package"],
)
def test_the_mirror_rule(module: str, test: str) -> None:
    assert mirror(Path(module)) == Path(test)
