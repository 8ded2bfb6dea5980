"""The one xxh3 every stage imports (corpus/xxh3.py) against the xxhash package, on real files
of this virtualenv: every span length class, whole files, row hashes and the filters' draws."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pyarrow as pa
import xxhash

from corpus.filters.rules import draw
from corpus.xxh3 import hash_spans, hash_strings, row_hash


def real_bytes(dist: str = "rich", limit: int = 200) -> list[bytes]:
    files = [f for f in metadata.distribution(dist).files or [] if f.suffix == ".py"]
    return [f.locate().read_bytes() for f in sorted(files, key=str)[:limit]]


def test_hash_spans_equals_xxhash_on_every_length_class():
    blobs = real_bytes()
    buf = np.frombuffer(b"".join(blobs), np.uint8)
    rng = np.random.default_rng(0)
    # every length from 0 to 300 (all short-input paths and the long one), at random offsets
    lengths = np.repeat(np.arange(301), 20)
    starts = rng.integers(0, len(buf) - 301, len(lengths))
    got = hash_spans(buf, starts, lengths)
    data = buf.tobytes()
    want = [xxhash.xxh3_64_intdigest(data[s:s + n]) for s, n in zip(starts.tolist(),
                                                                    lengths.tolist(), strict=True)]
    assert got.tolist() == want


def test_hash_strings_equals_xxhash_on_whole_files():
    texts = [b.decode("utf-8", "replace") for b in real_bytes()]
    arr = pa.chunked_array([pa.array(texts[:50]), pa.array([*texts[50:], None])])
    got = hash_strings(arr)
    want = [xxhash.xxh3_64_intdigest(t.encode()) for t in texts] + [xxhash.xxh3_64_intdigest(b"")]
    assert got.tolist() == want and len(texts) >= 100


def test_row_hash_is_xxh3_of_the_joined_row():
    paths = [str(f) for f in metadata.distribution("rich").files or []][:300]
    t = pa.table({"id": [f"{i:040x}" for i in range(len(paths))], "path": paths})
    got = row_hash(t, ["id", "path"], "salt")
    assert got.tolist() == [xxhash.xxh3_64_intdigest(f"salt\0{i}\0{p}".encode())
                            for i, p in zip(t.column("id").to_pylist(), paths, strict=True)]
    u = draw(t.column("id"), 7, "config_or_test")
    assert u.tolist() == [xxhash.xxh3_64_intdigest(f"7:config_or_test:{i}".encode()) / 2.0**64
                          for i in t.column("id").to_pylist()]


def test_whole_word_reader_equals_xxhash():
    """xxh3_words (dedup's shingles: n whole 8-byte words) shares the short-input paths with
    hash_spans; every word count it takes, on words of real files."""
    from numba import njit

    from corpus.xxh3 import S64, xxh3_words

    @njit
    def words_hash(w, j, m):
        return xxh3_words(w, j, m, S64)

    data = b"".join(real_bytes())[:8 * 400]
    w = np.frombuffer(data, "<u8").astype(np.uint64)
    for m in range(1, 31):
        for j in (0, 3, 101, 360):
            assert words_hash(w, j, m) == xxhash.xxh3_64_intdigest(w[j:j + m].tobytes()), (m, j)
