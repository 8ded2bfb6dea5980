"""Documents as sets of shingles: tokens are maximal runs of [A-Za-z0-9_], a shingle is n
consecutive tokens, and its hash is xxh3_64 of the n tokens' own xxh3_64 values (8 bytes each,
little-endian) — all vectorized over the Arrow buffer (corpus/xxh3.py).

A document with fewer than n tokens (but some) has one shingle: all its tokens; so two such
documents are near-duplicates only if they have the very same token sequence, never merely
for being short. A document without tokens has no shingles and is never anyone's duplicate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import xxhash

from corpus.dedup.kernels import shingle_hashes, token_hashes
from corpus.text import Text

TOKEN = re.compile(rb"[A-Za-z0-9_]+")


@dataclass
class Shingles:
    """Shingle hashes of a batch of documents, document after document."""
    hashes: np.ndarray  # uint64
    starts: np.ndarray  # int64: first shingle of each document
    counts: np.ndarray  # int64: shingles per document (0: no tokens)

    def of(self, i: int) -> np.ndarray:
        return self.hashes[self.starts[i]:self.starts[i] + self.counts[i]]


def shingles(t: Text, n: int) -> Shingles:
    """Every document's shingle hashes (see the module docstring)."""
    if not 1 <= n <= 30:
        raise ValueError("shingles of 1 to 30 tokens")
    th, k = token_hashes(t)  # k: tokens per document
    hashes, counts = shingle_hashes(th, k, n)
    return Shingles(hashes, np.cumsum(counts) - counts, counts)


def reference(text: str, n: int) -> set[int]:
    """The same shingle hashes, one Python call per token and shingle (for tests)."""
    toks = TOKEN.findall(text.encode("utf-8"))
    th = [xxhash.xxh3_64_intdigest(tok).to_bytes(8, "little") for tok in toks]
    if not th:
        return set()
    if len(th) < n:
        return {xxhash.xxh3_64_intdigest(b"".join(th))}
    return {xxhash.xxh3_64_intdigest(b"".join(th[j:j + n])) for j in range(len(th) - n + 1)}
