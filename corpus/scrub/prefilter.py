"""Cheap exact pre-checks that let the scrubber skip regex scans that cannot match.

Python's `re` steps through every position of a text for a pattern that does not start with a
literal, so hundreds of rules over every file would cost more than everything else in the
stage. Two checks, both exact (they never skip a match):
- a pattern's factors (`factor_set`, read from the parsed pattern): strings one of which every
  match contains (`akia`, `ghp_`, `npm_`); engine.py looks them up in one compiled scan;
- a pattern whose matches never span a line, and always contain a short anchor (`@` for an
  email, `://` for a connection string), is run only on the lines where the anchor occurs
  (`finditer_lines`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

try:  # the parser of `re` (Python 3.11+); without it no factor is found and nothing is skipped
    from re import _constants as _c
    from re import _parser
except ImportError:  # pragma: no cover
    _parser = _c = None  # type: ignore[assignment]


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
