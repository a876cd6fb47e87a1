"""Where a value filled in from the request could send a browser off the site, for exporters.

Waypost checks every filled-in target before it sends it (:mod:`waypost.rules.safety`): a host
filled in from the request must be in ``allowed_hosts``, a relative target must stay a path on
this site, and values are percent-encoded, so no control character or backslash reaches the
Location. The servers and platforms an export runs on check none of this. So each exporter asks
:func:`exposure` where a rule's target takes request values, and then either narrows what the
values may be (the regex formats: :func:`host_regex`, :data:`LEAD_GUARD`, :data:`CONTROLS`) or
reports the rule as one it cannot express (:func:`refuse_exposed`). Three places matter:

* a placeholder in the host of an absolute target (``https://{site}/``,
  ``https://{sub}.example.org/``): the value must make a host that ``allowed_hosts`` allows, as
  Waypost answers 400 otherwise;
* a placeholder right after the leading ``/`` of a relative target (``/{to}``): a value that
  starts with ``/`` or ``\\`` makes ``//evil.com`` or ``/\\evil.com``, another host to a browser
  (WHATWG URL parsing reads a backslash as a slash);
* any value a server writes decoded (nginx): CR LF starts a new header, and a browser drops TAB,
  CR and LF anywhere in a URL, so ``/\\t/evil.com`` is ``//evil.com`` to it.

A placeholder after a literal origin (``/a/{x}``, ``https://example.com/{x}``) cannot change the
host, whatever its value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from waypost.rules.safety import host_allowed

from ._canon import Placeholder, parse_target_pieces
from ._common import Refusal

__all__ = [
    "CONTROLS",
    "LEAD_GUARD",
    "Exposure",
    "HostSlot",
    "allowed_words",
    "exposure",
    "host_regex",
    "refuse_exposed",
]

#: The control characters, for a regex character class (PCRE and JavaScript alike). Written as
#: escapes, so that no configuration reader turns them into the characters themselves.
CONTROLS = r"\x00-\x1f\x7f"
#: A value that starts with neither '/' nor '\\' (written '\x5c': no doubling in any quoting).
LEAD_GUARD = r"(?![/\x5c])"

_SCHEME_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")
_PORT = re.compile(r":\d*\Z")
_LABEL_TEXT = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\Z")
#: One DNS label and a dot-separated run of them, as Waypost accepts a filled-in host
#: (``_HOST_LABELS`` in waypost.rules.target): letters, digits and inner hyphens.
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
LABELS = rf"{_LABEL}(?:\.{_LABEL})*"


@dataclass(frozen=True, slots=True)
class HostSlot:
    """A placeholder that fills in the host: ``prefix`` + value + ``suffix`` is the host name
    (lower-cased literal text, without the port and the trailing dot Waypost ignores)."""

    name: str
    prefix: str
    suffix: str

    @property
    def template(self) -> str:
        """The host as written, for messages: ``{sub}.example.org``."""
        return f"{self.prefix}{{{self.name}}}{self.suffix}"


@dataclass(frozen=True, slots=True)
class Exposure:
    """Where the values of a target's placeholders land."""

    #: The placeholder that fills in (part of) the host of an absolute target.
    host: HostSlot | None
    #: The placeholder right after the leading '/' of a relative target.
    lead: str | None
    #: Every placeholder, in order.
    names: tuple[str, ...]


def exposure(target: str) -> Exposure:
    """Where ``target``'s placeholders land; :class:`Refusal` for a host made in a way no
    exporter can constrain (two placeholders, or one glued to other text in a label)."""
    pieces = parse_target_pieces(target)
    names = tuple(piece.name for piece in pieces if isinstance(piece, Placeholder))
    lead = None
    if len(pieces) > 1 and pieces[0] == "/" and isinstance(pieces[1], Placeholder):
        lead = pieces[1].name
    authority = _SCHEME_AUTHORITY.match(target)
    host = None
    if authority is not None and "{" in authority.group(1):
        host = _host_slot(authority.group(1))
    return Exposure(host, lead, names)


def _host_slot(authority: str) -> HostSlot:
    pieces = parse_target_pieces(authority)
    slots = [piece for piece in pieces if isinstance(piece, Placeholder)]
    if len(slots) != 1 or "{" in authority.replace("{" + slots[0].name + "}", ""):
        raise Refusal(
            f"the target's host {authority!r} is made of more than one placeholder; "
            "no export can check the host they make"
        )
    name = slots[0].name
    prefix, _, suffix = authority.partition("{" + name + "}")
    prefix, suffix = prefix.lower(), _PORT.sub("", suffix.lower()).rstrip(".")
    if ":" in prefix or (prefix and not prefix.endswith(".")) or (suffix and suffix[0] != "."):
        raise Refusal(
            f"{{{name}}} shares a part of the host {authority!r} with other text; "
            "an export can only check a placeholder that fills in whole labels of the host"
        )
    return HostSlot(name, prefix, suffix)


