"""detect-secrets' plugins, run in memory over a whole document.

The regex plugins' own patterns (AWS, GitHub, GitLab, Slack, Stripe, Twilio, JWT, npm, PyPI,
OpenAI, basic auth, Azure, SendGrid, …) are searched over the whole text at C speed; the
keyword plugin (assignments to password / secret / token / api_key …), which is Python per
line, runs only on lines a cheap pattern marks as candidates, with detect-secrets' own false
positive filters. The high-entropy plugins are off by default: on real code they flag digests
in tests and lock files, base64 test vectors and fixtures (bench/scrub.py measures it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from corpus.scrub import pii, prefilter

Span = tuple[str, int, int]

#: detect-secrets secret_type -> our placeholder kind
KINDS = {
    "AWS Access Key": "AWS_ACCESS_KEY", "GitHub Token": "GITHUB_TOKEN",
    "GitLab Token": "GITLAB_TOKEN", "Slack Token": "SLACK_TOKEN",
    "Stripe Access Key": "STRIPE_KEY", "Twilio API Key": "TWILIO_KEY",
    "JSON Web Token": "JWT", "NPM tokens": "NPM_TOKEN", "PyPI Token": "PYPI_TOKEN",
    "OpenAI Token": "OPENAI_KEY", "Basic Auth Credentials": "PASSWORD",
    "Azure Storage Account access key": "AZURE_KEY", "SendGrid API Key": "SENDGRID_KEY",
    "Discord Bot Token": "DISCORD_TOKEN", "Telegram Bot Token": "TELEGRAM_TOKEN",
    "Mailchimp Access Key": "MAILCHIMP_KEY", "Square OAuth Secret": "SQUARE_SECRET",
    "Artifactory Credentials": "ARTIFACTORY_KEY", "Secret Keyword": "SECRET",
    "Base64 High Entropy String": "SECRET", "Hex High Entropy String": "SECRET",
}
#: plugins we do not run: ours cover them (IPs, private key blocks) or they only mark a line
SKIP = {"IPPublicDetector", "PrivateKeyDetector", "KeywordDetector", "Base64HighEntropyString",
        "HexHighEntropyString"}
#: a line that may assign a secret-named key: what the keyword plugin and CONFIG_LINE need
KEYWORD_LINE = re.compile(r"(?i)(?:pass(?:wd|word)?|pwd|pw|secret|token|key|auth|credential)"
                          r"[\w.\"'\]-]*\s*(?:[:=]|=>|:=|::)")
#: the same over lower-cased ASCII text: an alternation of literals, which `re` scans for
#: with a first-character set (10x faster than the case-insensitive pattern)
_KEYWORD_LINE_LOWER = re.compile(KEYWORD_LINE.pattern.removeprefix("(?i)"))
COMMENT = re.compile(r"\s*(?:#+|//+|--|;+|/?\*+|<!--|%)\s*")
PASSWORD_NAME = re.compile(r"(?i)pass(?:wd|word)?|pwd")


@cache
def _plugins() -> tuple[list[tuple[str, re.Pattern[str]]], Any, list[Any]]:
    """(kind, regex) of every regex plugin; the keyword plugin; the entropy plugins."""
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.settings import default_settings, get_plugins

    regexes, keyword, entropy = [], None, []
    with default_settings():
        for p in get_plugins():
            name = type(p).__name__
            if name == "KeywordDetector":
                keyword = p
            elif name.endswith("HighEntropyString"):
                entropy.append(p)
            elif isinstance(p, RegexBasedDetector) and name not in SKIP:
                regexes += [(KINDS.get(p.secret_type, "SECRET"), r) for r in p.denylist]
    return regexes, keyword, entropy


def _span(m: re.Match[str]) -> tuple[int, int]:
    """The secret inside a match: its first group when that group is not a leading prefix
    (basic auth's password, AWS's quoted secret), else the whole match without delimiters."""
    if m.re.groups and m.group(1) and m.start(1) > m.start(0):
        return m.start(1), m.end(1)
    a, b = m.span()
    text = m.string
    while a < b and not (text[a].isalnum() or text[a] in "_-"):
        a += 1
    while b > a and not (text[b - 1].isalnum() or text[b - 1] in "_-="):
        b -= 1
    return a, b


#: config / dotenv lines, unquoted: `DB_PASSWORD=s3cr3t…`, `export API_TOKEN=…`, `key: …`
CONFIG_LINE = re.compile(
    r"(?im)^[ \t]*(?:export[ \t]+)?(?P<name>(?:[A-Za-z_][\w.-]*?)?(?:pass(?:wd|word)?|pwd|secret"
    r"|token|key|auth|credential)[\w.-]*)[ \t]*[=:][ \t]*(?P<value>[^\s'\"#,;(){}\[\]$<>]{8,})"
    r"[ \t]*$")
DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")  # module.Attribute: a reference
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_.]*|[A-Z_][A-Z0-9_.]*|[A-Za-z_]+")


WORDS = re.compile(r"[a-z]+(?:[-_ ][a-z]+)*|[A-Z][a-z]+(?: [A-Z]?[a-z]+)+")


def not_a_secret(value: str) -> bool:
    """Keyword-plugin values that are words ('xet-auth', 'Private Key', 'secret'): names and
    labels in real code, not credentials (which have digits, mixed case or symbols)."""
    return " " in value.strip() or bool(WORDS.fullmatch(value))


def config_secrets(text: str, keyword_starts: list[int] | None = None) -> Iterator[Span]:
    """Unquoted values assigned to secret-named keys on a line of their own (dotenv, ini,
    YAML), searched on keyword lines only (every CONFIG_LINE is one). A value that reads as a
    name (snake_case, CONSTANT, letters only) or has no digit is a reference, not a secret."""
    starts = keyword_lines(text) if keyword_starts is None else keyword_starts
    matches = (m for a in starts for m in CONFIG_LINE.finditer(text, a, _line_end(text, a)))
    for m in matches:
        value = m.group("value")
        if (IDENTIFIER.fullmatch(value) or DOTTED.fullmatch(value)
                or not any(c.isdigit() for c in value)):
            continue
        kind = "PASSWORD" if PASSWORD_NAME.search(m.group("name")) else "SECRET"
        yield (kind, m.start("value"), m.end("value"))


def _keyword_style(regex: re.Pattern[str]) -> bool:
    """Vendor detectors that are keyword assignments (IBM, Cloudant, SoftLayer: `…key = "…"`):
    they can only match on a keyword line, and are slow over a whole text."""
    return regex.pattern.startswith("(?:(?<=\\W)|(?<=^))")


def keyword_lines(text: str) -> list[int]:
    """Start offsets of the lines that may assign a secret-named key (one search per document,
    shared by the keyword-style regexes, CONFIG_LINE and the keyword plugin)."""
    if text.isascii():  # lower() keeps the offsets, and (?i) folds nothing else in ASCII
        return _candidate_lines(text.lower(), _KEYWORD_LINE_LOWER)
    return _candidate_lines(text, KEYWORD_LINE)


@cache
def _literals() -> list[tuple[str | None, bool]]:
    """The literal each regex plugin's matches contain (None: none found) and whether the
    plugin ignores case, in plugin order."""
    return [(prefilter.required_literal(regex), bool(regex.flags & re.IGNORECASE))
            for _, regex in _plugins()[0]]


def regex_secrets(text: str, keyword_starts: list[int] | None = None) -> Iterator[Span]:
    """The regex plugins over the whole text; keyword-style ones over keyword lines only; a
    plugin is skipped on a document without the literal its matches contain."""
    starts = keyword_lines(text) if keyword_starts is None else keyword_starts
    lower = prefilter.lower_if_ascii(text)
    for (kind, regex), (literal, nocase) in zip(_plugins()[0], _literals(), strict=True):
        if not prefilter.may_match(literal, nocase, text, lower):
            continue
        if _keyword_style(regex):
            found: Iterator[re.Match[str]] = (
                m for a in starts for m in regex.finditer(text, a, _line_end(text, a)))
        else:
            found = regex.finditer(text)
        for m in found:
            a, b = _span(m)
            if b - a < 8 and not (kind == "PASSWORD" and b > a):
                continue
            if kind == "PASSWORD" and "://" in m.group(0):  # basic auth: skip placeholders
                user = m.group(0).split("://", 1)[1].split(":", 1)[0]
                if pii.placeholder_password(user, text[a:b]):
                    continue
            yield (kind, a, b)


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end < 0 else end


def _line_secrets(plugin: Any, line: str, filename: str) -> list[Any]:
    """detect-secrets' scan of one line by one plugin, with its false-positive filters; call
    it inside `default_settings()` (entered once per document: entering it busts caches)."""
    from detect_secrets.core.scan import _is_filtered_out, _scan_line
    from detect_secrets.util.code_snippet import get_code_snippet

    context = get_code_snippet(lines=[line], line_number=1)
    return [s for s in _scan_line(plugin=plugin, filename=filename, line=line,
                                  line_number=1, context=context, enable_eager_search=False)
            if not _is_filtered_out(required_filter_parameters=["context"], filename=filename,
                                    secret=s.secret_value, plugin=plugin, line=line,
                                    context=context)]


def _candidate_lines(text: str, pattern: re.Pattern[str] | None) -> list[int]:
    """Start offsets of the lines where `pattern` matches (every line if None), found with one
    search over the whole text rather than a Python step per line."""
    if pattern is None:
        return [0] + [m.end() for m in re.finditer("\n", text)]
    starts: list[int] = []
    for m in pattern.finditer(text):
        start = text.rfind("\n", 0, m.start()) + 1
        if not starts or starts[-1] != start:
            starts.append(start)
    return starts


def keyword_secrets(text: str, filename: str, entropy: bool = False,
                    keyword_starts: list[int] | None = None) -> list[Span]:
    """Assignments of a literal to a secret-named variable (detect-secrets' keyword plugin on
    candidate lines only); with entropy=True also its high-entropy string plugins, on every
    line."""
    starts = (_candidate_lines(text, None) if entropy else
              keyword_lines(text) if keyword_starts is None else keyword_starts)
    if not starts:
        return []
    from detect_secrets.settings import default_settings

    _, keyword, entropy_plugins = _plugins()
    plugins = [keyword] + (entropy_plugins if entropy else [])
    spans: list[Span] = []
    with default_settings():
        for start in starts:
            end = _line_end(text, start)
            line = text[start:end]
            # a commented-out assignment is scanned as code (detect-secrets skips comments)
            comment = COMMENT.match(line)
            scanned = line[comment.end():] if comment else line
            for plugin in plugins:
                for s in _line_secrets(plugin, scanned, filename):
                    value = s.secret_value
                    if not value or len(value) < 4 or not_a_secret(value):
                        continue
                    kind = KINDS.get(s.type, "SECRET")
                    if kind == "SECRET" and PASSWORD_NAME.search(line.split(value, 1)[0]):
                        kind = "PASSWORD"
                    spans += [(kind, start + v.start(), start + v.end())
                              for v in re.finditer(re.escape(value), line)]
    return spans
