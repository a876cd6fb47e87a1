"""Every curl example of the admin API's page (docs/admin-api.md), replayed in order against
the admin app on a fresh store: same method, headers and body; the status shown is the status
answered, and each header line shown (``etag: "1"``) is answered too."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from waypost.admin import ADMIN_PREFIX, create_admin_app
from waypost.store._sql import SqlStore

DOC = Path(__file__).parents[2] / "docs" / "admin-api.md"
_BLOCK = re.compile(r"```console\n(.*?)```", re.DOTALL)
_STATUS = re.compile(r"HTTP/1\.1 (\d{3})\b")
_HEADER = re.compile(r"([A-Za-z-]+): (.+)\Z")
_VARIABLE = re.compile(r"\$\{?(\w+)\}?")
BASE = "http://127.0.0.1:8080/_waypost"


@dataclass(frozen=True)
class Example:
    """One curl command of the document, and the answer it shows."""

    line: int
    argv: tuple[str, ...]
    status: int
    headers: tuple[tuple[str, str], ...]


def read_examples(text: str) -> list[Example]:
    """The curl commands of the document's console blocks, with the status and headers shown."""
    examples: list[Example] = []
    for block in _BLOCK.finditer(text):
        first_line = text[: block.start()].count("\n") + 2
        lines = block.group(1).splitlines()
        index = 0
        while index < len(lines):
            line = lines[index]
            if not line.startswith("$ curl "):
                index += 1
                continue
            start = index
            command = line[2:]
            while command.endswith("\\"):
                index += 1
                command = command[:-1] + " " + lines[index].strip()
            index += 1
            found = _STATUS.match(lines[index]) if index < len(lines) else None
            assert found, f"{DOC.name}:{first_line + start}: a curl example shows no HTTP status"
            headers = []
            index += 1
            while index < len(lines) and (header := _HEADER.match(lines[index])):
                headers.append((header[1].lower(), header[2]))
                index += 1
            examples.append(
                Example(
                    first_line + start, tuple(shlex.split(command)), int(found[1]), tuple(headers)
                )
            )
    return examples


EXAMPLES = read_examples(DOC.read_text(encoding="utf-8"))


def _request(argv: tuple[str, ...]) -> tuple[str, str, dict[str, str], str | None]:
    """``(method, url, headers, body)`` of a curl command line (the flags the document uses)."""
    method, url, body = None, None, None
    headers: dict[str, str] = {}
    args = iter(argv[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, _, value = next(args).partition(":")
            headers[name.strip()] = value.strip()
        elif arg in ("-d", "--data", "--data-raw"):
            body = next(args)
        elif arg in ("-i", "-s", "-sS"):
            continue
        elif arg.startswith("-"):
            raise AssertionError(f"the test does not know curl's {arg!r}; teach it")
        else:
            url = arg
    assert url is not None, argv
    return method or ("POST" if body is not None else "GET"), url, headers, body


def test_the_document_has_examples_of_every_kind() -> None:
    assert len(EXAMPLES) >= 20
    statuses = {example.status for example in EXAMPLES}
    assert {200, 201, 401, 409, 422} <= statuses
    for example in EXAMPLES:
        assert example.argv[0] == "curl"
        assert any(arg.startswith("$WAYPOST/api/") for arg in example.argv), example


def test_every_curl_example_answers_as_shown(sqlite_store: SqlStore) -> None:
    _, key = sqlite_store.create_key("admin", note="docs")
    _, public, secret = key.split("_", 2)
    session, _ = sqlite_store.create_session(public, lifetime=3600)  # someone signed in
    values = {
        "WAYPOST": BASE,
        "KEY": key,
        "KEY_ID": public,
        "KEY_SECRET": secret,
        "SESSION_ID": session.id,
    }
    app = create_admin_app(sqlite_store, prefix=ADMIN_PREFIX)
    with TestClient(app, base_url="http://127.0.0.1:8080", follow_redirects=False) as client:
        for example in EXAMPLES:
            argv = tuple(
                _VARIABLE.sub(lambda m: values.get(m[1], m[0]), arg) for arg in example.argv
            )
            assert "$" not in " ".join(argv[1:]).replace("{", ""), (
                f"{DOC.name}:{example.line}: an unknown variable in {argv}"
            )
            method, url, headers, body = _request(argv)
            response = client.request(method, url, headers=headers, content=body)
            where = f"{DOC.name}:{example.line}: {method} {url}"
            assert response.status_code == example.status, f"{where}: {response.text}"
            if method == "POST" and url.endswith("/api/rules") and response.status_code == 201:
                values.setdefault("RULE_ID", response.json()["id"])
            if url.endswith("/api/keys") and response.status_code == 201:
                values["NEW_KEY_ID"] = response.json()["key"]["id"]
            for name, shown in example.headers:
                expected = _VARIABLE.sub(lambda m: values.get(m[1], m[0]), shown)
                assert response.headers.get(name) == expected, where


@pytest.mark.parametrize(
    ("command", "request_"),
    [
        (
            "curl -i -X PUT $WAYPOST/api/rules/x -H 'If-Match: \"1\"' -d '{}'",
            ("PUT", "$WAYPOST/api/rules/x", {"If-Match": '"1"'}, "{}"),
        ),
        ("curl -i $WAYPOST/api/rules", ("GET", "$WAYPOST/api/rules", {}, None)),
        ("curl -d '{}' $WAYPOST/api/validate", ("POST", "$WAYPOST/api/validate", {}, "{}")),
    ],
    ids=["put-with-header", "get", "data-implies-post"],
)
def test_curl_command_lines_are_read_as_curl_does(
    command: str, request_: tuple[str, str, dict[str, str], str | None]
) -> None:
    assert _request(tuple(shlex.split(command))) == request_
