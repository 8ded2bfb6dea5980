"""Compiled inner loops of near-dedup (numba): tokenize + hash tokens, MinHash signatures,
Jaccard of sorted sets. Each is checked in the tests against the NumPy / Python definition it
replaces; they exist because those run at 6-90 MB/s and these at several hundred.

Compiled once per process (and cached on disk next to this file when it is writable).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from corpus.dedup.xxh3 import SECRET
from corpus.filters.text import Text

#: the secret read as little-endian uint64 / uint32 at every byte offset
_S64 = np.array([int.from_bytes(SECRET[o:o + 8], "little") for o in range(185)], np.uint64)
_S32 = np.array([int.from_bytes(SECRET[o:o + 4], "little") for o in range(189)], np.uint64)
P64_1 = np.uint64(0x9E3779B185EBCA87)
P64_2 = np.uint64(0xC2B2AE3D27D4EB4F)
P64_3 = np.uint64(0x165667B19E3779F9)
MX1 = np.uint64(0x165667919E3779F9)
MX2 = np.uint64(0x9FB21C651E98DF25)
M32 = np.uint64(0xFFFFFFFF)


@njit(inline="always")
def _fold(a, b):
    a0, a1 = a & M32, a >> np.uint64(32)
    b0, b1 = b & M32, b >> np.uint64(32)
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    mid = (p00 >> np.uint64(32)) + (p01 & M32) + (p10 & M32)
    lo = (p00 & M32) | (mid << np.uint64(32))
    hi = p11 + (p01 >> np.uint64(32)) + (p10 >> np.uint64(32)) + (mid >> np.uint64(32))
    return lo ^ hi


@njit(inline="always")
def _av(h):
    h ^= h >> np.uint64(37)
    h *= MX1
    return h ^ (h >> np.uint64(32))


@njit(inline="always")
def _mix16(r64, i, s64, so):
    return _fold(r64[i] ^ s64[so], r64[i + 8] ^ s64[so + 8])


@njit(inline="always")
def _rotl(h, r):
    return (h << np.uint64(r)) | (h >> np.uint64(64 - r))


@njit(cache=True, nogil=True)
def _len1to3(b, idx, starts, lengths, s32, out):
    for t in idx:
        i, n = starts[t], lengths[t]
        c = (np.uint64(b[i]) << np.uint64(16)) | (np.uint64(b[i + (n >> 1)]) << np.uint64(24)) \
            | np.uint64(b[i + n - 1]) | (np.uint64(n) << np.uint64(8))
        h = c ^ (s32[0] ^ s32[4])
        h ^= h >> np.uint64(33)
        h *= P64_2
        h ^= h >> np.uint64(29)
        h *= P64_3
        out[t] = h ^ (h >> np.uint64(32))


@njit(cache=True, nogil=True)
def _len4to8(r32, idx, starts, lengths, s64, out):
    flip = s64[8] ^ s64[16]
    for t in idx:
        i, n = starts[t], lengths[t]
        keyed = (np.uint64(r32[i + n - 4]) + (np.uint64(r32[i]) << np.uint64(32))) ^ flip
        h = keyed ^ _rotl(keyed, 49) ^ _rotl(keyed, 24)
        h *= MX2
        h ^= (h >> np.uint64(35)) + np.uint64(n)
        h *= MX2
        out[t] = h ^ (h >> np.uint64(28))


@njit(cache=True, nogil=True)
def _len9to16(r64, idx, starts, lengths, s64, out):
    flip_lo, flip_hi = s64[24] ^ s64[32], s64[40] ^ s64[48]
    for t in idx:
        i, n = starts[t], lengths[t]
        lo = r64[i] ^ flip_lo
        hi = r64[i + n - 8] ^ flip_hi
        sw = ((lo & np.uint64(0xFF)) << np.uint64(56)) \
            | ((lo & np.uint64(0xFF00)) << np.uint64(40)) \
            | ((lo & np.uint64(0xFF0000)) << np.uint64(24)) \
            | ((lo & np.uint64(0xFF000000)) << np.uint64(8)) \
            | ((lo >> np.uint64(8)) & np.uint64(0xFF000000)) \
            | ((lo >> np.uint64(24)) & np.uint64(0xFF0000)) \
            | ((lo >> np.uint64(40)) & np.uint64(0xFF00)) | (lo >> np.uint64(56))
        out[t] = _av(np.uint64(n) + sw + hi + _fold(lo, hi))


@njit(cache=True, nogil=True)
def _len17to240(r64, idx, starts, lengths, s64, out):
    for t in idx:
        i, n = starts[t], lengths[t]
        acc = np.uint64(n) * P64_1
        if n <= 128:
            if n > 32:
                if n > 64:
                    if n > 96:
                        acc += _mix16(r64, i + 48, s64, 96) + _mix16(r64, i + n - 64, s64, 112)
                    acc += _mix16(r64, i + 32, s64, 64) + _mix16(r64, i + n - 48, s64, 80)
                acc += _mix16(r64, i + 16, s64, 32) + _mix16(r64, i + n - 32, s64, 48)
            acc += _mix16(r64, i, s64, 0) + _mix16(r64, i + n - 16, s64, 16)
            out[t] = _av(acc)
            continue
        for k in range(8):
            acc += _mix16(r64, i + 16 * k, s64, 16 * k)
        acc = _av(acc)
        for k in range(8, n // 16):
            acc += _mix16(r64, i + 16 * k, s64, 16 * (k - 8) + 3)
        acc += _mix16(r64, i + n - 16, s64, 136 - 17)
        out[t] = _av(acc)


def hash_spans(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """xxh3_64 of buf[starts[t]:starts[t]+lengths[t]] (what xxh3.hash_spans computes), one
    compiled loop per length class; spans over 240 bytes through the xxhash library."""
    import xxhash

    starts = starts.astype(np.int64, copy=False)
    lengths = lengths.astype(np.int64, copy=False)
    raw, r64, r32 = readers(buf)
    out = np.empty(len(starts), dtype=np.uint64)
    out[lengths == 0] = xxhash.xxh3_64_intdigest(b"")
    _len1to3(raw, np.flatnonzero((lengths >= 1) & (lengths <= 3)), starts, lengths, _S32, out)
    _len4to8(r32, np.flatnonzero((lengths >= 4) & (lengths <= 8)), starts, lengths, _S64, out)
    _len9to16(r64, np.flatnonzero((lengths >= 9) & (lengths <= 16)), starts, lengths, _S64,
              out)
    _len17to240(r64, np.flatnonzero((lengths >= 17) & (lengths <= 240)), starts, lengths, _S64,
                out)
    view = memoryview(raw)
    for t in np.flatnonzero(lengths > 240).tolist():
        out[t] = xxhash.xxh3_64_intdigest(view[starts[t]:starts[t] + lengths[t]])
    return out


def readers(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bytes, uint64 reader, uint32 reader): words at every byte offset, zero-copy views of
    a padded copy."""
    padded = np.concatenate([buf.view(np.uint8).ravel(), np.zeros(8, dtype=np.uint8)])
    n = len(padded) - 7
    r64 = np.ndarray((n,), dtype="<u8", buffer=padded, offset=0, strides=(1,))
    r32 = np.ndarray((n,), dtype="<u4", buffer=padded, offset=0, strides=(1,))
    return padded, r64, r32


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


