"""Benchmark of the middlewares: what Waypost adds to a Flask and a FastAPI request.

Run it with ``python benchmarks/bench_middleware.py`` (about a minute) or ``--quick`` (seconds).
It prints a table, writes ``benchmarks/results/middleware.json`` and the snippet
``benchmarks/results/middleware.md``.

The issue's targets (#20): a request the middleware passes on to the app costs at most 1.10x the
same request to the bare Flask app, and 1.05x to the bare FastAPI app; a redirect the middleware
answers stays far cheaper than the app's own redirect route.

Each app is called in this process, without a server (a server's cost is the same on both sides
and would only hide the middleware's): Flask through its WSGI callable with a copy of one
prepared environ, FastAPI through its ASGI callable in one event loop with a copy of one prepared
scope. The requests carry the headers a browser sends. The middleware holds 1,000 exact
redirects and a pattern rule; the pass-through request matches none of them. Variants are timed
in turn, a sample of each per round, each round starting with the next variant (the machine is
shared and noisy, and what ran just before a sample moves it), and each ratio is the median of
the round-by-round ratios. Samples are CPU time of this thread.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

from _results import write_results

from waypost.engine import Engine

# What Firefox sends for a page, give or take.
BROWSER_HEADERS = [
    ("Host", "www.example.com"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("Accept-Language", "en-US,en;q=0.5"),
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
    ("Connection", "keep-alive"),
    ("Cookie", "session=eyJ1c2VyIjoxMjN9.Z1x2Yw.abcdefghijklmnopqrstuvwxyz; theme=dark"),
    ("Upgrade-Insecure-Requests", "1"),
    ("Sec-Fetch-Dest", "document"),
    ("Sec-Fetch-Mode", "navigate"),
    ("Sec-Fetch-Site", "none"),
    ("Sec-Fetch-User", "?1"),
    ("Priority", "u=0, i"),
]
TARGETS = {"flask": 1.10, "fastapi": 1.05}


def rules(count: int) -> Engine:
    """``count`` exact redirects and a pattern, none matching ``/page/...``."""
    entries: list[dict[str, Any]] = [
        {"from": f"/old/{n}", "to": f"/new/{n}", "status": 301} for n in range(count)
    ]
    entries.append({"from": "/blog/<int:year>/<slug>", "to": "/posts/{slug}"})
    return Engine(entries)


# -- Flask -------------------------------------------------------------------------------------


def flask_apps(engine: Engine) -> tuple[Any, Any]:
    """A Flask app (a page, and its own redirect route) bare and behind the middleware."""
    from flask import Flask, redirect

    from waypost.wsgi import WaypostMiddleware

    app = Flask("bench")

    @app.get("/page/<int:number>")
    def page(number: int) -> str:
        return "ok"

    @app.get("/own/<int:number>")
    def own(number: int) -> Any:
        return redirect(f"/new/{number}", 301)

    return app.wsgi_app, WaypostMiddleware(app.wsgi_app, rules=engine)


def environ_for(path: str) -> dict[str, Any]:
    from werkzeug.test import EnvironBuilder

    builder = EnvironBuilder(path=path, headers=BROWSER_HEADERS)
    try:
        return builder.get_environ()
    finally:
        builder.close()


def wsgi_loop(app: Any, environ: dict[str, Any]) -> Callable[[int], None]:
    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        return None

    def loop(count: int) -> None:
        for _ in range(count):
            body = app(dict(environ), start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()

    return loop


# -- FastAPI -----------------------------------------------------------------------------------


def fastapi_apps(engine: Engine) -> tuple[Any, Any]:
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse, RedirectResponse

    from waypost.asgi import WaypostMiddleware

    app = FastAPI()

    @app.get("/page/{number}", response_class=PlainTextResponse)
    async def page(number: int) -> str:
        return "ok"

    @app.get("/own/{number}")
    async def own(number: int) -> RedirectResponse:
        return RedirectResponse(f"/new/{number}", status_code=301)

    return app, WaypostMiddleware(app, rules=engine)


def scope_for(app: Any, path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in BROWSER_HEADERS],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


def asgi_loop(app: Any, scope: dict[str, Any], loop: asyncio.AbstractEventLoop) -> Any:
    request = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict[str, Any]:
        return request

    async def send(message: dict[str, Any]) -> None:
        return None

    async def many(count: int) -> None:
        for _ in range(count):
            await app(dict(scope), receive, send)

    def run(count: int) -> None:
        loop.run_until_complete(many(count))

    return run


# -- timing ------------------------------------------------------------------------------------


def sample_us(run: Callable[[int], None], count: int) -> float:
    # CPU time of this thread, as bench_engine.py times: on a shared machine a wall clock also
    # counts the time this process sat preempted by others, which is noise, not cost.
    start = time.thread_time_ns()
    run(count)
    return (time.thread_time_ns() - start) / count / 1000


def measure(variants: dict[str, Callable[[int], None]], count: int, rounds: int) -> dict[str, Any]:
    """Each variant sampled once a round, in turn, each round starting with the next variant;
    per-call microseconds of every sample."""
    for run in variants.values():
        run(max(1, count // 10))  # warm up: imports, caches, the middleware's start
    samples: dict[str, list[float]] = {name: [] for name in variants}
    gc.collect()
    gc.disable()
    try:
        names = list(variants)
        for turn in range(rounds):
            # Each round starts with another variant: what ran just before a sample (the same
            # app warming the caches, or another) moved a ratio by a few percent.
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                samples[name].append(sample_us(variants[name], count))
    finally:
        gc.enable()
    return samples


def ratio(samples: dict[str, list[float]], a: str, b: str) -> float:
    return statistics.median(x / y for x, y in zip(samples[a], samples[b], strict=True))


def run_framework(name: str, engine: Engine, count: int, rounds: int) -> dict[str, Any]:
    if name == "flask":
        bare, wrapped = flask_apps(engine)
        variants = {
            "bare": wsgi_loop(bare, environ_for("/page/7")),
            "pass": wsgi_loop(wrapped, environ_for("/page/7")),
            "redirect": wsgi_loop(wrapped, environ_for("/old/7")),
            "own_redirect": wsgi_loop(bare, environ_for("/own/7")),
        }
    else:
        loop = asyncio.new_event_loop()
        bare, wrapped = fastapi_apps(engine)
        variants = {
            "bare": asgi_loop(bare, scope_for(bare, "/page/7"), loop),
            "pass": asgi_loop(wrapped, scope_for(bare, "/page/7"), loop),
            "redirect": asgi_loop(wrapped, scope_for(bare, "/old/7"), loop),
            "own_redirect": asgi_loop(bare, scope_for(bare, "/own/7"), loop),
        }
    samples = measure(variants, count, rounds)
    medians = {key: round(statistics.median(values), 2) for key, values in samples.items()}
    passing = ratio(samples, "pass", "bare")
    return {
        "framework": name,
        "us": medians,
        "pass_over_bare": round(passing, 3),
        "redirect_over_own_redirect": round(ratio(samples, "redirect", "own_redirect"), 3),
        "added_us": round(
            statistics.median(p - b for p, b in zip(samples["pass"], samples["bare"], strict=True)),
            2,
        ),
        "target": TARGETS[name],
        "meets_target": passing <= TARGETS[name],
    }


def markdown(results: list[dict[str, Any]], rounds: int, count: int) -> str:
    lines = [
        "### The middlewares (`benchmarks/bench_middleware.py`)",
        "",
        f"Flask and FastAPI apps called in process with a browser's headers, bare and behind "
        f"the middleware (1,000 exact redirects and a pattern); {rounds} rounds of {count:,} "
        "calls per variant, in turn (each round starting with the next); median microseconds "
        "of CPU time per request, ratios the median of "
        "the round-by-round ratios.",
        "",
        "| framework | bare app | passed on by the middleware | ratio (target) | redirect "
        "by the middleware | the app's own redirect route |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results:
        us = row["us"]
        verdict = "met" if row["meets_target"] else "not met"
        lines.append(
            f"| {row['framework']} | {us['bare']:.1f} µs | {us['pass']:.1f} µs "
            f"(+{row['added_us']:.1f}) | {row['pass_over_bare']:.3f}x (<= {row['target']}x, "
            f"{verdict}) | {us['redirect']:.1f} µs | {us['own_redirect']:.1f} µs |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--count", type=int, default=2000, help="calls per sample")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 200 calls")
    parser.add_argument("--no-write", action="store_true", help="do not write results/")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.count = 3, 200
    engine = rules(1000)
    results = [run_framework(name, engine, args.count, args.rounds) for name in TARGETS]
    text = markdown(results, args.rounds, args.count)
    print(text)
    if not args.no_write:
        write_results("middleware", results, text)


if __name__ == "__main__":
    main()
