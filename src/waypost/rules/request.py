"""The request, as every part of Waypost sees it: built once, parsed lazily.

The standalone server builds one from the connection's request head, the ASGI and WSGI middlewares
from a scope or an environ, and :meth:`Request.from_url` from a method and a URL (the CLI, the
admin API, ``Engine.resolve(method, url)``); :meth:`waypost.engine.Engine.resolve` takes it. The
URL is split and the path decoded once, here; only what a rule's conditions read (headers,
cookies, query parameters, Accept) is parsed, when they first read it. Header names are
case-insensitive; repeated headers are joined with ``", "`` (cookies with ``"; "``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, overload
from urllib.parse import unquote, unquote_plus

__all__ = [
    "HOP_BY_HOP",
    "SOURCE_VARIABLE",
    "LazyHeaders",
    "Request",
    "UrlParts",
    "normal_path",
    "parse_url",
    "source_normal_form",
    "split_url",
]

HeaderInput = Mapping[str, str] | Iterable[tuple[str, str]] | None


class LazyHeaders:
    """A request's header pairs, read from what the server gave (an ASGI scope's byte pairs, a
    WSGI environ) by ``read(source)`` when first asked for: most requests are decided by their
    path alone, and decoding a browser's dozen headers up front was most of what a middleware
    added to a request the app answers. Iterating gives the pairs; :meth:`pairs` the list."""

    __slots__ = ("_pairs", "_read", "_source")

    def __init__(self, source: Any, read: Callable[[Any], list[tuple[str, str]]]) -> None:
        self._source = source
        self._read = read
        self._pairs: list[tuple[str, str]] | None = None

    def pairs(self) -> list[tuple[str, str]]:
        """The ``(name, value)`` pairs, read once."""
        pairs = self._pairs
        if pairs is None:
            pairs = self._pairs = self._read(self._source)
            self._source = None
        return pairs

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.pairs())

    def __len__(self) -> int:
        return len(self.pairs())

    def __repr__(self) -> str:
        return f"LazyHeaders({self.pairs()!r})"


#: The hop-by-hop header fields (RFC 9110 7.6.1, and the old Keep-Alive and Proxy-Connection):
#: about one connection, never passed on to another (an upstream, an auth service).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

_MEDIA_JSON = ("application/json",)
_MEDIA_HTML = ("text/html", "application/xhtml+xml")
# Parameters arrive without their leading ";" (item.partition(";")), so q may open the text.
_Q = re.compile(r"(?:^|;)\s*q\s*=\s*([0-9.]+)", re.IGNORECASE)


def normal_path(path: str) -> str | None:
    """The normal form of a decoded request ``path`` when it is not in it, else None: its dot
    segments removed (RFC 3986 §5.2.4: ``/a/./b``, ``/a/../b``, and the ``%2e`` and ``%2F``
    spellings, which decode to them) and each run of slashes made one (``//a``, ``/a//b``), as
    nginx's ``merge_slashes`` and Werkzeug do.

    Browsers never send such paths; an HTTP client, a proxy or the app behind one may resolve
    them where the rules did not (httpx, for one, removes dot segments from the URL it sends), so
    ``/public/../admin`` would reach the app as ``/admin`` past a rule for ``/admin``. The engine
    answers them with a redirect to the normal form instead, which the rules then see.
    """
    segments = path.split("/")
    out: list[str] = []
    for segment in segments[1:-1]:
        if segment == "..":
            if out:
                out.pop()
        elif segment != "." and segment:
            out.append(segment)
    last = segments[-1] if len(segments) > 1 else ""
    if last in (".", ".."):
        if last == ".." and out:
            out.pop()
        out.append("")
    else:
        out.append(last)
    fixed = "/" + "/".join(out)
    return None if fixed == path else fixed


#: A variable of a rule's ``from`` (``<int:year>``): the text inside is the converter's own.
SOURCE_VARIABLE = re.compile(r"<[^<>]*>")


def source_normal_form(source: str, *, encoded: bool = False) -> str | None:
    """The normal form (see :func:`normal_path`) of a rule's ``from``, its variables stood in
    for, when it is not in it, else None: no request reaches such a source, as the engine sends
    such paths to their normal form first. ``encoded``: the source's percent-escapes are still
    to be decoded (an importer's source; the loader hands over decoded ones)."""
    text = SOURCE_VARIABLE.sub("x", source)
    if encoded and "%" in text:
        text = unquote(text, errors="surrogateescape")
    if "//" not in text and "/." not in text:
        return None
    return normal_path(text)


def split_url(url: str) -> tuple[str | None, str, str]:
    """``(host or None, raw path, raw query)`` of a path-with-query or an absolute URL.

    Fast for the common case (``/path?query``); the fragment is dropped.
    """
    host: str | None = None
    if not url.startswith("/"):
        scheme_end = url.find("://")
        if scheme_end > 0:
            rest = url[scheme_end + 3 :]
            cut = len(rest)
            for stop in "/?#":
                found = rest.find(stop)
                if 0 <= found < cut:
                    cut = found
            host = rest[:cut].rpartition("@")[2]
            url = rest[cut:] or "/"
            if not url.startswith("/"):
                url = "/" + url
        else:
            url = "/" + url
    hash_at = url.find("#")
    if hash_at >= 0:
        url = url[:hash_at]
    path, _, query = url.partition("?")
    return host, path, query


#: ``(scheme, host or None, raw path, raw query, decoded path)``: what :func:`parse_url` gives.
UrlParts = tuple[str, str | None, str, str, str]


def parse_url(url: str) -> UrlParts:
    """``(scheme, host or None, raw path, raw query, decoded path)`` of a path with query or an
    absolute URL: what :class:`Request` is made of. The scheme is ``http`` for a path."""
    if url[:1] == "/" and "#" not in url:  # the common case, inline
        host = None
        scheme = "http"
        raw_path, _, query = url.partition("?")
    else:
        host, raw_path, query = split_url(url)
        scheme = url.partition(":")[0].lower() if host is not None else "http"
    path = unquote(raw_path, errors="surrogateescape") if "%" in raw_path else raw_path
    return scheme, host, raw_path, query, path


T = TypeVar("T")


#: Header names -> their lengths, for Request.headers_named() (a few tuples, each a guard's).
_LENGTHS: dict[tuple[str, ...], frozenset[int]] = {}


class _ParsedOnce(Generic[T]):
    """A property parsed from the request when first read and kept in the slot of the same name
    with a leading underscore (a request that no condition reads never parses it)."""

    def __init__(self, parse: Callable[[Request], T]) -> None:
        self.parse = parse
        self.__doc__ = parse.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        # Request.__init__ may set the slot to None: that is unread too.
        self.name = "_" + name  # the slot the value is kept in

    @overload
    def __get__(self, request: None, owner: type) -> _ParsedOnce[T]: ...
    @overload
    def __get__(self, request: Request, owner: type) -> T: ...
    def __get__(self, request: Request | None, owner: type) -> T | _ParsedOnce[T]:
        if request is None:
            return self
        # getattr() with a default, not try/except AttributeError: the unset slot's error is
        # then dropped inside C, where raising and catching it in Python costs about half a
        # microsecond (the first read of headers and cookies is on every guarded request).
        # No parsed value is None.
        value: T | None = getattr(request, self.name, None)
        if value is None:  # not read yet
            value = self.parse(request)
            setattr(request, self.name, value)
        return value


def _quality(params: str) -> float:
    found = _Q.search(params)
    if not found:
        return 1.0
    try:
        return float(found.group(1))
    except ValueError:
        return 0.0


class Request:
    """What conditions look at. ``path`` is percent-decoded; ``query_string`` is raw."""

    __slots__ = (
        "_accept",
        "_cookies",
        "_headers",
        "_host",
        "_language",
        "_query",
        "client_ip",
        "method",
        "now",
        "path",
        "query_string",
        "raw_headers",
        "raw_path",
        "scheme",
    )

    def __init__(
        self,
        method: str,
        raw_path: str,
        query_string: str = "",
        headers: HeaderInput = None,
        host: str | None = None,
        client_ip: str | None = None,
        now: datetime | None = None,
        path: str | None = None,
        scheme: str = "http",
    ) -> None:
        # One is built per request: the parameters are positional-or-keyword (a call with
        # keywords, or to a function with keyword-only ones, costs CPython 3.11 more), and the
        # parsed views (headers, query, cookies, Accept, language) stay unset until first read.
        self.method = method.upper()
        self.raw_path = raw_path
        if path is None:
            path = unquote(raw_path, errors="surrogateescape") if "%" in raw_path else raw_path
        self.path = path
        self.query_string = query_string
        #: The headers as given (pairs, or a mapping), for code that forwards them.
        self.raw_headers = headers
        self._host = host
        self.client_ip = client_ip
        self.now = now
        self.scheme = scheme
        # Unread (see _ParsedOnce): a slot that is set reads faster than one that is not (whose
        # read raises AttributeError inside), and the headers and cookies are read on every
        # guarded request.
        self._headers: dict[str, str] | None = None
        self._cookies: dict[str, str] | None = None

    @classmethod
    def from_url(
        cls,
        method: str,
        url: str | UrlParts,
        headers: HeaderInput = None,
        client_ip: str | None = None,
        now: datetime | None = None,
    ) -> Request:
        """The request for ``method url``: ``url`` is a path with query, or an absolute URL
        (whose host and scheme the request takes; the fragment is dropped), or a URL already
        split by :func:`parse_url`."""
        parts = parse_url(url) if isinstance(url, str) else url
        scheme, host, raw_path, query, path = parts
        return cls(method, raw_path, query, headers, host, client_ip, now, path, scheme)

    @_ParsedOnce
    def headers(self) -> dict[str, str]:
        """Lower-cased header names to values."""
        merged: dict[str, str] = {}
        raw = self.raw_headers
        pairs = raw.items() if isinstance(raw, Mapping) else (raw or ())
        for name, value in pairs:
            key = name.lower()
            if key in merged:
                merged[key] += ("; " if key == "cookie" else ", ") + value
            else:
                merged[key] = value
        return merged

    @property
    def host(self) -> str:
        """The host the request was sent to, lower-cased, without port ('' when unknown)."""
        host = self._host if self._host is not None else self.headers.get("host", "")
        host = host.strip().lower()
        if host.startswith("["):
            return host.partition("]")[0] + "]"
        return host.rpartition(":")[0] if host.count(":") == 1 else host

    @_ParsedOnce
    def query(self) -> dict[str, list[str]]:
        """Query parameters (decoded) to their values, in order; blank values are kept."""
        parsed: dict[str, list[str]] = {}
        for pair in self.query_string.split("&"):
            if not pair:
                continue
            key, _, value = pair.partition("=")
            parsed.setdefault(unquote_plus(key), []).append(unquote_plus(value))
        return parsed

    @_ParsedOnce
    def cookies(self) -> dict[str, str]:
        """Cookie names to values (the first of repeated names wins, as browsers send them)."""
        jar: dict[str, str] = {}
        for chunk in self.headers.get("cookie", "").split(";"):
            name, sep, value = chunk.strip().partition("=")
            if sep and name and name not in jar:
                jar[name] = value.strip().strip('"')
        return jar

    def cookie_header(self) -> str | None:
        """The Cookie header as :attr:`headers` has it (several joined with ``'; '``), None
        without one, without parsing the other headers unless they were read: a guard that
        remembers what a Cookie header got reads it on every request."""
        raw = self.raw_headers
        if type(raw) is LazyHeaders:
            raw = raw.pairs()
        if self._headers is None and (type(raw) is list or type(raw) is tuple):
            # The Cookie headers joined as headers() joins them, without the other headers (a
            # list of pairs is what the adapters give; other inputs are parsed, below: an
            # iterator can be read once only).
            header: str | None = None
            for key, value in raw:
                if len(key) == 6 and key.lower() == "cookie":  # most names are not 6 long
                    header = value if header is None else f"{header}; {value}"
            return header
        return self.headers.get("cookie")

    def headers_named(self, names: tuple[str, ...]) -> Mapping[str, str]:
        """The headers ``names`` (lower case) that were sent, as :attr:`headers` has them (a
        mapping that may hold others too), without parsing the other headers unless they were
        read: a guard that remembers what its credential headers got reads them on every
        request."""
        raw = self.raw_headers
        if type(raw) is LazyHeaders:
            raw = raw.pairs()
        if self._headers is None and (type(raw) is list or type(raw) is tuple):
            # As headers() merges them, from the pairs the adapters give (see cookie_header());
            # no comprehension or map(): each costs CPython 3.11 more than the loop.
            lengths = _LENGTHS.get(names)
            if lengths is None:
                lengths = _LENGTHS[names] = frozenset(len(name) for name in names)
            found: dict[str, str] = {}
            for key, value in raw:
                if len(key) in lengths:  # most names have none of their lengths
                    key = key.lower()
                    if key in names:
                        if key in found:
                            value = found[key] + ("; " if key == "cookie" else ", ") + value
                        found[key] = value
            return found
        return self.headers

    def cookie(self, name: str, header: str | None = None) -> str | None:
        """The value of cookie ``name`` as :attr:`cookies` has it (the first of repeated names),
        or None, without parsing the other cookies (nor, unless they were read, the other
        headers): a guard reads one cookie on every request. ``header``: the
        :meth:`cookie_header` when the caller has it already."""
        if header is None:
            header = self.cookie_header()
        if header is None or not name or name not in header:
            return None  # no chunk is then named ``name`` (cookies() keeps no empty name)
        for chunk in header.split(";"):  # each chunk read as cookies() reads it
            key, sep, value = chunk.strip().partition("=")
            if sep and key == name:
                return value.strip().strip('"')
        return None

    @_ParsedOnce
    def accept(self) -> str:
        """``'html'`` when the client prefers a page (a browser), else ``'json'``.

        A page is preferred when Accept names text/html (or XHTML) explicitly with a quality at
        least that of any JSON type. API clients, ``fetch()`` asking for JSON and ``curl`` (which
        sends ``*/*``) are ``'json'``.
        """
        html = json = 0.0
        for item in self.headers.get("accept", "").split(","):
            media, _, params = item.strip().partition(";")
            media = media.strip().lower()
            q = _quality(params)
            if media in _MEDIA_HTML:
                html = max(html, q)
            elif media in _MEDIA_JSON or media.endswith("+json"):
                json = max(json, q)
        return "html" if html > 0 and html >= json else "json"

    @_ParsedOnce
    def language(self) -> str:
        """The client's most preferred language from Accept-Language, lower-cased ('' if none)."""
        best, best_q = "", 0.0
        for item in self.headers.get("accept-language", "").split(","):
            tag, _, params = item.strip().partition(";")
            tag = tag.strip().lower()
            q = _quality(params)
            if tag and tag != "*" and q > best_q:
                best, best_q = tag, q
        return best

    def current_time(self) -> datetime:
        """``now`` as given (a naive time is taken as UTC, like the rules' times), else UTC now."""
        if self.now is None:
            return datetime.now(UTC)
        # Comparing a naive time with the rules' aware times would raise TypeError.
        return self.now if self.now.tzinfo is not None else self.now.replace(tzinfo=UTC)

    def __repr__(self) -> str:
        return f"Request({self.method!r}, {self.raw_path!r}, {self.query_string!r})"
