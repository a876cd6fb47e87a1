"""What the image runs, run here without Docker: the Dockerfile's own build and install commands
(its build context copied as its COPY lines and .dockerignore say, its paths moved into a temporary
folder), then its entry command with its environment, answering health and redirects from the
shipped examples/rules.yaml, its HEALTHCHECK command, and a graceful stop on SIGTERM.

Slow but bounded: about 45 s (PyPI for the wheels, through pip's cache), skipped with the reason
if the wheels cannot be had within its budget.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests._servers import free_port
from tests.deploy._docker import ROOT, Dockerfile, Stage, ignored_by_dockerignore, parse_dockerfile

pytestmark = pytest.mark.slow

#: Seconds for building the wheels and the virtualenv (past it: skipped) and for the whole test.
BUILD_BUDGET = 75.0
#: pip's messages when the index cannot be reached or has no such version: a skip, not a failure.
UNREACHABLE = (
    "NewConnectionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Could not find a version",
    "No matching distribution",
    "ReadTimeoutError",
)


class Container:
    """The image's paths, moved into ``base``: /src, /wheels, the venv, WORKDIR."""

    def __init__(self, dockerfile: Dockerfile, base: Path) -> None:
        self.dockerfile = dockerfile
        runtime = dockerfile.runtime
        venv = re.search(r"python -m venv (\S+)", " ".join(r.args for r in runtime.all("RUN")))
        assert venv is not None, "the runtime stage makes no virtualenv"
        workdir = runtime.last("WORKDIR")
        assert workdir is not None
        self.paths = {
            venv[1]: base / "venv",
            "/wheels": base / "wheels",
            workdir.args: base / "workdir",
        }
        self.venv = base / "venv"
        self.workdir = base / "workdir"
        self.context = base / "context"
        self.workdir.mkdir(parents=True)

    def localize(self, text: str) -> str:
        """``text`` with the image's paths replaced by their folders here."""
        for image_path, here in self.paths.items():
            text = text.replace(image_path, str(here))
        return text

    def copy_build_context(self, stage: Stage) -> Path:
        """The stage's COPY lines carried out, from the build context .dockerignore leaves."""
        workdir = stage.last("WORKDIR")
        assert workdir is not None
        target = self.context / workdir.args.strip("/")
        for copy in stage.all("COPY"):
            *sources, dest = [word for word in copy.words() if not word.startswith("--")]
            for source in sources:
                into = target / dest
                if dest.endswith("/") or len(sources) > 1:
                    into = into / Path(source).name
                into.parent.mkdir(parents=True, exist_ok=True)
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, into, ignore=_dockerignored)
                elif not ignored_by_dockerignore(source):
                    shutil.copy2(ROOT / source, into)
        return target

    def environment(self, **overrides: str) -> dict[str, str]:
        """The runtime stage's ENV over this process's environment (no WAYPOST_* of ours)."""
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("WAYPOST_") and name not in ("VIRTUAL_ENV", "PYTHONPATH")
        }
        for name, value in self.dockerfile.runtime.env().items():
            value = re.sub(r"\$\{?PATH\}?", lambda _: os.environ.get("PATH", ""), value)
            env[name] = self.localize(value)
        env.update(overrides)
        return env


def _dockerignored(folder: str, names: list[str]) -> set[str]:
    relative = Path(folder).relative_to(ROOT)
    return {name for name in names if ignored_by_dockerignore((relative / name).as_posix())}


def _run_build_step(command: str, *, cwd: Path, env: dict[str, str], deadline: float) -> None:
    """Run a shell command of the Dockerfile; skip if the wheels cannot be had in time."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        pytest.skip(f"no time left for {command[:60]!r} within {BUILD_BUDGET:.0f} s")
    try:
        proc = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=remaining,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"building the image's wheels took longer than {BUILD_BUDGET:.0f} s")
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 and any(marker in output for marker in UNREACHABLE):
        pytest.skip(f"the wheels cannot be had from the package index: {output[-500:]}")
    assert proc.returncode == 0, f"{command}\n{output}"


def _shell_steps(stage: Stage, wanted: str) -> list[str]:
    """The parts of the stage's RUN lines (split at &&) that mention ``wanted``."""
    steps: list[str] = []
    for run in stage.all("RUN"):
        words = run.args.split(" ")
        command = " ".join(word for word in words if not word.startswith("--mount="))
        steps += [part.strip() for part in command.split(" && ") if wanted in part]
    return steps


