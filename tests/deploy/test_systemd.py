"""deploy/waypost.service: its hardening, `systemd-analyze verify` and `security` on it when
systemd-analyze is installed, and the server under MemoryDenyWriteExecute's seccomp filter."""

from __future__ import annotations

import ctypes.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests._servers import free_port
from tests.deploy._docker import ROOT
from waypost.server.config import SETTING, Settings

UNIT = ROOT / "deploy" / "waypost.service"


def _parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections -> (key, value) in order; a key may repeat (Environment=, SystemCallFilter=)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"waypost.service:{number}: cannot read {raw!r}"
        current.append((key.strip(), value.strip()))
    return sections


UNIT_SECTIONS = _parse_unit(UNIT.read_text(encoding="utf-8"))
SERVICE = UNIT_SECTIONS["Service"]


def _values(key: str) -> list[str]:
    return [value for name, value in SERVICE if name == key]


def _environment() -> dict[str, str]:
    return dict(item.partition("=")[::2] for item in _values("Environment"))


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|min)?", text)
    assert match is not None, text
    return float(match[1]) * (60 if match[2] == "min" else 1)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("SystemCallArchitectures", "native"),
        ("RestrictSUIDSGID", "yes"),
        ("RestrictRealtime", "yes"),
        ("StateDirectory", "waypost"),
        ("UMask", "0077"),
        ("Restart", "on-failure"),
        ("KillSignal", "SIGTERM"),
        ("KillMode", "mixed"),
    ],
    ids=lambda value: value or "(empty)",
)
def test_the_unit_sets(key: str, expected: str) -> None:
    assert _values(key) == [expected], f"{key}= is {_values(key)}, not {expected!r}"


def test_the_system_call_filter_allows_system_services_only() -> None:
    filters = _values("SystemCallFilter")
    assert filters[0] == "@system-service"
    assert all(f.startswith("~") for f in filters[1:]), "a later allow list widens the first"
    # glibc's getrlimit() is prlimit64, which @resources holds: denying it would break Python.
    assert not any("@resources" in f for f in filters[1:])


def test_the_store_lives_in_the_state_directory() -> None:
    db = _environment()["WAYPOST_DB"]
    assert db.startswith("sqlite:///")
    path = Path(db.removeprefix("sqlite:///"))
    assert path.is_absolute(), f"{db!r} is relative to the working directory"
    assert path.parent == Path("/var/lib") / _values("StateDirectory")[0]


def test_the_environment_names_only_settings() -> None:
    for name in _environment():
        assert name.startswith("WAYPOST_")
        assert name.removeprefix("WAYPOST_").lower() in SETTING, f"{name} is no setting"
    assert _environment()["WAYPOST_HOST"] == "127.0.0.1", "only the proxy in front should reach it"


def test_the_stop_timeout_outlasts_the_graceful_shutdown() -> None:
    assert _seconds(_values("TimeoutStopSec")[0]) > Settings().graceful_timeout
    assert _values("ExecStart")[0].split()[1:3] == ["serve", "/etc/waypost/rules.yaml"]


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    return found


def _unit_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart's program replaced by an installed waypost: verify checks that
    the program exists, and /opt/waypost is where the unit is installed, not this checkout."""
    waypost = Path(sys.executable).parent / "waypost"
    assert waypost.exists(), "the checkout's waypost command is not installed"
    program = _values("ExecStart")[0].split()[0]
    copy = tmp_path / UNIT.name
    text = UNIT.read_text(encoding="utf-8")
    copy.write_text(text.replace(f"ExecStart={program} ", f"ExecStart={waypost} "))
    return copy


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    analyze = _systemd_analyze()
    proc = subprocess.run(
        [analyze, "verify", str(_unit_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Unknown keys and bad values are only warnings ("ignoring"): any output is a failure.
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_systemd_analyze_security_rates_the_unit_ok(tmp_path: Path) -> None:
    analyze = _systemd_analyze()
    proc = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", str(_unit_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "--offline" in proc.stderr:
        pytest.skip(f"this systemd-analyze cannot rate a unit file offline: {proc.stderr}")
    score = re.search(r"Overall exposure level for waypost\.service: (\d+\.\d+)", proc.stdout)
    assert score is not None, proc.stdout + proc.stderr
    assert float(score[1]) <= 2.0, proc.stdout


def test_the_server_runs_under_memory_deny_write_execute(tmp_path: Path) -> None:
    """The kernel's side of MemoryDenyWriteExecute=yes, as systemd loads it: the compiled store,
    uvloop, httptools, the admin app and forked workers all serve under it."""
    if sys.platform != "linux" or not ctypes.util.find_library("seccomp"):
        pytest.skip("needs Linux and libseccomp (Debian: libseccomp2)")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WAYPOST_")},
        "WAYPOST_PORT": str(port),
        "WAYPOST_DB": f"sqlite:///{tmp_path / 'waypost.db'}",
    }
    command = [
        sys.executable,
        str(Path(__file__).with_name("_seccomp.py")),
        str(Path(sys.executable).parent / "waypost"),
        "serve",
        str(ROOT / "examples" / "rules.yaml"),
        "--workers",
        "2",
        "--no-access-log",
    ]
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(base + "/_waypost/health", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"no server (exit {proc.poll()}): {log.read_text()}")
                time.sleep(0.1)
        assert health.json() == {"status": "ok"}
        with open(f"/proc/{proc.pid}/status", encoding="ascii") as status:
            assert "Seccomp:\t2" in status.read(), "the server runs without the filter"
        response = httpx.get(base + "/old-page", timeout=5)
        assert (response.status_code, response.headers["location"]) == (301, "/new-page")
        # The admin API (FastAPI, pydantic's compiled core) answers too: 401 without a key.
        assert httpx.get(base + "/_waypost/api/rules", timeout=5).status_code == 401
        proc.terminate()
        assert proc.wait(timeout=15) == 0, log.read_text()
        assert "Traceback" not in log.read_text(), log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
