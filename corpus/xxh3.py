"""XXH3-64 (seed 0), compiled with numba: the one implementation every stage imports (dedup's
tokens, shingles and bands, row hashes for splits and orders, the filters' seeded draws). Bit
for bit what `xxhash.xxh3_64_intdigest` returns (tests/test_xxh3.py), without a Python call
per span: spans of 0 to 240 bytes follow the reference's short-input paths, one compiled loop
per length class; longer spans go through the xxhash library.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from numba import njit

SECRET = bytes.fromhex(
    "b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f"
    "cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c"
    "3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8"
    "a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364"
    "eac5ac8334d3ebc3c581a0fffa1363eb170ddd51b7f0da49d316552629d4689e"
    "2b16be587d47a1fc8ff8b8d17ad031ce45cb3a8f95160428afd7fbcabb4b407e")

#: the secret read as little-endian uint64 / uint32 at every byte offset
S64 = np.array([int.from_bytes(SECRET[o:o + 8], "little") for o in range(185)], np.uint64)
S32 = np.array([int.from_bytes(SECRET[o:o + 4], "little") for o in range(189)], np.uint64)
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
def _mix16(r, p, u, s64, so):
    """The reference's mix16B of the 16 bytes at word position p of reader r, whose index
    counts bytes (u=1: the byte-offset reader) or words (u=8)."""
    return _fold(r[p] ^ s64[so], r[p + 8 // u] ^ s64[so + 8])


@njit(inline="always")
def _bswap64(x):
    return ((x & np.uint64(0xFF)) << np.uint64(56)) \
        | ((x & np.uint64(0xFF00)) << np.uint64(40)) \
        | ((x & np.uint64(0xFF0000)) << np.uint64(24)) \
        | ((x & np.uint64(0xFF000000)) << np.uint64(8)) \
        | ((x >> np.uint64(8)) & np.uint64(0xFF000000)) \
        | ((x >> np.uint64(24)) & np.uint64(0xFF0000)) \
        | ((x >> np.uint64(40)) & np.uint64(0xFF00)) | (x >> np.uint64(56))


@njit(inline="always")
def _len9to16_of(lo, hi, n):
    """9 to 16 bytes, from their first and last 8 (already keyed with the secret)."""
    return _av(np.uint64(n) + _bswap64(lo) + hi + _fold(lo, hi))


@njit(inline="always")
def _len17to240_of(r, i, n, u, s64):
    """17 to 240 bytes from position i of reader r (u: 1 when r's index counts bytes, 8 when
    it counts words; n counts bytes either way)."""
    acc = np.uint64(n) * P64_1
    if n <= 128:
        if n > 32:
            if n > 64:
                if n > 96:
                    acc += _mix16(r, i + 48 // u, u, s64, 96) \
                        + _mix16(r, i + (n - 64) // u, u, s64, 112)
                acc += _mix16(r, i + 32 // u, u, s64, 64) \
                    + _mix16(r, i + (n - 48) // u, u, s64, 80)
            acc += _mix16(r, i + 16 // u, u, s64, 32) + _mix16(r, i + (n - 32) // u, u, s64, 48)
        acc += _mix16(r, i, u, s64, 0) + _mix16(r, i + (n - 16) // u, u, s64, 16)
        return _av(acc)
    for k in range(8):
        acc += _mix16(r, i + 16 * k // u, u, s64, 16 * k)
    acc = _av(acc)
    for k in range(8, n // 16):
        acc += _mix16(r, i + 16 * k // u, u, s64, 16 * (k - 8) + 3)
    acc += _mix16(r, i + (n - 16) // u, u, s64, 136 - 17)
    return _av(acc)


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
        out[t] = _len9to16_of(lo, hi, n)


@njit(cache=True, nogil=True)
def _len17to240(r64, idx, starts, lengths, s64, out):
    for t in idx:
        i, n = starts[t], lengths[t]
        out[t] = _len17to240_of(r64, i, n, 1, s64)


def hash_spans(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """xxh3_64 of buf[starts[t]:starts[t]+lengths[t]] for every t, as uint64."""
    starts = starts.astype(np.int64, copy=False)
    lengths = lengths.astype(np.int64, copy=False)
    raw, r64, r32 = readers(buf)
    out = np.empty(len(starts), dtype=np.uint64)
    out[lengths == 0] = xxhash.xxh3_64_intdigest(b"")
    _len1to3(raw, np.flatnonzero((lengths >= 1) & (lengths <= 3)), starts, lengths, S32, out)
    _len4to8(r32, np.flatnonzero((lengths >= 4) & (lengths <= 8)), starts, lengths, S64, out)
    _len9to16(r64, np.flatnonzero((lengths >= 9) & (lengths <= 16)), starts, lengths, S64,
              out)
    _len17to240(r64, np.flatnonzero((lengths >= 17) & (lengths <= 240)), starts, lengths, S64,
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


@njit(inline="always")
def xxh3_words(w, j, m, s64):
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
        return _len9to16_of(w[j] ^ (s64[24] ^ s64[32]), w[j + 1] ^ (s64[40] ^ s64[48]), 16)
    return _len17to240_of(w, j, nb, 8, s64)


def hash_strings(strings: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """xxh3_64 of each string's UTF-8 bytes (nulls hash as empty), straight off the buffers."""
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    strings = strings.cast(pa.large_string())
    if len(strings) == 0:
        return np.zeros(0, np.uint64)
    offsets = np.frombuffer(strings.buffers()[1], np.int64)[
        strings.offset:strings.offset + len(strings) + 1]
    data = np.frombuffer(strings.buffers()[2] or b"\0", np.uint8)
    return hash_spans(data, offsets[:-1], np.diff(offsets))


def row_hash(table: pa.Table | pa.RecordBatch, columns: list[str], salt: str = "",
             sep: str = "\0") -> np.ndarray:
    """xxh3_64 of 'salt SEP col1 SEP col2 …' per row (nulls as ''), vectorized over Arrow."""
    parts = [pa.array(np.full(table.num_rows, salt, dtype=object), pa.large_string())]
    parts += [pc.fill_null(table.column(c).cast(pa.large_string()), "") for c in columns]
    return hash_strings(pc.binary_join_element_wise(*parts, pa.scalar(sep, pa.large_string())))
