"""Benchmark of guards: what a request through a passing guard costs against an unguarded one.

Run it with ``python benchmarks/bench_guards.py`` (about a minute) or ``--quick`` (about fifteen
seconds). It prints a table, writes the figures to ``benchmarks/results/guards.json`` and a
README snippet to ``benchmarks/results/guards.md``.

The issue's target (#15): a request through a cached ``session`` or ``api_key`` guard costs at
most 2x an unguarded resolve, measured in the same run. Two engines are built from the same rules
(1,000 exact redirects, a few patterns, and a rewrite of ``/app/<path:rest>``): one plain, one
whose ``/app/<path:rest>`` requires a guard. For each guard kind the same requests are timed on
both, one sample of each in turn, and the figure is the median of the round-by-round ratios
guarded / unguarded (the machine is shared and noisy; see bench_engine.py). Each request is built
in the loop, ``Request(...)`` then ``Engine.resolve()``, on both sides: a middleware builds one
per request, and a guard reads its headers and cookies, which a Request parses once.

The kinds: ``session`` with a cookie signed by Flask itself (``SecureCookieSessionInterface``),
``api_key`` (as ``Authorization: Bearer`` and as the ``X-API-Key`` / ``X-Secret-Token`` pair),
``jwt`` (an HS256 token), ``basic`` (bcrypt, remembered after the first check) and ``python``
(a callable reading a cookie). The target is the session's and the access key's; the others are
timed for comparison. One more row times the rest of the site: a pattern redirect outside every
guarded area, in the session's rule set against the plain one.

A remembered ``session``, ``api_key`` or ``jwt`` pass is answered by the compiled road's guard
gate (``waypost/_gate.c``); ``basic`` and ``python`` by the Python guard layer.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench_engine import gc_off, sample_ns, warm_up

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"

#: The issue's target: a cached guard costs at most this many times an unguarded resolve.
RATIO_MAX = 2.0
SECRET = "bench-secret-key"
JWT_SECRET = "bench-jwt-secret-of-at-least-32-bytes"
#: The kinds the issue's target names: a cached api_key (either way of sending it) or session
#: guard.
TARGET_KINDS = ("session", "api_key", "api_key (X-API-Key pair)")
#: The row of a request outside the guarded area (the session guard's rule set).
OUTSIDE = "outside (no guard applies)"
EXACT_RULES = 1_000

Loop = Callable[[Sequence[Any]], object]


def flask_session_cookie(data: dict[str, Any]) -> str:
    """The session cookie Flask signs for ``data`` (its own serializer, as a Flask app would)."""
    import flask
    from flask.sessions import SecureCookieSessionInterface

    app = flask.Flask("bench")
    app.secret_key = SECRET
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    return str(serializer.dumps(data))


def write_rules(folder: Path, guard: str | None) -> Path:
    """The rules file: the same rules, with ``/app/<path:rest>`` requiring ``guard`` (if any)."""
    lines = []
    if guard is not None:
        lines += [
            "guards:",
            "  staff:",
            "    basic: {htpasswd: staff.htpasswd, realm: Staff}",
            "  login:",
            "    session: {cookie: session, secret_env: WAYPOST_BENCH_SECRET, key: _user_id}",
            "  code:",
            "    python: {}",
            "  partners:",
            "    api_key: {audience: partners}",
            "  members:",
            "    jwt: {secret_env: WAYPOST_BENCH_JWT_SECRET, audience: site}",
        ]
    lines.append("rules:")
    if guard is not None:
        lines += ["  - from: /app/<path:rest>", f"    require: {guard}"]
    lines += ["  - from: /app/<path:rest>", "    rewrite: /internal/{rest}"]
    for k in range(10):
        lines += [f"  - from: /section{k}/<int:year>/<slug>", f"    to: /s{k}/{{year}}/{{slug}}"]
    for i in range(EXACT_RULES):
        lines += [f"  - from: /old/page-{i}", f"    to: /new/page-{i}"]
    path = folder / f"rules-{guard or 'plain'}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def access_key_ring() -> tuple[Any, str]:
    """A key ring holding one access key of the audience ``partners``, and the key: what a
    server's ring holds after reading the store (the refresh runs in a thread, not timed)."""
    from waypost.guards import AccessKey, KeyRing
    from waypost.guards.api_key import secret_hash
    from waypost.store.keys import new_key

    key_id, secret, whole = new_key()
    ring = KeyRing([AccessKey(key_id, secret_hash(secret), frozenset({"partners"}))])
    return ring, whole


