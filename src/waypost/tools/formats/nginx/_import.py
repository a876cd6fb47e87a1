"""nginx import: a configuration's redirect subset as Waypost rules (see the package docstring)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._common import (
    REDIRECT_STATUSES,
    Collector,
    Refusal,
    merge_slash_twins,
    query_condition,
)
from .._regex import (
    Ref,
    RegexNotSupported,
    RegexPattern,
    convert_regex,
    parse_dollar_refs,
    render_ref_target,
)
from .._report import ImportResult
from .._text import clean_text
from ._respond import Responder, read_responder, respond_value
from ._syntax import DOLLAR, Node, parse_config, unquote_dollars

__all__ = ["parse_nginx"]


#: The map Waypost's export writes for a target with its own query string (see _export).
_AND_ARGS_MAP = ("$args", "$waypost_and_args")


def split_kept_query(target: str) -> tuple[str, bool]:
    """``target`` without what keeps the request's query string, and whether it did: a
    ``$is_args$args`` after the path, ``$waypost_and_args`` after the target's own query (the
    export's map), or ``$args`` after a bare ``?``; a fragment may follow."""
    head, mark, fragment = target.partition("#")
    for suffix, keep_mark in (("$is_args$args", ""), ("$waypost_and_args", ""), ("?$args", "?")):
        if head.endswith(suffix):
            return head.removesuffix(suffix) + keep_mark + mark + fragment, True
    return target, False


_PATH_VARIABLES = ("$uri", "$request_uri", "$document_uri")


@dataclass(slots=True)
class _MapUse:
    status: int
    keep_query: bool
    hosts: list[str] | None = None
    #: 'rewrite ^ $map last': the values are internal URIs (how Waypost exports respond rules).
    internal: bool = False
    #: Where nginx looks the map up: the server (its index in the file) and the line of the
    #: directive that uses the map; its entries are tried there (see _Importer.order_key).
    server: int = 0
    line: int = 0


def _server_hosts(server: Node) -> list[str] | None:
    """The hosts a ``server`` block answers for, from its ``server_name`` (None for any host)."""
    hosts: list[str] = []
    for child in server.children or []:
        if child.name != "server_name":
            continue
        for name in child.args:
            if name in ("_", "") or name.startswith("~") or name.endswith(".*"):
                continue
            if name.startswith("."):
                hosts.extend([name[1:].lower(), "*" + name.lower()])
            else:
                hosts.append(name.lower())
    return hosts or None


