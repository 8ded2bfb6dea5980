"""Per-document hashes that decide splits and orders: the same document gets the same value on
any machine, in any partitioning, on any number of workers."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.dedup.xxh3 import hash_spans


def row_hash(table: pa.Table | pa.RecordBatch, columns: list[str], salt: str = "") -> np.ndarray:
    """xxh3_64 of 'salt NUL col1 NUL col2 …' per row (nulls as ''), vectorized over Arrow."""
    sep = pa.scalar("\0", pa.large_string())
    parts = [pa.array(np.full(table.num_rows, salt, dtype=object), pa.large_string())]
    parts += [pc.fill_null(table.column(c).cast(pa.large_string()), "") for c in columns]
    keys = pc.binary_join_element_wise(*parts, sep)
    keys = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
    if len(keys) == 0:
        return np.zeros(0, np.uint64)
    offsets = np.frombuffer(keys.buffers()[1], np.int64)[keys.offset:keys.offset + len(keys) + 1]
    data = np.frombuffer(keys.buffers()[2] or b"\0", np.uint8)
    return hash_spans(data, offsets[:-1], np.diff(offsets))


def validation_mask(table: pa.Table | pa.RecordBatch, fraction: float) -> np.ndarray:
    """Rows whose document id puts them in the validation split. By id (the content's blob
    sha), so copies of one content never straddle train and validation. The validation part
    of corpus/splits.py's rule (its `assign` gives the same rows, tested)."""
    if fraction <= 0:
        return np.zeros(table.num_rows, bool)
    return row_hash(table, ["id"], "split") < np.uint64(min(int(fraction * 2.0**64), 2**64 - 1))
