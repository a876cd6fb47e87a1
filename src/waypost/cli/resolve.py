"""``waypost resolve`` and ``waypost explain``: what the rules do with one request, and why.

Both take the same request (RULES, URL, ``-X``, ``-H``, ``--ip``) and ``--json``; the request
options are checked here, so that a malformed one is a usage mistake (exit 2), not an error of
the rules.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from waypost.cli._report import load_engine
from waypost.engine import Decision, Engine, Trace

__all__ = ["explain_command", "parse_headers", "resolve_command"]

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")


def parse_headers(values: tuple[str, ...]) -> list[tuple[str, str]]:
    """``-H 'Name: value'`` options as header pairs; a malformed one is a usage error."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(
                f"{value!r} is not a header; write it as 'Name: value'", param_hint="'-H'"
            )
        pairs.append((name.strip(), rest.strip()))
    return pairs


def _check_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value.startswith("/") or re.match(r"https?://", value, re.IGNORECASE):
        return value
    hint = f"did you mean {'/' + value!r}?" if "://" not in value else "use http:// or https://"
    raise click.BadParameter(f"{value!r} is not a path or an http(s) URL; {hint}")


def _check_method(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not _TOKEN.match(value):
        raise click.BadParameter(f"{value!r} is not an HTTP method, like GET or POST")
    return value


def _check_ip(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an IP address, like 203.0.113.7 or 2001:db8::1"
        ) from None


@dataclass(frozen=True, slots=True)
class _Asked:
    """The request a command was asked about, and the engine of its RULES."""

    engine: Engine
    method: str
    url: str
    headers: list[tuple[str, str]]
    client_ip: str | None
    as_json: bool

    def answer(self, result: Decision | Trace, text: str) -> None:
        """Print ``result`` as JSON with ``--json``, else ``text``."""
        click.echo(json.dumps(result.to_dict(), indent=2) if self.as_json else text)


_request_options = [
    click.argument("rules", type=click.Path(dir_okay=False)),
    click.argument("url", callback=_check_url),
    click.option(
        "-X",
        "--method",
        default="GET",
        show_default=True,
        callback=_check_method,
        help="HTTP method.",
    ),
    click.option(
        "-H", "--header", "headers", multiple=True, help="A request header, 'Name: value'."
    ),
    click.option(
        "--ip", "client_ip", default=None, callback=_check_ip, help="The client's IP address."
    ),
    click.option("--json", "as_json", is_flag=True, help="Print JSON."),
]


def _request_command(name: str) -> Callable[[Callable[[_Asked], None]], click.Command]:
    """A command called ``name`` taking the request options; its function gets them as one
    :class:`_Asked` (the rules already loaded)."""

    def decorate(func: Callable[[_Asked], None]) -> click.Command:
        @functools.wraps(func)
        def command(
            rules: str,
            url: str,
            method: str,
            headers: tuple[str, ...],
            client_ip: str | None,
            as_json: bool,
        ) -> None:
            engine = load_engine(rules)
            func(_Asked(engine, method, url, parse_headers(headers), client_ip, as_json))

        decorated: Any = command
        for option in reversed(_request_options):
            decorated = option(decorated)
        return click.command(name)(decorated)

    return decorate


@_request_command("resolve")
def resolve_command(asked: _Asked) -> None:
    """Print what RULES do with a request for URL."""
    decision = asked.engine.resolve(asked.method, asked.url, asked.headers, asked.client_ip)
    asked.answer(decision, decision.describe())


@_request_command("explain")
def explain_command(asked: _Asked) -> None:
    """Print every rule tried for URL, and why each did or did not apply."""
    trace = asked.engine.explain(asked.method, asked.url, asked.headers, asked.client_ip)
    asked.answer(trace, trace.render())
