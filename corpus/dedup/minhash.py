"""MinHash signatures, exactly datasketch's (its default "affine32" scheme), and LSH banding.

A signature value is min over the document's shingles of `a * fmix32(h) + b` mod 2^32, where
h is the low 32 bits of the shingle's xxh3_64 and (a, b) are drawn as datasketch draws them from
`np.random.RandomState(seed)`. So `datasketch.MinHash(num_perm, seed, hashfunc=h)` fed the same
shingles gives the same hash values (tests check it). Computed per document as one NumPy
outer product per block of shingles, never one Python call per shingle.
"""

from __future__ import annotations

import functools

import numpy as np

from corpus.dedup.shingles import Shingles
from corpus.xxh3 import hash_spans

EMPTY = np.uint32(0xFFFFFFFF)  # the value of a signature without shingles


@functools.cache
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 parameters: odd a, any b, uint32."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (datasketch's pre-mix of every hash value)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def signatures(sh: Shingles, num_perm: int, seed: int) -> np.ndarray:
    """(documents, num_perm) uint32; a document without shingles is all EMPTY."""
    from corpus.dedup import kernels

    a, b = permutations(num_perm, seed)
    hv = fmix32((sh.hashes & np.uint64(0xFFFFFFFF)).astype(np.uint32))
    out = np.full((len(sh.counts), num_perm), EMPTY, dtype=np.uint32)
    return kernels.signatures(hv, sh.starts.astype(np.int64), sh.counts.astype(np.int64), a, b,
                              out)


def band_hashes(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(documents, bands) uint64: xxh3_64 of each band's `rows` values (4 bytes each)."""
    n = sig.shape[0]
    out = np.empty((n, bands), dtype=np.uint64)
    for j in range(bands):
        block = np.ascontiguousarray(sig[:, j * rows:(j + 1) * rows]).view(np.uint8).ravel()
        out[:, j] = hash_spans(block, np.arange(n, dtype=np.int64) * 4 * rows,
                               np.full(n, 4 * rows, dtype=np.int64))
    return out


def estimate(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard of row pairs: the fraction of equal values."""
    return (sig_a == sig_b).mean(axis=-1)


# --- LSH parameters, as datasketch chooses them ---------------------------------------------
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)


def _integral(f, lo: float, hi: float) -> np.ndarray:
    x = (hi - lo) / 2 * _NODES + (hi + lo) / 2
    return (hi - lo) / 2 * (f(x[:, None]) * _WEIGHTS[:, None]).sum(axis=0)


@functools.cache
def optimal_param(threshold: float, num_perm: int, false_positive_weight: float = 0.5,
                  false_negative_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimizing the weighted areas of false positives below the threshold
    and false negatives above it: datasketch's `_optimal_param`, integrated by Gauss-Legendre
    instead of scipy's quad."""
    pairs = np.array([(b, r) for b in range(1, num_perm + 1)
                      for r in range(1, num_perm // b + 1)], dtype=np.float64)
    b, r = pairs[:, 0], pairs[:, 1]
    fp = _integral(lambda s: 1 - (1 - s ** r) ** b, 0.0, threshold)
    fn = _integral(lambda s: (1 - s ** r) ** b, threshold, 1.0)
    best = int(np.argmin(fp * false_positive_weight + fn * false_negative_weight))
    return int(b[best]), int(r[best])


@functools.cache
def verify_param(threshold: float, num_perm: int, recall: float = 0.999) -> tuple[int, int]:
    """(bands, rows) for a run that verifies candidates exactly: of the bandings that make a
    pair at the threshold a candidate with probability >= `recall`, the one with the fewest
    candidates below it (smallest false-positive area). Pairs above the threshold are found
    with at least that probability; the false positives are removed by verification."""
    pairs = np.array([(b, r) for b in range(1, num_perm + 1)
                      for r in range(1, num_perm // b + 1)], dtype=np.float64)
    b, r = pairs[:, 0], pairs[:, 1]
    found = 1 - (1 - threshold ** r) ** b
    fp = _integral(lambda s: 1 - (1 - s ** r) ** b, 0.0, threshold)
    fp[found < recall] = np.inf
    best = int(np.argmin(fp))
    return int(b[best]), int(r[best])
