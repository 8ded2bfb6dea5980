"""The scrubber's pre-checks skip only scans that cannot match (corpus/scrub/prefilter.py):
the same spans as the plain full-text searches, on real files and on adversarial text."""

from __future__ import annotations

import random
import re

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench._planted import GENERATORS
from corpus.scrub import pii, prefilter

LINE_PATTERNS = [(pii.EMAIL, pii.AT), (pii.CONN, pii.SCHEME), (pii.IPV4, pii.DOTTED_QUAD),
                 (pii.IPV6, pii.HEX_COLON)]
#: characters these patterns turn on, so random text is full of near-matches
ALPHABET = "ab1209fF.:@/ -_\n\t'\"=xs"


def _spans(it) -> list[tuple[int, int]]:
    return [m.span() for m in it]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=200))
def test_line_windows_find_what_a_full_search_finds(text):
    for regex, anchor in LINE_PATTERNS:
        assert _spans(prefilter.finditer_lines(regex, anchor, text)) == \
            _spans(regex.finditer(text)), regex.pattern


def test_line_windows_on_real_files(python_docs):
    files = sorted(python_docs.glob("data/part-*.parquet"))[:2]
    contents = [c for f in files for c in pq.read_table(f, columns=["content"])
                .column("content").to_pylist()]
    assert len(contents) > 100
    for regex, anchor in LINE_PATTERNS:
        for text in contents:
            assert _spans(prefilter.finditer_lines(regex, anchor, text)) == \
                _spans(regex.finditer(text))


def test_every_rule_match_contains_one_of_its_factors():
    """Planted secrets of every kind, and the catalog rules' own matches in them: one of the
    factors a rule is skipped without is in each of its matches (lower-cased)."""
    from corpus.scrub import engine

    rnd = random.Random(7)
    texts = [template.format(v=make(rnd)) for _, make, template in GENERATORS.values()
             for _ in range(20)]
    index = engine.index()
    found = 0
    for rule in index.rules:
        factors = prefilter.factor_set(rule.regex)
        for text in texts:
            for m in rule.regex.finditer(text):
                found += 1
                if factors is not None:
                    assert any(f in m.group(0).lower() for f in factors), rule.id
    assert found >= len(GENERATORS)
    assert len(index.always) <= len(index.rules) // 20  # it skips most


@pytest.mark.parametrize(("pattern", "factors"), [
    (r"\b((?:A3T[A-Z0-9]|AKIA|ASIA)[A-Z2-7]{16})\b", {"a3t", "akia", "asia"}),
    (r"(?i)\b(npm_[a-z0-9]{36})", {"npm_"}), (r"(?:(?-i:[Ss]umo|SUMO))x", {"sumox"}),
    (r"(?:foo|bar)baz", {"baz"}), (r"[ab]+c{2}", None), (r"(?:foo|bar)[0-9]", {"foo", "bar"}),
    (r"x?ghp_", {"ghp_"}),
    (r"(?:abc)?xyz1", {"xyz1"}), (r"SK[0-9a-f]{32}", None),
])
def test_factor_set(pattern, factors):
    assert prefilter.factor_set(re.compile(pattern)) == (None if factors is None
                                                         else frozenset(factors))
