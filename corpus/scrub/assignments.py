"""Values assigned to secret-named keys (`password = "…"`, `"api_key": "…"`, `PASSWORD=…`):
what no provider format names. Only a string literal's value or a config value is ever
replaced, never a name or code:

- quoted: the literal's content, read with its escapes (`"pa\\"ss#;w0rd"` whole), after
  `=`, `:`, `:=`, `=>`, `==`, `+=` or `,` (a default in `get("PASSWORD", "…")`);
- unquoted: a value on a line of its own (`KEY=value`, `key: value`, `export KEY=value`),
  to the end of the line or a ` # comment`, in config-like files (.env, .ini, .cfg, .conf,
  .properties, YAML, TOML, shell, dotfiles); in code, where such a value is an expression
  (`key_class = Ed25519Key`), only one that reads as a generated credential.

A name is secret-named when it contains a keyword (password, secret, token, key, auth, …)
and its last part is not one that names something else (`token_type`, `key_class`,
`password_field`); a value is a credential unless it reads as a word, a name, a template,
a placeholder or a path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from itertools import pairwise

from corpus.scrub.catalog import entropy
from corpus.scrub.pii import PLACEHOLDER_VALUES

Span = tuple[str, int, int]

_KEYWORDS = (r"pass(?:wd|word|phrase)?", "pwd", "secret", "token", "api[_-]?key", "apikey",
             "access[_-]?key", "private[_-]?key", "auth", "credentials?", "key")
_KEYWORD = "|".join(_KEYWORDS)
#: from a keyword: the rest of the name, a closing quote or bracket, an operator
_TAIL = r"[\w.$-]*(?P<close>[\"'`]?\]?)[ \t]*(?P<op>:=|=>|==|\+=|=|:|,)"
KEY_OP = re.compile(rf"(?:{_KEYWORD}){_TAIL}", re.I | re.A)
#: every place a keyword starts (a lookahead finds overlapping ones: `apikey` and its `key`)
_KEYWORD_STARTS = re.compile(rf"(?=(?:{_KEYWORD}))", re.I | re.A)
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.$@-")
#: a string literal right after the operator: its content, escapes read (`\"` stays inside)
QUOTED_VALUE = re.compile(r"[ \t]*[rRbBuU]{0,2}(?P<q>[\"'`])(?P<value>(?:\\.|(?!(?P=q))[^\\\n])*)"
                          r"(?P=q)")
#: a bare value to the end of its line, or to a ` # comment`
BARE_VALUE = re.compile(r"[ \t]*(?P<value>[^\s'\"`\[\]{}()<>]+?)(?:[ \t]+[#;].*)?[ \t]*\r?$",
                        re.M)
#: what may start a line before a bare `NAME=value`: indentation, a comment marker (the value
#: is a comment's token), `export` / `set` (shell and batch, also quoted in docs)
_LINE_HEAD = re.compile(r"[ \t]*(?P<comment>(?:#+|//+|--|;+|/?\*+|<!--|%|rem\b)[ \t]*)?"
                        r"(?P<export>(?:export|set)[ \t]+)?", re.I)
_CALL_HEAD = re.compile(r"\([ \t]*$")
PASSWORD_NAME = re.compile(r"(?i)pass(?:wd|word|phrase)?|pwd")
#: the last part of a name that makes it name something other than a secret value
NOT_A_VALUE = {
    "class", "type", "types", "name", "names", "id", "ids", "file", "filename", "path", "dir",
    "url", "uri", "endpoint", "len", "length", "size", "bits", "field", "fields", "format",
    "prefix", "suffix", "header", "param", "policy", "mode", "method", "manager", "store",
    "provider", "env", "var", "label", "hint", "count", "attr", "attribute", "column",
    "pattern", "regex", "re", "required", "enabled", "expires", "expiry", "ttl", "timeout",
    "version", "kind", "algorithm", "alg", "scheme", "style", "func", "fn", "callback",
    "handler", "error", "exception", "message", "msg", "text", "prompt", "help", "title",
    "description", "doc", "index", "idx", "map", "list", "set", "dict", "cls", "spec",
    "schema", "location", "source", "src", "template", "placeholder", "default", "hash",
    "digest", "sha1", "sha256", "sha512", "md5", "checksum", "crc", "fingerprint", "salt",
    "rounds", "iterations", "strength", "rule", "rules", "input",
    "form", "widget", "view", "host", "port", "user", "username", "email", "login",
    "class_name", "key", "keys", "value", "values", "pair", "item", "items", "ref", "link",
}
#: the parts of a name that make it secret-named (`monkey` has none)
SECRET_PARTS = {"pass", "passwd", "password", "passphrase", "pwd", "secret", "secrets", "token",
                "key", "apikey", "auth", "credential", "credentials"}
SECRET_ENDINGS = ("password", "passwd", "secret", "token", "apikey", "authkey", "accesskey",
                  "secretkey", "privatekey")
CONFIG_SUFFIXES = {".env", ".ini", ".cfg", ".conf", ".properties", ".yaml", ".yml", ".toml",
                   ".sh", ".bash", ".zsh", ".npmrc", ".pypirc", ".netrc", ".envrc", ""}
#: a file name (`tests/x.py`, `app.cfg`) or a path of lower-case words (`a/b_c/d`)
_PATH = re.compile(r"[\w./-]*\.[A-Za-z]{1,5}|[a-z_-]+(?:/[a-z_-]+)+")
_DOTTED = re.compile(r"[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)+")
_SIGIL_WORD = re.compile(r"[#@$%&*!^~:]?[A-Za-z_]+")
_COLOR = re.compile(r"#(?:[0-9A-Fa-f]{3,4}|[0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})")
_ESCAPE = re.compile(r"\\+(?:U[0-9A-Fa-f]{8}|u[0-9A-Fa-f]{4}|x[0-9A-Fa-f]{2}|[0-7]{1,3}|.)")
_PARTS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z0-9]+(?![a-z])")
_WORDS = re.compile(r"[A-Za-z]+(?:[-_ .][A-Za-z]+)*")
#: the brackets of special-token markers around a word
_MARKUP = "[]<>|(){}"
_TEMPLATE = re.compile(r"^(?:\$|%|\{|<|\[|@|#\{|\*\*\*)|\{\{|\$\{|%\(|%s$|^\w+\(|\)$")


def secret_name(name: str) -> bool:
    """`db_password`, `apiKey`, `X-Api-Key`, `AWS_SECRET_ACCESS_KEY`: yes; `token_type`,
    `key_class`, `password_field`, `keys`: no (the last part names something else)."""
    parts = [p.lower() for p in _PARTS.findall(name.rsplit(".", 1)[-1] or name)]
    if not parts:
        return False
    if parts[-1] in NOT_A_VALUE and not (len(parts) > 1 and parts[-1] == "key"):
        return False
    if "public" in parts or "publishable" in parts:  # a public key (token) is no secret
        return False
    return any(p in SECRET_PARTS or p.endswith(SECRET_ENDINGS) for p in parts)


def credential_like(value: str) -> bool:
    """A value that can be a credential: six characters or more, no spaces, not a word or a
    name, a template (`${X}`, `%(x)s`, `{{ x }}`), a placeholder (`changeme`, `***`,
    `<password>`), a path or URL."""
    if len(value) < 6 or any(c.isspace() for c in value) or PLACEHOLDER_VALUES.match(value):
        return False
    if value.isalpha() and random_case(value):
        return True  # `HRSkZaOKFybPQc`: letters, but no word's shape
    if _WORDS.fullmatch(value) or _TEMPLATE.search(value) or "://" in value:
        return False
    core = value.strip(_MARKUP)
    if value.endswith(("...", "…")) or (core != value and _WORDS.fullmatch(core)
                                         and not random_case(core)):
        return False  # an elided example (`eyJhbGci...`), a marker (`]<]image[>[`, `[CLS]`)
    if (value.count("/") >= 2 and not any(c.isdigit() for c in value)) or _PATH.fullmatch(value):
        return False  # a path, a file name
    if _DOTTED.fullmatch(value) or _SIGIL_WORD.fullmatch(value):
        return False  # `com.github.app.setting`, `#bygroup`: a name
    if _counting(value):
        return False  # `0123456789abcdef`, `fedcba9876543210`: a test's key, not a secret
    if _COLOR.fullmatch(value) or ("\\" in value and len(_ESCAPE.sub("", value)) < 6):
        return False  # a colour (`#ABB2BF`), an escape sequence (`\\U000f0000`)
    letters = any(c.isalpha() for c in value)
    marks = any(not c.isalpha() and c not in "_-." for c in value)  # a digit or a symbol
    return (letters and marks) or (len(value) >= 16 and entropy(value) >= 3.0)


def _counting(value: str) -> bool:
    """Most neighbours one apart (`0123456789112345`, `abcdef0123`): counted, not generated."""
    steps = sum(abs(ord(b) - ord(a)) == 1 for a, b in pairwise(value))
    return len(value) >= 12 and steps >= 0.75 * (len(value) - 1)


def _mixed(value: str) -> bool:
    """A bare value in a comment or a doc reads as a credential only with a digit and a letter
    or with random case (`// Token: !^fire` in a lexer is not one)."""
    letters = "".join(c for c in value if c.isalpha())
    return (any(c.isdigit() for c in value) and bool(letters)) or random_case(letters)


def _named(value: str, name: str) -> bool:
    """`token = 'token1234'`: the name's own word and a number, a test's placeholder."""
    m = re.fullmatch(r"([A-Za-z]+)[_-]?\d{0,6}", value)
    return m is not None and m.group(1).lower() in name.lower()


def _changes(value: str) -> int:
    """How often the character class (digit, upper, lower, other) changes along the value."""
    classes = [0 if c.isdigit() else 1 if c.isupper() else 2 if c.islower() else 3
               for c in value]
    return sum(a != b for a, b in pairwise(classes))


def random_case(value: str) -> bool:
    """Letters whose case changes as often as in random text (a change every third letter or
    more); a CamelCase name (`GoogleSecretManagerMapping`) changes twice a word."""
    return len(value) >= 10 and entropy(value) >= 3.2 and _changes(value) >= len(value) // 3


def generated(value: str) -> bool:
    """An unquoted value in code that can only be a generated credential, not an expression
    (`rfc5652.SubjectKeyIdentifier`, `Ed25519Key`, `getHTTPCode2`): 16+ characters of letters
    of both cases and digits, no dots or code punctuation, high entropy, and the case and
    digit changes of random text (8 or more; a name has a few)."""
    if len(value) < 16 or re.fullmatch(r"[A-Za-z0-9+/=_~!@%^*-]+", value) is None:
        return False
    if not (any(c.isdigit() for c in value) and any(c.isupper() for c in value)
            and any(c.islower() for c in value)) or entropy(value) < 3.5:
        return False
    return _changes(value) >= 8


def config_file(path: str) -> bool:
    """.env, .ini, YAML, shell, a dotfile or a name without a suffix (Dockerfile)."""
    name = path.lower().rsplit("/", 1)[-1]
    dot = name.rfind(".")
    suffix = name[dot:] if dot > 0 else ""  # `.npmrc` alone: a dotfile, no suffix
    return suffix in CONFIG_SUFFIXES or name.startswith(".env")


def _kind(name: str) -> str:
    return "PASSWORD" if PASSWORD_NAME.search(name) else "SECRET"


def find(text: str, path: str) -> Iterator[Span]:
    """Secret-named assignments of `text`: each keyword-and-operator found by one search, its
    name read back to where it starts, its value matched right after the operator."""
    config = config_file(path)
    done = -1
    for at in keyword_starts(text):
        if at < done:
            continue  # inside the name of the assignment before (`apikey`'s `key`)
        m = KEY_OP.match(text, at)
        if m is None:
            continue
        done = m.end()
        start = m.start()
        while start > 0 and text[start - 1] in NAME_CHARS:
            start -= 1
        name = text[start:m.start("close")]
        op, close = m.group("op"), m.group("close")
        if op == "," and (  # only a default after a name looked up: `getenv("PASSWORD", "…")`
                close[:1] not in ("'", '"') or text[start - 1:start] != close[0]
                or not _CALL_HEAD.search(text, max(0, start - 40), start - 1)):
            continue
        v = QUOTED_VALUE.match(text, m.end())
        if v is not None:
            value = v.group("value")
            if secret_name(name) and credential_like(value) and not _named(value, name):
                yield (_kind(name), v.start("value"), v.end("value"))
            continue
        if op not in ("=", ":") or close:
            continue
        # a line head is short: looked for in the 80 characters before the name, not back to
        # the line's start (on a 100 MB line that is quadratic)
        line = text.rfind("\n", max(0, start - 80), start) + 1
        if line == 0 and start > 80:
            continue
        head = _LINE_HEAD.match(text, line, start)
        if head is None or head.end() != start:
            continue  # not a line of its own: `f(key=value)`, `x.key: int`
        b = BARE_VALUE.match(text, m.end())
        if b is None or not secret_name(name) or not credential_like(b.group("value")):
            continue
        value = b.group("value")
        if config or ((head.group("comment") or head.group("export")) and _mixed(value)) or \
                generated(value):
            yield (_kind(name), b.start("value"), b.end("value"))


def keyword_starts(text: str) -> list[int]:
    """Offsets where a keyword followed by an operator may start, in order (a superset of where
    KEY_OP matches): one Hyperscan pass over the text as bytes (non-ASCII characters as `?`, so
    offsets are characters), or every keyword's start from `re`."""
    db = _keyword_db()
    if db is None:
        return [m.start() for m in _KEYWORD_STARTS.finditer(text)]
    starts: set[int] = set()
    db.scan(text.encode("ascii", "replace"),
            match_event_handler=lambda _i, a, _b, *_: starts.add(a))
    return sorted(starts)


@cache
def _keyword_db() -> object | None:
    try:
        import hyperscan
    except ImportError:  # pragma: no cover
        return None
    db = hyperscan.Database()
    flags = hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SOM_LEFTMOST
    # each keyword with what must follow it (KEY_OP's tail): where KEY_OP can match, whatever
    # the flags of Hyperscan's engine, the scan reports the keyword's start
    tail = _TAIL.replace("(?P<close>", "(?:").replace("(?P<op>", "(?:")
    expressions = [f"(?:{k}){tail}".encode() for k in _KEYWORDS]
    db.compile(expressions=expressions, ids=list(range(len(_KEYWORDS))),
               elements=len(_KEYWORDS), flags=[flags] * len(_KEYWORDS))
    return db
