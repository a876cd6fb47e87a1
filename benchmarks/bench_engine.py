"""Benchmark of the core: matcher lookup, Engine.resolve(), CSV loading, and other routers.

Run it with ``python benchmarks/bench_engine.py`` (about ten minutes) or ``--quick`` (under a
minute, smaller sizes; its PASS/FAIL lines are only indicative). It prints a table, writes the
figures to ``benchmarks/results/engine.json`` and a README snippet to
``benchmarks/results/engine.md``. Generated rule files go to ``benchmarks/out/`` (git-ignored).

The machine is assumed to be shared and noisy, so every figure is the median of several samples,
each sample times a loop over many requests with the garbage collector off, and the limits that
can be stated as ratios are checked against a baseline (a bare ``dict.get``) measured in the same
run. Request paths are a random sample drawn across the whole rule set and shuffled, so that no
cache (CPU or LRU) flatters the figures. How much dearer a request gets from the smallest rule set
to a larger one is timed with both engines loaded, a sample of each in turn, as the median of the
round-by-round ratios: sizes timed minutes apart would compare a quiet minute with a noisy one.

Rules are realistic migration rules: exact rules (``/blog/2019/03/some-slug-123``) in CSV and
pattern rules in YAML, with int, string and path converters, distinct static prefixes and some
patterns that start with a variable. A rule set of size N holds N - N/100 exact rules and N/100
patterns (1,000,000 exact rules and 10,000 patterns at the largest size).

Werkzeug and Starlette route the same rules. Werkzeug is timed with ``MapAdapter.match(path)``,
its whole routing call. Starlette is timed with the loop its ``Router`` runs on every request
(``route.matches(scope)`` over the routes until a full match), with a real HTTP scope: calling the
router as an ASGI app would add the cost of building a Request and a Response to Starlette's side,
which is not routing, and waypost's ``resolve()`` is compared as the whole call it is.

``--baseline-src DIR`` compares this tree's engine with the one of an older tree in ``DIR/src``
(see ``_baseline.py`` for how to make it) instead of the run above, and writes no results: each
tree runs in a worker process of its own, and the parent asks them for samples in turn (which one
goes first alternates), so both share the machine's noise. Loading (``Engine.from_file()`` of a
CSV in fresh interpreters, alternated too), ``resolve()``, ``explain()`` and ``url_for()`` are
timed with the public API only, at each size (``--sizes`` to choose them), and the table gives both
medians and the median of the round-by-round ratios this / baseline. About two minutes of CPU (four
on a busy machine), ``--quick`` about twenty seconds.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _baseline import add_baseline_argument, checked_baseline_src, tree_env

if TYPE_CHECKING:
    from waypost import Engine

# Waypost itself is imported where it is used, after main() has put this tree's src/ first on the
# path, or from the tree that a --worker's PYTHONPATH names (this one or --baseline-src's).
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

OUT = HERE / "out"
RESULTS = HERE / "results"

# Targets from the issue.
LOOKUP_RATIO_MAX = 3.0
EXACT_RESOLVE_MAX_US = 3.0
PATTERN_RESOLVE_MAX_US = 6.0
GROWTH_MAX = 1.5
LOAD_SECONDS_MAX = 10.0
LOAD_RSS_MAX_MB = 400.0
# Issue #20: the compiled road of resolve().
WERKZEUG_PATTERN_MIN = 10.0
WERKZEUG_EXACT_MIN = 12.0
DICT_GET_RATIO_MAX = 1.25
DICT_GET_FROM = 300_000  # from this size up, the memory latency every lookup pays is the floor
STARLETTE_MAX = 100_000  # Starlette scans every route: a sample at 1,000,000 takes minutes

WORDS = [
    "spring",
    "summer",
    "autumn",
    "winter",
    "guide",
    "review",
    "notes",
    "update",
    "release",
    "howto",
    "intro",
    "advanced",
    "tips",
    "python",
    "rust",
    "garden",
    "kitchen",
    "travel",
    "city",
    "river",
    "mountain",
    "coffee",
    "bread",
    "recipe",
    "budget",
    "report",
    "launch",
    "team",
    "story",
    "design",
    "data",
    "cloud",
    "mobile",
    "privacy",
    "security",
    "music",
    "photo",
    "video",
    "games",
    "news",
    "market",
    "event",
    "weekly",
    "daily",
    "archive",
    "classic",
    "modern",
    "simple",
    "quick",
    "best",
    "new",
    "old",
    "free",
]
SECTIONS = ("api", "tutorial", "reference", "howto", "faq", "install", "changes")


# --------------------------------------------------------------------------------------------
# Rule generation: deterministic, every path a function of its number


def _slug(i: int) -> str:
    n = len(WORDS)
    words = [WORDS[(i * 7919) % n], WORDS[(i * 104729 + 3) % n]]
    if i % 3:
        words.append(WORDS[(i * 1299709 + 11) % n])
    return "-".join(words)


def exact_rule(i: int) -> tuple[str, str, int]:
    """The i-th exact rule: (from, to, status)."""
    kind = i % 6
    slug = _slug(i)
    status = (301, 301, 301, 302, 308)[i % 5]
    if kind == 0:
        year, month = 2005 + i % 19, 1 + i % 12
        return f"/blog/{year}/{month:02d}/{slug}-{i}", f"/articles/{slug}-{i}", status
    if kind == 1:
        return f"/products/category-{i % 97}/item-{i}.html", f"/shop/c{i % 97}/{i}", status
    if kind == 2:
        return f"/news/{2005 + i % 19}/{slug}-{i}.php", f"/news/{slug}-{i}", status
    if kind == 3:
        section = SECTIONS[i % len(SECTIONS)]
        return (
            f"/docs/v{i % 4}.{i % 10}/{section}/{slug}-{i}",
            f"/docs/latest/{section}/{slug}-{i}",
            status,
        )
    if kind == 4:
        return f"/en/about/team/member-{i}", f"https://people.example.com/m/{i}", status
    return f"/wiki/{slug.title().replace('-', '_')}_{i}", f"/kb/{slug}-{i}", status


def pattern_rule(k: int) -> tuple[str, str, str]:
    """The k-th pattern rule: (from, action key, target)."""
    kind = k % 10
    if kind in (0, 1):
        return f"/archive-{k}/<int:year>/<slug>", "to", "/blog/{year}/{slug}"
    if kind in (2, 3):
        return (
            f"/shop-{k}/category-<int:cat>/item-<int:id>.html",
            "to",
            f"/store-{k}/{{cat}}/{{id}}",
        )
    if kind == 4:
        return f"/files-{k}/<path:rest>", "rewrite", f"/static/{k}/{{rest}}"
    if kind in (5, 6):
        return f"/user-{k}/<string:name>/posts/<int:post>", "to", "/people/{name}/p/{post}"
    if kind == 7:
        return f"/forum-{k}/t/<int:topic>", "to", "https://forum.example.com/t/{topic}"
    if kind == 8:
        return f"/<lang>/guide-{k}/<slug>", "to", f"/guides/{k}/{{slug}}?lang={{lang}}"
    return f"/<int:year>/report-{k}.pdf", "to", f"/reports/{{year}}/{k}.pdf"


def pattern_name(k: int) -> str:
    """The name of the k-th pattern rule (for url_for)."""
    return f"p{k}"


def pattern_values(k: int, rng: random.Random) -> dict[str, Any]:
    """Values for the variables of the k-th pattern rule, as its converters make them."""
    kind = k % 10
    slug = _slug(rng.randrange(1_000_000))
    if kind in (0, 1):
        return {"year": rng.randrange(2000, 2025), "slug": slug}
    if kind in (2, 3):
        return {"cat": rng.randrange(500), "id": rng.randrange(10**6)}
    if kind == 4:
        return {"rest": f"img/{rng.randrange(100)}/{slug}.png"}
    if kind in (5, 6):
        return {"name": slug, "post": rng.randrange(10**5)}
    if kind == 7:
        return {"topic": rng.randrange(10**6)}
    if kind == 8:
        return {"lang": rng.choice(("en", "de", "fr", "es")), "slug": slug}
    return {"year": rng.randrange(2000, 2025)}


def fill_pattern(pattern: str, values: dict[str, Any]) -> str:
    """``pattern`` with its variables (``<name>``, ``<int:name>``) replaced by ``values``."""
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), pattern)


def pattern_path(k: int, rng: random.Random) -> str:
    """A request path that the k-th pattern rule (and only it) matches."""
    return fill_pattern(pattern_rule(k)[0], pattern_values(k, rng))


def miss_path(i: int, rng: random.Random) -> str:
    """A request path no rule matches, shaped like the real ones."""
    kind = i % 5
    slug = _slug(rng.randrange(1_000_000))
    if kind == 0:
        return f"/blog/{rng.randrange(2005, 2024)}/{rng.randrange(1, 13):02d}/{slug}-x{i}"
    if kind == 1:
        return f"/products/category-{i % 97}/item-{i}-gone.html"
    if kind == 2:
        return f"/en/contact/{slug}"
    if kind == 3:
        return f"/assets/img/{rng.getrandbits(64):016x}.png"
    return f"/{rng.randrange(2000, 2025)}/{slug}.pdf"


def to_starlette(pattern: str) -> str:
    """A waypost (= Werkzeug) pattern in Starlette's syntax."""
    out = pattern
    for conv, name in (("int", "int"), ("path", "path"), ("string", "str")):
        while f"<{conv}:" in out:
            start = out.index(f"<{conv}:")
            end = out.index(">", start)
            var = out[start + len(conv) + 2 : end]
            out = f"{out[:start]}{{{var}:{name}}}{out[end + 1 :]}"
    while "<" in out:
        start = out.index("<")
        end = out.index(">", start)
        out = f"{out[:start]}{{{out[start + 1 : end]}}}{out[end + 1 :]}"
    return out