@dataclass(slots=True)
class _Importer:
    lines: list[str]
    collector: Collector = field(default_factory=Collector)
    uses: dict[str, _MapUse] = field(default_factory=dict)
    #: Every map by its variable, and the guard of a map that 'if ($guard = $uri)' checks.
    maps: dict[str, Node] = field(default_factory=dict)
    guards: dict[str, str] = field(default_factory=dict)
    #: Internal locations that answer, by (modifier, path), and the maps they read.
    responders: dict[tuple[str, str], Responder] = field(default_factory=dict)
    responder_maps: set[str] = field(default_factory=set)
    #: nginx's order of each rule of the collector (see order_key), and the server being read
    #: (counted in both passes) with its prefix locations and whether it has regex locations.
    keys: list[tuple[int, ...]] = field(default_factory=list)
    server: int = 0
    prefixes: list[tuple[str, str]] = field(default_factory=list)
    regex_locations: bool = False

    def raw(self, node: Node) -> str:
        return self.lines[node.line - 1].strip()

    def skip(self, node: Node, reason: str) -> None:
        self.collector.skip(node.line, self.raw(node), reason)

    def add(
        self, node: Node, rule: dict[str, Any], hosts: list[str] | None, key: tuple[int, ...]
    ) -> None:
        """Add ``rule`` read from ``node``, tried where ``key`` says (see :meth:`order_key`)."""
        if hosts:
            rule.setdefault("when", {})["host"] = hosts[0] if len(hosts) == 1 else list(hosts)
        before = len(self.collector.rules)
        self.collector.add(node.line, self.raw(node), rule)
        if len(self.collector.rules) > before:
            self.keys.append(key)

    def order_key(self, node: Node, location: Node | None) -> tuple[int, ...]:
        """Where nginx tries the rule read from ``node`` (inside ``location``, if any).

        nginx runs a server's ``rewrite`` and ``return`` directives in file order (a map's plain
        keys, then its regex keys in order, where the map is used), then picks a location: an
        exact ``=`` one; else the longest prefix if it is ``^~``; else the first regex location
        in file order; else the longest prefix. Inside a location its rewrites run in order,
        then its return. As one list tried in order (the imported rules are ``order:
        first_match``): server directives, exact locations, ``^~`` prefixes that no longer plain
        prefix extends (longest first), regex locations, the other prefixes (longest first).
        """
        if location is None:
            return (self.server, 0, node.line, 0, 0)
        modifier, path = _location_key(location)
        if modifier == "=":
            where: tuple[int, ...] = (1, 0, location.line)
        elif modifier in ("~", "~*"):
            where = (3, 0, location.line)
        elif modifier == "^~" and not self._extended(path):
            where = (2, -len(path), location.line)
        else:
            where = (4, -len(path), location.line)
        return (self.server, *where, node.line)

    def map_key(self, use: _MapUse, entry: Node) -> tuple[int, ...]:
        """Where nginx tries a map entry: where the map is used, plain keys before regexes."""
        return (use.server, 0, use.line, 1 if entry.name.startswith("~") else 0, entry.line)

    def _extended(self, path: str) -> bool:
        """True when a longer plain prefix location starts with the ``^~`` prefix ``path``."""
        return any(
            modifier == "" and len(other) > len(path) and other.startswith(path)
            for modifier, other in self.prefixes
        )

    # -- pass 1: how map variables are used ---------------------------------------------------

    def find_uses(self, nodes: list[Node], hosts: list[str] | None = None) -> None:
        for node in nodes:
            if node.name == "server":
                self.server += 1
            if node.name == "return" and len(node.args) == 2 and node.args[0].isdigit():
                self._use(node, node.args[1], int(node.args[0]), hosts)
            elif _internal_rewrite(node) and node.args[1].startswith("$"):
                use = _MapUse(0, False, hosts, internal=True, server=self.server, line=node.line)
                self.uses.setdefault(node.args[1], use)
            elif node.name == "rewrite" and len(node.args) >= 2 and node.args[0] == "^":
                flag = node.args[2] if len(node.args) > 2 else "redirect"
                status = 301 if flag == "permanent" else 302
                target = node.args[1]
                target = target[:-1] if target.endswith("?") else target + "$is_args$args"
                self._use(node, target, status, hosts)
            elif node.name == "map" and len(node.args) == 2:
                self.maps[node.args[1]] = node
            elif node.name == "if":
                self._find_guard(node)
            elif node.name == "location":
                self._find_responder(node)
            if node.children is not None:
                inner = _server_hosts(node) if node.name == "server" else hosts
                self.find_uses(node.children, inner)

    def _find_guard(self, node: Node) -> None:
        # 'if ($waypost_exact_301_path = $uri) { return 301 $waypost_exact_301; }': how Waypost
        # exports case-sensitive exact paths (see export_nginx).
        # Respond rules: 'if ($waypost_exact_respond_path = $uri) { rewrite ^ $... last; }'.
        guard = re.fullmatch(r"\(\s*(\$\w+)\s*=\s*\$uri\s*\)", " ".join(node.args))
        inner = node.children or []
        if not guard or len(inner) != 1:
            return
        if inner[0].name == "return" and len(inner[0].args) == 2:
            target = split_kept_query(inner[0].args[1])[0]
        elif _internal_rewrite(inner[0]):
            target = inner[0].args[1]
        else:
            return
        if re.fullmatch(r"\$\w+", target):
            self.guards[target] = guard.group(1)

    def _find_responder(self, node: Node) -> None:
        responder = read_responder(node)
        if responder is not None:
            self.responders[_location_key(node)] = responder
            for value in (responder.text, *(value for _, value in responder.headers)):
                if re.fullmatch(r"\$\w+", value):
                    self.responder_maps.add(value)

    def _use(self, node: Node, target: str, status: int, hosts: list[str] | None) -> None:
        name, keep = split_kept_query(target)
        if re.fullmatch(r"\$\w+", name):
            use = _MapUse(status, keep, hosts, server=self.server, line=node.line)
            self.uses.setdefault(name, use)

    # -- pass 2: rules ------------------------------------------------------------------------

    def walk(self, nodes: list[Node], hosts: list[str] | None, location: Node | None) -> None:
        for node in nodes:
            handler = getattr(self, f"on_{node.name}", None)
            if node.name in ("http", "events", "stream", "upstream", "types"):
                if node.name == "http" and node.children is not None:
                    self.walk(node.children, hosts, location)
            elif handler is not None:
                handler(node, hosts, location)

    def on_server(self, node: Node, hosts: list[str] | None, location: Node | None) -> None:
        self.server += 1
        children = node.children or []
        locations = [_location_key(child) for child in children if child.name == "location"]
        self.prefixes = [(m, path) for m, path in locations if m in ("", "^~")]
        self.regex_locations = any(m in ("~", "~*") for m, _ in locations)
        self.walk(children, _server_hosts(node), None)

    def on_include(self, node: Node, hosts: list[str] | None, location: Node | None) -> None:
        self.skip(node, "included files are not read; import them separately")

    def on_map(self, node: Node, hosts: list[str] | None, location: Node | None) -> None:
        if tuple(node.args) == _AND_ARGS_MAP:
            return  # the export's own map, read with the targets that use it
        if len(node.args) != 2 or node.args[0] not in _PATH_VARIABLES:
            self.skip(node, "only maps of $uri or $request_uri hold redirects; map ignored")
            return
        variable = node.args[1]
        if variable in self.guards.values() or variable in self.responder_maps:
            return  # read with the map it guards, in _guarded_paths, or by _respond_at
        use = self.uses.get(variable)
        if use is None:
            use = _MapUse(301, False)
            self.collector.note(
                node.line,
                self.raw(node),
                f"no 'return ... {variable};' uses this map; assumed 'return 301 {variable};'",
            )
        guarded: dict[str, str] | None = None
        if variable in self.guards:
            guard = self.guards[variable]
            if node.args[0] != "$uri" or guard not in self.maps:
                self.skip(node, f"'if ({guard} = $uri)' checks this map; only a map of $uri "
                          f"with the map {guard} in the same file is read")  # fmt: skip
                return
            guarded = self._guarded_paths(self.maps[guard])
        for entry in node.children or []:
            self._map_entry(entry, use, node.args[0] == "$request_uri", use.hosts or hosts, guarded)

    def _guarded_paths(self, guard: Node) -> dict[str, str]:
        """The guard map's paths by lowercased key: nginx finds a plain key ignoring case."""
        out: dict[str, str] = {}
        for entry in guard.children or []:
            if entry.name != "default" and not entry.name.startswith("~") and entry.args:
                out.setdefault(entry.name.lower(), unquote_dollars(entry.args[0]))
        return out

    def _map_entry(
        self,
        entry: Node,
        use: _MapUse,
        request_uri: bool,
        hosts: list[str] | None,
        guarded: dict[str, str] | None = None,
    ) -> None:
        if entry.name == "default":
            if entry.args not in ([""], ["0"]):
                self.skip(entry, "a map default redirects every other path; not imported")
            return
        if entry.name in ("hostnames", "volatile", "include") or len(entry.args) != 1:
            self.skip(entry, f"map entry {entry.name!r} is not supported")
            return
        key, value = entry.name, entry.args[0]
        if not value:
            self.skip(entry, "an empty value means no redirect")
            return
        value, kept = split_kept_query(value)
        keep = kept or use.keep_query
        case: dict[str, str] = {"case": "insensitive"}
        if guarded is not None:
            # The 'if' compares the guard map's value with $uri exactly: the rule is that path,
            # case-sensitive.
            exact = guarded.get(key.lower())
            if key.startswith("~") or exact is None or exact.lower() != key.lower():
                self.skip(entry, "the 'if (... = $uri)' that guards this map never holds here")
                return
            key, case = exact, {}
        try:
            if use.internal:
                if key.startswith("~") or request_uri:
                    raise Refusal("only plain keys of a $uri map lead to respond locations")
                respond = {"from": key, "respond": self._respond_at(value)}
                made = {**respond, "trailing_slash": "strict", **case}
                self.add(entry, made, hosts, self.map_key(use, entry))
                return
            if key.startswith("~"):
                insensitive = key.startswith("~*")
                regex = key[2:] if insensitive else key[1:]
                converted = convert_regex(regex, case_insensitive=insensitive)
                rules = self._regex_rules(converted, value, {"to": use.status}, keep)
            else:
                path, _, query = key.partition("?") if request_uri else (key, "", "")
                # "Strings are matched ignoring the case" (nginx's map documentation): a plain
                # key '/Old' also takes '/OLD' and '/old'.
                rule: dict[str, Any] = {
                    "from": path,
                    "to": self._plain_target(value),
                    "status": use.status,
                    "trailing_slash": "strict",
                    **case,
                }
                if not keep:
                    rule["query"] = "drop"
                if query:
                    rule["when"] = {"query": query_condition(query)}
                rules = [rule]
        except (Refusal, RegexNotSupported) as error:
            self.skip(entry, str(error))
            return
        for rule in rules:
            self.add(entry, rule, hosts, self.map_key(use, entry))

    def _respond_at(self, uri: str) -> int | dict[str, Any]:
        """The respond value of an internal ``uri``: its location's status, and the text and
        headers the location's maps give for it."""
        responder = self._responder_at(uri)
        if responder is None:
            raise Refusal(f"no internal location answers {uri!r}")
        headers = [(name, self._value_at(value, uri)) for name, value in responder.headers]
        return respond_value(responder, self._value_at(responder.text, uri), headers)

    def _responder_at(self, uri: str) -> Responder | None:
        """The internal location nginx chooses for ``uri``: exact, else the longest prefix."""
        exact = self.responders.get(("=", uri))
        prefixes = [
            (path, responder)
            for (modifier, path), responder in self.responders.items()
            if modifier in ("", "^~") and uri.startswith(path)
        ]
        if exact is not None or not prefixes:
            return exact
        return max(prefixes, key=lambda item: len(item[0]))[1]

    def _responder_of(self, node: Node) -> Responder | None:
        return self.responders.get(_location_key(node))

    def _value_at(self, value: str, uri: str) -> str:
        """``value`` for the request ``uri``: a map's entry (keys ignoring case) or the text."""
        found = self.maps.get(value) if re.fullmatch(r"\$\w+", value) else None
        if found is not None:
            entries = {e.name.lower(): e.args for e in found.children or [] if len(e.args) == 1}
            value = (entries.get(uri.lower()) or entries.get("default") or [""])[0]
        if "$" in value.replace(DOLLAR, ""):
            raise Refusal(f"the response {value!r} uses nginx variables")
        return unquote_dollars(value)

    def _plain_target(self, value: str) -> str:
        if "$" in value:
            raise Refusal(f"the target {value!r} uses nginx variables")
        return value.replace("{", "{{").replace("}", "}}")

    def _regex_rules(
        self, converted: RegexPattern, target: str, action: Mapping[str, int | None], keep: bool
    ) -> list[dict[str, Any]]:
        pieces = parse_dollar_refs(target, named=True)
        for piece in pieces:
            if isinstance(piece, Ref) and piece.key not in converted.refs:
                raise Refusal(f"the target uses the nginx variable {piece.text}")
        rules = []
        for pattern, empty in converted.variants():
            rule: dict[str, Any] = {"from": pattern}
            rendered = render_ref_target(pieces, converted.refs, empty)
            kind, status = next(iter(action.items()))
            rule[kind] = rendered
            if status is not None:
                rule["status"] = status
            if not keep:
                rule["query"] = "drop"
            _slash(rule, converted)
            rules.append(rule)
        return rules

    def on_rewrite(self, node: Node, hosts: list[str] | None, location: Node | None) -> None:
        if len(node.args) < 2:
            self.skip(node, "a rewrite needs a regex and a replacement")
            return
        regex, target = node.args[0], node.args[1]
        flag = node.args[2] if len(node.args) > 2 else ""
        if regex == "^" and re.fullmatch(r"\$\w+(\$is_args\$args)?\??", target):
            return  # the use of a map, read in pass 1
        keep = not target.endswith("?")
        target = target.removesuffix("?")
        if target.startswith(("http://", "https://", "$scheme")):
            flag = flag if flag in ("permanent",) else "redirect"
        action: dict[str, int | None]
        if flag == "permanent":
            action = {"to": 301}
        elif flag == "redirect":
            action = {"to": 302}
        elif flag in ("last", "break", ""):
            action = {"rewrite": None}
        else:
            self.skip(node, f"unknown rewrite flag {flag!r}")
            return
        try:
            converted = convert_regex(regex)
            if location is not None:
                self._check_inside(location, regex, converted)
            rules = self._regex_rules(converted, target, action, keep)
        except (Refusal, RegexNotSupported) as error:
            self.skip(node, str(error))
            return
        for note in converted.notes:
            self.collector.note(node.line, self.raw(node), note)
        key = self.order_key(node, location)
        for rule in rules:
            self.add(node, rule, hosts, key)

    def _check_inside(self, location: Node, regex: str, converted: RegexPattern) -> None:
        args = location.args
        # 'location ~ R { rewrite R ...; }' (how Waypost exports rewrites) runs exactly where R
        # matches; '(?i)' in the rewrite stands for '~*'.
        if len(args) == 2 and args[0] in ("~", "~*"):
            same = regex == ("(?i)" if args[0] == "~*" else "") + args[1]
            if same:
                return
        prefix = args[0] if len(args) == 1 else None
        first = converted.pieces[0]
        if prefix is None or not isinstance(first, str) or not first.startswith(prefix):
            raise Refusal(
                f"this rewrite only runs inside 'location {' '.join(args)}'; its regex could "
                "match paths outside it"
            )

    def on_location(self, node: Node, hosts: list[str] | None, location: Node | None) -> None:
        children = node.children or []
        modifier, path = _location_key(node)
        if modifier == "^~" and self.regex_locations and self._extended(path):
            self.skip(
                node,
                f"a longer prefix location starts with {path!r}: nginx then tries the regex "
                "locations before this one for some paths and not for others, an order one "
                "list of rules cannot keep; not imported",
            )
            return
        if any(child.name == "internal" for child in children):
            if self._responder_of(node) is None:
                self.skip(node, "an internal location is reached only from inside nginx")
            return  # else a respond location, read by _respond_at
        returns = [child for child in children if child.name == "return"]
        rewrites = [child for child in children if child.name == "rewrite"]
        for child in children:
            if child.name == "if":
                self.skip(child, "'if' blocks inside locations are not imported")
        # 'location ~ R { rewrite ^ /.waypost/respond/410/1 last; }': a respond pattern rule.
        if len(rewrites) == 1 and _internal_rewrite(rewrites[0]) and not returns:
            target = rewrites[0].args[1]
            responds = not target.startswith("$") and self._responder_at(target) is not None
        else:
            responds = False
        if responds:
            returns = rewrites
        elif rewrites:
            self.walk(rewrites, hosts, node)
        if not returns:
            if any(_covers(node, rewrite) for rewrite in rewrites):
                return  # a rewrite takes every path the location is chosen for
            # The location serves the paths it is chosen for (files, a proxy): no rule after it
            # in nginx's order may take them, so they are kept as 'pass' rules.
            try:
                rules, _ = self._location_rules(node, ("pass", True))
            except (Refusal, RegexNotSupported) as error:
                self.skip(node, f"the paths this location serves cannot be kept: {error}")
                return
            key = (*self.order_key(node, node)[:-1], _AFTER_ALL)  # after its rewrites
            for rule in rules:
                self.add(node, rule, hosts, key)
            return
        ret = returns[0]
        try:
            if ret.name == "rewrite":
                action: tuple[str, Any] = ("respond", self._respond_at(ret.args[1]))
            else:
                action = self._return_action(ret)
            rules, notes = self._location_rules(node, action)
        except (Refusal, RegexNotSupported) as error:
            self.skip(ret, str(error))
            return
        for note in notes:
            self.collector.note(node.line, self.raw(node), note)
        key = self.order_key(ret, node)
        for rule in rules:
            self.add(ret, rule, hosts, key)

    def _return_action(self, ret: Node) -> tuple[str, Any]:
        args = ret.args
        if len(args) == 1 and not args[0].isdigit():
            return "to", (302, args[0])
        if not args or not args[0].isdigit():
            raise Refusal("cannot read this return")
        status = int(args[0])
        if status in REDIRECT_STATUSES:
            if len(args) != 2:
                raise Refusal(f"return {status} needs a URL")
            return "to", (status, args[1])
        if status == 444:
            raise Refusal("return 444 closes the connection; Waypost cannot")
        if len(args) == 2:
            return "respond", {"status": status, "body": args[1]}
        return "respond", status

    def _location_rules(
        self, node: Node, action: tuple[str, Any]
    ) -> tuple[list[dict[str, Any]], list[str]]:
        args = node.args
        notes: list[str] = []
        kind, value = action
        if not args or args[0].startswith("@"):
            raise Refusal("named locations are only reached internally")
        if args[0] in ("~", "~*"):
            converted = convert_regex(args[1], case_insensitive=args[0] == "~*")
            notes.extend(converted.notes)
            if kind in ("respond", "pass"):
                rules = [{"from": p, kind: value} for p, _ in converted.variants()]
                for item in rules:
                    _slash(item, converted)
                return rules, notes
            status, target = value
            target, keep = split_kept_query(target)
            return self._regex_rules(converted, target, {"to": status}, keep), notes
        exact = args[0] == "="
        path = args[1] if args[0] in ("=", "^~") else args[0]
        if not path.startswith("/") or "<" in path or ">" in path:
            raise Refusal(f"cannot import the location path {path!r}")
        # (pattern, the path below it that '<path:rest>' stands for). Every rule is strict: nginx
        # keeps the trailing slash in $uri, so '/old/a/' must give rest='a/'. The prefix '/x' also
        # matches '/x/'; when the target does not use the path, '/x' and '/x/' merge back into one
        # rule that ignores the slash (merge_slash_twins).
        variants: list[tuple[str, str | None]] = [(path, None)]
        if not exact:
            under = path if path.endswith("/") else path + "/"
            if not path.endswith("/"):
                variants.append((under, None))
                notes.append(
                    f"the prefix location {path!r} also matches paths such as {path + '-x'!r}; "
                    f"imported as {path!r} and {under + '<path:rest>'!r}"
                )
            variants.append((under + "<path:rest>", under))
        rules = []
        for pattern, under_path in variants:
            rule: dict[str, Any] = {"from": pattern}
            if kind in ("respond", "pass"):
                rule[kind] = value
            else:
                status, target = value
                rendered, keep = self._location_target(target, pattern, under_path)
                rule.update({"to": rendered, "status": status})
                if not keep:
                    rule["query"] = "drop"
            rule["trailing_slash"] = "strict"
            rules.append(rule)
        return rules, notes

    def _location_target(self, target: str, path: str, under: str | None) -> tuple[str, bool]:
        target, keep = split_kept_query(target)
        matched = (
            path.replace("{", "{{").replace("}", "}}")
            if under is None
            else (under.replace("{", "{{").replace("}", "}}") + "{rest}")
        )
        out: list[str] = []
        for piece in parse_dollar_refs(target, named=True):
            if isinstance(piece, str):
                out.append(piece.replace("{", "{{").replace("}", "}}"))
            elif piece.key == "request_uri":
                out.append(matched)
                keep = True
            elif piece.key in ("uri", "document_uri"):
                out.append(matched)
            else:
                raise Refusal(f"the target uses the nginx variable {piece.text}")
        return "".join(out), keep

    def on_return(self, node: Node, hosts: list[str] | None, location: Node | None) -> None:
        target = node.args[-1] if node.args else ""
        name = target.removesuffix("$is_args$args")
        if re.fullmatch(r"\$\w+", name) and name in self.uses:
            return  # the use of a map
        self.skip(
            node,
            "a return outside a location redirects every request of the server (a host or "
            "scheme redirect); Waypost rules match paths, so this is left to the server",
        )

    def on_if(self, node: Node, hosts: list[str] | None, location: Node | None) -> None:
        condition = " ".join(node.args)
        variable = condition.strip("( )").split()[0] if condition.strip("( )") else ""
        inner = node.children or []
        known = variable in self.uses or variable in self.guards.values()
        if known and all(child.name in ("return", "rewrite") for child in inner):
            return
        self.skip(node, f"'if {condition}' conditions are not imported")