def jwt_token() -> str:
    """An HS256 token for the ``jwt`` guard (PyJWT, as an identity provider would sign it)."""
    import time

    import jwt

    claims = {"sub": "ann", "aud": "site", "exp": int(time.time()) + 3600}
    return str(jwt.encode(claims, JWT_SECRET, algorithm="HS256"))


def python_check(request: Any) -> dict[str, str] | None:
    """What an app's own check might do: read a cookie, find the user."""
    token = request.cookie("sid")
    return {"user": "ann"} if token == "token-of-ann" else None


def resolve_loop(engine: Any, headers: list[tuple[str, str]]) -> Loop:
    from waypost.rules.request import Request

    resolve = engine.resolve

    def run(paths: Sequence[str]) -> None:
        for path in paths:
            resolve(Request("GET", path, "", headers, None, "192.0.2.7"))

    return run


def report(kind: str, figures: dict[str, float]) -> None:
    print(
        f"{kind:26} unguarded {figures['plain_ns'] / 1000:6.2f} µs  "
        f"guarded {figures['guarded_ns'] / 1000:6.2f} µs  ratio {figures['ratio']:.2f}x",
        flush=True,
    )


def time_ratio(plain: Loop, guarded: Loop, paths: Sequence[str], repeats: int) -> dict[str, float]:
    """Medians of both, and the median of the round-by-round ratios guarded / plain."""
    warm_up(plain, paths)
    warm_up(guarded, paths)
    a: list[float] = []
    b: list[float] = []
    with gc_off():
        for round_number in range(repeats):
            # Which goes first alternates: neither always follows the other's cache state.
            if round_number % 2:
                b.append(sample_ns(guarded, paths))
                a.append(sample_ns(plain, paths))
            else:
                a.append(sample_ns(plain, paths))
                b.append(sample_ns(guarded, paths))
    return {
        "plain_ns": statistics.median(a),
        "guarded_ns": statistics.median(b),
        "ratio": statistics.median(y / x for x, y in zip(a, b, strict=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, about 15 seconds")
    parser.add_argument(
        "--tiny", action="store_true", help="a few requests: that it runs, not its figures"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    import bcrypt

    from waypost import Engine

    repeats = 7 if args.quick else 25
    count = 5_000 if args.quick else 20_000
    if args.tiny:
        repeats, count = 2, 200
    paths = [f"/app/area/{i % 97}/item-{i}" for i in range(count)]
    outside = [f"/section{i % 10}/{2000 + i % 25}/post-{i}" for i in range(count)]
    os.environ["WAYPOST_BENCH_SECRET"] = SECRET
    cookie = flask_session_cookie({"_user_id": "42", "_fresh": True, "csrf_token": "x" * 40})
    credentials = base64.b64encode(b"ann:s3cret").decode()
    os.environ["WAYPOST_BENCH_JWT_SECRET"] = JWT_SECRET
    ring, key = access_key_ring()
    host = ("Host", "api.example.com")
    kinds = {
        "session": ("login", [host, ("Cookie", f"session={cookie}; theme=dark")]),
        "api_key": ("partners", [host, ("Authorization", f"Bearer {key}")]),
        "api_key (X-API-Key pair)": (
            "partners",
            [host, ("X-API-Key", key.split("_")[1]), ("X-Secret-Token", key.split("_", 2)[2])],
        ),
        "jwt": ("members", [host, ("Authorization", f"Bearer {jwt_token()}")]),
        "basic": ("staff", [host, ("Authorization", f"Basic {credentials}")]),
        "python": ("code", [host, ("Cookie", "sid=token-of-ann; theme=dark")]),
    }
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "repeats": repeats,
        "requests": count,
        "machine": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "kinds": {},
    }
    with tempfile.TemporaryDirectory() as folder:
        here = Path(folder)
        hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(10)).decode()
        (here / "staff.htpasswd").write_text(f"ann:{hashed}\n", encoding="utf-8")
        plain = Engine.from_file(write_rules(here, None))
        for kind, (guard, headers) in kinds.items():
            engine = Engine.from_file(
                write_rules(here, guard), guards={"code": python_check}, keys=ring
            )
            trace = engine.explain("GET", paths[0], headers, "192.0.2.7")
            passed = [s for s in trace.steps if s.outcome == "guarded"]
            if not passed or engine.resolve("GET", paths[0], headers).action != "rewrite":
                sys.exit(f"{kind}: the guard did not pass: {trace}")
            figures = time_ratio(
                resolve_loop(plain, headers), resolve_loop(engine, headers), paths, repeats
            )
            results["kinds"][kind] = figures
            report(kind, figures)
            if kind == "session":
                # The rest of the site: a pattern redirect outside every guarded area, in a
                # rule set with guards and in one without.
                figures = time_ratio(
                    resolve_loop(plain, headers),
                    resolve_loop(engine, headers),
                    outside,
                    repeats,
                )
                results["kinds"][OUTSIDE] = figures
                report(OUTSIDE, figures)
    results["target"] = {"ratio_max": RATIO_MAX}
    for kind in TARGET_KINDS:
        ratio = results["kinds"][kind]["ratio"]
        results["target"][kind] = ratio <= RATIO_MAX
        print(f"{kind} guard <= {RATIO_MAX}x unguarded: {'PASS' if ratio <= RATIO_MAX else 'FAIL'}")
    if args.tiny or os.environ.get("WAYPOST_BENCH_NO_WRITE") == "1":
        return  # results/ keeps the real runs' figures
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "guards.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "guards.md").write_text(render(results), encoding="utf-8")


def render(results: dict[str, Any]) -> str:
    """The Markdown snippet for the README."""
    machine = results["machine"]
    lines = [
        "### Benchmark: guards",
        "",
        f"`python benchmarks/bench_guards.py{' --quick' if results['quick'] else ''}` on "
        f"{results['date'][:10]}, {machine['implementation']} {machine['python']}, "
        f"{machine['cpus']} CPUs (shared machine). `Request(...)` then `Engine.resolve()` of "
        f"{results['requests']:,} paths under a rewritten `/app/<path:rest>`, with and without "
        "a passing guard on it, in the same run; the ratio is the median of "
        f"{results['repeats']} round-by-round ratios. The `outside` row: pattern redirects "
        "outside every guarded area, in the `session` guard's rule set and in the plain one.",
        "",
        "| guard | unguarded | guarded | ratio |",
        "|---|---:|---:|---:|",
    ]
    for kind, row in results["kinds"].items():
        name, _, note = kind.partition(" ")
        lines.append(
            f"| `{name}`{' ' + note if note else ''} "
            f"| {row['plain_ns'] / 1000:.2f} µs | {row['guarded_ns'] / 1000:.2f} µs "
            f"| {row['ratio']:.2f}x |"
        )
    target = results["target"]
    verdicts = ", ".join(f"`{kind}` {'PASS' if target[kind] else 'FAIL'}" for kind in TARGET_KINDS)
    lines += [
        "",
        f"Target (#15): a request through a cached `api_key` or `session` guard costs at most "
        f"{target['ratio_max']:.0f}x an unguarded one: {verdicts}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
