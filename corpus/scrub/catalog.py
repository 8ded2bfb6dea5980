"""The provider token rules (AWS, GCP, Azure, GitHub, GitLab, Slack, Stripe, npm, PyPI, Hugging
Face, OpenAI, Anthropic, JWT, … 441 in all), as data: Betterleaks' and Veles' rules exported
from the Kingfisher package (corpus/scrub/catalog_export.py), read into Python regexes.

A rule's secret is its first non-empty capture group (or the group the rule names), else the
whole match, as in gitleaks; a finding is dropped by the rule's own stopword and entropy
filters (its conditions on paths, lines and captures are not applied: recall first). A rule
that needs another rule's finding (a client secret beside its client id) and alone finds any
`secret = "…"` is not run: assignments.py finds those values, with no vendor named. Patterns
are compiled with `re.ASCII`, the semantics of the compiled engine over UTF-8 bytes (engine.py):
`\\w`, `\\d`, `\\b` and case folding are ASCII, as tokens are.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from corpus.scrub.pii import PLACEHOLDER_VALUES as PLACEHOLDER

RULES_FILE = Path(__file__).with_name("provider_rules.json")

#: rule-id family -> placeholder kind, for the families people name (others: from the id)
FAMILIES = {
    "aws-access-token": "AWS_ACCESS_KEY", "aws-secret-access-key": "AWS_SECRET_KEY",
    "aws-session-token": "AWS_SESSION_TOKEN", "aws-amazon-bedrock": "AWS_BEDROCK_KEY",
    "github": "GITHUB_TOKEN", "gitlab": "GITLAB_TOKEN", "slack-webhook": "SLACK_WEBHOOK",
    "slack": "SLACK_TOKEN", "stripe": "STRIPE_KEY", "twilio": "TWILIO_KEY", "jwt": "JWT",
    "npm": "NPM_TOKEN", "pypi": "PYPI_TOKEN", "openai": "OPENAI_KEY",
    "anthropic": "ANTHROPIC_KEY", "huggingface": "HF_TOKEN", "sendgrid": "SENDGRID_KEY",
    "azure-storage-account-key": "AZURE_KEY", "gcp-api-key": "GCP_API_KEY",
    "gcp-service-account": "GCP_SERVICE_ACCOUNT", "private-key": "PRIVATE_KEY",
    "discord": "DISCORD_TOKEN", "telegram": "TELEGRAM_TOKEN", "mailchimp": "MAILCHIMP_KEY",
    "generic-credential-uri": "PASSWORD", "curl-auth": "PASSWORD",
}
_POSIX = {"alnum": "a-zA-Z0-9", "alpha": "a-zA-Z", "digit": "0-9", "lower": "a-z",
          "upper": "A-Z", "xdigit": "0-9a-fA-F", "space": r"\s", "word": r"\w"}


def kind_of(rule_id: str) -> str:
    """`betterleaks.npm-access-token` -> NPM_TOKEN (a named family) or DATADOG_API_KEY (the id
    itself); Veles ids (`veles.secrets/npmjsaccesstoken`) by their family's name too."""
    veles = "/" in rule_id
    name = rule_id.rsplit("/", 1)[1] if veles else rule_id.split(".", 1)[-1]
    name = re.sub(r"\.\d+$", "", name)
    for family, kind in FAMILIES.items():
        if name == family or name.startswith(family + "-") or (
                veles and name.startswith(family.replace("-", ""))):
            return kind
    return re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")


_LEADING_FLAGS = re.compile(r"(?:\(\?[a-zA-Z]+\))*")