def _labels(text: str) -> list[str]:
    """The labels of ``a.b``; of a prefix ``a.b.`` or a suffix ``.a.b`` too."""
    text = text.strip(".")
    return text.split(".") if text else []


def _ci(text: str) -> str:
    """``text`` as a regex matching it in any case, without flags (not every engine has
    inline ones): ``Ab.c`` -> ``[aA][bB]\\.[cC]``."""
    out = []
    for char in text:
        if char.isalpha():
            out.append(f"[{char.lower()}{char.upper()}]")
        else:
            out.append("\\." if char == "." else char)  # digits and '-' need no escape
    return "".join(out)


def host_regex(slot: HostSlot, allowed_hosts: Sequence[str], platform: str) -> str:
    """A regex (no capturing groups, no flags) matching exactly the values of ``slot`` that make
    a host ``allowed_hosts`` allows, in any case; :class:`Refusal` when there are none.

    Each allowed host gives the values that complete the slot's literal labels into it: an exact
    host its one value, ``*.example.org`` any labels before ``.example.org`` (at least one label
    in all). A value is whole DNS labels, as Waypost requires of a filled-in host, so no dot,
    port, ``@`` or control character can follow or precede it.
    """
    if not allowed_hosts:
        raise Refusal(
            f"{{{slot.name}}} fills in the target's host ({slot.template}) and no allowed_hosts "
            f"were given to the export: {platform} would redirect to any host the request names, "
            "where Waypost answers 400 unless the host is in allowed_hosts"
        )
    prefix, suffix = _labels(slot.prefix), _labels(slot.suffix)
    alternatives: list[str] = []
    for allowed in allowed_hosts:
        wildcard = allowed.startswith("*.")
        wanted = (allowed[2:] if wildcard else allowed).split(".")
        if not all(_LABEL_TEXT.match(label) for label in wanted):
            continue  # no host of DNS labels is this one (a port, a trailing dot): nor in Waypost
        if not wildcard:
            middle = len(wanted) - len(prefix) - len(suffix)
            if (
                middle >= 1
                and wanted[: len(prefix)] == prefix
                and wanted[len(wanted) - len(suffix) :] == suffix
            ):
                alternatives.append(_ci(".".join(wanted[len(prefix) : len(prefix) + middle])))
            continue
        if len(suffix) >= len(wanted):
            if suffix[len(suffix) - len(wanted) :] == wanted:
                return LABELS  # the literal text names the domain; any labels before it do
            continue
        if wanted[len(wanted) - len(suffix) :] != suffix:
            continue
        # The value (and the prefix before it) must end with the rest of the domain, 'rest',
        # with at least one label before the domain in all.
        rest = wanted[: len(wanted) - len(suffix)]
        alternatives.append(rf"{LABELS}\.{_ci('.'.join(rest))}")
        for taken in range(1, len(rest) + 1):  # the value is the last 'taken' labels of rest
            before = rest[: len(rest) - taken]
            if len(prefix) > len(before) and prefix[len(prefix) - len(before) :] == before:
                alternatives.append(_ci(".".join(rest[len(rest) - taken :])))
    if not alternatives:
        raise Refusal(
            f"{{{slot.name}}} fills in the target's host ({slot.template}), and no host in "
            f"allowed_hosts {list(allowed_hosts)!r} can be made with it: {platform} would "
            "redirect to any host the request names, where Waypost answers 400"
        )
    unique = list(dict.fromkeys(alternatives))
    return unique[0] if len(unique) == 1 else "(?:" + "|".join(unique) + ")"


def allowed_words(slot: HostSlot, words: Sequence[str], allowed_hosts: Sequence[str]) -> list[str]:
    """The words of an ``any(...)`` variable in the host that make an allowed host."""
    return [
        word
        for word in words
        if re.fullmatch(LABELS, word)
        and host_allowed(f"{slot.prefix}{word}{slot.suffix}".lower(), allowed_hosts)
    ]


def refuse_exposed(found: Exposure, platform: str) -> None:
    """Raise :class:`Refusal` when a value of the target could lead off-site: for formats
    that match without regexes, which have no way to refuse such a value."""
    if found.host is not None:
        raise Refusal(
            f"{{{found.host.name}}} fills in the target's host ({found.host.template}): "
            f"{platform} cannot refuse a value that leads off-site (Waypost answers 400 unless "
            "the host is in allowed_hosts)"
        )
    if found.lead is not None:
        raise Refusal(
            f"{{{found.lead}}} starts the target's path: {platform} cannot refuse a value that "
            f"leads off-site (a value starting with '/' or '\\' makes '//host' or '/\\host', "
            "another site to a browser; Waypost never sends one)"
        )