@njit(inline="always")
def _mix_words(w, j, s64, so):
    return _fold(w[j] ^ s64[so], w[j + 1] ^ s64[so + 8])


@njit(inline="always")
def _xxh3_words(w, j, m, s64):
    """xxh3_64 of the 8m bytes of words w[j:j+m] (1 <= m <= 30), reading whole words."""
    nb = 8 * m
    if m == 1:
        x = w[j]
        keyed = ((x >> np.uint64(32)) + ((x & M32) << np.uint64(32))) ^ (s64[8] ^ s64[16])
        h = keyed ^ _rotl(keyed, 49) ^ _rotl(keyed, 24)
        h *= MX2
        h ^= (h >> np.uint64(35)) + np.uint64(8)
        h *= MX2
        return h ^ (h >> np.uint64(28))
    if m == 2:
        lo = w[j] ^ (s64[24] ^ s64[32])
        hi = w[j + 1] ^ (s64[40] ^ s64[48])
        sw = ((lo & np.uint64(0xFF)) << np.uint64(56)) \
            | ((lo & np.uint64(0xFF00)) << np.uint64(40)) \
            | ((lo & np.uint64(0xFF0000)) << np.uint64(24)) \
            | ((lo & np.uint64(0xFF000000)) << np.uint64(8)) \
            | ((lo >> np.uint64(8)) & np.uint64(0xFF000000)) \
            | ((lo >> np.uint64(24)) & np.uint64(0xFF0000)) \
            | ((lo >> np.uint64(40)) & np.uint64(0xFF00)) | (lo >> np.uint64(56))
        return _av(np.uint64(16) + sw + hi + _fold(lo, hi))
    acc = np.uint64(nb) * P64_1
    if m <= 16:
        if nb > 32:
            if nb > 64:
                if nb > 96:
                    acc += _mix_words(w, j + 6, s64, 96) + _mix_words(w, j + m - 8, s64, 112)
                acc += _mix_words(w, j + 4, s64, 64) + _mix_words(w, j + m - 6, s64, 80)
            acc += _mix_words(w, j + 2, s64, 32) + _mix_words(w, j + m - 4, s64, 48)
        acc += _mix_words(w, j, s64, 0) + _mix_words(w, j + m - 2, s64, 16)
        return _av(acc)
    for k in range(8):
        acc += _mix_words(w, j + 2 * k, s64, 16 * k)
    acc = _av(acc)
    for k in range(8, nb // 16):
        acc += _mix_words(w, j + 2 * k, s64, 16 * (k - 8) + 3)
    acc += _mix_words(w, j + m - 2, s64, 136 - 17)
    return _av(acc)


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
                out[o] = _xxh3_words(words, j, n, s64)
                o += 1
        elif k > 0:
            out[o] = _xxh3_words(words, first, k, s64)
            o += 1
        first += k
    return out, counts


def shingle_hashes(words: np.ndarray, per_doc: np.ndarray, n: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(shingle hashes, shingles per document) from token hashes: per document with k
    tokens, xxh3_64 of each run of n consecutive token hashes (8n bytes) if k >= n, of all k
    if 0 < k < n, nothing if k = 0 (n <= 30)."""
    return _windows(np.ascontiguousarray(words, dtype=np.uint64), per_doc.astype(np.int64), n,
                    _S64)


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
