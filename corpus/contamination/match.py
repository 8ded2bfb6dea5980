"""Which documents contain a benchmark snippet: exact substring after whitespace
normalization (every run of whitespace becomes one space, on both sides), and optionally token
n-gram overlap with a benchmark solution.

Fast path, no Python step per document: every document's token 5-gram hashes are computed at
once over the Arrow buffer (the near-dedup kernels); a document can contain a snippet only if
it holds all of the snippet's 5-grams, so only those few are checked by substring, snippet by
snippet. Snippets shorter than `min_chars` normalized characters are left out (HumanEval's
shortest solutions, `return x + y`, are common code; a file that copies a problem copies its
prompt too); snippets of fewer than 5 tokens are searched directly.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.contamination.benchmarks import Snippet
from corpus.dedup.shingles import reference, shingles
from corpus.text import text_of

WS = re.compile(r"\s+")
N = 5  # tokens per n-gram of the exact-match prefilter


def member(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """values ∈ keys, by binary search in the (small, sorted) keys: no sort of the values."""
    idx = np.searchsorted(sorted_keys, values)
    idx[idx == len(sorted_keys)] = 0
    return sorted_keys[idx] == values


def normalize(text: str) -> str:
    return WS.sub(" ", text).strip()


class Matcher:
    def __init__(self, snippets: list[Snippet], min_chars: int = 40, ngram: int | None = None,
                 ngram_threshold: float = 0.7, min_ngrams: int = 10):
        kept = [s for s in snippets if len(normalize(s.text)) >= min_chars]
        self.snippets = [(s, normalize(s.text)) for s in kept]
        self.ngram, self.threshold = ngram, ngram_threshold
        self.exact = self._index(N, lambda s: True)
        # overlap is only meaningful for solutions with enough n-grams: two shared 5-grams
        # of a one-line solution are common code, not a copy
        self.fuzzy = self._index(ngram, lambda s: s.part == "solution"
                                 and len(reference(s.text, ngram)) >= min_ngrams) \
            if ngram else None
        self.short = [i for i, (s, _) in enumerate(self.snippets)
                      if len(reference(s.text, N)) <= 1]

    def _index(self, n: int, use) -> tuple[np.ndarray, dict[int, list[int]], list[int]]:
        """(sorted gram hashes, hash -> snippet indexes, grams per snippet)."""
        grams: dict[int, list[int]] = defaultdict(list)
        sizes = []
        for i, (s, _) in enumerate(self.snippets):
            g = reference(s.text, n) if use(s) else set()
            sizes.append(len(g))
            for h in g:
                grams[h].append(i)
        return np.array(sorted(grams), dtype=np.uint64), grams, sizes

    @staticmethod
    def _coverage(hashes: np.ndarray, index) -> dict[int, float]:
        keys, grams, sizes = index
        seen: dict[int, int] = defaultdict(int)
        for h in set(hashes[member(hashes, keys)].tolist()):
            for j in grams[h]:
                seen[j] += 1
        return {j: c / sizes[j] for j, c in seen.items() if sizes[j]}

    def reasons(self, content: pa.Array | pa.ChunkedArray) -> list[str | None]:
        """Per document: None (clean) or 'contaminated <benchmark> <task> (<part>)'."""
        arr = content.combine_chunks() if isinstance(content, pa.ChunkedArray) else content
        arr = pc.fill_null(arr, "")
        out: list[str | None] = [None] * len(arr)
        for n, index in ((N, self.exact), (self.ngram, self.fuzzy)):
            if index is None or not len(index[0]) or not n:
                continue
            sh = shingles(text_of(arr), n)
            if not len(sh.hashes):
                continue
            present = np.concatenate([[0], np.cumsum(member(sh.hashes, index[0]))])
            # shingles of each document found in the index (reduceat would fail on documents
            # without shingles at the end: their start is past the last shingle)
            counts = present[sh.starts + sh.counts] - present[sh.starts]
            for i in np.flatnonzero(counts):
                if out[i] is None:
                    out[i] = (self._exact_reason(arr[int(i)].as_py(), sh.of(int(i)))
                              if n == N and index is self.exact
                              else self._fuzzy_reason(sh.of(int(i))))
        for j in self.short:  # snippets too short for the 5-gram prefilter
            s, t = self.snippets[j]
            hit = pc.match_substring(pc.utf8_trim_whitespace(
                pc.replace_substring_regex(arr, r"\s+", " ")), t)
            for i in np.flatnonzero(hit.to_numpy(zero_copy_only=False)):
                out[i] = out[i] or f"contaminated {s.benchmark} {s.task} ({s.part})"
        return out

    def _exact_reason(self, text: str, hashes: np.ndarray) -> str | None:
        full = [j for j, c in self._coverage(hashes, self.exact).items() if c >= 1.0]
        if not full:
            return None
        norm = normalize(text)
        for j in sorted(full):
            s, t = self.snippets[j]
            if t in norm:
                return f"contaminated {s.benchmark} {s.task} ({s.part})"
        return None

    def _fuzzy_reason(self, hashes: np.ndarray) -> str | None:
        assert self.fuzzy is not None
        cov = self._coverage(hashes, self.fuzzy)
        if not cov:
            return None
        j = max(cov, key=lambda k: (cov[k], -k))
        if cov[j] < self.threshold:
            return None
        s = self.snippets[j][0]
        return f"contaminated {s.benchmark} {s.task} (solution n-grams {cov[j]:.2f})"