@pytest.fixture
def container(tmp_path: Path) -> Container:
    """A virtualenv made and filled by the Dockerfile's own commands."""
    dockerfile = parse_dockerfile()
    box = Container(dockerfile, tmp_path)
    deadline = time.monotonic() + BUILD_BUDGET
    build = dockerfile.stage("build")
    context = box.copy_build_context(build)
    extras = {"WAYPOST_EXTRAS": dockerfile.global_args["WAYPOST_EXTRAS"]}
    # The build runs with this checkout's Python 3.11 and its pip first on PATH, as the build
    # stage runs with the image's. pip's cache stays on here: it is left out of the image to keep
    # it small, and a test that downloads every wheel each time would not stay fast.
    env = {
        **{name: value for name, value in os.environ.items() if name != "PYTHONPATH"},
        **extras,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    for step in _shell_steps(build, "pip wheel") + _shell_steps(build, "_plainstore"):
        command = box.localize(step).replace("--no-cache-dir ", "")
        _run_build_step(command, cwd=context, env=env, deadline=deadline)
    for step in _shell_steps(dockerfile.runtime, "venv") + _shell_steps(
        dockerfile.runtime, "pip install"
    ):
        command = box.localize(step).replace("--no-cache-dir ", "")
        _run_build_step(command, cwd=context, env=env, deadline=deadline)
    return box


@contextmanager
def _serving(box: Container, *args: str, **overrides: str) -> Iterator[tuple[str, Path]]:
    """The image's entry command (plus ``args``, as after the image name) on a free port."""
    port = free_port()
    env = box.environment(WAYPOST_HOST="127.0.0.1", WAYPOST_PORT=str(port), **overrides)
    log = box.workdir.parent / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*box.dockerfile.entry_command(), *args],
            cwd=box.workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base + "/_waypost/health", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the entry command did not serve: {log.read_text()}")
                time.sleep(0.1)
        yield base, log
        proc.send_signal(signal.SIGTERM)
        # The shell exec'd the server: SIGTERM reached it, and it stopped gracefully.
        assert proc.wait(timeout=15) == 0, log.read_text()
        assert "Traceback" not in log.read_text(), log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _healthcheck(box: Container, port: str) -> subprocess.CompletedProcess[str]:
    """The Dockerfile's HEALTHCHECK command, with the container's environment."""
    _, command = box.dockerfile.healthcheck()
    env = box.environment(WAYPOST_PORT=port)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=10, check=False)


def _redirect(base: str, path: str) -> tuple[int, str | None]:
    response = httpx.get(base + path, timeout=5, follow_redirects=False)
    return response.status_code, response.headers.get("location")


def test_the_entry_command_serves_the_shipped_rules(container: Container) -> None:
    assert (container.venv / "bin" / "waypost").exists()
    compiled = subprocess.run(
        [str(container.venv / "bin" / "python"), "-c", "import waypost._plainstore"],
        cwd=container.workdir,
        env=container.environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert compiled.returncode == 0, "the wheel has no compiled store: " + compiled.stderr
    # The build context held what the metadata names (setuptools only warns when it is missing).
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (wheel,) = (container.venv.parent / "wheels").glob("waypost-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for license_file in project.get("license-files", []):
        assert any(name.endswith(f".dist-info/licenses/{license_file}") for name in names)
    # WAYPOST_RULES names where the image copies examples/rules.yaml: that file, here.
    rules = container.dockerfile.runtime.env()["WAYPOST_RULES"]
    copies = [c.words() for c in container.dockerfile.runtime.all("COPY")]
    assert ["examples/rules.yaml", rules] in copies
    shipped = str(ROOT / "examples" / "rules.yaml")

    with _serving(container, WAYPOST_RULES=shipped) as (base, _):
        health = httpx.get(base + "/_waypost/health", timeout=5)
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        assert _redirect(base, "/old-page") == (301, "/new-page")
        assert _redirect(base, "/2024/05/hello") == (308, "/articles/hello?year=2024")
        port = base.rpartition(":")[2]
        check = _healthcheck(container, port)
        assert check.returncode == 0, check.stderr
    # The same check fails once nothing answers.
    assert _healthcheck(container, port).returncode != 0

    # A SQLite store in WORKDIR (the volume), seeded from WAYPOST_RULES; arguments after the
    # image name are flags of waypost serve.
    store = {"WAYPOST_DB": "sqlite:///waypost.db"}
    with _serving(container, "--public-health-details", WAYPOST_RULES=shipped, **store) as (
        base,
        _,
    ):
        health = httpx.get(base + "/_waypost/health", timeout=5).json()
        assert health["status"] == "ok" and health["store"], health
        assert _redirect(base, "/old-page") == (301, "/new-page")
    assert (container.workdir / "waypost.db").exists()
    # WAYPOST_RULES empty: no RULES argument at all, so a new store starts empty.
    empty = {"WAYPOST_DB": "sqlite:///empty.db", "WAYPOST_RULES": ""}
    with _serving(container, "--public-health-details", **empty) as (base, _):
        health = httpx.get(base + "/_waypost/health", timeout=5).json()
        assert (health["status"], health["rules"]) == ("ok", 0), health
        assert _redirect(base, "/old-page") == (404, None)


def test_the_health_check_command_fails_quickly_where_nothing_answers() -> None:
    """Without a server: the HEALTHCHECK command exits non-zero within its timeout."""
    _, command = parse_dockerfile().healthcheck()
    env = {**os.environ, "WAYPOST_PORT": str(free_port())}
    env.pop("WAYPOST_TLS_CERT", None)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, *command[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert proc.returncode != 0
    assert "Connection refused" in proc.stderr
    assert time.monotonic() - started < 5


def test_the_health_check_needs_only_the_standard_library() -> None:
    """The slim image has no curl, and the check must not depend on what the wheels bring."""
    _, command = parse_dockerfile().healthcheck()
    imported = re.findall(r"import ([\w., ]+?);", command[2])
    assert imported, command[2]
    modules = {name.strip().split(".")[0] for names in imported for name in names.split(",")}
    assert modules <= set(sys.stdlib_module_names), modules
