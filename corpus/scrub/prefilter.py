"""Cheap exact pre-checks that let the scrubber skip regex scans that cannot match.

Python's `re` steps through every position of a text for a pattern that does not start with a
literal, so thirty-odd detectors over every file cost more than everything else in the stage.
Two checks, both exact (they never skip a match):
- a pattern whose every match contains a literal (`AKC`, `-us`, `hooks.slack.com`) is not run
  on a document without that literal (`required_literal`, read from the parsed pattern);
- a pattern whose matches never span a line, and always contain a short anchor (`@` for an
  email, `://` for a connection string), is run only on the lines where the anchor occurs
  (`finditer_lines`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

try:  # the parser of `re` (Python 3.11+); without it no literal is found and nothing is skipped
    from re import _constants as _c
    from re import _parser
except ImportError:  # pragma: no cover
    _parser = _c = None  # type: ignore[assignment]


def _sequence(items: list[tuple[object, object]], ignorecase: bool) -> list[str | None]:
    """The pattern as a flat sequence: a character for each literal that every match has at
    that place, None for anything else (which ends a run of literals)."""
    out: list[str | None] = []
    for op, av in items:
        if op is _c.LITERAL:
            out.append(chr(av))  # type: ignore[call-overload]
        elif op is _c.SUBPATTERN:
            _, add, remove, sub = av  # type: ignore[misc]
            if (add | remove) & re.IGNORECASE and not ignorecase:
                out.append(None)  # a case-insensitive group inside a case-sensitive pattern
            else:
                out += _sequence(list(sub), ignorecase)
        else:
            out.append(None)
    return out


def required_literal(regex: re.Pattern[str], min_len: int = 2) -> str | None:
    """The longest literal every match of `regex` contains, if it has one of min_len or more
    characters. For a case-insensitive pattern, the literal is lower-cased (see `may_match`)."""
    if _parser is None:
        return None
    try:
        parsed = _parser.parse(regex.pattern, regex.flags)
    except Exception:  # an unparsable pattern is simply never skipped
        return None
    ignorecase = bool(regex.flags & re.IGNORECASE)
    best, run = "", ""
    for ch in [*_sequence(list(parsed), ignorecase), None]:
        if ch is None:
            best, run = max(best, run, key=len), ""
        else:
            run += ch
    if len(best) < min_len:
        return None
    return best.lower() if ignorecase else best


def may_match(literal: str | None, ignorecase: bool, text: str, lower: str | None) -> bool:
    """False only when a pattern cannot match `text`: its required literal is absent. The
    literal of a case-insensitive pattern is looked up in the lower-cased text, which is exact
    for ASCII text only (`re` also folds `ſ` to `s`, `K` to `k`), so non-ASCII text (lower is
    None) is always scanned."""
    if literal is None:
        return True
    if not ignorecase:
        return literal in text
    return lower is None or literal in lower


def lower_if_ascii(text: str) -> str | None:
    """The text lower-cased when it is ASCII (for `may_match`), else None."""
    return text.lower() if text.isascii() else None


def finditer_lines(regex: re.Pattern[str], anchor: re.Pattern[str], text: str,
                   ) -> Iterator[re.Match[str]]:
    """The matches of `regex` in `text`, searched only on the lines where `anchor` matches.
    Exact when no match of `regex` spans a newline and each match contains a match of
    `anchor`: the same matches, in the same order, as `regex.finditer(text)`."""
    done = -1
    for a in anchor.finditer(text):
        if a.start() < done:
            continue
        start = text.rfind("\n", 0, a.start()) + 1
        end = text.find("\n", a.end())
        end = len(text) if end < 0 else end
        yield from regex.finditer(text, start, end)
        done = end


#: a factor shorter than this is too common to tell anything (every file has `a`)
MIN_FACTOR = 3
#: a character class this small is spelled out (`[Ss]umo` -> sumo)
_SMALL_CLASS = 3


def _class_chars(av: list[tuple[object, object]]) -> set[str] | None:
    chars: set[str] = set()
    for op, v in av:
        if op is _c.LITERAL:
            chars.add(chr(v).lower())  # type: ignore[call-overload]
        elif op is _c.RANGE and v[1] - v[0] < _SMALL_CLASS:  # type: ignore[index,operator]
            chars |= {chr(x).lower() for x in range(v[0], v[1] + 1)}  # type: ignore[index]
        else:
            return None
    return chars if len(chars) <= _SMALL_CLASS else None


def _best(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    """The more selective of two factor sets: fewer strings, then longer ones."""
    def score(s: frozenset[str]) -> tuple[bool, int, int]:
        return (min(map(len, s)) >= MIN_FACTOR, -len(s), min(map(len, s)))
    if a is None or not a:
        return b if b else None
    if b is None or not b:
        return a
    return max(a, b, key=score)


def _item_chars(op: object, av: object) -> set[str] | None:
    if op is _c.LITERAL:
        return {chr(av).lower()}  # type: ignore[call-overload]
    if op is _c.IN:
        return _class_chars(av)  # type: ignore[arg-type]
    return None


def _prefix(items: list[tuple[object, object]]) -> tuple[set[str], bool]:
    """The strings every match of the sequence starts with (spelled out over literals, small
    classes and branches of them), and whether they are the whole match."""
    run: set[str] = {""}
    for op, av in items:
        chars = _item_chars(op, av)
        whole = chars is not None
        if op is _c.SUBPATTERN:
            chars, whole = _prefix(list(av[3]))  # type: ignore[index]
        elif op is _c.BRANCH:
            parts = [_prefix(list(b)) for b in av[1]]  # type: ignore[index]
            chars = set().union(*(s for s, _ in parts))
            whole = all(w for _, w in parts)
        if chars is None or len(run) * len(chars) > 64:
            return run, False
        run = {r + ch for r in run for ch in chars}
        if not whole:
            return run, False
    return run, True


def _factors(items: list[tuple[object, object]]) -> frozenset[str] | None:
    """Lower-cased strings such that every match of the sequence contains one of them."""
    best: frozenset[str] | None = None
    for i, (op, av) in enumerate(items):
        if i == 0 or _item_chars(*items[i - 1]) is None:  # a run starts here
            run, _ = _prefix(items[i:])
            if run != {""}:
                best = _best(best, frozenset(run))
        sub: frozenset[str] | None = None
        if op is _c.SUBPATTERN:
            sub = _factors(list(av[3]))  # type: ignore[index]
        elif op is _c.BRANCH:
            parts = [_factors(list(b)) for b in av[1]]  # type: ignore[index]
            if all(p for p in parts):
                sub = frozenset().union(*parts)  # type: ignore[arg-type]
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and av[0] >= 1:  # type: ignore[index]
            sub = _factors(list(av[2]))  # type: ignore[index]
        best = _best(best, sub)
    return best


def factor_set(regex: re.Pattern[str]) -> frozenset[str] | None:
    """Lower-cased strings of MIN_FACTOR characters or more, one of which every match of
    `regex` contains (looked up case-insensitively, which is a superset for any flags), or
    None when no such set is found (the pattern is then run on every document)."""
    if _parser is None:
        return None
    try:
        found = _factors(list(_parser.parse(regex.pattern, regex.flags)))
    except Exception:
        return None
    if not found or min(map(len, found)) < MIN_FACTOR:
        return None
    return found