def _scope_flags(p: str) -> str:
    """Rust's `(?i)` in the middle of a pattern applies to the rest of its group; Python wants
    global flags first, so it becomes a scoped group `(?i:…)` closed where that group ends."""
    out: list[str] = []
    stack = [0]  # per open group: how many scoped flag groups to close at its end
    i, in_class = 0, False
    while i < len(p):
        c = p[i]
        if c == "\\":
            out.append(p[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if p.startswith("[^]", i) or p.startswith("[]", i):
                out.append(p[i:i + (3 if p[i + 1] == "^" else 2)])
                i += len(out[-1])
                continue
        elif c == "(":
            m = re.match(r"\(\?([a-zA-Z]+)\)", p[i:])
            if m and not _LEADING_FLAGS.fullmatch("".join(out)):
                out.append(f"(?{m.group(1)}:")
                stack[-1] += 1
                i += m.end()
                continue
            stack.append(0)
        elif c == ")" and len(stack) > 1:
            out.append(")" * stack.pop())
        elif c == "|" and stack[-1]:  # flags end at an alternation too, as Rust's do
            out.append(")" * stack[-1])
            stack[-1] = 0
        out.append(c)
        i += 1
    out.append(")" * stack[0])
    return "".join(out)


def to_python(pattern: str) -> str:
    """A Rust / Go RE2 rule pattern in Python's `re` syntax."""
    p = re.sub(r"\[:(\w+):\]", lambda m: _POSIX.get(m.group(1), m.group(0)), pattern)
    p = p.replace(r"\z", r"\Z").replace("(?<", "(?P<").replace("(?P<=", "(?<=") \
        .replace("(?P<!", "(?<!")
    return _scope_flags(p)


def entropy(s: str) -> float:
    """Shannon entropy in bits per character, as the rules' filters compute it."""
    if not s:
        return 0.0
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    regex: re.Pattern[str]
    group: int
    path: re.Pattern[str] | None
    drop_if: tuple[tuple[str, object], ...]

    def dropped(self, secret: str) -> bool:
        """The rule's own filters: stopwords (regexes, substrings) and a minimum entropy."""
        low = secret.lower()
        for op, arg in self.drop_if:
            if op == "matches" and any(r.search(secret) for r in arg):  # type: ignore[attr-defined]
                return True
            if op == "not_matches" and not any(r.search(secret) for r in arg):  # type: ignore
                return True
            if op == "contains" and any(w.lower() in low for w in arg):  # type: ignore
                return True
            if op == "entropy<" and entropy(secret) < arg:  # type: ignore[operator]
                return True
            if op == "entropy<=" and entropy(secret) <= arg:  # type: ignore[operator]
                return True
        return False

    def secret_span(self, m: re.Match[str]) -> tuple[int, int]:
        if self.group:
            return m.span(self.group)
        for g in range(1, (m.re.groups or 0) + 1):
            if m.group(g):
                return m.span(g)
        return m.span()

    def find(self, text: str, path: str = "") -> Iterator[tuple[str, int, int]]:
        """(kind, start, end) of every secret of this rule in `text`."""
        if self.path is not None and not self.path.search(path):
            return
        user = "username" in self.regex.groupindex
        for m in self.regex.finditer(text):
            a, b = self.secret_span(m)
            if b <= a or self.dropped(text[a:b]):
                continue
            if self.kind == "PASSWORD" and (PLACEHOLDER.match(text[a:b]) or (
                    user and m.group("username") == text[a:b])):
                continue  # `postgres:postgres@`, `user:${PASS}@`: documentation
            yield (self.kind, a, b)


def _probes() -> list[str]:
    """Plain assignments of random values to generic names, no vendor in sight."""
    import random
    import string

    r = random.Random(0)
    out = []
    for n in (16, 20, 24, 32, 40, 44, 64):
        for alphabet in (string.ascii_letters + string.digits, "0123456789abcdef"):
            v = "".join(r.choice(alphabet) for _ in range(n))
            for name in ("secret", "key", "token", "api_key", "client_secret", "access_key"):
                out += [f'{name} = "{v}"', f"{name}={v}\n", f"{name}: {v}\n"]
    return out


def _generic(regex: re.Pattern[str]) -> bool:
    """A rule that finds plain `secret = "…"` assignments, no vendor named: alone, without
    the other rule it needs (a client id beside the secret), it says nothing of a vendor."""
    return any(regex.search(p) for p in _probes())


def _compile(p: str) -> re.Pattern[str]:
    return re.compile(to_python(p), re.ASCII)


@cache
def rules() -> tuple[Rule, ...]:
    """Every provider rule of the catalog whose pattern Python's `re` compiles (all of them
    today; tests/test_scrub_catalog.py says if one is not)."""
    data = json.loads(RULES_FILE.read_text())
    lists = [tuple(values) for values in data["lists"]]
    out = []
    for r in data["rules"]:
        try:
            regex = _compile(r["pattern"])
        except re.error:
            continue
        terms = []
        for op, arg in r["drop_if"]:
            if op in ("matches", "not_matches"):
                compiled = []
                for s in lists[arg]:
                    try:
                        compiled.append(_compile(s))
                    except re.error:
                        continue
                arg = tuple(compiled)
            elif op == "contains":
                arg = lists[arg]
            terms.append((op, arg))
        if r.get("needs_other_rule") and r["path"] is None and _generic(regex):
            continue  # assignments.py finds these values, as secrets of no vendor
        out.append(Rule(r["id"], kind_of(r["id"]), regex, r["group"],
                        _compile(r["path"]) if r["path"] else None, tuple(terms)))
    return tuple(out)


def kinds() -> set[str]:
    return {r.kind for r in rules()}
