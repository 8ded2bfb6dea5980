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
from corpus.scrub import assignments, catalog, engine, pii
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
    return {*catalog.kinds(), "EMAIL", "IP_ADDRESS", "PASSWORD", "PRIVATE_KEY", "SECRET"}


def kinds_of(text: str) -> list[str]:
    """`--drop-files-with PRIVATE_KEY,AWS_ACCESS_KEY`: a typo would keep the key files."""
    kinds = [k.strip().upper() for k in text.split(",") if k.strip()]
    if unknown := sorted(set(kinds) - known_kinds()):
        raise ConfigError(f"--drop-files-with: unknown kind {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(known_kinds()))})")
    return kinds


def find(text: str, filename: str, opts: ScrubOptions,
         candidates: set[int] | None = None) -> list[Span]:
    """Every finding of one document; `candidates`: the rules and detectors that may match it
    (engine.RuleIndex.partition, one pass over a partition), found here when None;
    `index.everything()` runs them all (the reference scan)."""
    index = engine.index()
    if candidates is None:
        candidates = index.candidates_of(text)
    spans: list[Span] = [*pii.private_keys(text), *index.find(text, filename, candidates),
                         *assignments.find(text, filename)]
    if index.may(candidates, "CONN"):
        spans += pii.connection_passwords(text)
    if opts.high_entropy:
        spans += sec.entropy_secrets(text, filename)
    if opts.emails and index.may(candidates, "EMAIL"):
        spans += pii.emails(text)
    if opts.ips:
        spans += pii.ips(text, opts.private_ips, index.may(candidates, "IPV4"),
                         index.may(candidates, "IPV6"))
    return spans


PII = frozenset({"EMAIL", "IP_ADDRESS"})
#: kinds that name no provider: a provider's kind wins over them on the same span
GENERIC = frozenset({"SECRET", "PASSWORD"})


def merge(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans, longest first among those that start together (a provider's kind
    before a generic one on the same span). Two secrets that
    overlap become one span (a key block over the base64 inside it); an email or address that
    overlaps a secret yields to it (`pa;ss@db.corp` is a password, not `ss@db.corp`)."""
    out: list[Span] = []
    end = -1
    for kind, a, b in sorted(spans, key=lambda s: (s[1], -(s[2] - s[1]), s[0] in GENERIC)):
        if a >= end:
            out.append((kind, a, b))
            end = b
            continue
        k, a0, _ = out[-1]
        if kind in PII and k not in PII:
            continue  # inside or across the secret before it: the secret stands
        if k in PII and kind not in PII:
            out[-1] = (kind, a, b)  # the secret replaces the address it overlaps
            end = b
        elif b > end:  # overlaps the previous one and goes further: extend it
            out[-1] = (k, a0, b)
            end = b
    return out


def redact(text: str, filename: str, opts: ScrubOptions,
           candidates: set[int] | None = None) -> tuple[str, Counter[str]]:
    out, counts, _ = redact_placed(text, filename, opts, candidates)
    return out, counts


#: (kind, start, end of the placeholder in the output, length of the value it replaced)
Placed = tuple[str, int, int, int]


def redact_placed(text: str, filename: str, opts: ScrubOptions,
                  candidates: set[int] | None = None,
                  ) -> tuple[str, Counter[str], list[Placed]]:
    """`redact`, and where each placeholder went (for the report's examples)."""
    spans = merge(find(text, filename, opts, candidates))
    if not spans:
        return text, Counter(), []
    parts, pos, size = [], 0, 0
    counts: Counter[str] = Counter()
    placed: list[Placed] = []
    for kind, a, b in spans:
        placeholder = f"<{kind}>"
        size += a - pos
        parts += [text[pos:a], placeholder]
        placed.append((kind, size, size + len(placeholder), b - a))
        size += len(placeholder)
        counts[kind] += 1
        pos = b
    parts.append(text[pos:])
    return "".join(parts), counts, placed
