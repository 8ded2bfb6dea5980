"""Which provider rules can match which documents, from compiled multi-pattern scans
(Hyperscan) of each document's UTF-8 bytes, read from the partition's Arrow buffer; the rules'
Python regexes then run only where they can match.

Two exact filters, each a superset of the rule's matches, so a skipped rule cannot match and
the output equals the plain per-rule scan (`reference`; tests/test_scrub_engine.py):
1. factors: every match of a rule contains one of its factors (prefilter.factor_set, read off
   the parsed pattern), looked up without case. Rules without a factor pass.
2. the rules' whole patterns in Hyperscan's prefilter mode (which may report a match that is
   not one, never miss one), in UTF-8 mode without Unicode classes: `.` is a character and
   `\\w`, `\\s`, `\\b` and case are ASCII, as in the rules' `re.ASCII` regexes. A text that is
   not valid UTF-8 (lone surrogates) skips this filter. The database takes about 10 s to
   compile and is kept in the user's cache folder (`$XDG_CACHE_HOME/corpus`), keyed by its
   patterns.
Without Hyperscan (a platform with no wheel) factors are looked up with `in`: the same
output, slower.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pyarrow as pa

from corpus.scrub import catalog, prefilter

try:
    import hyperscan
except ImportError:  # pragma: no cover - every platform with a wheel has it
    hyperscan = None


class RuleIndex:
    """The catalog's rules, their factors, and the compiled literal database."""

    def __init__(self, rules: Sequence[catalog.Rule],
                 detectors: dict[str, re.Pattern[str]] | None = None):
        self.rules = tuple(rules)
        #: other detectors' patterns (pii.DETECTORS), ids after the rules': `may(ids, name)`
        self.detector_id = {name: len(self.rules) + k for k, name in enumerate(detectors or {})}
        patterns = [r.regex.pattern for r in self.rules] + [
            d.pattern for d in (detectors or {}).values()]
        self.always: frozenset[int] = frozenset()
        by_factor: dict[str, set[int]] = {}
        always = set()
        #: how specific a rule is: its shortest factor (`T3BlbkFJ` over `sk-`)
        self.specificity: list[int] = []
        for i, rule in enumerate(self.rules):
            found = prefilter.factor_set(rule.regex)
            self.specificity.append(min(map(len, found)) if found else 0)
            if found is None:
                always.add(i)
                continue
            for f in found:
                by_factor.setdefault(f, set()).add(i)
        self.always = frozenset(always | set(self.detector_id.values()))
        self.factors = sorted(by_factor)
        self.rules_of = [frozenset(by_factor[f]) for f in self.factors]
        # whole-pattern filters: the rules without a factor (with the factors, one database),
        # the detectors (every document) and the others (documents where a factor of one of
        # them was found)
        self.whole = frozenset(i for i, r in enumerate(self.rules) if r.path is None) | \
            frozenset(self.detector_id.values())
        detectors = frozenset(self.detector_id.values())
        self.first_ids = self.whole & self.always - detectors
        self.db = self.literal_db = None
        self.filters: list[tuple[frozenset[int], object, object]] = []
        if hyperscan is not None and self.factors:
            literals = [(FACTOR + k, re.escape(f), LITERAL) for k, f in enumerate(self.factors)]
            self.literal_db = _compiled(literals)  # for text that is not UTF-8
            self.literal_scratch = hyperscan.Scratch(self.literal_db)
            self.db = _compiled(literals + [(i, patterns[i], WHOLE)
                                            for i in sorted(self.first_ids)])
            self.scratch = hyperscan.Scratch(self.db)
            for ids in (detectors, self.whole - self.always):
                db = _compiled([(i, patterns[i], WHOLE) for i in sorted(ids)])
                self.filters.append((ids, db, hyperscan.Scratch(db)))

    def candidates(self, data: bytes | memoryview, text: str | None = None,
                   utf8: bool = True) -> set[int]:
        """Indices of the rules that may match the document (its UTF-8 bytes; utf8=False
        when they are not valid UTF-8)."""
        found: set[int] = set(self.always)
        if self.db is not None:
            hit: list[int] = []
            # (the memoryview of the Arrow buffer goes to Hyperscan as it is: no copy)
            if not utf8:  # the whole patterns are UTF-8 patterns: the factors alone
                self.literal_db.scan(data, match_event_handler=lambda i, *_: hit.append(i),
                                     scratch=self.literal_scratch)
                for i in hit:
                    found |= self.rules_of[i - FACTOR]
                return found
            self.db.scan(data, match_event_handler=lambda i, *_: hit.append(i),
                         scratch=self.scratch)
            found -= self.first_ids
            for i in hit:
                if i >= FACTOR:
                    found |= self.rules_of[i - FACTOR]
                else:
                    found.add(i)  # a rule without a factor whose whole pattern may match
            for ids, db, scratch in self.filters:
                if found & ids:
                    passed: list[int] = []
                    db.scan(data, match_event_handler=lambda i, *_, out=passed: out.append(i),
                            scratch=scratch)
                    found = (found - ids) | (found & set(passed))
            return found
        lower = (text if text is not None else bytes(data).decode()).lower()
        for f, rules in zip(self.factors, self.rules_of, strict=True):
            if f in lower:
                found |= rules
        return found

    def partition(self, contents: pa.Array) -> list[set[int] | None]:
        """`candidates` of every document of a partition, read from the Arrow column's own
        buffer (no copy per document); None for a null document."""
        arr = contents.cast(pa.large_string()) if contents.type != pa.large_string() \
            else contents
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
        _, offsets_buf, data_buf = arr.buffers()
        offsets = memoryview(offsets_buf).cast("q")[arr.offset:arr.offset + len(arr) + 1] \
            if offsets_buf is not None else []
        data = memoryview(data_buf) if data_buf is not None else memoryview(b"")
        out: list[set[int] | None] = []
        for i in range(len(arr)):
            if not arr[i].is_valid:
                out.append(None)
                continue
            out.append(self.candidates(data[offsets[i]:offsets[i + 1]]))
        return out

    def candidates_of(self, text: str) -> set[int]:
        """`candidates` of one Python string."""
        try:
            return self.candidates(text.encode("utf-8"), text)
        except UnicodeEncodeError:  # lone surrogates: not UTF-8, no whole-pattern filter
            return self.candidates(text.encode("utf-8", "surrogatepass"), text, utf8=False)

    def find(self, text: str, path: str, candidates: set[int] | None = None,
             ) -> list[tuple[str, int, int]]:
        """Every provider-rule finding of `text`: the candidate rules only."""
        if candidates is None:
            candidates = self.candidates_of(text)
        return self._resolve(text, path, sorted(i for i in candidates if i < len(self.rules)))

    def may(self, candidates: set[int], detector: str) -> bool:
        """Whether the candidate scan left `detector` (a pii.DETECTORS name) to run."""
        return self.detector_id[detector] in candidates

    def everything(self) -> set[int]:
        """Every rule and detector: the candidates of the plain reference scan."""
        return set(range(len(self.rules) + len(self.detector_id)))

    def reference(self, text: str, path: str) -> list[tuple[str, int, int]]:
        """The plain per-rule scan: every rule over the whole text."""
        return self._resolve(text, path, range(len(self.rules)))

    def _resolve(self, text: str, path: str, ids: Sequence[int]) -> list[tuple[str, int, int]]:
        """The rules' findings; where several find the same value, the most specific rule's
        kind (an OpenAI key is also the shape of a Kimi key)."""
        best: dict[tuple[int, int], tuple[int, str]] = {}
        for i in ids:
            for kind, a, b in self.rules[i].find(text, path):
                if (a, b) not in best or self.specificity[i] > best[(a, b)][0]:
                    best[(a, b)] = (self.specificity[i], kind)
        return [(kind, a, b) for (a, b), (_, kind) in sorted(best.items())]


