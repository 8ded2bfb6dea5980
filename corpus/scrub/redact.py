"""Find every secret and PII span of one document and replace each with a typed placeholder.

Overlapping findings keep the longest (a private key block over the base64 inside it); the
same value always gets the same placeholder, so a redacted file stays consistent. Counts per
kind are returned; the found values are never returned, logged or stored.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field

from corpus.errors import ConfigError
from corpus.scrub import pii
from corpus.scrub import secrets as sec

Span = tuple[str, int, int]


@dataclass
class ScrubOptions:
    emails: Annotated[bool, Field(description="Redact email addresses.")] = True
    ips: Annotated[bool, Field(description="Redact IP addresses.")] = True
    private_ips: Annotated[bool, Field(description="Also redact private, loopback and "
                                       "link-local addresses.")] = False
    high_entropy: Annotated[bool, Field(description="Also detect-secrets' high-entropy "
                                        "string plugins (noisy on real code).")] = False
    drop_files_with: Annotated[list[str], Field(description="Drop files with these findings "
                                                "instead of redacting, e.g. PRIVATE_KEY.")] = \
        field(default_factory=list)


def known_kinds() -> set[str]:
    """Every kind the scrubber finds (its placeholders' names): what drop_files_with takes."""
    return {*sec.KINDS.values(), "EMAIL", "IP_ADDRESS", "PASSWORD", "PRIVATE_KEY", "SECRET"}


def kinds_of(text: str) -> list[str]:
    """`--drop-files-with PRIVATE_KEY,AWS_ACCESS_KEY`: a typo would keep the key files."""
    kinds = [k.strip().upper() for k in text.split(",") if k.strip()]
    if unknown := sorted(set(kinds) - known_kinds()):
        raise ConfigError(f"--drop-files-with: unknown kind {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(known_kinds()))})")
    return kinds


def find(text: str, filename: str, opts: ScrubOptions) -> list[Span]:
    lines = sec.keyword_lines(text)  # found once, read by three detectors
    spans: list[Span] = [*pii.private_keys(text), *pii.connection_passwords(text),
                         *sec.regex_secrets(text, lines), *sec.config_secrets(text, lines),
                         *sec.keyword_secrets(text, filename, opts.high_entropy, lines)]
    if opts.emails:
        spans += pii.emails(text)
    if opts.ips:
        spans += pii.ips(text, opts.private_ips)
    return spans


def merge(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans, longest first among those that start together."""
    out: list[Span] = []
    end = -1
    for kind, a, b in sorted(spans, key=lambda s: (s[1], -(s[2] - s[1]))):
        if a >= end:
            out.append((kind, a, b))
            end = b
        elif b > end and out:  # overlaps the previous one and goes further: extend it
            k, a0, _ = out[-1]
            out[-1] = (k, a0, b)
            end = b
    return out


def redact(text: str, filename: str, opts: ScrubOptions) -> tuple[str, Counter[str]]:
    spans = merge(find(text, filename, opts))
    if not spans:
        return text, Counter()
    parts, pos = [], 0
    counts: Counter[str] = Counter()
    for kind, a, b in spans:
        parts += [text[pos:a], f"<{kind}>"]
        counts[kind] += 1
        pos = b
    parts.append(text[pos:])
    return "".join(parts), counts