def parse_nginx(text: str) -> ImportResult:
    """Read the redirects of an nginx configuration; see the module docstring."""
    text = clean_text(text)
    nodes = parse_config(text)
    importer = _Importer(text.split("\n"))
    importer.find_uses(nodes)
    importer.server = 0
    importer.walk(nodes, None, None)
    # In the order nginx tries them (see _Importer.order_key), the first match applying.
    collector = importer.collector
    ordered = sorted(range(len(collector.rules)), key=importer.keys.__getitem__)
    collector.rules[:] = merge_slash_twins([collector.rules[i] for i in ordered])
    collector.first_match = True
    result = collector.result("nginx")
    result.skipped.sort(key=lambda skip: skip.line)
    return result


def _location_key(node: Node) -> tuple[str, str]:
    """A location's (modifier, path): ('=', '/a'), ('^~', '/b/'), ('', '/c')."""
    args = node.args
    return (args[0], args[1]) if len(args) == 2 else ("", args[0] if args else "")


#: An order key's last element that sorts after every line of a location.
_AFTER_ALL = 1 << 62

_WHOLE_PATH = frozenset({"^", "^.*", "^(.*)", "^(.*)$", "^/(.*)$", ".*", "(.*)"})


def _covers(location: Node, rewrite: Node) -> bool:
    """True when ``rewrite`` (inside ``location``) matches every path the location is chosen
    for: a regex of the whole path, or the location's own regex (how Waypost exports rewrites)."""
    if rewrite.name != "rewrite" or not rewrite.args:
        return False
    regex = rewrite.args[0]
    if regex in _WHOLE_PATH:
        return True
    args = location.args
    return (
        len(args) == 2
        and args[0] in ("~", "~*")
        and regex == ("(?i)" if args[0] == "~*" else "") + args[1]
    )


def _internal_rewrite(node: Node) -> bool:
    """True for ``rewrite ^ TARGET last`` (or ``break``): the whole path, rewritten inside."""
    args = node.args
    return (
        node.name == "rewrite"
        and len(args) == 3
        and args[0] == "^"
        and args[2] in ("last", "break")
    )


def _slash(rule: dict[str, Any], converted: RegexPattern) -> None:
    """Set a converted regex rule's trailing_slash and case options."""
    # nginx matches the path as it is: a greedy '(.*)$' takes the trailing slash into its capture
    # ('/old/a/' gives 'a/'). Only the lazy '(.+?)/?$' leaves it out, as Waypost's 'ignore' does.
    if not converted.optional_slash:
        rule["trailing_slash"] = "strict"
    if converted.case_insensitive:
        rule["case"] = "insensitive"
