"""Compiled inner loops of near-dedup (numba): tokenize + hash tokens, MinHash signatures,
Jaccard of sorted sets (the xxh3 loops themselves are corpus/xxh3.py). Each is checked in the
tests against the NumPy / Python definition it replaces; they exist because those run at
6-90 MB/s and these at several hundred.

Compiled once per process (and cached on disk next to this file when it is writable).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from corpus.text import Text
from corpus.xxh3 import M32, S64, hash_spans, xxh3_words


def token_hashes(t: Text) -> tuple[np.ndarray, np.ndarray]:
    """(xxh3_64 of every token, tokens per document): tokens are maximal runs of
    [A-Za-z0-9_] within a document, found with NumPy, hashed by the compiled loop."""

    d = t.data
    word = t.ascii_alnum | (d == 95)
    begin = word.copy()
    begin[1:] &= ~word[:-1]
    end = word.copy()
    end[:-1] &= ~word[1:]
    nonempty = t.nbytes > 0
    begin[t.starts[nonempty]] = word[t.starts[nonempty]]  # runs never cross documents
    end[t.ends[nonempty] - 1] = word[t.ends[nonempty] - 1]
    ts = np.flatnonzero(begin)
    return hash_spans(d, ts, np.flatnonzero(end) + 1 - ts), t.per_doc(ts)


@njit(cache=True, nogil=True)
def signatures(hv, starts, counts, a, b, out):
    """out[d, j] = min over the document's hashes x of (a[j] * x + b[j]) mod 2^32."""
    k = a.shape[0]
    for d in range(starts.shape[0]):
        row = out[d]
        for i in range(starts[d], starts[d] + counts[d]):
            x = np.uint64(hv[i])
            for j in range(k):
                v = np.uint32((np.uint64(a[j]) * x + np.uint64(b[j])) & M32)
                if v < row[j]:
                    row[j] = v
    return out


@njit(cache=True, nogil=True)
def jaccards(va, oa, left, vb, ob, right):
    """Jaccard of set pairs: set i of block a is va[oa[i]:oa[i+1]] (sorted, distinct), set j
    of block b likewise; pair p is (left[p], right[p])."""
    out = np.empty(left.shape[0], dtype=np.float64)
    for p in range(left.shape[0]):
        i, j = left[p], right[p]
        a, a_end, b, b_end = oa[i], oa[i + 1], ob[j], ob[j + 1]
        na, nb = a_end - a, b_end - b
        inter = 0
        while a < a_end and b < b_end:
            x, y = va[a], vb[b]
            if x == y:
                inter += 1
                a += 1
                b += 1
            elif x < y:
                a += 1
            else:
                b += 1
        union = na + nb - inter
        out[p] = inter / union if union else 0.0
    return out


@njit(cache=True, nogil=True)
def _windows(words, per_doc, n, s64):
    n_docs = per_doc.shape[0]
    counts = np.empty(n_docs, dtype=np.int64)
    for d in range(n_docs):
        k = per_doc[d]
        counts[d] = k - n + 1 if k >= n else min(k, 1)
    out = np.empty(counts.sum(), dtype=np.uint64)
    o, first = 0, 0
    for d in range(n_docs):
        k = per_doc[d]
        if k >= n:
            for j in range(first, first + k - n + 1):
                out[o] = xxh3_words(words, j, n, s64)
                o += 1
        elif k > 0:
            out[o] = xxh3_words(words, first, k, s64)
            o += 1
        first += k
    return out, counts


def shingle_hashes(words: np.ndarray, per_doc: np.ndarray, n: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(shingle hashes, shingles per document) from token hashes: per document with k
    tokens, xxh3_64 of each run of n consecutive token hashes (8n bytes) if k >= n, of all k
    if 0 < k < n, nothing if k = 0 (n <= 30)."""
    return _windows(np.ascontiguousarray(words, dtype=np.uint64), per_doc.astype(np.int64), n,
                    S64)


def sorted_sets(values: np.ndarray, starts: np.ndarray, counts: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Each document's values sorted and without repeats: (values, offsets). NumPy's SIMD
    sort per document (a loop of compiled sorts: 6 ns per value, 8x numba's np.sort), then one
    vectorized pass drops the repeats."""
    out = np.empty_like(values)
    for s, c in zip(starts.tolist(), counts.tolist(), strict=True):
        out[s:s + c] = np.sort(values[s:s + c])
    keep = np.ones(len(out), dtype=bool)
    keep[1:] = out[1:] != out[:-1]
    keep[starts[counts > 0]] = True
    doc = np.repeat(np.arange(len(counts)), counts)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(np.bincount(doc[keep], minlength=len(counts)), out=offsets[1:])
    return out[keep], offsets
