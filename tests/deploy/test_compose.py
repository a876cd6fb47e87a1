"""deploy/compose.yaml, read with PyYAML (Docker Compose is not needed): Waypost and PostgreSQL
with healthchecks, the store URL naming the postgres service and its credentials, a named volume,
and the same health check and port as the Dockerfile."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy._docker import ROOT, parse_dockerfile
from waypost.server.config import SETTING, Settings

COMPOSE = ROOT / "deploy" / "compose.yaml"


def _load() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")))


def _interpolate(value: str, environ: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?message}`` in ``value``."""

    def replace(match: re.Match[str]) -> str:
        name, operator, operand = match[1], match[2], match[3]
        if environ.get(name):
            return environ[name]
        if operator == ":-":
            return operand
        raise AssertionError(f"{name} must be set: {operand}")

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", replace, value)


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", text)
    assert match is not None, text
    return float(match[1]) * (60 if match[2] == "m" else 1)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load()


def test_two_services_and_a_named_volume(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "waypost"}
    volumes = compose["volumes"]
    mounts = compose["services"]["postgres"]["volumes"]
    named = [mount.partition(":")[0] for mount in mounts]
    assert named and all(name in volumes for name in named), "a mount is not a named volume"
    # The postgres image's data folder before version 18 (18 moved it): the volume must hold it.
    image = compose["services"]["postgres"]["image"]
    version = re.fullmatch(r"postgres:(\d+)[\w.-]*", image)
    assert version is not None, f"{image!r} has no major version tag"
    major = int(version[1])
    target = "/var/lib/postgresql/data" if major < 18 else "/var/lib/postgresql"
    assert [mount.partition(":")[2] for mount in mounts] == [target]


@pytest.mark.parametrize("service", ["postgres", "waypost"])
def test_every_service_has_a_healthcheck(compose: dict[str, Any], service: str) -> None:
    check = compose["services"][service]["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL")
    assert _seconds(check["timeout"]) < _seconds(check["interval"])
    assert check["retries"] >= 3
    assert compose["services"][service]["restart"] == "unless-stopped"


def test_images_are_pinned_to_a_tag_that_is_not_latest(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "image" in service:
            _, _, tag = service["image"].rpartition(":")
            assert tag and tag != "latest" and "/" not in tag, f"{name}: {service['image']}"
        else:
            context = (COMPOSE.parent / service["build"]["context"]).resolve()
            assert (context / service["build"].get("dockerfile", "Dockerfile")).exists()
            assert context == ROOT.resolve()


@pytest.mark.parametrize(
    "environ", [{}, {"WAYPOST_DB_PASSWORD": "s3cret-Pass.1"}], ids=["default", "set"]
)
def test_the_store_url_names_the_postgres_service_and_its_database(
    compose: dict[str, Any], environ: dict[str, str]
) -> None:
    postgres = {
        name: _interpolate(str(value), environ)
        for name, value in compose["services"]["postgres"]["environment"].items()
    }
    waypost = compose["services"]["waypost"]["environment"]
    url = urlsplit(_interpolate(waypost["WAYPOST_DB"], environ))
    assert url.scheme == "postgresql"
    assert url.hostname == "postgres"
    assert url.port in (None, 5432)
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"]
    assert url.path == "/" + postgres["POSTGRES_DB"]
    if environ:
        assert url.password == environ["WAYPOST_DB_PASSWORD"]
    # Waypost starts once PostgreSQL answers, and pg_isready asks for that user and database.
    depends = compose["services"]["waypost"]["depends_on"]
    assert depends == {"postgres": {"condition": "service_healthy"}}
    check = compose["services"]["postgres"]["healthcheck"]["test"]
    assert check[1] == "pg_isready"
    assert f"--username={url.username}" in check and f"--dbname={url.path[1:]}" in check


def test_waypost_runs_as_the_image_would(compose: dict[str, Any]) -> None:
    dockerfile = parse_dockerfile()
    waypost = compose["services"]["waypost"]
    _, healthcheck = dockerfile.healthcheck()
    assert waypost["healthcheck"]["test"] == ["CMD", *healthcheck]
    exposed = dockerfile.runtime.last("EXPOSE")
    assert exposed is not None
    assert [port.rpartition(":")[2] for port in waypost["ports"]] == [exposed.args]
    for name in waypost["environment"]:
        setting = name.removeprefix("WAYPOST_").lower()
        assert name == "WAYPOST_RULES" or setting in SETTING, f"{name} is no setting"
    assert waypost["environment"]["WAYPOST_RULES"] == dockerfile.runtime.env()["WAYPOST_RULES"]
    assert _seconds(waypost["stop_grace_period"]) > Settings().graceful_timeout
    assert waypost["read_only"] is True and waypost["tmpfs"] == ["/tmp"]
    assert waypost["cap_drop"] == ["ALL"]
    assert "ports" not in compose["services"]["postgres"], "the database is published"
