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
from corpus.scrub import secrets as sec

LINE_PATTERNS = [(pii.EMAIL, pii.AT), (pii.CONN, pii.SCHEME), (pii.IPV4, pii.DIGIT_DOT_DIGIT),
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


def test_every_plugin_match_contains_its_literal():
    """Planted secrets of every kind, and the plugins' own matches in them: the literal a
    plugin is skipped without is in each match (in the lower-cased match if it ignores case)."""
    rnd = random.Random(7)
    texts = [template.format(v=make(rnd)) for _, make, template in GENERATORS.values()
             for _ in range(20)]
    literals = sec._literals()
    found = 0
    for (_, regex), (literal, nocase) in zip(sec._plugins()[0], literals, strict=True):
        for text in texts:
            for m in regex.finditer(text):
                found += 1
                if literal is not None:
                    assert literal in (m.group(0).lower() if nocase else m.group(0))
    assert found >= len(GENERATORS)
    assert sum(lit is not None for lit, _ in literals) >= len(literals) // 2  # it skips most


@pytest.mark.parametrize(("pattern", "literal"), [
    (r"(?:\s|^)AKC[a-z]{10,}", "AKC"), (r"(ghp|gho)_[A-Z]{36}", "gh"),
    (r"x(?:abc)?yz", "yz"), (r"(?i)xox(?:a|b)-\d+", "xox"), (r"a(?i:bcd)e", None),
    (r"\d{8}:[a-z]{35}", None), (r"https://hooks\.slack\.com/x", "https://hooks.slack.com/x"),
    (r"(?x) ab  c # comment", "abc"),
    (r"[ab]+", None), (r"(?:foo|bar)baz", "baz"),
])
def test_required_literal(pattern, literal):
    assert prefilter.required_literal(re.compile(pattern)) == literal


def test_case_insensitive_literals_are_exact_on_ascii_only():
    # `re` folds the long s (U+017F) to s: a non-ASCII text is always scanned
    regex = re.compile("(?i)pass")
    text = "pa\u017f\u017f = 1"
    assert regex.search(text)
    literal = prefilter.required_literal(regex)
    assert prefilter.may_match(literal, True, text, prefilter.lower_if_ascii(text))
    assert not prefilter.may_match(literal, True, "x = 1", prefilter.lower_if_ascii("x = 1"))
    assert prefilter.may_match(literal, True, "PASS = 1", prefilter.lower_if_ascii("PASS = 1"))
