"""Per-document hashes that decide splits and orders: the same document gets the same value on
any machine, in any partitioning, on any number of workers."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from corpus.xxh3 import row_hash

__all__ = ["row_hash", "validation_mask"]


def validation_mask(table: pa.Table | pa.RecordBatch, fraction: float) -> np.ndarray:
    """Rows whose document id puts them in the validation split. By id (the content's blob
    sha), so copies of one content never straddle train and validation. The validation part
    of corpus/splits.py's rule (its `assign` gives the same rows, tested)."""
    if fraction <= 0:
        return np.zeros(table.num_rows, bool)
    return row_hash(table, ["id"], "split") < np.uint64(min(int(fraction * 2.0**64), 2**64 - 1))
