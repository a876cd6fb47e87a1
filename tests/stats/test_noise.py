"""waypost.stats.noise: the paths whose 404s are ignored, globs compiled once."""

from __future__ import annotations

import pytest

from waypost.exceptions import SettingsError
from waypost.stats.noise import DEFAULT_NOISE, NoiseFilter


@pytest.mark.parametrize(
    ("path", "noise"),
    [
        ("/favicon.ico", True),
        ("/favicon.ico.bak", False),
        ("/img/favicon.ico", False),
        ("/apple-touch-icon.png", True),
        ("/apple-touch-icon-precomposed.png", True),
        ("/apple-touch-icon-180x180.png", True),
        ("/.well-known/security.txt", True),
        ("/.well-known/change-password", True),
        ("/.well-known", False),
        ("/static/app.js.map", True),
        ("/static/app.js", False),
        ("/sitemap.xml", False),
        ("/robots.txt", True),
        ("/ROBOTS.TXT", False),
        ("/old/page", False),
        ("/", False),
    ],
    ids=lambda value: str(value),
)
def test_the_default_noise(path: str, noise: bool) -> None:
    assert (path in NoiseFilter()) is noise


@pytest.mark.parametrize(
    ("globs", "path", "noise"),
    [
        ((), "/favicon.ico", False),
        (("/wp-*",), "/wp-login.php", True),
        (("/wp-*",), "/blog/wp-login.php", False),
        (("*.php",), "/a/b/c.php", True),
        (("/v?/ping",), "/v1/ping", True),
        (("/v?/ping",), "/v10/ping", False),
        (("/[ab]x",), "/bx", True),
        (("/exact", "/x*"), "/exact", True),
        (("/exact", "/x*"), "/exactly", False),
        ((*DEFAULT_NOISE, "/ads.txt"), "/ads.txt", True),
    ],
    ids=[
        "none",
        "prefix",
        "prefix-elsewhere",
        "suffix",
        "one-char",
        "one-char-only",
        "set",
        "exact",
        "exact-only",
        "extended-default",
    ],
)
def test_an_edited_list(globs: tuple[str, ...], path: str, noise: bool) -> None:
    assert (path in NoiseFilter(globs)) is noise


def test_a_glob_that_cannot_match_a_path_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"'favicon.ico' can never match.*'/favicon.ico'"):
        NoiseFilter(["favicon.ico"])


def test_only_strings_are_paths() -> None:
    assert None not in NoiseFilter()


def test_repr() -> None:
    assert repr(NoiseFilter(["/a", "*.map"])) == "NoiseFilter(['/a', '*.map'])"