@cache
def index() -> RuleIndex:
    """The catalog's index, built once per process (Hyperscan compiles literals in ms)."""
    from corpus.scrub.pii import DETECTORS

    return RuleIndex(catalog.rules(), DETECTORS)


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "corpus"


#: ids of the factors in the first pass's database (the rules' ids are below)
FACTOR = 1 << 20
if hyperscan is not None:
    LITERAL = hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH
    WHOLE = (hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_SINGLEMATCH
             | hyperscan.HS_FLAG_ALLOWEMPTY | hyperscan.HS_FLAG_UTF8)


def _compiled(patterns: list[tuple[int, str, int]]) -> object:
    """A Hyperscan database of (id, pattern, flags), from the cache when there: whole patterns
    in prefilter mode take seconds to compile."""
    key = hashlib.sha256(repr((hyperscan.__version__, patterns)).encode()).hexdigest()
    path = _cache_dir() / f"scrub-rules-{key[:24]}.hsdb"
    try:
        return hyperscan.loadb(path.read_bytes(), hyperscan.HS_MODE_BLOCK)
    except (OSError, hyperscan.error):
        pass
    db = hyperscan.Database()
    db.compile(expressions=[p.encode() for _, p, _ in patterns],
               ids=[i for i, _, _ in patterns], elements=len(patterns),
               flags=[f for _, _, f in patterns])
    try:  # best effort: a read-only home only costs the compile next time
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as f:
            f.write(hyperscan.dumpb(db))
        os.replace(f.name, path)
    except OSError:
        pass
    return db