def write_rules(n: int) -> tuple[Path, Path, int, int]:
    """CSV of the exact rules and YAML of the patterns for a rule set of size n (cached)."""
    n_patterns = max(1, n // 100)
    n_exact = n - n_patterns
    OUT.mkdir(parents=True, exist_ok=True)
    csv_path = OUT / f"exact-{n_exact}.csv"
    yaml_path = OUT / f"patterns-{n_patterns}-named.yaml"
    if not csv_path.exists():
        tmp = csv_path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8", newline="") as f:
            f.write("from,to,status\n")
            f.writelines(f"{a},{b},{s}\n" for a, b, s in map(exact_rule, range(n_exact)))
        tmp.replace(csv_path)
    if not yaml_path.exists():
        lines = ["defaults:", "  status: 301", "rules:"]
        for k in range(n_patterns):
            frm, key, target = pattern_rule(k)
            lines.append(f"  - name: {pattern_name(k)}")
            lines.append(f"    from: '{frm}'")
            lines.append(f"    {key}: '{target}'")
        yaml_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path, yaml_path, n_exact, n_patterns


def write_exact_csv(n: int) -> Path:
    """A CSV file of exactly n exact rules, for the loading figure (cached)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"load-{n}.csv"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8", newline="") as f:
            f.write("from,to,status\n")
            f.writelines(f"{a},{b},{s}\n" for a, b, s in map(exact_rule, range(n)))
        tmp.replace(path)
    return path


def build_engine(n: int) -> tuple[Engine, int, int]:
    """An engine holding the exact rules (CSV) and the patterns (YAML) of size n.

    Built with the public API only (load_rules, RuleSet, Engine), which the tree of
    --baseline-src has too."""
    from waypost import Engine, RuleSet, load_rules

    csv_path, yaml_path, n_exact, n_patterns = write_rules(n)
    exact = load_rules(csv_path)
    patterns = load_rules(yaml_path)
    offset = len(exact.rules)
    rules = exact.rules + tuple(r.replace(index=r.index + offset) for r in patterns.rules)
    engine = Engine(RuleSet(rules, source=f"{csv_path.name}+{yaml_path.name}"))
    return engine, n_exact, n_patterns


def request_paths(n_exact: int, n_patterns: int, count: int, seed: int) -> dict[str, list[str]]:
    """Shuffled samples of exact hits, pattern hits and misses, drawn across the whole rule set."""
    rng = random.Random(seed)
    exact = [exact_rule(rng.randrange(n_exact))[0] for _ in range(count)]
    pattern = [pattern_path(rng.randrange(n_patterns), rng) for _ in range(count)]
    miss = [miss_path(i, rng) for i in range(count)]
    for paths in (exact, pattern, miss):
        rng.shuffle(paths)
    return {"exact": exact, "pattern": pattern, "miss": miss}


# --------------------------------------------------------------------------------------------
# Timing


# CPU time of this thread, not wall time: on a shared two-core machine a wall clock also counts
# the time the benchmark sat preempted by other processes, which is noise, not cost. Every
# contender (waypost, dict.get, Werkzeug, Starlette) is timed with the same clock.
_clock = time.thread_time_ns

Loop = Callable[[Sequence[Any]], object]


@contextmanager
def gc_off() -> Iterator[None]:
    """The garbage collector collected, then off: no collection lands inside a sample."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def warm_up(loop: Loop, items: Sequence[Any]) -> None:
    loop(items[: max(1, len(items) // 20)])


def sample_ns(loop: Loop, items: Sequence[Any]) -> float:
    """Nanoseconds per item of one ``loop(items)`` (the caller turns the collector off)."""
    start = _clock()
    loop(items)
    return (_clock() - start) / len(items)


def median_ratio(these: Sequence[float], those: Sequence[float]) -> float:
    """The median of the sample-by-sample ratios ``these[i] / those[i]``: samples taken in turn
    share a noisy spell, so their ratio is steadier than the ratio of the medians."""
    return statistics.median(a / b for a, b in zip(these, those, strict=True))


def time_per_call(loop: Loop, items: Sequence[Any], repeats: int) -> float:
    """Median nanoseconds per item of ``loop(items)`` over ``repeats`` samples, gc off."""
    warm_up(loop, items)
    with gc_off():
        return statistics.median(sample_ns(loop, items) for _ in range(repeats))


def time_paired(loops: dict[str, Loop], items: Sequence[Any], repeats: int) -> dict[str, float]:
    """Like time_per_call for several loops, interleaved sample by sample so that a noisy
    neighbour slows them alike; also the median of the per-sample ratios to the first loop."""
    for loop in loops.values():
        warm_up(loop, items)
    samples: dict[str, list[float]] = {name: [] for name in loops}
    with gc_off():
        for _ in range(repeats):
            for name, loop in loops.items():
                samples[name].append(sample_ns(loop, items))
    first = next(iter(loops))
    out = {name: statistics.median(values) for name, values in samples.items()}
    for name in loops:
        out[f"{name}_ratio"] = median_ratio(samples[name], samples[first])
    return out


def time_growth(
    small: Loop, small_items: Sequence[Any], large: Loop, large_items: Sequence[Any], repeats: int
) -> dict[str, float]:
    """How much dearer ``large`` is than ``small`` per item: samples taken in turn, one of each
    a round, and the median of the round-by-round ratios (a noisy spell slows both alike)."""
    warm_up(small, small_items)
    warm_up(large, large_items)
    ratios = []
    with gc_off():
        for _ in range(repeats):
            a = sample_ns(small, small_items)
            ratios.append(sample_ns(large, large_items) / a)
    return {"median": statistics.median(ratios), "low": min(ratios), "high": max(ratios)}


def time_tricks(engine: Engine, paths: Sequence[str], repeats: int) -> dict[str, float]:
    """The two speed tricks of ``waypost.decision``, each against its plain way, paired:
    ``make_decision()`` against the frozen dataclass's ``__init__``, and a packed rule's redirect
    whose rule is looked up only when read against reading it (what the laziness saves)."""
    from waypost.decision import Decision, make_decision

    rule = engine.rules[0]
    resolve = engine.resolve

    def dataclass(path: str) -> object:
        return Decision("redirect", 301, path, None, None, (), None, rule)

    def made(path: str) -> object:
        return make_decision("redirect", 301, path, None, None, (), None, rule)

    def reading_the_rule(path: str) -> object:
        return resolve("GET", path).rule

    figures = time_paired(
        {"dataclass": call_loop(dataclass), "made": call_loop(made)}, paths, repeats
    )
    lazy = time_paired(
        {"read": call_loop(reading_the_rule), "lazy": call_loop(partial(resolve, "GET"))},
        paths,
        repeats,
    )
    return {
        "decision_dataclass_ns": figures["dataclass"],
        "decision_made_ns": figures["made"],
        "decision_ratio": figures["made_ratio"],
        "resolve_reading_rule_ns": lazy["read"],
        "resolve_lazy_ns": lazy["lazy"],
        "lazy_ratio": lazy["lazy_ratio"],
    }


def get_loop(call: Callable[[str, str], object]) -> Callable[[Sequence[str]], None]:
    """A loop asking ``call("GET", path)`` of each path: engine.resolve or engine.explain."""

    def run(paths: Sequence[str]) -> None:
        for path in paths:
            call("GET", path)

    return run


def fresh_loop(function: Callable[[str], object]) -> Callable[[Sequence[bytes]], None]:
    """A loop asking ``function(path)`` of each path decoded from bytes (a new str each time)."""

    def run(paths: Sequence[bytes]) -> None:
        for raw in paths:
            function(raw.decode())

    return run


def fresh_get_loop(call: Callable[[str, str], object]) -> Callable[[Sequence[bytes]], None]:
    """``fresh_loop`` for ``call("GET", path)``."""

    def run(paths: Sequence[bytes]) -> None:
        for raw in paths:
            call("GET", raw.decode())

    return run


def call_loop(function: Callable[[str], object]) -> Callable[[Sequence[str]], None]:
    def run(paths: Sequence[str]) -> None:
        for path in paths:
            function(path)

    return run


def url_for_loop(engine: Engine) -> Callable[[Sequence[tuple[str, dict[str, Any]]]], None]:
    url_for = engine.url_for

    def run(calls: Sequence[tuple[str, dict[str, Any]]]) -> None:
        for name, values in calls:
            url_for(name, **values)

    return run


def url_for_calls(n_patterns: int, count: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """(rule name, values) of ``count`` pattern rules drawn across the rule set."""
    rng = random.Random(seed)
    ks = [rng.randrange(n_patterns) for _ in range(count)]
    return [(pattern_name(k), pattern_values(k, rng)) for k in ks]


def check_answers(engine: Engine, paths: dict[str, list[str]]) -> None:
    """The samples do what they say: hits hit (the rule meant), misses miss."""
    for path in paths["exact"][:200]:
        decision = engine.resolve("GET", path)
        if decision.rule is None or decision.rule.path != path:
            raise SystemExit(f"exact path {path!r} resolved to {decision!r}")
    for path in paths["pattern"][:200]:
        decision = engine.resolve("GET", path)
        if decision.rule is None or decision.rule.pattern is None or decision.action == "respond":
            raise SystemExit(f"pattern path {path!r} resolved to {decision!r}")
    for path in paths["miss"][:200]:
        decision = engine.resolve("GET", path)
        if decision.rule is not None:
            raise SystemExit(f"miss path {path!r} resolved to {decision!r}")


# --------------------------------------------------------------------------------------------
# Other routers on the same rules


def werkzeug_router(n: int) -> Callable[[str], object]:
    from werkzeug.exceptions import NotFound
    from werkzeug.routing import Map
    from werkzeug.routing import Rule as WRule

    _, _, n_exact, n_patterns = write_rules(n)
    rules = [WRule(exact_rule(i)[0], endpoint=i) for i in range(n_exact)]
    rules += [WRule(pattern_rule(k)[0], endpoint=n_exact + k) for k in range(n_patterns)]
    adapter = Map(rules).bind("example.com")
    match = adapter.match

    def route(path: str) -> object:
        try:
            return match(path)
        except NotFound:
            return None

    return route


def starlette_router(n: int) -> Callable[[str], object]:
    from starlette.routing import Match, Route, Router

    async def endpoint(request: Any) -> None:  # never called: only matching is timed
        return None

    _, _, n_exact, n_patterns = write_rules(n)
    routes = [Route(exact_rule(i)[0], endpoint) for i in range(n_exact)]
    routes += [Route(to_starlette(pattern_rule(k)[0]), endpoint) for k in range(n_patterns)]
    router = Router(routes)
    full = Match.FULL

    def route(path: str) -> object:
        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "root_path": "",
            "query_string": b"",
        }
        partial = None
        # The loop of starlette.routing.Router.app.
        for candidate in router.routes:
            match, child_scope = candidate.matches(scope)
            if match is full:
                return child_scope
            if match is Match.PARTIAL and partial is None:
                partial = candidate
        return partial

    return route


# --------------------------------------------------------------------------------------------
# Loading in a fresh interpreter

_LOAD_SCRIPT = textwrap.dedent(
    """
    import gc, json, resource, sys, time
    import psutil
    import waypost
    from waypost import Engine
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    engine = Engine.from_file(sys.argv[1])
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gc.collect()
    held = psutil.Process().memory_info().rss
    hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
    print(json.dumps({"rules": len(engine), "seconds": seconds, "base_kb": base, "peak_kb": peak,
                      "held_bytes": held, "hwm_kb": hwm}))
    """
)


def load_once(csv_path: Path, tree: Path = ROOT) -> dict[str, Any]:
    """``Engine.from_file(csv_path)`` in a fresh interpreter running the code of ``tree``."""
    # Through a shell that forks the interpreter (not exec): Linux starts a process's
    # ru_maxrss at its parent's resident size, and this process may be large.
    done = subprocess.run(
        ["/bin/sh", "-c", '"$@"; exit $?', "sh", sys.executable, "-c", _LOAD_SCRIPT, str(csv_path)],
        capture_output=True,
        text=True,
        check=True,
        env=tree_env(tree),
    )
    return dict(json.loads(done.stdout))


def measure_load(csv_path: Path, repeats: int) -> dict[str, Any]:
    return summarize_load([load_once(csv_path) for _ in range(repeats)])


def summarize_load(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The medians of the runs of load_once()."""
    repeats = len(runs)
    base_mb = statistics.median(r["base_kb"] for r in runs) / 1024
    rules = runs[0]["rules"]
    held_mb = statistics.median(r["held_bytes"] for r in runs) / 2**20
    return {
        "rules": rules,
        "repeats": repeats,
        "seconds": statistics.median(r["seconds"] for r in runs),
        "peak_rss_mb": statistics.median(r["peak_kb"] for r in runs) / 1024,
        "peak_vmhwm_mb": statistics.median(r["hwm_kb"] for r in runs) / 1024,
        "base_rss_mb": base_mb,
        "held_rss_mb": held_mb,
        "bytes_per_rule": (held_mb - base_mb) * 2**20 / rules,
    }


# --------------------------------------------------------------------------------------------
# Against the code of another tree (--baseline-src): one worker process per tree, samples in turn

# What both trees are timed on, with the public API only: (key, label, items per sample / sample).
COMPARED = (
    ("resolve_exact", "resolve() exact hit", 1),
    ("resolve_pattern", "resolve() pattern hit", 1),
    ("resolve_miss", "resolve() miss", 1),
    ("explain_exact", "explain() exact hit", 10),
    ("explain_pattern", "explain() pattern hit", 10),
    ("explain_miss", "explain() miss", 10),
    ("url_for", "url_for() of a pattern rule", 10),
)


def check_url_for(engine: Engine, calls: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """url_for() builds the path the named pattern rule matches."""
    for name, values in calls[:200]:
        want = fill_pattern(pattern_rule(int(name.removeprefix("p")))[0], values)
        got = engine.url_for(name, **values)
        if got != want:
            raise SystemExit(f"url_for({name!r}, {values!r}) gave {got!r}, not {want!r}")


def compared_loops(n: int, sample: int) -> dict[str, tuple[Loop, Sequence[Any]]]:
    """The engine of size n and what COMPARED times on it, checked and warmed up."""
    engine, n_exact, n_patterns = build_engine(n)
    paths = request_paths(n_exact, n_patterns, sample, seed=n)
    check_answers(engine, paths)
    loops: dict[str, tuple[Loop, Sequence[Any]]] = {}
    for key, _, fewer in COMPARED:
        count = max(100, sample // fewer)
        if key == "url_for":
            calls = url_for_calls(n_patterns, count, seed=n)
            check_url_for(engine, calls)
            loops[key] = (url_for_loop(engine), calls)
        else:
            call, kind = key.split("_")
            method = engine.resolve if call == "resolve" else engine.explain
            loops[key] = (get_loop(method), paths[kind][:count])
    for loop, items in loops.values():
        warm_up(loop, items)
    return loops


def serve_worker() -> None:
    """``--worker``: time what the parent asks, one sample per request, with the waypost that
    PYTHONPATH names (this tree's or the baseline's). Requests and answers are JSON lines."""
    import importlib.util

    import waypost

    compiled = importlib.util.find_spec("waypost._plainstore") is not None

    def answer(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    answer({"waypost": waypost.__file__, "compiled": compiled})
    loops: dict[str, tuple[Loop, Sequence[Any]]] = {}
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "build":
            loops = {}
            gc.enable()
            gc.collect()
            start = time.perf_counter()
            loops = compared_loops(request["size"], request["sample"])
            answer({"seconds": time.perf_counter() - start})
            # Off from here to the next build, collected once: a collection per sample would walk
            # every object of a million-rule engine, seconds of the run for nothing.
            gc.collect()
            gc.disable()
        elif request["op"] == "time":
            loop, items = loops[request["key"]]
            answer({"ns": sample_ns(loop, items)})


class TreeWorker:
    """A worker process running the code of one tree (``python bench_engine.py --worker``)."""

    def __init__(self, label: str, tree: Path) -> None:
        self.label = label
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker"],
            env=tree_env(tree),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello = self._read()
        # The PYTHONPATH must have won over the editable install: else both workers time one tree.
        if not Path(hello["waypost"]).resolve().is_relative_to(tree / "src"):
            self.close()
            raise SystemExit(f"{label}: imported waypost from {hello['waypost']}, not {tree}/src")
        self.compiled: bool = hello["compiled"]

    def _read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            raise SystemExit(f"the {self.label} worker stopped (exit code {self.proc.wait()})")
        return dict(json.loads(line))

    def ask(self, **request: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def paired_figures(samples: dict[str, list[float]]) -> dict[str, float]:
    """Both medians and the median of the round-by-round ratios this tree / baseline."""
    return {
        "this": statistics.median(samples["this"]),
        "baseline": statistics.median(samples["baseline"]),
        "ratio": median_ratio(samples["this"], samples["baseline"]),
    }


def compare(
    baseline: Path, sizes: list[int], sample: int, repeats: int, load_size: int, load_repeats: int
) -> None:
    """Time this tree and ``baseline`` on the same measurements, samples in turn, and print
    both medians and the ratio this / baseline of each (about 1.0: no change)."""
    trees = {"this": ROOT, "baseline": baseline}
    started = time.time()

    def say(text: str) -> None:
        print(f"[{time.time() - started:6.1f}s] {text}", flush=True)

    def in_turn(round_number: int) -> list[str]:
        # Which tree goes first alternates: neither always runs on the warmer machine.
        return list(trees) if round_number % 2 == 0 else list(reversed(trees))

    rows: list[tuple[str, str, dict[str, float], str]] = []
    csv_path = write_exact_csv(load_size)
    say(f"loading {csv_path.name} in fresh interpreters, {load_repeats} rounds")
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
    for round_number in range(load_repeats):
        for label in in_turn(round_number):
            runs[label].append(load_once(csv_path, trees[label]))
    for key, label, unit in (
        ("seconds", "Engine.from_file() CSV", "s"),
        ("peak_kb", "peak RSS", "MB"),
    ):
        scale = 1 / 1024 if unit == "MB" else 1.0
        samples = {tree: [run[key] * scale for run in runs[tree]] for tree in trees}
        rows.append((label, f"{load_size:,}", paired_figures(samples), unit))

    workers = {label: TreeWorker(label, tree) for label, tree in trees.items()}
    try:
        if workers["this"].compiled != workers["baseline"].compiled:
            print(
                "warning: one tree runs without the compiled store (_plainstore): "
                + ", ".join(f"{w.label}: {w.compiled}" for w in workers.values()),
                flush=True,
            )
        for n in sizes:
            write_rules(n)  # once, here, not by both workers at once
            build: dict[str, list[float]] = {}
            for label, worker in workers.items():
                say(f"building the engine with {n:,} rules ({label})")
                build[label] = [worker.ask(op="build", size=n, sample=sample)["seconds"]]
            rows.append(
                ("build (load_rules + Engine), 1 sample", f"{n:,}", paired_figures(build), "s")
            )
            for key, label, _ in COMPARED:
                samples = {tree: [] for tree in trees}
                for round_number in range(repeats):
                    for tree in in_turn(round_number):
                        samples[tree].append(workers[tree].ask(op="time", key=key)["ns"])
                figures = paired_figures(samples)
                rows.append((label, f"{n:,}", figures, "µs"))
                say(
                    f"  {label}: {_us(figures['this'])} vs {_us(figures['baseline'])} µs, "
                    f"{figures['ratio']:.3f}"
                )
    finally:
        for worker in workers.values():
            worker.close()
    print()
    print(f"This tree ({ROOT}) against --baseline-src {baseline}: medians of {repeats} samples")
    print("taken in turn; the ratio is the median of the round-by-round ratios (< 1: faster now).")
    print()
    print("| measurement | rules | this tree | baseline | this / baseline |")
    print("|---|---:|---:|---:|---:|")
    for label, size, figures, unit in rows:
        if unit == "µs":
            this, base = _us(figures["this"]), _us(figures["baseline"])
        else:
            this, base = f"{figures['this']:.2f}", f"{figures['baseline']:.2f}"
        print(f"| {label} | {size} | {this} {unit} | {base} {unit} | {figures['ratio']:.3f} |")
    say("done")


# --------------------------------------------------------------------------------------------
# The run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument(
        "--tiny", action="store_true", help="tiny sizes, seconds: that it runs, not its figures"
    )
    parser.add_argument(
        "--repeats", type=int, help="samples per figure (median; 5, with --baseline-src 15)"
    )
    add_baseline_argument(parser)
    parser.add_argument(
        "--sizes",
        help="with --baseline-src: the rule-set sizes to compare, e.g. 1000,100000 "
        "(default: those of the run)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        serve_worker()
        return
    quick = args.quick
    repeats = max(5, args.repeats or 5)
    sizes = [1_000, 10_000, 100_000] if quick else [1_000, 10_000, 100_000, 1_000_000]
    router_sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000, 1_000_000]
    sample = 20_000 if quick else 100_000
    load_size = 100_000 if quick else 1_000_000
    budget = 200_000 if quick else 2_000_000  # Starlette: routes scanned per sample
    if args.tiny:
        quick = True
        sizes = router_sizes = [200, 1_000]
        sample, load_size, budget = 500, 2_000, 20_000
    baseline = checked_baseline_src(args.baseline_src)
    if baseline is not None:
        if args.sizes:
            sizes = [int(size) for size in args.sizes.split(",")]
        # Half the paths of a run alone: 15 rounds of two trees stay within about three minutes.
        compare(baseline, sizes, sample // 2, max(5, args.repeats or 15), load_size, 3)
        return
    if args.sizes:
        parser.error("--sizes goes with --baseline-src")
    sys.path.insert(0, str(ROOT / "src"))  # this tree's waypost, installed or not
    started = time.time()

    def say(text: str) -> None:
        print(f"[{time.time() - started:6.1f}s] {text}", flush=True)

    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
        "sample_paths": sample,
        "repeats": repeats,
        "sizes": {},
        "routers": {},
    }

    # 1. Loading exact rules from CSV in a fresh interpreter, first: ru_maxrss carries over from
    #    the parent at fork, so the parent must still be small (see measure_load too).
    csv_path = write_exact_csv(load_size)
    say(f"loading {csv_path.name} in a fresh interpreter")
    results["load"] = measure_load(csv_path, 1 if quick else 3)
    results["load"]["file"] = csv_path.name
    results["load"]["file_mb"] = csv_path.stat().st_size / 2**20
    say(
        f"  {results['load']['rules']:,} rules in {results['load']['seconds']:.2f} s, peak RSS "
        f"{results['load']['peak_rss_mb']:.0f} MB (empty interpreter with waypost "
        f"{results['load']['base_rss_mb']:.0f} MB)"
    )

    # 2. The engine at every size: lookup vs dict.get, resolve of exact hits, pattern hits, misses.
    #    The smallest engine stays loaded: each larger one is timed against it in turn (growth).
    first: tuple[Engine, dict[str, list[str]]] | None = None
    for n in sizes:
        say(f"building the engine with {n:,} rules")
        engine, n_exact, n_patterns = build_engine(n)
        paths = request_paths(n_exact, n_patterns, sample, seed=n)
        check_answers(engine, paths)
        row: dict[str, Any] = {"exact_rules": n_exact, "pattern_rules": n_patterns}
        # The baseline: a plain dict of the same exact paths to their rules (the matcher keeps
        # packed literal redirects in its compiled store, not in a dict).
        baseline = {rule.path: rule for rule in engine.rules if rule.pattern is None}
        loops = {"dict_get": call_loop(baseline.get), "lookup": call_loop(engine.matcher.lookup)}
        # What resolve() asks the matcher: the first candidate (for a packed rule its target and
        # meta, not the rule object).
        loops["find"] = call_loop(engine.matcher.first)
        paired = time_paired(loops, paths["exact"], max(repeats, 9))
        row["dict_get_ns"] = paired["dict_get"]
        row["lookup_ns"] = paired["lookup"]
        row["lookup_ratio"] = paired["lookup_ratio"]
        row["find_ns"] = paired.get("find")
        # A server receives every path as a new str (its hash not computed yet): both sides
        # decode it from bytes, and resolve() is timed against dict.get sample by sample.
        fresh = [path.encode() for path in paths["exact"]]
        fresh_paired = time_paired(
            {"dict_get": fresh_loop(baseline.get), "resolve": fresh_get_loop(engine.resolve)},
            fresh,
            max(repeats, 9),
        )
        row["fresh_dict_get_ns"] = fresh_paired["dict_get"]
        row["fresh_resolve_ns"] = fresh_paired["resolve"]
        row["fresh_ratio"] = fresh_paired["resolve_ratio"]
        del baseline, fresh
        for kind in ("exact", "pattern", "miss"):
            row[f"resolve_{kind}_ns"] = time_per_call(
                get_loop(engine.resolve), paths[kind], repeats
            )
        row["tricks"] = time_tricks(engine, paths["exact"], max(repeats, 9))
        if first is None:
            first = (engine, paths)
        else:
            for kind in ("exact", "pattern", "miss"):
                growth = time_growth(
                    get_loop(first[0].resolve),
                    first[1][kind],
                    get_loop(engine.resolve),
                    paths[kind],
                    max(repeats, 9),
                )
                row[f"growth_{kind}"] = growth
        results["sizes"][str(n)] = row
        say(
            f"  lookup {row['lookup_ns']:.0f} ns = {row['lookup_ratio']:.2f}x dict.get; resolve "
            f"exact {row['resolve_exact_ns']:.0f} ns, pattern {row['resolve_pattern_ns']:.0f} ns, "
            f"miss {row['resolve_miss_ns']:.0f} ns"
        )
        del engine, paths
        gc.collect()
    del first
    gc.collect()

    # 3. Werkzeug and Starlette on the same rules. Werkzeug and waypost are timed side by side,
    #    sample by sample (their ratio is the median of the samples' ratios); Starlette, which
    #    scans every route, on its own and only up to STARLETTE_MAX routes.
    for n in router_sizes:
        _, _, n_exact, n_patterns = write_rules(n)
        engine, _, _ = build_engine(n)
        paths = request_paths(n_exact, n_patterns, sample, seed=n + 1)
        entry: dict[str, Any] = {}
        say(f"building werkzeug with {n:,} rules")
        start = time.perf_counter()
        route = werkzeug_router(n)
        entry["werkzeug_build_s"] = time.perf_counter() - start
        for kind in ("exact", "pattern", "miss"):
            side = time_paired(
                {"waypost": get_loop(engine.resolve), "werkzeug": call_loop(route)},
                paths[kind],
                repeats,
            )
            entry[f"waypost_{kind}_ns"] = side["waypost"]
            entry[f"werkzeug_{kind}_ns"] = side["werkzeug"]
            entry[f"werkzeug_ratio_{kind}"] = side["werkzeug_ratio"]
        del route
        gc.collect()
        if n <= STARLETTE_MAX:
            say(f"building starlette with {n:,} rules")
            start = time.perf_counter()
            route = starlette_router(n)
            entry["starlette_build_s"] = time.perf_counter() - start
            count = max(10, min(sample, budget // n))
            for kind in ("exact", "pattern", "miss"):
                theirs = time_per_call(call_loop(route), paths[kind][:count], repeats)
                entry[f"starlette_{kind}_ns"] = theirs
                entry[f"starlette_ratio_{kind}"] = theirs / entry[f"waypost_{kind}_ns"]
            del route
            gc.collect()
        results["routers"][str(n)] = entry
        say(
            "  waypost/werkzeug ns: "
            + ", ".join(
                f"{k} {entry[f'waypost_{k}_ns']:.0f}/{entry[f'werkzeug_{k}_ns']:.0f} "
                f"({entry[f'werkzeug_ratio_{k}']:.1f}x)"
                for k in ("exact", "pattern", "miss")
            )
        )
        del engine, paths
        gc.collect()

    results["targets"] = evaluate(results, sizes, router_sizes)
    results["elapsed_s"] = time.time() - started
    markdown = render(results, sizes, router_sizes)
    print()
    print(markdown)
    if args.tiny or os.environ.get("WAYPOST_BENCH_NO_WRITE") == "1":
        return  # results/ keeps the real runs' figures
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "engine.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "engine.md").write_text(markdown, encoding="utf-8")
    say(f"wrote {RESULTS / 'engine.json'} and {RESULTS / 'engine.md'}")


def evaluate(
    results: dict[str, Any], sizes: list[int], router_sizes: list[int]
) -> list[dict[str, Any]]:
    """Each target: what it asks, the figure measured, and PASS or FAIL."""
    big = results["sizes"][str(sizes[-1])]
    load = results["load"]
    at = f"{sizes[-1]:,} rules"
    targets = []

    def add(name: str, figure: str, ok: bool) -> None:
        targets.append({"target": name, "measured": figure, "pass": bool(ok)})

    add(
        f"exact lookup <= {LOOKUP_RATIO_MAX:g}x dict.get ({at})",
        f"{big['lookup_ratio']:.2f}x ({big['lookup_ns']:.0f} vs {big['dict_get_ns']:.0f} ns)",
        big["lookup_ratio"] <= LOOKUP_RATIO_MAX,
    )
    add(
        f"resolve exact hit <= {EXACT_RESOLVE_MAX_US:g} us ({at})",
        f"{big['resolve_exact_ns'] / 1000:.2f} us",
        big["resolve_exact_ns"] <= EXACT_RESOLVE_MAX_US * 1000,
    )
    add(
        f"resolve pattern hit <= {PATTERN_RESOLVE_MAX_US:g} us ({at})",
        f"{big['resolve_pattern_ns'] / 1000:.2f} us",
        big["resolve_pattern_ns"] <= PATTERN_RESOLVE_MAX_US * 1000,
    )
    for n in sizes:
        row = results["sizes"][str(n)]
        add(
            f"miss <= pattern hit ({n:,} rules)",
            f"{row['resolve_miss_ns'] / 1000:.2f} us vs {row['resolve_pattern_ns'] / 1000:.2f} us",
            row["resolve_miss_ns"] <= row["resolve_pattern_ns"],
        )
        if n >= DICT_GET_FROM and "fresh_ratio" in row:
            add(
                f"resolve exact hit <= {DICT_GET_RATIO_MAX:g}x dict.get, fresh path strings "
                f"({n:,} rules)",
                f"{row['fresh_ratio']:.2f}x ({row['fresh_resolve_ns']:.0f} vs "
                f"{row['fresh_dict_get_ns']:.0f} ns)",
                row["fresh_ratio"] <= DICT_GET_RATIO_MAX,
            )
    add(
        f"load {load['rules']:,} CSV rules < {LOAD_SECONDS_MAX:g} s",
        f"{load['seconds']:.2f} s",
        load["seconds"] < LOAD_SECONDS_MAX,
    )
    add(
        f"load {load['rules']:,} CSV rules < {LOAD_RSS_MAX_MB:g} MB peak RSS",
        f"{load['peak_rss_mb']:.0f} MB (interpreter + waypost: {load['base_rss_mb']:.0f} MB)",
        load["peak_rss_mb"] < LOAD_RSS_MAX_MB,
    )
    for n in router_sizes:
        entry = results["routers"][str(n)]
        for kind, least in (("pattern", WERKZEUG_PATTERN_MIN), ("exact", WERKZEUG_EXACT_MIN)):
            ratio = entry[f"werkzeug_ratio_{kind}"]
            add(
                f"{kind} hit >= {least:g}x faster than Werkzeug ({n:,} rules)",
                f"{ratio:.1f}x",
                ratio >= least,
            )
    starlette = [n for n in router_sizes if n <= STARLETTE_MAX]
    first, last = (
        results["routers"][str(starlette[0])],
        results["routers"][str(starlette[-1])],
    )
    # Waypost's growth is the paired one (both engines loaded, samples in turn) where the size
    # was timed that way; Starlette's (seconds a sample at 100,000 routes) needs no pairing.
    paired_row = results["sizes"].get(str(starlette[-1]), {})
    ours = max(
        paired_row[f"growth_{k}"]["median"]
        if f"growth_{k}" in paired_row and starlette[0] == sizes[0]
        else last[f"waypost_{k}_ns"] / first[f"waypost_{k}_ns"]
        for k in ("exact", "pattern", "miss")
    )
    theirs = min(
        last[f"starlette_{k}_ns"] / first[f"starlette_{k}_ns"] for k in ("exact", "pattern", "miss")
    )
    add(
        f"flat where Starlette grows ({starlette[0]:,} -> {starlette[-1]:,} rules)",
        f"waypost {ours:.2f}x, Starlette {theirs:.0f}x",
        ours < GROWTH_MAX,
    )
    return targets


def _us(ns: float) -> str:
    return f"{ns / 1000:.2f}" if ns < 100_000 else f"{ns / 1000:,.0f}"


def render(results: dict[str, Any], sizes: list[int], router_sizes: list[int]) -> str:
    """The Markdown snippet for the README."""
    machine = results["machine"]
    lines = [
        "### Benchmark: the core",
        "",
        f"`python benchmarks/bench_engine.py{' --quick' if results['quick'] else ''}` on "
        f"{results['date'][:10]}, {machine['implementation']} {machine['python']}, "
        f"{machine['platform']}, {machine['cpus']} CPUs (shared machine). Medians of "
        f"{results['repeats']} samples over {results['sample_paths']:,} shuffled paths drawn "
        "across "
        "the whole rule set, timed in CPU time of the benchmark thread (time spent preempted by "
        "other processes on the shared machine is not counted); the rule set of size N has "
        "N/100 pattern rules, the rest exact.",
        "",
        "`dict.get` is a plain dict of the exact paths to their rules; `matcher.lookup` finds the "
        "rule object (literal redirects are packed in the compiled store: its lookup, then the "
        "rule at the index it gives); `matcher.first` is what `resolve()` asks the matcher (for a "
        "packed rule its target and meta, not the rule object).",
        "",
        "| rules | dict.get | matcher.lookup | ratio | matcher.first | resolve exact hit "
        "| resolve pattern hit | resolve miss | exact hit vs dict.get, fresh strings |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        row = results["sizes"][str(n)]
        find = row.get("find_ns")
        lines.append(
            f"| {n:,} | {row['dict_get_ns']:.0f} ns | {row['lookup_ns']:.0f} ns | "
            f"{row['lookup_ratio']:.2f}x | {'-' if find is None else f'{find:.0f} ns'} | "
            f"{_us(row['resolve_exact_ns'])} µs | "
            f"{_us(row['resolve_pattern_ns'])} µs | {_us(row['resolve_miss_ns'])} µs | "
            + (
                f"{row['fresh_ratio']:.2f}x ({row['fresh_resolve_ns']:.0f} vs "
                f"{row['fresh_dict_get_ns']:.0f} ns) |"
                if "fresh_ratio" in row
                else "- |"
            )
        )
    lines += [
        "",
        "The two speed tricks of `waypost.decision`, each against its plain way (ns per "
        "request, paired samples): building a `Decision` with `make_decision()` against the "
        "frozen dataclass's `__init__`, and an exact hit on a packed rule whose `rule` is looked "
        "up only when read, against reading it.",
        "",
        "| rules | dataclass | make_decision | ratio | resolve + read .rule | resolve | ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        tricks = results["sizes"][str(n)].get("tricks")
        if tricks:
            lines.append(
                f"| {n:,} | {tricks['decision_dataclass_ns']:.0f} | "
                f"{tricks['decision_made_ns']:.0f} | {tricks['decision_ratio']:.2f}x | "
                f"{tricks['resolve_reading_rule_ns']:.0f} | {tricks['resolve_lazy_ns']:.0f} | "
                f"{tricks['lazy_ratio']:.2f}x |"
            )
    lines += [
        "",
        "Against other routers on the same rules (µs per request; waypost does the whole "
        "`resolve()`, Werkzeug `MapAdapter.match()`, Starlette the route-matching loop of its "
        "`Router`). Waypost and Werkzeug are timed side by side, and their ratio is the median of "
        "the samples' ratios; Starlette, which scans every route, is timed up to "
        f"{STARLETTE_MAX:,} routes:",
        "",
        "| rules | request | waypost | Werkzeug | Starlette | vs Werkzeug | vs Starlette |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for n in router_sizes:
        entry = results["routers"][str(n)]
        for kind in ("exact", "pattern", "miss"):
            slow = entry.get(f"starlette_{kind}_ns")
            lines.append(
                f"| {n:,} | {kind} | {_us(entry[f'waypost_{kind}_ns'])} | "
                f"{_us(entry[f'werkzeug_{kind}_ns'])} | {'-' if slow is None else _us(slow)} | "
                f"{entry[f'werkzeug_ratio_{kind}']:.1f}x | "
                + ("- |" if slow is None else f"{entry[f'starlette_ratio_{kind}']:,.0f}x |")
            )
    load = results["load"]
    lines += [
        "",
        f"Loading {load['rules']:,} exact rules from CSV ({load['file_mb']:.0f} MB) with "
        f"`Engine.from_file()` in a fresh interpreter (median of {load['repeats']}): "
        f"{load['seconds']:.2f} s, peak RSS {load['peak_rss_mb']:.0f} MB (an interpreter that "
        f"imported waypost: {load['base_rss_mb']:.0f} MB), {load['bytes_per_rule']:.0f} bytes per "
        "rule held after loading.",
        "",
        "| target | measured | |",
        "|---|---|---|",
    ]
    for target in results["targets"]:
        lines.append(
            f"| {target['target']} | {target['measured']} | "
            f"{'PASS' if target['pass'] else 'FAIL'} |"
        )
    if results["quick"]:
        lines += [
            "",
            "_Quick run: smaller sizes than the targets name; the verdicts are indicative._",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
