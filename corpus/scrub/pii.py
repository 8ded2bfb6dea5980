"""Our own detectors: email addresses, IP addresses, passwords in connection strings, private
key blocks. Each returns (kind, start, end) spans of the value only, so a redacted string stays
a string and a URL keeps its shape.

What is not PII, by rule (docs/scrub.md): addresses at reserved example domains (RFC 2606 /
6761: example.com/.net/.org, *.example, *.test, *.invalid, *.localhost), IPs that are private,
loopback, link-local, multicast, unspecified or in the documentation ranges (RFC 5737, 3849),
and dotted numbers that are versions (after "version", "v", "==", ">=", …).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from corpus.scrub.prefilter import finditer_lines

Span = tuple[str, int, int]

EMAIL = re.compile(
    r"(?<![\w.%+:/-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}"
    r"(?![\w-])", re.ASCII)
EXAMPLE_DOMAINS = re.compile(
    r"(?:^|\.)(?:example\.(?:com|net|org|edu)|example|test|invalid|localhost|local)$", re.I)
IPV4 = re.compile(r"(?<![\w.])(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d"
                  r"|[1-9]?\d)){3}(?![\w.]|\.\d)", re.ASCII)
#: an IPv6 candidate is a whole token of hex digits, colons and dots (not ending in a dot): it
#: is an address as a whole or not at all, never a prefix of one (`…:b00c::` of `…:b00c::3`)
IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?<!\.)"
                  r"(?![\w:]|\.[\w:])", re.ASCII)
VERSION_BEFORE = re.compile(r"(?i)(?:(?:\b|_)(?:version|ver|release)\w*[\"']?\s*[:=]?|\bv|==|>="
                            r"|<=|~=|!=|@)\s*[\"']?\s*$")
#: scheme://user:PASSWORD@host — the password only (also what detect-secrets' basic auth finds)
#: the password may hold `#`, `?`, `;` or `:` (people write them unencoded); not `@` or `/`
CONN = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/?#\[\]@'\"]{1,64}:"
                  r"([^\s/@'\"]{1,128})@[\w.-]+", re.ASCII)
#: a key block: BEGIN line, a body of base64 / PEM header characters only (newlines, or `\n`
#: escapes inside a one-line string), END line. Code that merely names the markers (constants
#: `-----BEGIN … PRIVATE KEY-----` and `-----END …` with code between) is not a key.
PRIVATE_KEY = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY( BLOCK|)-----"
                         r"[A-Za-z0-9+/=\s:,.\\-]{16,}?-----END \1PRIVATE KEY\2-----")
#: a key block without its END line (a truncated file, a cut excerpt): the BEGIN line, optional
#: PEM headers (`Proc-Type: …`), then base64 lines (a newline or a `\n` escape before each) to
#: the first line that is not base64. Markers followed by code (a quote, a call) have no body.
_NL = r"(?:\r?\n|(?:\\r)?\\n)"  # a newline, or a `\n` escape inside a one-line string
_B64_LINE = r"[ \t]*[A-Za-z0-9+/]{n}={{0,2}}(?=[ \t]*(?:\r?\n|\\[rn]|[\"'`]|$))"
TRUNCATED_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?P<body>"
    rf"(?:{_NL}[ \t]*[A-Za-z][\w-]*: [^\n\\]*)*(?:{_NL}[ \t]*)?"  # PEM headers, a blank line
    rf"{_NL}{_B64_LINE.format(n='{16,}')}(?:{_NL}{_B64_LINE.format(n='+')})*)")
#: base64 characters a truncated key's body must reach (two-thirds of a PEM line), with a digit
#: or `+`/`/` among them
TRUNCATED_BODY = 40
#: what every match of EMAIL, CONN, IPV4 and IPV6 contains, on the same line: those patterns
#: are searched on the lines with an anchor only (prefilter.finditer_lines)
AT, SCHEME = re.compile("@"), re.compile("://")
DOTTED_QUAD = re.compile(r"\.\d{1,3}\.\d{1,3}\.")  # the middle of every IPV4 match
HEX_COLON = re.compile(r":[0-9A-Fa-f:.]")  # in every IPV6 match: the char after its 1st colon
#: the detectors whose whole patterns go into the compiled candidate scan (engine.py): their
#: Python searches run only on documents where the scan says they can match. ASCII classes in
#: both, so the scan's prefilter is a superset of the Python matches.
DETECTORS = {"EMAIL": EMAIL, "CONN": CONN, "IPV4": IPV4, "IPV6": re.compile(
    # not IPV6 but what every match that `_ipv6_shaped` keeps contains: three colons, or two
    # and a hex letter, or `::1` (slices `x[1::2]` and times do not)
    r"[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:|[A-Fa-f][0-9A-Fa-f.]*:[0-9A-Fa-f.]*:"
    r"|:[0-9A-Fa-f.]*[A-Fa-f][0-9A-Fa-f.]*:|:[0-9A-Fa-f.]*:[0-9A-Fa-f.]*[A-Fa-f]|::1",
    re.ASCII)}
PLACEHOLDER_VALUES = re.compile(r"^(?:<[\w-]+>|\$\{?\w+\}?|%\(?\w*\)?s|\{\w*\}|\*+|x+|"
                                r"password|passwd|pass|pwd|pw|secret|token|changeme|user"
                                r"|username|your[_-]?\w*|my[_-]?\w*|tiger)$", re.I)


def placeholder_password(user: str, password: str) -> bool:
    """`postgres:postgres@`, `user:<password>@`, `${USER}:${PASS}@`: documentation, not a
    credential."""
    return password == user or bool(PLACEHOLDER_VALUES.match(password))


def emails(text: str) -> Iterator[Span]:
    for m in finditer_lines(EMAIL, AT, text):
        domain = m.group(0).rsplit("@", 1)[1]
        if not EXAMPLE_DOMAINS.search(domain):
            yield ("EMAIL", m.start(), m.end())


def _public(addr: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return ip in GLOBAL_UNICAST and ip.is_global  # `::2` (a slice) is not routable
    return ip.is_global and not ip.is_multicast


#: where every routable IPv6 unicast address is (RFC 4291 / IANA): `0::2`, `1::3` are not
GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


def _ipv6_shaped(value: str) -> bool:
    """Three colons or more, or a group of 3+ hex digits with a letter (`fe80::1`), or `::1`:
    a slice (`[1::2]`, `[b::c]`) or a time (`12:30:45`) is not."""
    if value.count(":") >= 3:
        return True
    groups = value.split(":")
    return value == "::1" or (any(len(g) >= 3 for g in groups)
                              and any(c.isalpha() for c in value))


def ips(text: str, private: bool = False, v4: bool = True, v6: bool = True,
        ) -> Iterator[Span]:
    """Public IPv4/IPv6 addresses (all valid ones with private=True), not versions; v4/v6
    False when a scan showed their pattern cannot match."""
    for m in finditer_lines(IPV4, DOTTED_QUAD, text) if v4 else ():
        if VERSION_BEFORE.search(text[max(0, m.start() - 24):m.start()]):
            continue
        if private or _public(m.group(0)):
            yield ("IP_ADDRESS", m.start(), m.end())
    for m in finditer_lines(IPV6, HEX_COLON, text) if v6 else ():
        value = m.group(0)
        if not _ipv6_shaped(value):
            continue  # times (12:30:45), ratios and slices (`x[1::2]`) are not addresses
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            continue
        if private or _public(value):
            yield ("IP_ADDRESS", m.start(), m.end())


def connection_passwords(text: str) -> Iterator[Span]:
    for m in finditer_lines(CONN, SCHEME, text):
        user = m.group(0).split("://", 1)[1].split(":", 1)[0]
        if not placeholder_password(user, m.group(1)):
            yield ("PASSWORD", m.start(1), m.end(1))


def private_keys(text: str) -> Iterator[Span]:
    """Whole key blocks, and blocks whose END line is missing (truncated): the BEGIN line and
    the base64 body that follows it."""
    if "-----BEGIN " not in text:
        return
    for m in PRIVATE_KEY.finditer(text):
        yield ("PRIVATE_KEY", m.start(), m.end())
    for m in TRUNCATED_KEY.finditer(text):  # inside a whole block: merged into it (redact)
        body = m.group("body").replace("\\r", "").replace("\\n", "\n")  # escapes: 1 char
        if sum(c.isalnum() or c in "+/" for c in body) >= TRUNCATED_BODY \
                and any(c.isdigit() or c in "+/" for c in body):  # not a long identifier
            yield ("PRIVATE_KEY", m.start(), m.end())
